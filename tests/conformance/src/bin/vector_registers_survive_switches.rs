//! A vCPU's vector registers (ymm0-15 with AVX, else xmm0-15) survive
//! everything that takes it off its code: hypercalls, trap bounces, event
//! upcalls, yielding, and preemption by the timer in favour of another
//! domain (the peer `vector_registers_peer`) that fills the same registers
//! with its own pattern meanwhile. Both domains check their pattern after
//! at least `MIN_PREEMPTIONS` preemptions.
#![no_std]
#![no_main]

use veneer_guest::trap::{self, TrapContext};
use veneer_guest::{check, event, println, vectors, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"vector_registers_peer");
// One CPU: the peer must preempt this domain, not run beside it.
veneer_guest::host_cpus!(b"1");

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
    let seed = 0x1000 + u64::from(start.domain_id);
    for round in 0..3u64 {
        vectors::fill(seed + round);
        let preemptions = veneer_guest_spin(ipi);
        if let Err(r) = vectors::check(seed + round) {
            veneer_guest::failure(format_args!("round {}: register {} changed after {} preemptions", round, r, preemptions));
        }
    }
    println!("{}-byte vector registers intact", vectors::width());
    veneer_guest::success()
}

/// Preemptions needed per round.
const MIN_PREEMPTIONS: u32 = 5;

/// Spins, with a hypercall, a trap, an event and a yield now and then,
/// until the timer has preempted this vCPU `MIN_PREEMPTIONS` times (a gap
/// over 2 ms in guest time).
fn veneer_guest_spin(ipi: u32) -> u32 {
    let mut preemptions = 0;
    let mut last = event::now();
    let mut i = 0u64;
    while preemptions < MIN_PREEMPTIONS {
        let t = event::now();
        if t - last > 2_000_000 {
            preemptions += 1;
        }
        last = t;
        i += 1;
        match i % 4096 {
            1 => {
                veneer_guest::hypercall::console_write(b"").unwrap();
            }
            2 => {
                // SAFETY: the #UD handler skips it.
                unsafe { core::arch::asm!("ud2") };
            }
            3 => {
                event::send(ipi).unwrap();
            }
            4 => {
                event::sched_yield().unwrap();
            }
            _ => {}
        }
        last = last.max(event::now());
    }
    preemptions
}
