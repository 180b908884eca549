//! A peer that spins (domain 2 beside `fairness_two_spinners`): it
//! allocates a port for domain 1, spins without ever blocking or yielding,
//! and stops when domain 1 closes its end of the channel.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::event::EvtchnState;
use veneer_guest::{event, hypercall, StartInfo};

veneer_guest::entry!(main);

fn main(start: &StartInfo) -> ! {
    event::init(start);
    let port = event::alloc_unbound(1).unwrap();
    // Wait (yielding) until domain 1 is connected, then spin.
    while event::status(port).map(|s| s.state) != Ok(EvtchnState::Interdomain as u32) {
        event::sched_yield().unwrap();
    }
    let mut spins = 0u64;
    loop {
        spins = spins.wrapping_add(1);
        // A status call now and then: the only way to see the close.
        if spins.is_multiple_of(100_000) && event::status(port).map(|s| s.state) != Ok(EvtchnState::Interdomain as u32) {
            hypercall::poweroff(0)
        }
        core::hint::black_box(spins);
    }
}
