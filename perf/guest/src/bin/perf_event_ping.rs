//! Event-channel ping-pong between two domains on Veneer, one CPU: this
//! domain sends on an interdomain channel and blocks until the peer
//! (`perf_event_pong`) answers, the peer blocked likewise. A round trip is
//! two sends, two blocks, two switches between the domains and two
//! upcalls. Its native counterpart is two threads in two address spaces
//! bouncing a self-IPI whose handler switches to the other.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use veneer_guest::trap::{self, TrapContext};
use veneer_guest::{event, hypercall, println, StartInfo};
use veneer_perf_measure::{cycles_per_op, Line};

veneer_guest::entry!(main);
veneer_guest::peers!(b"perf_event_pong");

/// The peer and the port it allocates for this domain.
const PONG: u32 = 2;
const PONG_PORT: u32 = 1;
/// Round trips per batch (the peer answers `ops_of` of them).
const PER_BATCH: u32 = 100;

static PORT: AtomicU32 = AtomicU32::new(0);
static RECEIVED: AtomicU64 = AtomicU64::new(0);

fn upcall(_: &mut TrapContext) {
    event::take_pending_sel(0);
    if event::clear_pending(PORT.load(Ordering::SeqCst)) {
        RECEIVED.fetch_add(1, Ordering::SeqCst);
    }
}

fn main(start: &StartInfo) -> ! {
    println!("bench entered");
    event::init(start);
    trap::install_event(true, upcall).expect("event callback");
    let port = event::connect(PONG, PONG_PORT);
    PORT.store(port, Ordering::SeqCst);
    let stats = cycles_per_op(PER_BATCH, || {
        let before = RECEIVED.load(Ordering::SeqCst);
        event::send(port).expect("send");
        event::block_until(0, || RECEIVED.load(Ordering::SeqCst) != before);
    });
    println!("{}", Line { name: "event_ping_pong", stats });
    hypercall::poweroff(0)
}
