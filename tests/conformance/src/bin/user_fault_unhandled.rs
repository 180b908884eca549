//! A fault in guest user mode that the guest kernel has no handler for
//! (here a page fault, with only a syscall callback registered) stops the
//! domain, reporting the fault; the hypervisor goes on with the witness.
#![no_std]
#![no_main]

use veneer_guest::trap::{self, TrapContext};
use veneer_guest::{check, hypercall, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"stopped #PF (vector 14, error 0x4)");

#[repr(C, align(16))]
struct Stack([u8; 16384]);
static mut KERNEL_STACK: Stack = Stack([0; 16384]);
static mut USER_STACK: Stack = Stack([0; 16384]);

fn syscall(_: &mut TrapContext) {
    veneer_guest::failure(format_args!("the unmapped read did not fault"))
}

extern "C" fn user_code() -> ! {
    // SAFETY: meant to fault in user mode with no #PF handler.
    unsafe { core::arch::asm!("mov rax, 0x300000000000", "mov rax, [rax]", "syscall", options(noreturn)) }
}

fn main(start: &StartInfo) -> ! {
    check!(trap::install_syscall(true, syscall).is_ok(), "syscall callback");
    check!(hypercall::stack_switch(core::ptr::addr_of!(KERNEL_STACK) as u64 + 16384).is_ok(), "stack_switch");
    check!(hypercall::set_user_base(trap::bootstrap_l4_mfn(start)).is_ok(), "user base");
    trap::enter_user(user_code as *const () as u64, core::ptr::addr_of!(USER_STACK) as u64 + 16384)
}
