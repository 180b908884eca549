//! `iret` with a frame naming the hypervisor's own code selector (C2)
//! would return to ring 0: there is no caller to refuse, so the domain is
//! crashed and the hypervisor goes on.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::cpu::IretFrame;
use veneer_guest::StartInfo;

veneer_guest::entry!(main);
veneer_guest::expect!(b"ended crashed by the hypervisor: bad iret: selectors cs 0x1000 ss 0x1008");

fn main(_: &StartInfo) -> ! {
    let frame = IretFrame { rax: 0, r11: 0, rcx: 0, flags: 0, rip: main as *const () as u64, cs: 0x1000, rflags: 0x202, rsp: 0, ss: 0x1008 };
    // SAFETY: the call does not return.
    unsafe { core::arch::asm!("mov rsp, {f}", "mov eax, 0x33", "syscall", "ud2", f = in(reg) &frame, options(noreturn)) }
}
