//! A user `syscall` whose bounce frame cannot be written (the guest kernel
//! named a read-only page of its own text as its `stack_switch` stack) is
//! the guest's double fault: the syscall fast path takes the page fault in
//! the hypervisor, crashes the domain and goes on with the witness.
#![no_std]
#![no_main]

use veneer_guest::trap::{self, TrapContext};
use veneer_guest::{check, hypercall, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"ended crashed by the hypervisor: double fault: cannot bounce a user syscall: frame at");

#[repr(C, align(16))]
struct Stack([u8; 16384]);
static mut USER_STACK: Stack = Stack([0; 16384]);

fn syscall(_: &mut TrapContext) {
    veneer_guest::failure(format_args!("the syscall reached the kernel"))
}

extern "C" fn user_code() -> ! {
    // SAFETY: user mode; the bounce of this syscall cannot be delivered.
    unsafe { core::arch::asm!("syscall", "ud2", options(noreturn)) }
}

fn main(start: &StartInfo) -> ! {
    // The end of the first text page: the frame would go just below it,
    // onto read-only text.
    let read_only_top = veneer_guest::IMAGE_BASE + 0x1000;
    check!(trap::install_syscall(true, syscall).is_ok(), "syscall callback");
    check!(hypercall::stack_switch(read_only_top).is_ok(), "stack_switch");
    check!(hypercall::set_user_base(trap::bootstrap_l4_mfn(start)).is_ok(), "user base");
    trap::enter_user(user_code as *const () as u64, core::ptr::addr_of!(USER_STACK) as u64 + 16384)
}
