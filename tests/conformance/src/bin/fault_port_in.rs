//! A ring-3 guest kernel cannot read I/O ports: `in` from COM1 raises #GP and the domain is stopped.
#![no_std]
#![no_main]

use veneer_guest::{println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"stopped #GP");

fn main(_: &StartInfo) -> ! {
    println!("about to read port 0x3f8");
    // SAFETY: this instruction is meant to fault: the hypervisor must stop
    // the domain before it has any effect.
    unsafe { core::arch::asm!("mov dx, 0x3f8\nin al, dx", options(nostack)) };
    veneer_guest::failure(format_args!("read port 0x3f8 did not fault"))
}
