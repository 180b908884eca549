//! An exception in guest kernel mode whose frame cannot be written (the
//! kernel's `rsp` points at an unmapped page) is the guest's double fault:
//! the domain is crashed cleanly and the hypervisor goes on.
#![no_std]
#![no_main]

use veneer_guest::trap::{self, TrapContext};
use veneer_guest::{check, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"ended crashed by the hypervisor: double fault: cannot bounce #UD (vector 6): frame at");

fn handler(_: &mut TrapContext) {
    veneer_guest::failure(format_args!("the #UD was delivered on an unmapped stack"))
}

fn main(_: &StartInfo) -> ! {
    check!(trap::install(6, 0, true, handler).is_ok(), "install #UD");
    // SAFETY: meant to fault with no usable stack.
    unsafe { core::arch::asm!("mov rsp, 0x400000001000", "ud2", options(noreturn)) }
}
