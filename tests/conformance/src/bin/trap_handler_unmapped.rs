//! A trap handler at an unmapped address (C3 accepts it: it is canonical
//! and the guest's) cannot be entered: the fetch faults, and the page-fault
//! handler, unmapped too, faults again, each bounce deeper on the stack,
//! until a frame cannot be written: the guest's double fault, not a hang or
//! a hypervisor fault.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::cpu::TrapInfo;
use veneer_guest::{check, hypercall, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"ended crashed by the hypervisor: double fault: cannot bounce #PF (vector 14): frame at");

fn main(_: &StartInfo) -> ! {
    let unmapped = 0x0000_5000_0000_0000;
    let table = [TrapInfo { vector: 14, flags: 0, reserved0: [0; 6], address: unmapped }, TrapInfo { vector: 6, flags: 0, reserved0: [0; 6], address: unmapped }];
    check!(hypercall::set_trap_table(&table).is_ok(), "set_trap_table");
    // SAFETY: meant to fault into the unmapped handler.
    unsafe { core::arch::asm!("ud2", options(noreturn)) }
}
