//! The domain booted beside the tests that attack another domain's frames
//! (`veneer_guest::beside!`). It is built before the test runs and runs
//! after it: it checks that its data, its page tables, its p2m and its m2p
//! entries are exactly as the builder made them, then powers off. Any
//! change would be the attack's success.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::memory::pte;
use veneer_guest::mmu::{peek, Memory, RO};
use veneer_guest::{check, println, StartInfo, IMAGE_BASE};

veneer_guest::entry!(main);

/// A page of data the builder loads: its contents are checked.
static mut PATTERN: [u64; 512] = {
    let mut p = [0u64; 512];
    let mut i = 0;
    while i < 512 {
        p[i] = 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i as u64 + 1);
        i += 1;
    }
    p
};

fn main(start: &StartInfo) -> ! {
    let mem = Memory::new(start);
    // SAFETY: read-only use of our own static.
    let pattern = unsafe { &*core::ptr::addr_of!(PATTERN) };
    for (i, &v) in pattern.iter().enumerate() {
        check!(v == 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i as u64 + 1), "data word {} is {:#x}", i, v);
    }
    // Every bootstrap page is mapped by the L1 to the frame the p2m names,
    // and the m2p names it back.
    let l1 = mem.entry_maddr(IMAGE_BASE, 1) >> 12;
    let pt_pfn = (start.pt_base - IMAGE_BASE) / 4096;
    for pfn in 0..start.first_free_pfn {
        let mfn = mem.mfn(pfn);
        check!(mem.m2p(mfn) == pfn, "m2p of our frame {:#x}", mfn);
        let entry = mem.read_entry((l1 << 12) | (pfn * 8));
        check!(entry & pte::FRAME == mfn << 12, "pfn {} mapped to {:#x}", pfn, entry);
        let is_table = (pt_pfn..pt_pfn + start.nr_pt_frames).contains(&pfn);
        check!(!is_table || entry & pte::RW == 0, "table pfn {} writable", pfn);
    }
    for pfn in start.first_free_pfn..512 {
        check!(mem.read_entry((l1 << 12) | (pfn * 8)) == 0, "pfn {} mapped", pfn);
    }
    for pfn in start.first_free_pfn..start.nr_pages {
        check!(mem.m2p(mem.mfn(pfn)) == pfn, "m2p of pfn {}", pfn);
    }
    // The free frames still read zero.
    let pfn = start.first_free_pfn;
    check!(mem.map(pfn, RO) == Ok(0), "map a free frame");
    check!((0..512).all(|i| peek(Memory::va(pfn) + i * 8) == 0), "free frame {} written", pfn);
    println!("companion: data, tables, p2m and m2p intact");
    veneer_guest::hypercall::poweroff(0)
}
