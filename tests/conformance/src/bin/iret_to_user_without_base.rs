//! `iret` to user mode before any user base pointer is installed
//! (section 7.1) is refused by crashing the domain: user mode would
//! otherwise run in the kernel's address space.
#![no_std]
#![no_main]

use veneer_guest::{trap, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"ended crashed by the hypervisor: bad iret: to user mode without a user base pointer");

#[repr(C, align(16))]
struct Stack([u8; 4096]);
static mut USER_STACK: Stack = Stack([0; 4096]);

fn main(_: &StartInfo) -> ! {
    trap::enter_user(main as *const () as u64, core::ptr::addr_of!(USER_STACK) as u64 + 4096)
}
