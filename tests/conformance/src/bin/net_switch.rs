//! Two domains exchange packets through a software switch in a backend
//! domain: this one (`02:00:00:00:00:01`) and `net_peer`
//! (`02:00:00:00:00:02`), both served by `netback`, each send the other 600
//! packets of 60–1514 bytes in 4 interleaved flows while receiving. Every
//! packet must arrive intact and each flow in order (`net_workload`).
#![no_std]
#![no_main]

use veneer_guest::{println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"net_peer netback");
veneer_guest::devices!(b"net netback mac=02:00:00:00:00:01");

fn main(start: &StartInfo) -> ! {
    let (out, inb) = veneer_conformance::net_workload::run(start, [2, 0, 0, 0, 0, 2]);
    println!("net: {} flows x {} packets each way, {} bytes sent, {} received, all intact and in order", veneer_conformance::net_workload::FLOWS, veneer_conformance::net_workload::PER_FLOW, out, inb);
    veneer_guest::success()
}
