//! The domain booted beside the tests that attack another domain's frames
//! (`veneer_guest::peers!`). It is built with the test, waits until the
//! test's domain (domain 1) has ended, then checks that its data, its page
//! tables, its p2m and its m2p entries are exactly as the builder made
//! them, and powers off. Any change would be the attack's success.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::memory::pte;
use veneer_guest::mmu::{peek, start_info_ext, Memory, RO};
use veneer_guest::hypercall_abi::Error;
use veneer_guest::{check, event, println, StartInfo, IMAGE_BASE};

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

/// The domain under test.
const ATTACKER: u32 = 1;

fn main(start: &StartInfo) -> ! {
    // While the attacker exists a port for it can be allocated; once it has
    // ended (or was never built) the call answers NotFound.
    loop {
        match event::alloc_unbound(ATTACKER) {
            Ok(port) => {
                check!(event::close(port).is_ok(), "closing port {}", port);
                check!(event::sched_yield().is_ok(), "sched_yield");
            }
            Err(Error::NotFound) => break,
            Err(e) => veneer_guest::failure(format_args!("evtchn_alloc_unbound({}): {:?}", ATTACKER, e)),
        }
    }
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
    let ext = start_info_ext(start);
    for pfn in 0..start.first_free_pfn {
        let entry = mem.read_entry((l1 << 12) | (pfn * 8));
        if Memory::va(pfn) == ext.shared_info_va {
            // The slot of the shared-info page (SPEC 7.1).
            check!(entry & pte::FRAME == ext.shared_info_mfn << 12, "shared-info slot maps {:#x}", entry);
            continue;
        }
        let mfn = mem.mfn(pfn);
        check!(mem.m2p(mfn) == pfn, "m2p of our frame {:#x}", mfn);
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
