//! A guest cannot write machine memory through the hypervisor's direct map: the write raises #PF and the domain is stopped.
#![no_std]
#![no_main]

use veneer_guest::{println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"stopped #PF");

fn main(_: &StartInfo) -> ! {
    println!("about to write the direct map");
    // SAFETY: this instruction is meant to fault: the hypervisor must stop
    // the domain before it has any effect.
    unsafe { core::arch::asm!("movabs rax, 0xffff830000100000\nmov qword ptr [rax], 1", options(nostack)) };
    veneer_guest::failure(format_args!("write the direct map did not fault"))
}
