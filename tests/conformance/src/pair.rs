//! Two test domains taking turns: an event channel between them and
//! waiting on it (with events masked, in `sched_poll`).

use veneer_guest::hypercall_abi::Error;
use veneer_guest::{check, event};

/// Nanoseconds a turn may take before the test fails.
const TURN_NS: u64 = 60_000_000_000;

/// The side that offers the channel: an unbound port for `peer`.
pub fn offer(peer: u32) -> u32 {
    event::alloc_unbound(peer).expect("a port for the peer")
}

/// The side that binds: to `peer`'s first port, retrying until `peer` has
/// offered it.
pub fn bind(peer: u32) -> u32 {
    loop {
        match event::bind_interdomain(peer, 1) {
            Ok(p) => return p,
            Err(Error::Busy) => {
                event::sched_yield().expect("yield");
            }
            Err(e) => veneer_guest::failure(format_args!("binding to d{}: {:?}", peer, e)),
        }
    }
}

/// Gives the other side its turn.
pub fn signal(port: u32) {
    event::send(port).expect("send to the peer");
}

/// Waits for the other side's signal.
pub fn wait(port: u32) {
    check!(event::wait_any(&[port], event::now() + TURN_NS), "the peer never signalled");
}
