//! No page table is ever mapped writable (M2). Attacked directly (making a
//! table's own read-only mapping writable, by `update_va_mapping` and by
//! `mmu_update`, for every bootstrap table), through a second virtual
//! address, and the other way round: a frame mapped writable cannot become
//! a table. Each attempt is `Busy` and leaves the entries as they were; the
//! domain keeps running.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::memory::{uvmf, MmuUpdate};
use veneer_guest::hypercall_abi::Error;
use veneer_guest::mmu::{self, Memory, RO, RW};
use veneer_guest::{check, StartInfo, IMAGE_BASE};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"mmu_companion");

fn main(start: &StartInfo) -> ! {
    let mut mem = Memory::new(start);
    let window = Memory::va(mem.alloc());
    let window_entry = mem.entry_maddr(window, 1);
    let pt_pfn = (start.pt_base - IMAGE_BASE) / 4096;
    for pfn in pt_pfn..pt_pfn + start.nr_pt_frames {
        let (va, table) = (Memory::va(pfn), mem.mfn(pfn));
        let own_entry = mem.entry_maddr(va, 1);
        let before = mem.read_entry(own_entry);
        // Directly: its own mapping made writable.
        let r = mmu::update_va_mapping(va, table << 12 | RW, uvmf::INVLPG);
        check!(r == Err(Error::Busy), "table pfn {}: update_va_mapping writable gave {:?}", pfn, r);
        let r = mmu::mmu_update(&[MmuUpdate::pt_update(own_entry, table << 12 | RW)]);
        check!(r == (0, Err(Error::Busy)), "table pfn {}: mmu_update writable gave {:?}", pfn, r);
        check!(mem.read_entry(own_entry) == before, "table pfn {}: its entry changed", pfn);
        // Through a second address: refused writable, fine read-only.
        let r = mmu::update_va_mapping(window, table << 12 | RW, uvmf::INVLPG);
        check!(r == Err(Error::Busy), "table pfn {} at a second address: {:?}", pfn, r);
        check!(mem.read_entry(window_entry) == 0, "window entry changed");
        check!(mmu::update_va_mapping(window, table << 12 | RO, uvmf::INVLPG) == Ok(0), "read-only second mapping");
        check!(mmu::update_va_mapping(window, 0, uvmf::INVLPG) == Ok(0), "unmap");
    }
    // The other way round: mapped writable first, then pinned at any level.
    let frame = mem.alloc();
    check!(mem.map(frame, RW) == Ok(0), "map a fresh frame writable");
    for level in 1..=4 {
        let r = mmu::pin(level, mem.mfn(frame));
        check!(r == Err(Error::Busy), "pinning a writable frame as L{}: {:?}", level, r);
    }
    // Even writable only at a second address while read-only at the first.
    check!(mem.map(frame, RO) == Ok(0), "read-only at its own address");
    check!(mmu::update_va_mapping(window, mem.mfn(frame) << 12 | RW, uvmf::INVLPG) == Ok(0), "writable at the window");
    check!(mmu::pin(1, mem.mfn(frame)) == Err(Error::Busy), "pinned while writable through the window");
    check!(mmu::update_va_mapping(window, 0, uvmf::INVLPG) == Ok(0), "drop the window");
    check!(mmu::pin(1, mem.mfn(frame)) == Ok(0), "and now it can be a table");
    veneer_guest::success()
}
