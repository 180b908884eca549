//! Event ping-pong between two domains (with peer `event_pong`, domain 2):
//! the peer allocates an unbound port for domain 1, this domain binds it
//! (retrying while the peer has not yet allocated it), and the two bounce
//! an event back and forth, each sleeping in `sched_block` until the
//! other's event wakes it with an upcall. Both ends report `Interdomain`
//! with each other's ids and ports; when this end closes, the peer's end
//! becomes `Unbound` for this domain again, which the peer checks.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use veneer_guest::hypercall_abi::event::EvtchnState;
use veneer_guest::hypercall_abi::Error;
use veneer_guest::trap::{self, TrapContext};
use veneer_guest::{check, event, println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"event_pong");

const PEER: u32 = 2;
const ROUNDS: usize = 50;

static PORT: AtomicU32 = AtomicU32::new(0);
static RECEIVED: AtomicU64 = AtomicU64::new(0);

fn upcall(_: &mut TrapContext) {
    event::take_pending_sel(0);
    if event::clear_pending(PORT.load(Ordering::SeqCst)) {
        RECEIVED.fetch_add(1, Ordering::SeqCst);
    }
}

fn main(start: &StartInfo) -> ! {
    event::init(start);
    check!(trap::install_event(true, upcall).is_ok(), "event callback");
    let port = event::connect(PEER, 1);
    PORT.store(port, Ordering::SeqCst);
    let s = event::status(port).unwrap();
    check!(s.state == EvtchnState::Interdomain as u32 && s.remote_domid == PEER && s.remote_port == 1, "status {:?}", s);
    check!(event::bind_interdomain(PEER, 1) == Err(Error::Busy), "a bound port cannot be bound twice");
    let mut latency = [0u64; ROUNDS];
    for (i, l) in latency.iter_mut().enumerate() {
        let t0 = event::now();
        check!(event::send(port) == Ok(0), "send");
        event::block_until(0, || RECEIVED.load(Ordering::SeqCst) != i as u64);
        *l = event::now() - t0;
    }
    latency.sort_unstable();
    println!("{} round trips, median {} us", ROUNDS, latency[ROUNDS / 2] / 1000);
    check!(event::close(port) == Ok(0), "close");
    veneer_guest::success()
}
