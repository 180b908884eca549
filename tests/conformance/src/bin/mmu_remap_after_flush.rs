//! After an entry is changed to map another frame, a TLB flush (local
//! flush, `invlpg`, or the flush flags of `update_va_mapping`) makes the
//! new frame visible: the guest reads the new frame's contents at the old
//! address every time.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::memory::{uvmf, MmuUpdate, MmuextCmd};
use veneer_guest::mmu::{self, op, peek, poke, Memory, RO, RW};
use veneer_guest::{check, println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");

fn main(start: &StartInfo) -> ! {
    let mut mem = Memory::new(start);
    let [x, y, window] = core::array::from_fn(|_| mem.alloc());
    for (pfn, tag) in [(x, 0xaaaa), (y, 0xbbbb)] {
        check!(mem.map(pfn, RW) == Ok(0), "map {}", pfn);
        poke(Memory::va(pfn), tag);
    }
    let va = Memory::va(window);
    let entry = mem.entry_maddr(va, 1);
    let (fx, fy) = (mem.mfn(x) << 12 | RO, mem.mfn(y) << 12 | RO);

    check!(mmu::update_va_mapping(va, fx, uvmf::INVLPG) == Ok(0), "map x");
    check!(peek(va) == 0xaaaa, "x through the window");
    for round in 0..4 {
        // Remap to y without a flush: the old translation may survive...
        check!(mmu::mmu_update(&[MmuUpdate::pt_update(entry, fy)]) == (1, Ok(0)), "remap to y");
        let before = peek(va);
        // ...until the guest flushes, one way or another.
        let flush = match round {
            0 => mmu::mmuext(&[op(MmuextCmd::InvlpgLocal, va, 0)]).1,
            1 => mmu::tlb_flush(),
            2 => mmu::mmuext(&[op(MmuextCmd::TlbFlushAll, 0, 0)]).1,
            _ => mmu::mmuext(&[op(MmuextCmd::InvlpgMulti, va, 1)]).1,
        };
        check!(flush == Ok(0), "flush {}: {:?}", round, flush);
        check!(peek(va) == 0xbbbb, "round {}: after the flush the window shows {:#x}", round, peek(va));
        println!("round {}: before the flush {:#x}, after {:#x}", round, before, peek(va));
        // And back with update_va_mapping's own flush.
        let flags = [uvmf::INVLPG, uvmf::TLB_FLUSH, uvmf::INVLPG | uvmf::ALL, uvmf::TLB_FLUSH | uvmf::MULTI][round];
        let r = veneer_guest::hypercall::raw(
            veneer_guest::hypercall_abi::Hypercall::UpdateVaMapping.number(),
            [va, fx, flags, if flags & uvmf::MULTI != 0 { 1 } else { 0 }, 0, 0],
        );
        check!(r == Ok(0), "update_va_mapping flags {:#x}: {:?}", flags, r);
        check!(peek(va) == 0xaaaa, "round {}: back to x", round);
    }
    veneer_guest::success()
}
