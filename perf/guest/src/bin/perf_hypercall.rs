//! Hypercall round trip on Veneer: a guest kernel's `syscall` into the
//! hypervisor and back, for the cheapest complete call (`console_write` of
//! zero bytes: decoded, checked, carried out, answered).
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::call::hypercall2;
use veneer_guest::hypercall_abi::Hypercall;
use veneer_guest::{hypercall, println, StartInfo};
use veneer_perf_measure::{cycles_per_op, Line};

veneer_guest::entry!(main);

fn main(_: &StartInfo) -> ! {
    println!("bench entered");
    let nr = Hypercall::ConsoleWrite.number();
    let buf = main as *const () as u64;
    let stats = cycles_per_op(1000, || {
        core::hint::black_box(hypercall2(nr, buf, 0));
    });
    println!("{}", Line { name: "hypercall_round_trip", stats });
    hypercall::poweroff(0)
}
