//! The hypervisor's slots are in every address space but not user-accessible: a guest read of the hypervisor's image raises #PF and the domain is stopped.
#![no_std]
#![no_main]

use veneer_guest::{println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"stopped #PF");

fn main(_: &StartInfo) -> ! {
    println!("about to read the hypervisor image");
    // SAFETY: this instruction is meant to fault: the hypervisor must stop
    // the domain before it has any effect.
    unsafe { core::arch::asm!("movabs rax, 0xffff878000200000\nmov rax, [rax]", options(nostack)) };
    veneer_guest::failure(format_args!("read the hypervisor image did not fault"))
}
