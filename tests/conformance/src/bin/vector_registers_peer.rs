//! The peer of `vector_registers_survive_switches` (domain 2): it allocates
//! a port for domain 1, then fills the vector registers with its own
//! pattern, spins with round trips through the hypervisor, and checks the
//! pattern, round after round, until domain 1 closes the channel. It powers
//! off cleanly only if every round's pattern survived.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::event::EvtchnState;
use veneer_guest::trap::{self, TrapContext};
use veneer_guest::{check, event, println, vectors, StartInfo};

veneer_guest::entry!(main);

/// Iterations per round, and between two round trips through the hypervisor.
const ROUND: u64 = 1 << 20;
const ROUND_TRIP_EVERY: u64 = 1024;

fn skip_ud(ctx: &mut TrapContext) {
    ctx.frame.rip += 2;
}

fn upcall(_: &mut TrapContext) {
    event::take_pending_sel(0);
}

fn connected(port: u32) -> bool {
    event::status(port).map(|s| s.state) == Ok(EvtchnState::Interdomain as u32)
}

fn main(start: &StartInfo) -> ! {
    event::init(start);
    check!(trap::install(6, 0, true, skip_ud).is_ok(), "#UD handler");
    check!(trap::install_event(true, upcall).is_ok(), "event callback");
    // Port 1, the one domain 1 binds to: allocated first.
    let port = event::alloc_unbound(1).unwrap();
    let ipi = event::bind_ipi(0).unwrap();
    event::set_masked(0, false);
    while !connected(port) {
        event::sched_yield().unwrap();
    }
    let seed = 0x1000 + u64::from(start.domain_id);
    let mut round = 0u64;
    loop {
        vectors::fill(seed + round);
        // The status call among the round trips is how the close is seen.
        let mut open = true;
        for i in 1..=ROUND / ROUND_TRIP_EVERY {
            for _ in 0..ROUND_TRIP_EVERY {
                core::hint::spin_loop();
            }
            vectors::round_trip(i, ipi);
            if i % 16 == 0 && !connected(port) {
                open = false;
                break;
            }
        }
        if let Err(r) = vectors::check(seed + round) {
            veneer_guest::failure(format_args!("round {}: register {} changed", round, r));
        }
        round += 1;
        if !open {
            break;
        }
    }
    println!("{} rounds, {}-byte vector registers intact", round, vectors::width());
    veneer_guest::hypercall::poweroff(0)
}
