//! The other end of `net_switch` (domain 2, `02:00:00:00:00:02`).
#![no_std]
#![no_main]

use veneer_guest::{hypercall, StartInfo};

veneer_guest::entry!(main);
veneer_guest::devices!(b"net netback mac=02:00:00:00:00:02");

fn main(start: &StartInfo) -> ! {
    veneer_conformance::net_workload::run(start, [2, 0, 0, 0, 0, 1]);
    hypercall::poweroff(0)
}
