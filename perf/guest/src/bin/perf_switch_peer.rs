//! The peer of `perf_switch` (domain 2): yields back as often as
//! `perf_switch` yields (and a few more, so neither is ever left alone
//! while measuring), then powers off.
#![no_std]
#![no_main]

use veneer_guest::{event, hypercall, StartInfo};
use veneer_perf_measure::ops_of;

veneer_guest::entry!(main);

/// `perf_switch`'s yields per batch.
const PER_BATCH: u32 = 200;
const SPARE: u64 = 16;

fn main(_: &StartInfo) -> ! {
    for _ in 0..ops_of(PER_BATCH) + SPARE {
        event::sched_yield().expect("yield");
    }
    hypercall::poweroff(0)
}
