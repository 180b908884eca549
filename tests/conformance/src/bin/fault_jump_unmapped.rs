//! A jump to an unmapped address raises #PF on the instruction fetch and the domain is stopped.
#![no_std]
#![no_main]

use veneer_guest::{println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"stopped #PF");

fn main(_: &StartInfo) -> ! {
    println!("about to jump to an unmapped address");
    // SAFETY: this instruction is meant to fault: the hypervisor must stop
    // the domain before it has any effect.
    unsafe { core::arch::asm!("movabs rax, 0x0000123400000000\njmp rax", options(nostack)) };
    veneer_guest::failure(format_args!("jump to an unmapped address did not fault"))
}
