//! Exception bounce round trip on Veneer: a `ud2` in guest user mode
//! raises #UD in the hypervisor, which bounces it to the guest kernel's
//! trap handler (switching to the kernel's address space and stack); the
//! handler skips the instruction and returns to user mode with the `iret`
//! hypercall. What a user page fault or breakpoint costs a Veneer guest
//! beyond its kernel's own work; its native counterpart is a ring-3 `ud2`
//! whose ring-0 handler skips it and `iretq`s.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};

use veneer_guest::hypercall_abi::cpu::{CallbackKind, TrapInfo};
use veneer_guest::{hypercall, println, trap, StartInfo};
use veneer_perf_measure::{cycles_per_op, Line};

veneer_guest::entry!(main);

#[repr(C, align(16))]
struct Stack([u8; 16384]);
static mut KERNEL_STACK: Stack = Stack([0; 16384]);
static mut USER_STACK: Stack = Stack([0; 16384]);
static RESULT: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

// The #UD handler: moves the TrapFrame's rip past the 2-byte ud2, turns
// the frame into an IretFrame (as the runtime's stubs do) and returns.
core::arch::global_asm!(
    ".global perf_ud_handler",
    "perf_ud_handler:",
    "add qword ptr [rsp + 24], 2",
    "push rax",
    "mov rax, [rsp + 8]",
    "xchg rax, [rsp + 16]",
    "mov [rsp + 8], rax",
    "mov qword ptr [rsp + 24], 0",
    "mov eax, 0x33",
    "syscall",
    // The user `syscall` that ends the measurement.
    ".global perf_done_callback",
    "perf_done_callback:",
    "and rsp, -16",
    "call {report}",
    "ud2",
    report = sym report,
);

extern "C" {
    fn perf_ud_handler();
    fn perf_done_callback();
}

extern "C" fn report() -> ! {
    let stats = (RESULT[0].load(Ordering::SeqCst), RESULT[1].load(Ordering::SeqCst), RESULT[2].load(Ordering::SeqCst));
    println!("{}", Line { name: "exception_round_trip", stats });
    hypercall::poweroff(0)
}

extern "C" fn user_main() -> ! {
    let stats = cycles_per_op(1000, || {
        // SAFETY: the kernel's #UD handler skips the instruction.
        unsafe { core::arch::asm!("ud2", options(nomem, nostack)) };
    });
    RESULT[0].store(stats.0, Ordering::SeqCst);
    RESULT[1].store(stats.1, Ordering::SeqCst);
    RESULT[2].store(stats.2, Ordering::SeqCst);
    // SAFETY: the syscall callback reports and does not return.
    unsafe { core::arch::asm!("syscall", options(noreturn)) }
}

fn main(start: &StartInfo) -> ! {
    println!("bench entered");
    let ud = TrapInfo { vector: 6, flags: 0, reserved0: [0; 6], address: perf_ud_handler as *const () as u64 };
    hypercall::set_trap_table(&[ud]).expect("#UD handler");
    hypercall::set_callback(CallbackKind::Syscall, perf_done_callback as *const () as u64, 0).expect("syscall callback");
    hypercall::stack_switch(core::ptr::addr_of!(KERNEL_STACK) as u64 + 16384).expect("stack_switch");
    hypercall::set_user_base(trap::bootstrap_l4_mfn(start)).expect("user base");
    trap::enter_user(user_main as *const () as u64, core::ptr::addr_of!(USER_STACK) as u64 + 16384)
}
