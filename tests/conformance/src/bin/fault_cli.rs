//! A ring-3 guest kernel cannot mask interrupts: `cli` raises #GP (IOPL is 0), and with no trap table the hypervisor stops the domain and goes on.
#![no_std]
#![no_main]

use veneer_guest::{println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"stopped #GP");

fn main(_: &StartInfo) -> ! {
    println!("about to run cli");
    // SAFETY: this instruction is meant to fault: the hypervisor must stop
    // the domain before it has any effect.
    unsafe { core::arch::asm!("cli", options(nostack)) };
    veneer_guest::failure(format_args!("run cli did not fault"))
}
