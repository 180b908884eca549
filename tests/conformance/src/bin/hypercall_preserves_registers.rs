//! Every general-purpose register except `rax` (the result), `rcx` and
//! `r11` (clobbered by `syscall`) survives a hypercall unchanged, for a
//! failing call, a call that reads guest memory and one that writes it.
#![no_std]
#![no_main]

use core::arch::asm;

use veneer_guest::hypercall_abi::{Error, Hypercall};
use veneer_guest::{check, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");

/// Order: rbx rdx rsi rdi rbp r8 r9 r10 r12 r13 r14 r15, then rax.
const NAMES: [&str; 12] = ["rbx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r12", "r13", "r14", "r15"];
static mut REGS_IN: [u64; 13] = [0; 13];
static mut REGS_OUT: [u64; 13] = [0; 13];
static mut SCRATCH: [u8; 64] = [0; 64];

fn call_with(regs: [u64; 13]) -> [u64; 13] {
    // SAFETY: REGS_IN/REGS_OUT are touched only here, single-threaded; the
    // asm saves and restores rbx and rbp, which Rust may not mark clobbered,
    // and declares every other register it changes.
    unsafe {
        REGS_IN = regs;
        asm!(
            "push rbx",
            "push rbp",
            "mov rbx, [rip + {i} + 0]",
            "mov rdx, [rip + {i} + 8]",
            "mov rsi, [rip + {i} + 16]",
            "mov rdi, [rip + {i} + 24]",
            "mov rbp, [rip + {i} + 32]",
            "mov r8,  [rip + {i} + 40]",
            "mov r9,  [rip + {i} + 48]",
            "mov r10, [rip + {i} + 56]",
            "mov r12, [rip + {i} + 64]",
            "mov r13, [rip + {i} + 72]",
            "mov r14, [rip + {i} + 80]",
            "mov r15, [rip + {i} + 88]",
            "mov rax, [rip + {i} + 96]",
            "syscall",
            "mov [rip + {o} + 0],  rbx",
            "mov [rip + {o} + 8],  rdx",
            "mov [rip + {o} + 16], rsi",
            "mov [rip + {o} + 24], rdi",
            "mov [rip + {o} + 32], rbp",
            "mov [rip + {o} + 40], r8",
            "mov [rip + {o} + 48], r9",
            "mov [rip + {o} + 56], r10",
            "mov [rip + {o} + 64], r12",
            "mov [rip + {o} + 72], r13",
            "mov [rip + {o} + 80], r14",
            "mov [rip + {o} + 88], r15",
            "mov [rip + {o} + 96], rax",
            "pop rbp",
            "pop rbx",
            i = sym REGS_IN,
            o = sym REGS_OUT,
            out("rax") _, out("rcx") _, out("rdx") _, out("rsi") _, out("rdi") _,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
        );
        REGS_OUT
    }
}

fn pattern(seed: u64) -> [u64; 13] {
    core::array::from_fn(|i| (seed ^ 0x9e37_79b9_7f4a_7c15).rotate_left(i as u32 * 5) ^ (i as u64) << 56)
}

fn check_call(what: &str, mut regs: [u64; 13], expected_rax: u64) {
    let out = call_with(regs);
    regs[12] = expected_rax;
    for i in 0..12 {
        check!(out[i] == regs[i], "{}: {} was {:#x}, became {:#x}", what, NAMES[i], regs[i], out[i]);
    }
    check!(out[12] == expected_rax, "{}: rax {:#x}, want {:#x}", what, out[12], expected_rax);
}

fn main(_: &StartInfo) -> ! {
    for seed in 0..8u64 {
        let mut r = pattern(seed);
        r[12] = 0x1ff;
        check_call("unknown call", r, Error::NoSuchCall.to_return());

        let mut r = pattern(seed + 100);
        r[2] = 0; // rsi: length 0
        r[12] = Hypercall::ConsoleWrite.number();
        check_call("empty console_write", r, 0);

        let mut r = pattern(seed + 200);
        r[3] = core::ptr::addr_of_mut!(SCRATCH) as u64; // rdi: destination
        r[12] = Hypercall::AbiQuery.number();
        check_call("abi_query", r, 0);
    }
    veneer_guest::success()
}
