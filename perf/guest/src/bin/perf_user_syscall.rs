//! Guest-user syscall round trip on Veneer: a `syscall` in guest user mode,
//! bounced by the hypervisor's fast path to the guest kernel's syscall
//! callback, which returns at once with the `iret` hypercall
//! (`IRET_IN_SYSCALL`). This is what every system call of a process in a
//! Veneer guest costs beyond the guest kernel's own work; its native
//! counterpart is a ring-3 `syscall` into a ring-0 `sysretq`.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};

use veneer_guest::hypercall_abi::cpu::CallbackKind;
use veneer_guest::{hypercall, println, trap, StartInfo};
use veneer_perf_measure::{cycles_per_op, Line};

veneer_guest::entry!(main);

/// The syscall number that ends the measurement; every other returns at once.
const SYS_DONE: u64 = 1;

#[repr(C, align(16))]
struct Stack([u8; 16384]);
static mut KERNEL_STACK: Stack = Stack([0; 16384]);
static mut USER_STACK: Stack = Stack([0; 16384]);
static RESULT: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

// The callback: SYS_DONE goes to Rust; anything else returns at once,
// turning the TrapFrame into an IretFrame with IN_SYSCALL (rcx and r11 need
// no restoring).
core::arch::global_asm!(
    ".global perf_syscall_callback",
    "perf_syscall_callback:",
    "cmp rax, {done}",
    "je 2f",
    "push rax",
    "mov qword ptr [rsp + 24], 1",
    "mov eax, 0x33",
    "syscall",
    "2:",
    "and rsp, -16",
    "call {report}",
    "ud2",
    done = const SYS_DONE,
    report = sym report,
);

extern "C" {
    fn perf_syscall_callback();
}

extern "C" fn report() -> ! {
    let stats = (RESULT[0].load(Ordering::SeqCst), RESULT[1].load(Ordering::SeqCst), RESULT[2].load(Ordering::SeqCst));
    println!("{}", Line { name: "user_syscall_round_trip", stats });
    hypercall::poweroff(0)
}

extern "C" fn user_main() -> ! {
    let stats = cycles_per_op(1000, || {
        // SAFETY: user mode; the kernel's callback returns at once,
        // clobbering only rcx and r11 (as syscall does).
        unsafe { core::arch::asm!("syscall", inout("rax") 0u64 => _, out("rcx") _, out("r11") _, options(nostack)) };
    });
    RESULT[0].store(stats.0, Ordering::SeqCst);
    RESULT[1].store(stats.1, Ordering::SeqCst);
    RESULT[2].store(stats.2, Ordering::SeqCst);
    // SAFETY: SYS_DONE does not return.
    unsafe { core::arch::asm!("syscall", in("rax") SYS_DONE, options(noreturn)) }
}

fn main(start: &StartInfo) -> ! {
    println!("bench entered");
    hypercall::set_callback(CallbackKind::Syscall, perf_syscall_callback as *const () as u64, 0).expect("syscall callback");
    hypercall::stack_switch(core::ptr::addr_of!(KERNEL_STACK) as u64 + 16384).expect("stack_switch");
    hypercall::set_user_base(trap::bootstrap_l4_mfn(start)).expect("user base");
    trap::enter_user(user_main as *const () as u64, core::ptr::addr_of!(USER_STACK) as u64 + 16384)
}
