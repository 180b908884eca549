//! A ring-3 guest kernel has no I/O privilege: `out` to the debug-exit port (which would stop the whole machine) raises #GP and the domain is stopped.
#![no_std]
#![no_main]

use veneer_guest::{println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"stopped #GP");

fn main(_: &StartInfo) -> ! {
    println!("about to write port 0xf4");
    // SAFETY: this instruction is meant to fault: the hypervisor must stop
    // the domain before it has any effect.
    unsafe { core::arch::asm!("mov dx, 0xf4\nxor eax, eax\nout dx, eax", options(nostack)) };
    veneer_guest::failure(format_args!("write port 0xf4 did not fault"))
}
