//! An exception in guest user mode before the kernel ever called
//! `stack_switch` has no stack to be bounced to: the guest's double fault.
#![no_std]
#![no_main]

use veneer_guest::trap::{self, TrapContext};
use veneer_guest::{check, hypercall, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"ended crashed by the hypervisor: double fault: cannot bounce #UD (vector 6): no kernel stack");

#[repr(C, align(16))]
struct Stack([u8; 16384]);
static mut USER_STACK: Stack = Stack([0; 16384]);

fn handler(_: &mut TrapContext) {
    veneer_guest::failure(format_args!("the #UD was delivered without a kernel stack"))
}

extern "C" fn user_code() -> ! {
    // SAFETY: meant to fault in user mode.
    unsafe { core::arch::asm!("ud2", options(noreturn)) }
}

fn main(start: &StartInfo) -> ! {
    check!(trap::install(6, 0, true, handler).is_ok(), "install #UD");
    check!(hypercall::set_user_base(trap::bootstrap_l4_mfn(start)).is_ok(), "user base");
    trap::enter_user(user_code as *const () as u64, core::ptr::addr_of!(USER_STACK) as u64 + 16384)
}
