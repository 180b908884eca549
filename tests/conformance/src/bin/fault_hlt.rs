//! A ring-3 guest kernel cannot halt the CPU: `hlt` raises #GP and the domain is stopped.
#![no_std]
#![no_main]

use veneer_guest::{println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"stopped #GP");

fn main(_: &StartInfo) -> ! {
    println!("about to run hlt");
    // SAFETY: this instruction is meant to fault: the hypervisor must stop
    // the domain before it has any effect.
    unsafe { core::arch::asm!("hlt", options(nostack)) };
    veneer_guest::failure(format_args!("run hlt did not fault"))
}
