//! A guest builds an address space from scratch — four fresh frames
//! written while writable as L1, L2, L3 and L4, remapped read-only, pinned
//! bottom-up in one batch — switches to it with `NewBaseptr` and keeps
//! running (only its L4 pinned, the rest typed through their entries); maps and unmaps in it (changing its L1, not the bootstrap
//! one); finds the hypervisor's slots filled in by validation; switches
//! back, unpins, and sees the whole tree released (its L1 can be mapped
//! writable again).
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::memory::{memory_consts, pte, uvmf, MmuextCmd};
use veneer_guest::hypercall_abi::Error;
use veneer_guest::mmu::{self, op, peek, poke, Memory, RO, RW};
use veneer_guest::{check, println, StartInfo, IMAGE_BASE};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");

fn main(start: &StartInfo) -> ! {
    let mut mem = Memory::new(start);
    let boot_l4 = mem.mfn((start.pt_base - IMAGE_BASE) / 4096);
    let boot_l1 = mem.entry_maddr(IMAGE_BASE, 1) >> 12;
    let boot_l1_va = Memory::va(mem.m2p(boot_l1));
    let [l4, l3, l2, l1, data, extra] = core::array::from_fn(|_| mem.alloc());
    for pfn in [l4, l3, l2, l1, data] {
        check!(mem.map(pfn, RW) == Ok(0), "map pfn {} writable", pfn);
    }
    // The new L1 maps what the bootstrap one does, its own tables
    // read-only; the upper levels chain down to it at IMAGE_BASE.
    for i in 0..512 {
        poke(Memory::va(l1) + i * 8, peek(boot_l1_va + i * 8));
    }
    for t in [l4, l3, l2, l1] {
        poke(Memory::va(l1) + t * 8, mem.mfn(t) << 12 | RO);
    }
    for t in [l4, l3, l2] {
        for i in 0..512 {
            poke(Memory::va(t) + i * 8, 0);
        }
    }
    poke(Memory::va(l2), mem.mfn(l1) << 12 | RW);
    poke(Memory::va(l3) + 510 * 8, mem.mfn(l2) << 12 | RW);
    poke(Memory::va(l4) + 511 * 8, mem.mfn(l3) << 12 | RW);
    poke(Memory::va(data), 0x600d_da7a);
    for t in [l4, l3, l2, l1] {
        check!(mem.map(t, RO) == Ok(0), "remap pfn {} read-only", t);
    }

    let ops = [
        op(MmuextCmd::PinL1, mem.mfn(l1), 0),
        op(MmuextCmd::PinL2, mem.mfn(l2), 0),
        op(MmuextCmd::PinL3, mem.mfn(l3), 0),
        op(MmuextCmd::PinL4, mem.mfn(l4), 0),
        // Only the top stays pinned; the rest keep their type through the
        // entries that name them.
        op(MmuextCmd::Unpin, mem.mfn(l1), 0),
        op(MmuextCmd::Unpin, mem.mfn(l2), 0),
        op(MmuextCmd::Unpin, mem.mfn(l3), 0),
        op(MmuextCmd::NewBaseptr, mem.mfn(l4), 0),
    ];
    let (done, r) = mmu::mmuext(&ops);
    check!((done, r) == (8, Ok(0)), "pin and switch: {} done, {:?}", done, r);
    println!("running on the new address space");

    // Still running: stack, text and data are mapped by the new L1.
    check!(peek(Memory::va(data)) == 0x600d_da7a, "data through the new tables");
    poke(Memory::va(data), 0x2);
    // Validation wrote the hypervisor's slots into the new L4.
    for slot in memory_consts::HYPERVISOR_L4_FIRST_SLOT..=memory_consts::HYPERVISOR_L4_LAST_SLOT {
        // The CPU sets accessed bits in live entries; the rest must match.
        let a_d = pte::ACCESSED | pte::DIRTY;
        let (new, boot) = (peek(Memory::va(l4) + slot * 8), peek(Memory::va(mem.m2p(boot_l4)) + slot * 8));
        check!(new & !a_d == boot & !a_d, "slot {}: {:#x}, bootstrap L4 has {:#x}", slot, new, boot);
    }
    // Map and unmap in it: the new L1 changes, the bootstrap one does not.
    let r = mmu::update_va_mapping(Memory::va(extra), mem.mfn(extra) << 12 | RW, uvmf::INVLPG);
    check!(r == Ok(0), "map in the new space: {:?}", r);
    poke(Memory::va(extra), 0xe);
    let new_entry = peek(Memory::va(l1) + extra * 8);
    check!(new_entry & pte::FRAME == mem.mfn(extra) << 12 && new_entry & pte::USER != 0, "new L1 entry {:#x}", new_entry);
    check!(peek(boot_l1_va + extra * 8) == 0, "the bootstrap L1 changed");
    check!(mmu::update_va_mapping(Memory::va(extra), 0, uvmf::INVLPG) == Ok(0), "unmap");
    check!(peek(Memory::va(l1) + extra * 8) == 0, "unmapped");

    // Back, and let the new tree go.
    let (done, r) = mmu::mmuext(&[op(MmuextCmd::NewBaseptr, boot_l4, 0), op(MmuextCmd::Unpin, mem.mfn(l4), 0)]);
    check!((done, r) == (2, Ok(0)), "switch back and unpin: {} {:?}", done, r);
    check!(peek(Memory::va(data)) == 0x2, "the write made in the new space");
    for t in [l1, l2, l3, l4] {
        check!(mem.map(t, RW) == Ok(0), "pfn {} is still a page table", t);
    }
    let r = mmu::pin(1, mem.mfn(l1));
    check!(r == Err(Error::Busy), "pinning the now writable L1: {:?}", r);
    veneer_guest::success()
}
