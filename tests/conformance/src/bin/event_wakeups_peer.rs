//! The peer of `event_wakeups_across_cpus` (domain 2): offers the port and
//! answers each turn (`wakeups`).
#![no_std]
#![no_main]

use veneer_guest::{hypercall, StartInfo};

veneer_guest::entry!(main);

fn main(start: &StartInfo) -> ! {
    veneer_conformance::wakeups::run(start, 1, true);
    hypercall::poweroff(0)
}
