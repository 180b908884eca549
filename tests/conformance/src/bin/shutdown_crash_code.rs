//! `sched_shutdown(Crash, code)` ends the domain as crashed with the code
//! the guest gave, and the hypervisor reports it and goes on.
#![no_std]
#![no_main]

use veneer_guest::{hypercall, println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"ended crashed (code 3405691582)");

fn main(_: &StartInfo) -> ! {
    println!("crashing with code 0xcafebabe");
    hypercall::crash(0xcafe_babe)
}
