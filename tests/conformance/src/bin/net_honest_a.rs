//! An honest end of `net_bad_frontend` (`02:00:00:00:00:0a`): runs
//! `net_workload` against `02:00:00:00:00:0b` through the switch the
//! misbehaving domain shares, and powers off cleanly only if every packet
//! arrived intact and in order.
#![no_std]
#![no_main]

veneer_guest::entry!(main);
veneer_guest::devices!(b"net netback mac=02:00:00:00:00:0a");

fn main(start: &veneer_guest::StartInfo) -> ! {
    veneer_conformance::net_workload::run(start, [2, 0, 0, 0, 0, 0x0b]);
    veneer_guest::hypercall::poweroff(0)
}
