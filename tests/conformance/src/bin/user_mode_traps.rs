//! Faults and software interrupts in guest user mode reach the guest
//! kernel on its `stack_switch` stack, in kernel mode (kernel GS base), with
//! the user's selectors in the frame: `int 0x80` through a DPL-3 vector
//! (returning after it), `int 0x81` through a DPL-0 vector as the #GP a
//! real gate would raise (error `0x81 << 3 | 2`, at the instruction),
//! `int3`, `ud2`, a read of an unmapped page (#PF, error U, address in
//! `vcpu_info.cr2`), `cli` (#GP 0), and a `syscall` while no syscall
//! callback is registered (#UD at the instruction).
#![no_std]
#![no_main]

use core::arch::asm;

use veneer_guest::hypercall_abi::cpu::selectors::{FLAT_USER_CS64, FLAT_USER_DS};
use veneer_guest::hypercall_abi::cpu::SegmentBase;
use veneer_guest::hypercall_abi::shared_info::SharedInfo;
use veneer_guest::trap::{self, TrapContext};
use veneer_guest::{check, hypercall, println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");

#[repr(C, align(16))]
struct Stack([u8; 16384]);
static mut KERNEL_STACK: Stack = Stack([0; 16384]);
static mut USER_STACK: Stack = Stack([0; 16384]);
static KERNEL_GS: u64 = 0x6b65_726e;
static USER_GS: u64 = 0x7573_6572;
static mut SHARED_INFO: u64 = 0;

const UNMAPPED: u64 = 0x0000_2000_0000_0000;

/// (vector, error code, rip, cr2) of each bounce, in order.
static mut SEEN: [(u64, u64, u64, u64); 8] = [(0, 0, 0, 0); 8];
static mut COUNT: usize = 0;
/// Where each test instruction is, as the user code found it.
static mut LABELS: [u64; 8] = [0; 8];

fn kernel_stack_top() -> u64 {
    core::ptr::addr_of!(KERNEL_STACK) as u64 + 16384
}

fn cr2() -> u64 {
    // SAFETY: the shared-info page is mapped there (start info).
    unsafe { core::ptr::read_volatile(core::ptr::addr_of!((*(SHARED_INFO as *const SharedInfo)).vcpu_info[0].cr2)) }
}

fn handler(ctx: &mut TrapContext) {
    let f = ctx.frame;
    check!(core::ptr::addr_of!(ctx.frame) as u64 == kernel_stack_top() - 64, "frame not on the kernel stack");
    check!(f.cs == FLAT_USER_CS64 && f.ss == FLAT_USER_DS, "vector {:#x}: user selectors {:#x} {:#x}", ctx.vector, f.cs, f.ss);
    check!(trap::gs_word() == KERNEL_GS, "vector {:#x}: kernel GS base", ctx.vector);
    // SAFETY: single vCPU; handlers do not nest.
    unsafe {
        let c = if ctx.vector == 14 { cr2() } else { 0 };
        SEEN[COUNT] = (ctx.vector, f.error_code, f.rip, c);
        COUNT += 1;
    }
    // Skip what faulted: every test instruction here is two bytes, but
    // int 0x80 and int3 have returned past themselves already.
    match ctx.vector {
        0x80 | 3 => {}
        _ => ctx.frame.rip += 2,
    }
    if ctx.vector == 0x80 && ctx.gprs.rax == 0xe0 {
        finish();
    }
}

fn finish() -> ! {
    // SAFETY: single vCPU; user mode is over.
    let (seen, labels, n) = unsafe { (SEEN, LABELS, COUNT) };
    let want: [(u64, u64, u64, u64); 7] = [
        (0x80, 0, labels[0] + 2, 0),
        (13, 0x81 << 3 | 2, labels[1], 0),
        (3, 0, labels[2] + 1, 0),
        (6, 0, labels[3], 0),
        (14, 0b100, labels[4], UNMAPPED),
        (13, 0, labels[5], 0),
        (6, 0, labels[6], 0),
    ];
    check!(n == 8, "{} bounces", n);
    for (i, w) in want.iter().enumerate() {
        check!(seen[i] == *w, "bounce {}: {:x?}, want {:x?}", i, seen[i], w);
    }
    println!("every user-mode trap bounced with the right frame");
    veneer_guest::success()
}

extern "C" fn user_code() -> ! {
    let mut labels = [0u64; 7];
    // SAFETY: user mode; every instruction below traps into the kernel,
    // which skips it; r8 carries the label table.
    unsafe {
        asm!(
            "lea rax, [rip + 20f]", "mov [r8], rax",
            "lea rax, [rip + 21f]", "mov [r8 + 8], rax",
            "lea rax, [rip + 22f]", "mov [r8 + 16], rax",
            "lea rax, [rip + 23f]", "mov [r8 + 24], rax",
            "lea rax, [rip + 24f]", "mov [r8 + 32], rax",
            "lea rax, [rip + 25f]", "mov [r8 + 40], rax",
            "lea rax, [rip + 26f]", "mov [r8 + 48], rax",
            "mov rsi, {unmapped}",
            "20: int 0x80",
            "21: int 0x81",
            "22: int3",
            "nop",
            "23: ud2",
            "24: mov al, [rsi]",
            "25: cli",
            "nop",
            "26: syscall",
            in("r8") labels.as_mut_ptr(),
            unmapped = const UNMAPPED,
            out("rax") _, out("rsi") _, out("rcx") _, out("r11") _,
        );
        // The labels go to the kernel through memory both modes map.
        LABELS[..7].copy_from_slice(&labels);
        asm!("mov eax, 0xe0", "int 0x80", options(noreturn));
    }
}

fn main(start: &StartInfo) -> ! {
    // SAFETY: single vCPU, before user mode.
    unsafe { SHARED_INFO = veneer_guest::start_info_ext(start).shared_info_va };
    for (v, dpl) in [(0x80u8, 3u8), (0x81, 0), (3, 3), (6, 0), (13, 0), (14, 0)] {
        check!(trap::install(v, dpl, true, handler).is_ok(), "install {:#x}", v);
    }
    check!(hypercall::stack_switch(kernel_stack_top()).is_ok(), "stack_switch");
    check!(hypercall::set_segment_base(SegmentBase::GsKernel, core::ptr::addr_of!(KERNEL_GS) as u64).is_ok(), "kernel GS");
    check!(hypercall::set_segment_base(SegmentBase::GsUser, core::ptr::addr_of!(USER_GS) as u64).is_ok(), "user GS");
    check!(hypercall::set_user_base(trap::bootstrap_l4_mfn(start)).is_ok(), "user base pointer");
    trap::enter_user(user_code as *const () as u64, core::ptr::addr_of!(USER_STACK) as u64 + 16384)
}
