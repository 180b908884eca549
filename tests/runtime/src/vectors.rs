//! Filling the vector registers with a pattern and checking it later, for
//! tests that the hypervisor keeps a guest's vector state. The guest is
//! soft-float: nothing the compiler emits in between touches them.

use core::arch::asm;
use core::arch::x86_64::__cpuid;

/// Bytes per register checked: 32 (ymm) where AVX is on, else 16 (xmm).
pub fn width() -> usize {
    let leaf1 = __cpuid(1);
    if leaf1.ecx & (1 << 27) == 0 || leaf1.ecx & (1 << 28) == 0 {
        return 16;
    }
    let (lo, _hi): (u32, u32);
    // SAFETY: xgetbv with ecx = 0 is available in ring 3 when OSXSAVE is set.
    unsafe { asm!("xgetbv", in("ecx") 0, out("eax") lo, out("edx") _hi, options(nomem, nostack)) };
    if lo & 0b110 == 0b110 {
        32
    } else {
        16
    }
}

#[repr(C, align(32))]
struct File([u8; 512]);

fn pattern(seed: u64) -> File {
    let mut f = File([0; 512]);
    for (i, b) in f.0.iter_mut().enumerate() {
        *b = (seed as u8).wrapping_mul(31) ^ (i as u8).wrapping_mul(7) ^ ((seed >> 8) as u8);
    }
    f
}

/// Loads registers 0-15 with the pattern of `seed`.
pub fn fill(seed: u64) {
    let f = pattern(seed);
    let p = f.0.as_ptr();
    // SAFETY: reads 512 bytes of `f`; only vector registers change.
    unsafe {
        if width() == 32 {
            asm!(
                "vmovdqu ymm0, [{p}]", "vmovdqu ymm1, [{p} + 32]", "vmovdqu ymm2, [{p} + 64]", "vmovdqu ymm3, [{p} + 96]",
                "vmovdqu ymm4, [{p} + 128]", "vmovdqu ymm5, [{p} + 160]", "vmovdqu ymm6, [{p} + 192]", "vmovdqu ymm7, [{p} + 224]",
                "vmovdqu ymm8, [{p} + 256]", "vmovdqu ymm9, [{p} + 288]", "vmovdqu ymm10, [{p} + 320]", "vmovdqu ymm11, [{p} + 352]",
                "vmovdqu ymm12, [{p} + 384]", "vmovdqu ymm13, [{p} + 416]", "vmovdqu ymm14, [{p} + 448]", "vmovdqu ymm15, [{p} + 480]",
                p = in(reg) p, options(nostack, readonly),
            );
        } else {
            asm!(
                "movdqu xmm0, [{p}]", "movdqu xmm1, [{p} + 32]", "movdqu xmm2, [{p} + 64]", "movdqu xmm3, [{p} + 96]",
                "movdqu xmm4, [{p} + 128]", "movdqu xmm5, [{p} + 160]", "movdqu xmm6, [{p} + 192]", "movdqu xmm7, [{p} + 224]",
                "movdqu xmm8, [{p} + 256]", "movdqu xmm9, [{p} + 288]", "movdqu xmm10, [{p} + 320]", "movdqu xmm11, [{p} + 352]",
                "movdqu xmm12, [{p} + 384]", "movdqu xmm13, [{p} + 416]", "movdqu xmm14, [{p} + 448]", "movdqu xmm15, [{p} + 480]",
                p = in(reg) p, options(nostack, readonly),
            );
        }
    }
}

/// The first register that no longer holds the pattern of `seed`.
pub fn check(seed: u64) -> Result<(), usize> {
    let mut now = File([0; 512]);
    let p = now.0.as_mut_ptr();
    // SAFETY: writes 512 bytes of `now`.
    unsafe {
        if width() == 32 {
            asm!(
                "vmovdqu [{p}], ymm0", "vmovdqu [{p} + 32], ymm1", "vmovdqu [{p} + 64], ymm2", "vmovdqu [{p} + 96], ymm3",
                "vmovdqu [{p} + 128], ymm4", "vmovdqu [{p} + 160], ymm5", "vmovdqu [{p} + 192], ymm6", "vmovdqu [{p} + 224], ymm7",
                "vmovdqu [{p} + 256], ymm8", "vmovdqu [{p} + 288], ymm9", "vmovdqu [{p} + 320], ymm10", "vmovdqu [{p} + 352], ymm11",
                "vmovdqu [{p} + 384], ymm12", "vmovdqu [{p} + 416], ymm13", "vmovdqu [{p} + 448], ymm14", "vmovdqu [{p} + 480], ymm15",
                p = in(reg) p, options(nostack),
            );
        } else {
            asm!(
                "movdqu [{p}], xmm0", "movdqu [{p} + 32], xmm1", "movdqu [{p} + 64], xmm2", "movdqu [{p} + 96], xmm3",
                "movdqu [{p} + 128], xmm4", "movdqu [{p} + 160], xmm5", "movdqu [{p} + 192], xmm6", "movdqu [{p} + 224], xmm7",
                "movdqu [{p} + 256], xmm8", "movdqu [{p} + 288], xmm9", "movdqu [{p} + 320], xmm10", "movdqu [{p} + 352], xmm11",
                "movdqu [{p} + 384], xmm12", "movdqu [{p} + 416], xmm13", "movdqu [{p} + 448], xmm14", "movdqu [{p} + 480], xmm15",
                p = in(reg) p, options(nostack),
            );
        }
    }
    let want = pattern(seed);
    let w = width();
    (0..16).find(|&r| now.0[r * 32..r * 32 + w] != want.0[r * 32..r * 32 + w]).map_or(Ok(()), Err)
}

/// Takes the vCPU into the hypervisor and back by the route `step` picks
/// (of four, in turn): a hypercall, a trap bounce (`ud2`, which the
/// caller's #UD handler must skip), an event sent on `ipi`, a yield.
pub fn round_trip(step: u64, ipi: u32) {
    match step % 4 {
        0 => {
            crate::hypercall::console_write(b"").unwrap();
        }
        1 => {
            // SAFETY: raises #UD, which the caller's handler skips; no
            // register or memory changes.
            unsafe { asm!("ud2", options(nomem, nostack)) };
        }
        2 => {
            crate::event::send(ipi).unwrap();
        }
        _ => {
            crate::event::sched_yield().unwrap();
        }
    }
}
