//! Self-referencing ("linear") page tables are refused at every level (M3):
//! an entry naming its own table — read-only or writable, in the L4, the L3
//! and the L2 — would make the tables reachable as data, and through a
//! writable one, writable. An entry naming a table of the wrong level is
//! refused the same way. Each attempt is `Invalid` (an L1 naming itself
//! writable is `Busy`: a writable mapping of a table; read-only it is an
//! ordinary read-only mapping of a table) and changes nothing.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::memory::MmuUpdate;
use veneer_guest::hypercall_abi::Error;
use veneer_guest::mmu::{self, Memory, RO, RW};
use veneer_guest::{check, StartInfo, IMAGE_BASE};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"mmu_companion");

fn main(start: &StartInfo) -> ! {
    let mem = Memory::new(start);
    // The bootstrap tables on the way to IMAGE_BASE, level 4 down to 1.
    let tables: [u64; 4] = [4, 3, 2, 1].map(|level| mem.entry_maddr(IMAGE_BASE, level) >> 12);
    // Entry 5 of each: free in the L4, L3 and L2 (the image is at index 0
    // of L2 and L1, 511 of the L4 and 510 of the L3); in the L1 it maps the
    // start-info page, which is put back after each attempt.
    for (i, &table) in tables.iter().enumerate() {
        let level = 4 - i;
        let slot = (table << 12) | (5 * 8);
        let original = mem.read_entry(slot);
        for flags in [RO, RW] {
            let r = mmu::mmu_update(&[MmuUpdate::pt_update(slot, table << 12 | flags)]);
            if level == 1 && flags == RO {
                // An L1 mapping itself read-only is a read-only mapping
                // of a table, which is allowed.
                check!(r == (1, Ok(0)), "L1 mapping itself read-only: {:?}", r);
                check!(mmu::mmu_update(&[MmuUpdate::pt_update(slot, original)]) == (1, Ok(0)), "undo");
                continue;
            }
            let want = if level == 1 { Error::Busy } else { Error::Invalid };
            check!(r == (0, Err(want)), "L{} naming itself ({:#x}): {:?}", level, flags, r);
            check!(mem.read_entry(slot) == original, "L{} entry changed", level);
        }
        // Every other table, at the wrong level for this one.
        for (j, &other) in tables.iter().enumerate() {
            let other_level = 4 - j;
            if level == 1 || other_level + 1 == level {
                continue;
            }
            let r = mmu::mmu_update(&[MmuUpdate::pt_update(slot, other << 12 | RW)]);
            check!(r == (0, Err(Error::Invalid)), "L{} naming an L{}: {:?}", level, other_level, r);
        }
    }
    // A fresh frame whose entry names itself cannot be pinned at any level.
    let mut mem = mem;
    let frame = mem.alloc();
    check!(mem.map(frame, RW) == Ok(0), "map");
    mmu::poke(Memory::va(frame) + 8, mem.mfn(frame) << 12 | RO);
    check!(mem.map(frame, RO) == Ok(0), "remap read-only");
    for level in 2..=4 {
        let r = mmu::pin(level, mem.mfn(frame));
        check!(r == Err(Error::Invalid), "pin as L{} with a self-reference: {:?}", level, r);
    }
    // As an L1 a read-only self-mapping is just a mapping of a table.
    check!(mmu::pin(1, mem.mfn(frame)) == Ok(0), "an L1 mapping itself read-only");
    veneer_guest::success()
}
