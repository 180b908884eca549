//! A guest kernel running two user processes that make syscalls: the
//! kernel enters user mode with `iret` (its bootstrap L4 as the user base
//! pointer), each user `syscall` is bounced by the fast path to the syscall
//! callback on the `stack_switch` stack with the user's selectors, return
//! address and flags in the frame, the kernel's GS base in place of the
//! user's; the kernel switches processes (registers, GS and FS bases) and
//! `iret`s back. Each process sees its own GS and FS bases, its callee-saved
//! registers intact and its own syscall count.
#![no_std]
#![no_main]

use core::arch::asm;

use veneer_guest::hypercall_abi::cpu::selectors::{FLAT_USER_CS64, FLAT_USER_DS};
use veneer_guest::hypercall_abi::cpu::SegmentBase;
use veneer_guest::trap::{self, TrapContext};
use veneer_guest::{check, hypercall, println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");

const SYS_COUNT: u64 = 1;
const SYS_YIELD: u64 = 2;
const SYS_EXIT: u64 = 3;
const SYS_FAIL: u64 = 4;
const ROUNDS: u64 = 25;
const KERNEL_MARK: u64 = 0x4b45_524e_454c_0000;

#[repr(C, align(16))]
struct Stack([u8; 16384]);
static mut KERNEL_STACK: Stack = Stack([0; 16384]);
static mut USER_STACKS: [Stack; 2] = [Stack([0; 16384]), Stack([0; 16384])];
static KERNEL_GS: u64 = KERNEL_MARK;
static USER_GS: [u64; 2] = [0xa0a0, 0xb0b0];
static USER_FS: [u64; 2] = [0xa1a1, 0xb1b1];

static mut PROCS: [TrapContext; 2] = [TrapContext { gprs: trap::Gprs { r15: 0, r14: 0, r13: 0, r12: 0, r11: 0, r10: 0, r9: 0, r8: 0, rbp: 0, rdi: 0, rsi: 0, rdx: 0, rcx: 0, rbx: 0, rax: 0 }, vector: 0, frame: veneer_guest::hypercall_abi::cpu::TrapFrame { rcx: 0, r11: 0, error_code: 0, rip: 0, cs: 0, rflags: 0, rsp: 0, ss: 0 } }; 2];
static mut CURRENT: usize = 0;
static mut COUNTS: [u64; 2] = [0; 2];
static mut DONE: [bool; 2] = [false; 2];

fn kernel_stack_top() -> u64 {
    core::ptr::addr_of!(KERNEL_STACK) as u64 + 16384
}

fn user_stack_top(i: usize) -> u64 {
    core::ptr::addr_of!(USER_STACKS) as u64 + 16384 * (i as u64 + 1)
}

fn set_bases(i: usize) {
    check!(hypercall::set_segment_base(SegmentBase::GsUser, core::ptr::addr_of!(USER_GS[i]) as u64).is_ok(), "GS user base");
    check!(hypercall::set_segment_base(SegmentBase::Fs, core::ptr::addr_of!(USER_FS[i]) as u64).is_ok(), "FS base");
}

fn switch(ctx: &mut TrapContext) {
    // SAFETY: single vCPU; the kernel's state is touched only in here.
    unsafe {
        PROCS[CURRENT] = *ctx;
        CURRENT ^= 1;
        *ctx = PROCS[CURRENT];
        set_bases(CURRENT);
    }
}

fn syscall(ctx: &mut TrapContext) {
    let f = ctx.frame;
    let at = core::ptr::addr_of!(ctx.frame) as u64;
    check!(at == kernel_stack_top() - 64, "frame at {:#x}, kernel stack {:#x}", at, kernel_stack_top());
    check!(f.cs == FLAT_USER_CS64 && f.ss == FLAT_USER_DS, "user selectors {:#x} {:#x}", f.cs, f.ss);
    check!(f.rip == f.rcx && f.rflags & !0x10000 == f.r11 & !0x10000, "syscall return address and flags {:x?}", f);
    check!(f.rflags & 0x200 != 0, "events were unmasked in user mode: {:#x}", f.rflags);
    check!(trap::gs_word() == KERNEL_MARK, "kernel GS base in the callback: {:#x}", trap::gs_word());
    // SAFETY: single vCPU.
    let cur = unsafe { CURRENT };
    match ctx.gprs.rax {
        SYS_COUNT => {
            // SAFETY: as above.
            ctx.gprs.rax = unsafe {
                COUNTS[cur] += 1;
                COUNTS[cur]
            };
        }
        SYS_YIELD => switch(ctx),
        SYS_EXIT => {
            // SAFETY: as above.
            let (done, counts) = unsafe {
                DONE[cur] = true;
                (DONE, COUNTS)
            };
            if done == [true, true] {
                check!(counts == [ROUNDS, ROUNDS], "syscall counts {:?}", counts);
                println!("both processes made {} counted syscalls and exited", ROUNDS);
                veneer_guest::success();
            }
            switch(ctx);
        }
        SYS_FAIL => veneer_guest::failure(format_args!("process {} failed check {}", cur, ctx.gprs.rdi)),
        n => veneer_guest::failure(format_args!("unknown syscall {}", n)),
    }
}

/// A user syscall: number in rax, argument in rdi, result in rax. rbx and
/// r12 carry patterns the kernel must not disturb.
fn user_syscall(nr: u64, arg: u64, pattern: u64) -> (u64, u64, u64) {
    let (ret, b, c): (u64, u64, u64);
    // SAFETY: user mode; the syscall is bounced to this guest's kernel,
    // which preserves everything but rax, rcx and r11.
    unsafe {
        asm!(
            "push rbx",
            "mov rbx, {p}",
            "mov r12, {p}",
            "not r12",
            "syscall",
            "mov {b}, rbx",
            "mov {c}, r12",
            "pop rbx",
            p = in(reg) pattern,
            b = out(reg) b,
            c = out(reg) c,
            inlateout("rax") nr => ret,
            in("rdi") arg,
            out("rcx") _, out("r11") _, out("r12") _,
        );
    }
    (ret, b, c)
}

fn user_fail(check: u64) -> ! {
    user_syscall(SYS_FAIL, check, 0);
    loop {
        core::hint::spin_loop();
    }
}

extern "C" fn user_process(id: u64) -> ! {
    for round in 1..=ROUNDS {
        let pattern = 0x5eed_0000_0000 | id << 16 | round;
        let (n, b, c) = user_syscall(SYS_COUNT, 0, pattern);
        if n != round {
            user_fail(1);
        }
        if b != pattern || c != !pattern {
            user_fail(2);
        }
        if trap::gs_word() != USER_GS[id as usize] || trap::fs_word() != USER_FS[id as usize] {
            user_fail(3);
        }
        user_syscall(SYS_YIELD, 0, pattern);
    }
    user_syscall(SYS_EXIT, 0, 0);
    user_fail(4)
}

extern "C" fn start_process_a() -> ! {
    user_process(0)
}

extern "C" fn start_process_b() -> ! {
    user_process(1)
}

fn main(start: &StartInfo) -> ! {
    check!(trap::install_syscall(false, syscall).is_ok(), "syscall callback");
    check!(hypercall::stack_switch(kernel_stack_top()).is_ok(), "stack_switch");
    check!(hypercall::set_segment_base(SegmentBase::GsKernel, core::ptr::addr_of!(KERNEL_GS) as u64).is_ok(), "kernel GS");
    check!(trap::gs_word() == KERNEL_MARK, "kernel GS base now {:#x}", trap::gs_word());
    check!(hypercall::set_user_base(trap::bootstrap_l4_mfn(start)).is_ok(), "user base pointer");
    // Process B starts when A first yields.
    // SAFETY: single vCPU, before user mode runs.
    unsafe {
        let b = &mut PROCS[1];
        b.frame.rip = start_process_b as *const () as u64;
        b.frame.cs = FLAT_USER_CS64;
        b.frame.rflags = 0x202;
        b.frame.rsp = user_stack_top(1);
        b.frame.ss = FLAT_USER_DS;
    }
    set_bases(0);
    println!("entering user mode");
    trap::enter_user(start_process_a as *const () as u64, user_stack_top(0))
}
