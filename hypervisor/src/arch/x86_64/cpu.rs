//! Control registers, feature bits and the FPU.

use core::arch::x86_64::{__cpuid, __cpuid_count};

use veneer_core::vcpu::HostMsr;
use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
use x86_64::registers::model_specific::{Efer, Msr};
use x86_64::registers::xcontrol::XCr0;

/// Stops this CPU for good.
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

/// CPU features Veneer uses where present.
#[derive(Clone, Copy, Debug)]
pub struct Features {
    pub xsave: bool,
    pub smep: bool,
    pub smap: bool,
    /// Process-context identifiers: guest kernel and user address spaces
    /// keep their TLB entries across the switches between them.
    pub pcid: bool,
    /// XCR0 bits this CPU supports, among those Veneer enables.
    pub xcr0: u64,
    /// The local APIC can be driven through MSRs (x2APIC).
    pub x2apic: bool,
    /// The local APIC timer has TSC-deadline mode.
    pub tsc_deadline: bool,
    /// The TSC runs at a constant rate in every power state.
    pub invariant_tsc: bool,
    /// Physical address width: page-table address bits at or above it are
    /// reserved.
    pub phys_addr_bits: u32,
    /// IA32_TSC_AUX exists (RDTSCP or RDPID): each vCPU's is loaded with it.
    pub tsc_aux: bool,
}

/// XCR0 components Veneer hands to guests: x87, SSE, AVX, AVX-512.
const XCR0_WANTED: u64 = 0b1110_0111;

pub fn features() -> Features {
    let leaf1 = __cpuid(1);
    let leaf7 = __cpuid_count(7, 0);
    let xsave = leaf1.ecx & (1 << 26) != 0;
    let xcr0 = if xsave {
        let d = __cpuid_count(0xd, 0);
        (u64::from(d.edx) << 32 | u64::from(d.eax)) & XCR0_WANTED
    } else {
        0
    };
    let max_extended = __cpuid(0x8000_0000).eax;
    let invariant_tsc = max_extended >= 0x8000_0007 && __cpuid(0x8000_0007).edx & (1 << 8) != 0;
    // Leaf 0x80000008 gives the width; without it the architecture says 36.
    let phys_addr_bits = if max_extended >= 0x8000_0008 { __cpuid(0x8000_0008).eax & 0xff } else { 36 };
    Features {
        xsave,
        smep: leaf7.ebx & (1 << 7) != 0,
        smap: leaf7.ebx & (1 << 20) != 0,
        pcid: leaf1.ecx & (1 << 17) != 0,
        xcr0,
        x2apic: leaf1.ecx & (1 << 21) != 0,
        tsc_deadline: leaf1.ecx & (1 << 24) != 0,
        invariant_tsc,
        phys_addr_bits,
        tsc_aux: has_tsc_aux(),
    }
}

const IA32_TSC_AUX: u32 = 0xc000_0103;
const IA32_MISC_ENABLE: u32 = 0x1a0;
const IA32_PAT: u32 = 0x277;

/// Whether IA32_TSC_AUX exists: RDTSCP (0x80000001 EDX 27) or RDPID (7.0 ECX 22).
pub fn has_tsc_aux() -> bool {
    let rdtscp = __cpuid(0x8000_0000).eax >= 0x8000_0001 && __cpuid(0x8000_0001).edx & (1 << 27) != 0;
    rdtscp || __cpuid(0).eax >= 7 && __cpuid_count(7, 0).ecx & (1 << 22) != 0
}

/// Loads IA32_TSC_AUX, if the CPU has it (`has_tsc_aux`).
pub fn write_tsc_aux(value: u32) {
    // SAFETY: the MSR exists (checked by the caller through `has_tsc_aux`)
    // and only sets what `rdtscp`/`rdpid` return.
    unsafe { Msr::new(IA32_TSC_AUX).write(u64::from(value)) };
}

/// The XCR0 in force, which is the guests' (`init` fixes it); 0 without
/// OSXSAVE, when `xgetbv` would fault.
pub fn guest_xcr0() -> u64 {
    if __cpuid(1).ecx & (1 << 27) != 0 {
        XCr0::read_raw()
    } else {
        0
    }
}

/// Reads a hypervisor-owned MSR for `msr_read`.
pub fn host_msr(msr: HostMsr) -> u64 {
    match msr {
        HostMsr::Efer => Efer::read_raw(),
        // SAFETY: IA32_PAT is architectural on every x86_64 CPU; reading it
        // changes nothing.
        HostMsr::Pat => unsafe { Msr::new(IA32_PAT).read() },
        // IA32_MISC_ENABLE is Intel's: other vendors fault on it.
        HostMsr::MiscEnable if __cpuid(0).ebx == u32::from_le_bytes(*b"Genu") => {
            // SAFETY: an Intel CPU has the MSR; reading it changes nothing.
            unsafe { Msr::new(IA32_MISC_ENABLE).read() }
        }
        HostMsr::MiscEnable => 0,
    }
}

/// Sets up CR4 and XCR0: global pages, SSE for guests, XSAVE, and
/// SMEP/SMAP so the hypervisor can neither run nor touch guest pages by
/// accident (it reaches guest memory only through its direct map).
pub fn init(f: &Features) {
    let mut cr4 = Cr4::read() | Cr4Flags::PAGE_GLOBAL | Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE;
    if f.xsave {
        cr4 |= Cr4Flags::OSXSAVE;
    }
    if f.smep {
        cr4 |= Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION;
    }
    if f.smap {
        cr4 |= Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION;
    }
    if f.pcid {
        // CR3 holds PCID 0 (its low bits are clear), as enabling requires.
        cr4 |= Cr4Flags::PCID;
    }
    // SAFETY: every bit set is supported (checked above or architectural on
    // x86_64), and none changes the meaning of the current mappings.
    unsafe { Cr4::write(cr4) };
    // Native FPU error reporting, WAIT honours TS, no emulation: as every
    // x86_64 kernel runs.
    let cr0 = (Cr0::read() | Cr0Flags::MONITOR_COPROCESSOR | Cr0Flags::NUMERIC_ERROR)
        - Cr0Flags::EMULATE_COPROCESSOR
        - Cr0Flags::TASK_SWITCHED;
    // SAFETY: these bits only govern FPU exceptions and are architectural.
    unsafe { Cr0::write(cr0) };
    if f.xsave {
        // SAFETY: OSXSAVE is on, and the value only holds components CPUID
        // reports, x87 among them as the architecture requires.
        unsafe { XCr0::write_raw(f.xcr0) };
    }
}
