//! A ring-3 guest kernel cannot write MSRs: `wrmsr` to LSTAR (which would hijack every syscall) raises #GP and the domain is stopped.
#![no_std]
#![no_main]

use veneer_guest::{println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"stopped #GP");

fn main(_: &StartInfo) -> ! {
    println!("about to write LSTAR");
    // SAFETY: this instruction is meant to fault: the hypervisor must stop
    // the domain before it has any effect.
    unsafe { core::arch::asm!("mov ecx, 0xc0000082\nxor eax, eax\nxor edx, edx\nwrmsr", options(nostack)) };
    veneer_guest::failure(format_args!("write LSTAR did not fault"))
}
