//! The attack: map a frame writable, touch it so the TLB holds the
//! writable translation, drop the mapping with `mmu_update` (which flushes
//! nothing), pin the frame as an L1 — and write a page-table entry through
//! the stale translation, one that maps a hypervisor frame writable. The
//! hypervisor must flush before the frame becomes a table: the write then
//! finds no translation, raises #PF and the domain is stopped. Had the
//! stale entry survived, the guest would find its forged entry in a
//! validated page table and say so.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::memory::MmuUpdate;
use veneer_guest::mmu::{self, peek, poke, Memory, RO, RW};
use veneer_guest::{check, println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"stopped #PF (vector 14, error 0x6)");
veneer_guest::peers!(b"mmu_companion");

fn main(start: &StartInfo) -> ! {
    let mut mem = Memory::new(start);
    let (frame, window) = (mem.alloc(), mem.alloc());
    let va = Memory::va(window);
    let entry = mem.entry_maddr(va, 1);
    check!(mmu::update_va_mapping(va, mem.mfn(frame) << 12 | RW, 2) == Ok(0), "map writable");
    for i in 0..512 {
        poke(va + i * 8, 0);
    }
    check!(mmu::mmu_update(&[MmuUpdate::pt_update(entry, 0)]) == (1, Ok(0)), "drop the mapping, no flush");
    check!(mem.map(frame, RO) == Ok(0), "a read-only view at its own address");
    check!(mmu::pin(1, mem.mfn(frame)) == Ok(0), "pin as L1");
    println!("pinned; writing through the old translation");
    poke(va + 8, 0x200 << 12 | RW);
    let forged = peek(Memory::va(frame) + 8);
    veneer_guest::failure(format_args!("a stale writable translation wrote {:#x} into a pinned L1", forged))
}
