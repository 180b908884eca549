//! A hypercall leaves the vector registers alone: xmm0-15 (and the upper
//! halves of ymm0-15 where AVX is on) hold the same bytes after calls that
//! fail, read guest memory and write it. The hypervisor is built soft-float;
//! this proves nothing on its paths touches vector state.
#![no_std]
#![no_main]

use core::arch::asm;
use core::arch::x86_64::__cpuid;

use veneer_guest::hypercall_abi::Hypercall;
use veneer_guest::{check, println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");

#[repr(C, align(32))]
struct VectorFile([u8; 16 * 32]);

static mut BEFORE: VectorFile = VectorFile([0; 512]);
static mut AFTER: VectorFile = VectorFile([0; 512]);
static mut SCRATCH: [u8; 64] = [0; 64];

fn avx_enabled() -> bool {
    let leaf1 = __cpuid(1);
    let osxsave = leaf1.ecx & (1 << 27) != 0;
    let avx = leaf1.ecx & (1 << 28) != 0;
    if !(osxsave && avx) {
        return false;
    }
    let xcr0: u64;
    // SAFETY: xgetbv with ecx = 0 is available in ring 3 when OSXSAVE is set.
    unsafe {
        let (lo, hi): (u32, u32);
        asm!("xgetbv", in("ecx") 0, out("eax") lo, out("edx") hi, options(nomem, nostack));
        xcr0 = u64::from(hi) << 32 | u64::from(lo);
    }
    xcr0 & 0b110 == 0b110
}

/// Loads BEFORE into the vector registers, makes the call, stores them to
/// AFTER. The guest is soft-float, so the compiler keeps nothing in vector
/// registers across this block.
fn call_keeping_vectors(avx: bool, nr: u64, a0: u64, a1: u64) {
    // SAFETY: as above; rcx and r11 are clobbered by syscall, rax holds the
    // number and result, rdi/rsi the arguments.
    unsafe {
        if avx {
            asm!(
                "vmovdqu ymm0, [rip + {b} + 0]", "vmovdqu ymm1, [rip + {b} + 32]",
                "vmovdqu ymm2, [rip + {b} + 64]", "vmovdqu ymm3, [rip + {b} + 96]",
                "vmovdqu ymm4, [rip + {b} + 128]", "vmovdqu ymm5, [rip + {b} + 160]",
                "vmovdqu ymm6, [rip + {b} + 192]", "vmovdqu ymm7, [rip + {b} + 224]",
                "vmovdqu ymm8, [rip + {b} + 256]", "vmovdqu ymm9, [rip + {b} + 288]",
                "vmovdqu ymm10, [rip + {b} + 320]", "vmovdqu ymm11, [rip + {b} + 352]",
                "vmovdqu ymm12, [rip + {b} + 384]", "vmovdqu ymm13, [rip + {b} + 416]",
                "vmovdqu ymm14, [rip + {b} + 448]", "vmovdqu ymm15, [rip + {b} + 480]",
                "syscall",
                "vmovdqu [rip + {a} + 0], ymm0", "vmovdqu [rip + {a} + 32], ymm1",
                "vmovdqu [rip + {a} + 64], ymm2", "vmovdqu [rip + {a} + 96], ymm3",
                "vmovdqu [rip + {a} + 128], ymm4", "vmovdqu [rip + {a} + 160], ymm5",
                "vmovdqu [rip + {a} + 192], ymm6", "vmovdqu [rip + {a} + 224], ymm7",
                "vmovdqu [rip + {a} + 256], ymm8", "vmovdqu [rip + {a} + 288], ymm9",
                "vmovdqu [rip + {a} + 320], ymm10", "vmovdqu [rip + {a} + 352], ymm11",
                "vmovdqu [rip + {a} + 384], ymm12", "vmovdqu [rip + {a} + 416], ymm13",
                "vmovdqu [rip + {a} + 448], ymm14", "vmovdqu [rip + {a} + 480], ymm15",
                b = sym BEFORE, a = sym AFTER,
                inout("rax") nr => _, in("rdi") a0, in("rsi") a1,
                out("rcx") _, out("r11") _, out("rdx") _, out("r8") _, out("r9") _, out("r10") _,
            );
        } else {
            asm!(
                "movdqu xmm0, [rip + {b} + 0]", "movdqu xmm1, [rip + {b} + 32]",
                "movdqu xmm2, [rip + {b} + 64]", "movdqu xmm3, [rip + {b} + 96]",
                "movdqu xmm4, [rip + {b} + 128]", "movdqu xmm5, [rip + {b} + 160]",
                "movdqu xmm6, [rip + {b} + 192]", "movdqu xmm7, [rip + {b} + 224]",
                "movdqu xmm8, [rip + {b} + 256]", "movdqu xmm9, [rip + {b} + 288]",
                "movdqu xmm10, [rip + {b} + 320]", "movdqu xmm11, [rip + {b} + 352]",
                "movdqu xmm12, [rip + {b} + 384]", "movdqu xmm13, [rip + {b} + 416]",
                "movdqu xmm14, [rip + {b} + 448]", "movdqu xmm15, [rip + {b} + 480]",
                "syscall",
                "movdqu [rip + {a} + 0], xmm0", "movdqu [rip + {a} + 32], xmm1",
                "movdqu [rip + {a} + 64], xmm2", "movdqu [rip + {a} + 96], xmm3",
                "movdqu [rip + {a} + 128], xmm4", "movdqu [rip + {a} + 160], xmm5",
                "movdqu [rip + {a} + 192], xmm6", "movdqu [rip + {a} + 224], xmm7",
                "movdqu [rip + {a} + 256], xmm8", "movdqu [rip + {a} + 288], xmm9",
                "movdqu [rip + {a} + 320], xmm10", "movdqu [rip + {a} + 352], xmm11",
                "movdqu [rip + {a} + 384], xmm12", "movdqu [rip + {a} + 416], xmm13",
                "movdqu [rip + {a} + 448], xmm14", "movdqu [rip + {a} + 480], xmm15",
                b = sym BEFORE, a = sym AFTER,
                inout("rax") nr => _, in("rdi") a0, in("rsi") a1,
                out("rcx") _, out("r11") _, out("rdx") _, out("r8") _, out("r9") _, out("r10") _,
            );
        }
    }
}

fn main(_: &StartInfo) -> ! {
    let avx = avx_enabled();
    println!("checking {} registers", if avx { "ymm0-15" } else { "xmm0-15" });
    let width = if avx { 32 } else { 16 };
    let scratch = core::ptr::addr_of_mut!(SCRATCH) as u64;
    let calls = [(0x1ffu64, 0, 0), (Hypercall::ConsoleWrite.number(), scratch, 0), (Hypercall::AbiQuery.number(), scratch, 0)];
    for round in 0..6u8 {
        for (nr, a0, a1) in calls {
            // SAFETY: single-threaded; the statics are only used here.
            let (before, after) = unsafe { (&mut *core::ptr::addr_of_mut!(BEFORE), &mut *core::ptr::addr_of_mut!(AFTER)) };
            for (i, b) in before.0.iter_mut().enumerate() {
                *b = (i as u8).wrapping_mul(37) ^ round.wrapping_mul(101) ^ 0x5a;
            }
            after.0.fill(0);
            call_keeping_vectors(avx, nr, a0, a1);
            // SAFETY: as above.
            let (before, after) = unsafe { (&*core::ptr::addr_of!(BEFORE), &*core::ptr::addr_of!(AFTER)) };
            for reg in 0..16 {
                let (b, a) = (&before.0[reg * 32..reg * 32 + width], &after.0[reg * 32..reg * 32 + width]);
                check!(a == b, "call {:#x}, round {}: vector register {} changed", nr, round, reg);
            }
        }
    }
    veneer_guest::success()
}
