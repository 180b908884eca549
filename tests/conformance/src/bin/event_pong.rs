//! The peer of `event_ping_pong` (domain 2): allocates an unbound port for
//! domain 1 (which, running on another CPU, may bind it at once), answers each event with one, and once domain 1 closes its end
//! checks that its own end is unbound for domain 1 again.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};

use veneer_guest::hypercall_abi::event::EvtchnState;
use veneer_guest::trap::{self, TrapContext};
use veneer_guest::{check, event, hypercall, StartInfo};

veneer_guest::entry!(main);

const PINGER: u32 = 1;
const ROUNDS: u64 = 50;

static RECEIVED: AtomicU64 = AtomicU64::new(0);

fn upcall(_: &mut TrapContext) {
    event::take_pending_sel(0);
    if event::clear_pending(1) {
        RECEIVED.fetch_add(1, Ordering::SeqCst);
    }
}

fn main(start: &StartInfo) -> ! {
    event::init(start);
    check!(trap::install_event(true, upcall).is_ok(), "event callback");
    let port = event::alloc_unbound(PINGER).unwrap();
    check!(port == 1, "first port {}", port);
    // Domain 1, on another CPU, may have bound it already.
    let s = event::status(port).unwrap();
    let state_ok = s.state == EvtchnState::Unbound as u32 || s.state == EvtchnState::Interdomain as u32;
    check!(state_ok && s.remote_domid == PINGER, "status after allocation {:?}", s);
    for i in 0..ROUNDS {
        event::block_until(0, || RECEIVED.load(Ordering::SeqCst) != i);
        check!(event::send(port) == Ok(0), "pong");
    }
    // Wait for domain 1 to close its end.
    loop {
        let s = event::status(port).unwrap();
        if s.state == EvtchnState::Unbound as u32 {
            check!(s.remote_domid == PINGER, "unbound again for {}", s.remote_domid);
            break;
        }
        check!(s.state == EvtchnState::Interdomain as u32 && s.remote_domid == PINGER, "status {:?}", s);
        event::sched_yield().unwrap();
    }
    hypercall::poweroff(0)
}
