//! Entry bits the hypervisor refuses (M5): `GLOBAL` at any level, and
//! every machine-address bit at or above the host's physical address width
//! (read with CPUID 0x80000008), at every level. Each is `Invalid` and
//! changes nothing. Bits the ABI leaves to the guest — the free bits, NX,
//! the caching bits, PAT — are accepted and kept, with USER forced on; a
//! non-present entry may hold anything.
#![no_std]
#![no_main]

use core::arch::x86_64::__cpuid;

use veneer_guest::hypercall_abi::memory::{pte, uvmf, MmuUpdate};
use veneer_guest::hypercall_abi::Error;
use veneer_guest::mmu::{self, Memory, RO, RW};
use veneer_guest::{check, StartInfo, IMAGE_BASE};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"mmu_companion");

fn main(start: &StartInfo) -> ! {
    let mut mem = Memory::new(start);
    let phys_bits = if __cpuid(0x8000_0000).eax >= 0x8000_0008 { u64::from(__cpuid(0x8000_0008).eax & 0xff) } else { 36 };
    let (page, window) = (mem.alloc(), Memory::va(mem.alloc()));
    let frame = mem.mfn(page) << 12;
    let entry = mem.entry_maddr(window, 1);
    // Entry 5 of each upper table is free; the value names a table of the
    // right level (the one below on the way to IMAGE_BASE), so only the
    // refused bit is wrong.
    let upper: [(u64, u64); 3] = [4, 3, 2].map(|level| {
        ((mem.entry_maddr(IMAGE_BASE, level) & !0xfff) | (5 * 8), mem.entry_maddr(IMAGE_BASE, level - 1) & !0xfff)
    });
    let refused = |at: u64, value: u64, what: &str| {
        let r = mmu::mmu_update(&[MmuUpdate::pt_update(at, value)]);
        check!(r == (0, Err(Error::Invalid)), "{} ({:#x}): {:?}", what, value, r);
        check!(mem.read_entry(at) == 0, "{}: entry changed", what);
    };
    refused(entry, frame | RO | pte::GLOBAL, "global L1");
    let r = mmu::update_va_mapping(window, frame | RW | pte::GLOBAL, uvmf::INVLPG);
    check!(r == Err(Error::Invalid), "global through update_va_mapping: {:?}", r);
    for (at, target) in upper {
        refused(at, target | RW | pte::GLOBAL, "global upper level");
    }
    check!(phys_bits < 52, "{} physical address bits", phys_bits);
    for bit in phys_bits..52 {
        refused(entry, frame | RO | 1 << bit, "address bit above the host's width");
        for (at, target) in upper {
            refused(at, target | RW | 1 << bit, "upper-level address bit above the width");
        }
    }
    // What the guest may set is kept.
    let kept = frame | RO | pte::PWT | pte::PCD | pte::PSE | pte::AVAIL_LOW | pte::AVAIL_HIGH | pte::NX | pte::ACCESSED;
    let r = mmu::mmu_update(&[MmuUpdate::pt_update(entry, kept)]);
    check!(r == (1, Ok(0)), "guest bits: {:?}", r);
    check!(mem.read_entry(entry) == kept | pte::USER, "kept as {:#x}", mem.read_entry(entry));
    let junk = !pte::PRESENT;
    check!(mmu::mmu_update(&[MmuUpdate::pt_update(entry, junk)]) == (1, Ok(0)), "non-present junk");
    check!(mem.read_entry(entry) == junk, "non-present entries are stored as given");
    veneer_guest::success()
}
