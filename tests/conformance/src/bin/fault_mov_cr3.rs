//! A ring-3 guest kernel cannot load CR3 (it must use the base-pointer hypercall): `mov cr3` raises #GP and the domain is stopped.
#![no_std]
#![no_main]

use veneer_guest::{println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"stopped #GP");

fn main(_: &StartInfo) -> ! {
    println!("about to load cr3");
    // SAFETY: this instruction is meant to fault: the hypervisor must stop
    // the domain before it has any effect.
    unsafe { core::arch::asm!("xor eax, eax\nmov cr3, rax", options(nostack)) };
    veneer_guest::failure(format_args!("load cr3 did not fault"))
}
