//! A vCPU's x87/SSE/AVX state: saved with XSAVE when it leaves the CPU,
//! restored with XRSTOR when it comes back (FXSAVE/FXRSTOR on a CPU without
//! XSAVE). The hypervisor itself is soft-float and never touches the
//! registers in between, so a guest's vector state survives hypercalls,
//! bounces and being descheduled.

use core::arch::x86_64::__cpuid_count;

use veneer_core::vcpu::{FpuArea, FPU_AREA_SIZE};

use super::cpu::Features;

/// Checks at boot that a vCPU's area holds what XSAVE writes with the
/// components enabled.
pub fn init(f: &Features) {
    if f.xsave {
        // Leaf 0xd, subleaf 0: EBX is the size XSAVE needs for XCR0 now.
        let size = __cpuid_count(0xd, 0).ebx as usize;
        assert!(size <= FPU_AREA_SIZE, "XSAVE area of {size} bytes exceeds {FPU_AREA_SIZE}");
    }
}

/// Saves this CPU's vector state into `area`.
pub fn save(area: &mut FpuArea, f: &Features) {
    let p = area.as_mut_ptr();
    if f.xsave {
        let (lo, hi) = split(f.xcr0);
        // SAFETY: the area is 64-byte aligned and FPU_AREA_SIZE bytes,
        // no smaller than what XSAVE writes for XCR0 (checked by `init`).
        unsafe { core::arch::asm!("xsave64 [{}]", in(reg) p, in("eax") lo, in("edx") hi, options(nostack)) };
    } else {
        // SAFETY: FXSAVE writes 512 bytes to a 16-byte aligned area.
        unsafe { core::arch::asm!("fxsave64 [{}]", in(reg) p, options(nostack)) };
    }
}

/// Loads `area` into this CPU's vector registers.
pub fn restore(area: &FpuArea, f: &Features) {
    let p = area.as_ptr();
    if f.xsave {
        let (lo, hi) = split(f.xcr0);
        // SAFETY: the area was written by `save` with the same XCR0, or is
        // a new area (zero header, valid MXCSR: the initial state); its
        // reserved header bytes are zero, so XRSTOR cannot fault.
        unsafe { core::arch::asm!("xrstor64 [{}]", in(reg) p, in("eax") lo, in("edx") hi, options(nostack, readonly)) };
    } else {
        // SAFETY: a 512-byte legacy image written by FXSAVE, or a new one
        // whose MXCSR is valid (its x87 control word 0 is then replaced by
        // FNINIT when the area is new).
        unsafe { core::arch::asm!("fxrstor64 [{}]", in(reg) p, options(nostack, readonly)) };
    }
}

fn split(xcr0: u64) -> (u32, u32) {
    (xcr0 as u32, (xcr0 >> 32) as u32)
}
