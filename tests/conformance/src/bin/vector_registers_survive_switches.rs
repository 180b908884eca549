//! A vCPU's vector registers (ymm0-15 with AVX, else xmm0-15) survive
//! everything that takes it off its code: hypercalls, trap bounces, event
//! upcalls, yielding, and preemption by the timer in favour of another
//! domain (the peer `vector_registers_peer`) that fills the same registers
//! with its own pattern meanwhile. Each of three rounds checks the pattern
//! after at least `MIN_PREEMPTIONS` preemptions; the peer keeps running
//! (and checking its own pattern) until this domain closes their channel.
#![no_std]
#![no_main]

use veneer_guest::trap::{self, TrapContext};
use veneer_guest::{check, event, println, vectors, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"vector_registers_peer");
// Both domains on one CPU: on two they run side by side and never take each
// other off the CPU, so the switches this test is about would not happen.
veneer_guest::host_cpus!(b"1");

/// Preemptions needed per round.
const MIN_PREEMPTIONS: u32 = 5;
/// A gap longer than this between two readings of system time means the
/// peer ran meanwhile (the slice is 10 ms).
const OFF_CPU_NS: u64 = 500_000;
/// Iterations between two round trips through the hypervisor.
const ROUND_TRIP_EVERY: u64 = 1024;
const PEER: u32 = 2;

fn skip_ud(ctx: &mut TrapContext) {
    ctx.frame.rip += 2;
}

fn upcall(_: &mut TrapContext) {
    event::take_pending_sel(0);
}

fn main(start: &StartInfo) -> ! {
    event::init(start);
    check!(trap::install(6, 0, true, skip_ud).is_ok(), "#UD handler");
    check!(trap::install_event(true, upcall).is_ok(), "event callback");
    let ipi = event::bind_ipi(0).unwrap();
    event::set_masked(0, false);
    // The peer allocates a port for us and spins until we close it.
    let port = event::connect(PEER, 1);
    let seed = 0x1000 + u64::from(start.domain_id);
    for round in 0..3u64 {
        vectors::fill(seed + round);
        // One yield per round; the round's gaps are the timer's.
        event::sched_yield().unwrap();
        let preemptions = spin_until_preempted(ipi);
        if let Err(r) = vectors::check(seed + round) {
            veneer_guest::failure(format_args!("round {}: register {} changed after {} preemptions", round, r, preemptions));
        }
    }
    event::close(port).unwrap();
    println!("{}-byte vector registers intact", vectors::width());
    veneer_guest::success()
}

/// Spins, with a round trip through the hypervisor now and then, until
/// the timer has taken this vCPU off the CPU `MIN_PREEMPTIONS` times.
fn spin_until_preempted(ipi: u32) -> u32 {
    let mut preemptions = 0;
    let mut last = event::now();
    let mut i = 0u64;
    while preemptions < MIN_PREEMPTIONS {
        i += 1;
        if i.is_multiple_of(ROUND_TRIP_EVERY) {
            // A hypercall, a trap or an event, never a yield here: yielding
            // every few milliseconds would give the CPU away before the
            // slice ends, and the timer would never preempt this vCPU.
            vectors::round_trip(i / ROUND_TRIP_EVERY % 3, ipi);
            last = event::now();
            continue;
        }
        let t = event::now();
        if t - last > OFF_CPU_NS {
            preemptions += 1;
        }
        last = t;
    }
    preemptions
}
