//! The peer of `perf_event_ping` (domain 2): answers each of its events
//! with one, as many as the ping's measurement sends, then powers off.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};

use veneer_guest::trap::{self, TrapContext};
use veneer_guest::{event, hypercall, StartInfo};
use veneer_perf_measure::ops_of;

veneer_guest::entry!(main);

/// Domain 1, and its round trips per batch (`perf_event_ping`'s).
const PING: u32 = 1;
const PER_BATCH: u32 = 100;

static RECEIVED: AtomicU64 = AtomicU64::new(0);

fn upcall(_: &mut TrapContext) {
    event::take_pending_sel(0);
    if event::clear_pending(1) {
        RECEIVED.fetch_add(1, Ordering::SeqCst);
    }
}

fn main(start: &StartInfo) -> ! {
    event::init(start);
    trap::install_event(true, upcall).expect("event callback");
    let port = event::alloc_unbound(PING).expect("port for domain 1");
    for answered in 0..ops_of(PER_BATCH) {
        event::block_until(0, || RECEIVED.load(Ordering::SeqCst) != answered);
        event::send(port).expect("send");
    }
    hypercall::poweroff(0)
}
