//! `cpuid_query` (SPEC 13.10) gives the domain's view, not the host's that
//! native `cpuid` reports: the hypervisor bit set; VMX, SMX, MONITOR, PCID,
//! INVPCID, x2APIC, TSC-deadline, the local APIC, PKU/OSPKE, UMIP, SMEP,
//! SMAP, LA57, XSAVES and the PMU hidden; everything else of leaves 1 and 7
//! the host's; leaf 0xd exactly the XCR0 guests run with (what `xgetbv`
//! reads) and its size; vCPU 0's APIC ids; the hypervisor leaves; zero for
//! unknown leaves; and `BadAddress` for output it cannot write.
#![no_std]
#![no_main]

use core::arch::x86_64::__cpuid_count;

use veneer_guest::hypercall_abi::cpu::CpuidResult;
use veneer_guest::hypercall_abi::{Error, Hypercall};
use veneer_guest::{check, hypercall, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");

const L1_ECX_HIDDEN: u32 = 1 << 3 | 1 << 5 | 1 << 6 | 1 << 17 | 1 << 21 | 1 << 24;
const L7_EBX_HIDDEN: u32 = 1 << 7 | 1 << 10 | 1 << 20;
const L7_ECX_HIDDEN: u32 = 1 << 2 | 1 << 3 | 1 << 4 | 1 << 16;

fn q(leaf: u32, subleaf: u32) -> CpuidResult {
    match hypercall::cpuid_query(leaf, subleaf) {
        Ok(r) => r,
        Err(e) => veneer_guest::failure(format_args!("cpuid_query({:#x}, {}): {:?}", leaf, subleaf, e)),
    }
}

fn main(_: &StartInfo) -> ! {
    let native1 = __cpuid_count(1, 0);
    let l1 = q(1, 0);
    check!(l1.ecx & L1_ECX_HIDDEN == 0, "leaf 1 ECX shows hidden bits: {:#x}", l1.ecx);
    check!(l1.ecx & 1 << 31 != 0, "no hypervisor bit");
    check!(l1.ecx | L1_ECX_HIDDEN == native1.ecx | L1_ECX_HIDDEN | 1 << 31, "leaf 1 ECX {:#x}, host {:#x}", l1.ecx, native1.ecx);
    check!(l1.edx == native1.edx & !(1 << 9), "leaf 1 EDX {:#x}, host {:#x}", l1.edx, native1.edx);
    check!(l1.ebx >> 24 == 0, "vCPU 0's initial APIC id: {:#x}", l1.ebx);

    let native7 = __cpuid_count(7, 0);
    let l7 = q(7, 0);
    check!(l7.ebx == native7.ebx & !L7_EBX_HIDDEN, "leaf 7 EBX {:#x}, host {:#x}", l7.ebx, native7.ebx);
    check!(l7.ecx == native7.ecx & !L7_ECX_HIDDEN, "leaf 7 ECX {:#x}, host {:#x}", l7.ecx, native7.ecx);
    // Hiding is only seen where the host has something to hide.
    let host_hidden = native1.ecx & L1_ECX_HIDDEN | native7.ebx & L7_EBX_HIDDEN | native7.ecx & L7_ECX_HIDDEN;
    veneer_guest::println!("host features the view hides: leaf 1 ECX {:#x}, leaf 7 EBX {:#x} ECX {:#x}", native1.ecx & L1_ECX_HIDDEN, native7.ebx & L7_EBX_HIDDEN, native7.ecx & L7_ECX_HIDDEN);
    check!(host_hidden != 0, "the host has none of the features the view hides");
    check!(q(0xa, 0) == CpuidResult::default(), "the PMU leaf is not zero");
    check!(q(0x8000_0001, 0).ecx & (1 << 2 | 1 << 29) == 0, "SVM or MONITORX shown");

    check!(l1.ecx & 1 << 27 != 0, "no OSXSAVE");
    let xcr0 = xgetbv0();
    let d0 = q(0xd, 0);
    check!(u64::from(d0.edx) << 32 | u64::from(d0.eax) == xcr0, "leaf 0xd components {:#x}:{:#x}, XCR0 {:#x}", d0.edx, d0.eax, xcr0);
    let size = __cpuid_count(0xd, 0).ebx;
    check!(d0.ebx == size && d0.ecx == size, "leaf 0xd sizes {:#x} {:#x}, XSAVE needs {:#x}", d0.ebx, d0.ecx, size);
    check!(q(0xd, 1).eax & 1 << 3 == 0, "XSAVES shown");
    for i in 2..64u32 {
        let shown = q(0xd, i) != CpuidResult::default();
        let enabled = xcr0 & 1 << i != 0;
        check!(shown == enabled, "leaf 0xd component {}: shown {}, in XCR0 {}", i, shown, enabled);
        if enabled {
            check!(q(0xd, i) == to_result(__cpuid_count(0xd, i)), "leaf 0xd component {} differs from the host", i);
        }
    }

    let hv = q(0x4000_0000, 0);
    let mut sig = [0u8; 12];
    sig[..4].copy_from_slice(&hv.ebx.to_le_bytes());
    sig[4..8].copy_from_slice(&hv.ecx.to_le_bytes());
    sig[8..].copy_from_slice(&hv.edx.to_le_bytes());
    check!(hv.eax == 0x4000_0001 && &sig == b"VeneerVeneer", "hypervisor leaf {:#x} {:?}", hv.eax, sig);
    check!(q(0x4000_0001, 0).eax == 1 << 16, "ABI version {:#x}", q(0x4000_0001, 0).eax);
    let max_basic = __cpuid_count(0, 0).eax;
    for leaf in [max_basic + 1, 0x4000_0002, 0x2000_0000, 0xc000_0000, 0x8fff_ffff] {
        check!(q(leaf, 0) == CpuidResult::default(), "unknown leaf {:#x} is not zero", leaf);
    }

    let nr = Hypercall::CpuidQuery.number();
    for (what, out) in [
        ("unmapped", 0x1000u64),
        ("in the hypervisor", 0xffff_8000_0000_0000),
        ("non-canonical", 0x0000_8000_0000_0000),
        ("at the top of the address space", u64::MAX - 7),
    ] {
        let r = hypercall::raw(nr, [1, 0, out, 0, 0, 0]);
        check!(r == Err(Error::BadAddress), "cpuid_query output {}: {:?}", what, r);
    }
    veneer_guest::success()
}

fn to_result(r: core::arch::x86_64::CpuidResult) -> CpuidResult {
    CpuidResult { eax: r.eax, ebx: r.ebx, ecx: r.ecx, edx: r.edx }
}

/// XCR0, read natively (SPEC 13.13).
fn xgetbv0() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: OSXSAVE is on (checked by the caller), so `xgetbv` works in
    // ring 3; it only reads.
    unsafe { core::arch::asm!("xgetbv", in("ecx") 0, out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    u64::from(hi) << 32 | u64::from(lo)
}
