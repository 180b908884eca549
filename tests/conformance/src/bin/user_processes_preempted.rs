//! A guest kernel running two user processes that never make a syscall
//! until they are done, preempted by its timer: the timer VIRQ's upcall
//! arrives while user mode runs, bounced on the `stack_switch` stack with
//! the user's selectors in the frame and the kernel's GS base in place,
//! and the kernel switches processes there and `iret`s into the other.
//! Both processes make progress between switches, and each finds its own
//! counter and GS base intact when it resumes.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};

use veneer_guest::hypercall_abi::cpu::selectors::{FLAT_USER_CS64, FLAT_USER_DS};
use veneer_guest::hypercall_abi::cpu::{SegmentBase, TrapFrame};
use veneer_guest::hypercall_abi::event::Virq;
use veneer_guest::trap::{self, TrapContext};
use veneer_guest::{check, event, hypercall, println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");

const SWITCHES: u64 = 20;
const TICK_NS: u64 = 3_000_000;
const KERNEL_MARK: u64 = 0x6b72_6e6c;
const SYS_DONE: u64 = 7;

#[repr(C, align(16))]
struct Stack([u8; 16384]);
static mut KERNEL_STACK: Stack = Stack([0; 16384]);
static mut USER_STACKS: [Stack; 2] = [Stack([0; 16384]), Stack([0; 16384])];
static KERNEL_GS: u64 = KERNEL_MARK;
static USER_GS: [u64; 2] = [0x1111, 0x2222];
/// What each process has counted, written by user mode.
static COUNTERS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

static mut PROCS: [TrapContext; 2] = [TrapContext {
    gprs: trap::Gprs { r15: 0, r14: 0, r13: 0, r12: 0, r11: 0, r10: 0, r9: 0, r8: 0, rbp: 0, rdi: 0, rsi: 0, rdx: 0, rcx: 0, rbx: 0, rax: 0 },
    vector: 0,
    frame: TrapFrame { rcx: 0, r11: 0, error_code: 0, rip: 0, cs: 0, rflags: 0, rsp: 0, ss: 0 },
}; 2];
static CURRENT: AtomicU64 = AtomicU64::new(0);
static SWITCHED: AtomicU64 = AtomicU64::new(0);
static SEEN_AT_SWITCH: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
static TIMER_PORT: AtomicU64 = AtomicU64::new(0);
/// Ticks in a row at which the running process had not moved.
static IDLE_TICKS: AtomicU64 = AtomicU64::new(0);

fn kernel_stack_top() -> u64 {
    core::ptr::addr_of!(KERNEL_STACK) as u64 + 16384
}

fn upcall(ctx: &mut TrapContext) {
    event::take_pending_sel(0);
    if !event::clear_pending(TIMER_PORT.load(Ordering::SeqCst) as u32) {
        return;
    }
    check!(trap::gs_word() == KERNEL_MARK, "kernel GS base in the upcall");
    check!(core::ptr::addr_of!(ctx.frame) as u64 == kernel_stack_top() - 64, "upcall frame not on the kernel stack");
    check!(ctx.frame.cs == FLAT_USER_CS64 && ctx.frame.ss == FLAT_USER_DS, "preempted outside user mode: cs {:#x}", ctx.frame.cs);
    check!(ctx.frame.rflags & 0x200 != 0, "user mode ran with events masked");
    let cur = CURRENT.load(Ordering::SeqCst) as usize;
    let count = COUNTERS[cur].load(Ordering::SeqCst);
    check!(event::timer_set(event::now() + TICK_NS).is_ok(), "re-arm the tick");
    if count == SEEN_AT_SWITCH[cur].load(Ordering::SeqCst) {
        // A tick that came before the process ran at all (the first one
        // may be due already as user mode is entered): no switch.
        let idle = IDLE_TICKS.fetch_add(1, Ordering::SeqCst) + 1;
        check!(idle <= 3, "process {} made no progress in {} ticks", cur, idle);
        return;
    }
    IDLE_TICKS.store(0, Ordering::SeqCst);
    SEEN_AT_SWITCH[cur].store(count, Ordering::SeqCst);
    let next = cur ^ 1;
    // SAFETY: single vCPU; the contexts are touched only here and in main.
    unsafe {
        PROCS[cur] = *ctx;
        *ctx = PROCS[next];
    }
    CURRENT.store(next as u64, Ordering::SeqCst);
    check!(hypercall::set_segment_base(SegmentBase::GsUser, core::ptr::addr_of!(USER_GS[next]) as u64).is_ok(), "user GS");
    SWITCHED.fetch_add(1, Ordering::SeqCst);
}

fn syscall(ctx: &mut TrapContext) {
    check!(ctx.gprs.rax == SYS_DONE, "unexpected syscall {}", ctx.gprs.rax);
    let (a, b) = (COUNTERS[0].load(Ordering::SeqCst), COUNTERS[1].load(Ordering::SeqCst));
    println!("{} switches; counters {} and {}", SWITCHED.load(Ordering::SeqCst), a, b);
    veneer_guest::success()
}

extern "C" fn user_process(id: u64) -> ! {
    let mine = &COUNTERS[id as usize];
    loop {
        if trap::gs_word() != USER_GS[id as usize] {
            // A wrong GS base: report it as a bogus syscall.
            // SAFETY: user mode; the kernel fails the test on it.
            unsafe { core::arch::asm!("mov eax, 99", "syscall", options(noreturn)) };
        }
        let before = mine.load(Ordering::SeqCst);
        mine.store(before + 1, Ordering::SeqCst);
        if id == 0 && SWITCHED.load(Ordering::SeqCst) >= SWITCHES {
            // SAFETY: user mode: SYS_DONE ends the test in the kernel.
            unsafe { core::arch::asm!("syscall", in("rax") SYS_DONE, options(noreturn)) };
        }
    }
}

extern "C" fn start_a() -> ! {
    user_process(0)
}

extern "C" fn start_b() -> ! {
    user_process(1)
}

fn main(start: &StartInfo) -> ! {
    event::init(start);
    check!(trap::install_event(true, upcall).is_ok(), "event callback");
    check!(trap::install_syscall(true, syscall).is_ok(), "syscall callback");
    let port = event::bind_virq(Virq::Timer as u32, 0).unwrap();
    TIMER_PORT.store(u64::from(port), Ordering::SeqCst);
    check!(hypercall::stack_switch(kernel_stack_top()).is_ok(), "stack_switch");
    check!(hypercall::set_segment_base(SegmentBase::GsKernel, core::ptr::addr_of!(KERNEL_GS) as u64).is_ok(), "kernel GS");
    check!(hypercall::set_segment_base(SegmentBase::GsUser, core::ptr::addr_of!(USER_GS[0]) as u64).is_ok(), "user GS");
    check!(hypercall::set_user_base(trap::bootstrap_l4_mfn(start)).is_ok(), "user base");
    // SAFETY: single vCPU, before user mode runs.
    unsafe {
        let b = &mut PROCS[1];
        b.frame = TrapFrame { rcx: 0, r11: 0, error_code: 0, rip: start_b as *const () as u64, cs: FLAT_USER_CS64, rflags: 0x202, rsp: core::ptr::addr_of!(USER_STACKS) as u64 + 2 * 16384, ss: FLAT_USER_DS };
    }
    event::timer_set(event::now() + TICK_NS).unwrap();
    trap::enter_user(start_a as *const () as u64, core::ptr::addr_of!(USER_STACKS) as u64 + 16384)
}
