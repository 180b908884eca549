//! L4 entries 256-271 belong to the hypervisor (M4). Writing any of them
//! with `mmu_update` — empty, the same value, or a table of the guest's
//! own — is `NotPermitted` and changes nothing; a new L4 whose frame holds
//! garbage there validates anyway, and validation replaces the garbage with
//! the hypervisor's entries.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::memory::{memory_consts, pte, MmuUpdate};
use veneer_guest::hypercall_abi::Error;
use veneer_guest::mmu::{self, peek, poke, Memory, RO, RW};
use veneer_guest::{check, StartInfo, IMAGE_BASE};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"mmu_companion");

const FIRST: u64 = memory_consts::HYPERVISOR_L4_FIRST_SLOT;
const LAST: u64 = memory_consts::HYPERVISOR_L4_LAST_SLOT;

fn main(start: &StartInfo) -> ! {
    let mut mem = Memory::new(start);
    let l4 = mem.mfn((start.pt_base - IMAGE_BASE) / 4096);
    let own_l3 = peek(start.pt_base + 511 * 8) & pte::FRAME;
    let a_d = pte::ACCESSED | pte::DIRTY;
    for slot in FIRST..=LAST {
        let at = (l4 << 12) | (slot * 8);
        let before = peek(start.pt_base + slot * 8);
        for value in [0, before, own_l3 | RW] {
            let r = mmu::mmu_update(&[MmuUpdate::pt_update(at, value)]);
            check!(r == (0, Err(Error::NotPermitted)), "slot {} := {:#x}: {:?}", slot, value, r);
        }
        check!(peek(start.pt_base + slot * 8) & !a_d == before & !a_d, "slot {} changed", slot);
    }
    // Garbage in the reserved slots of a new L4 is overwritten, not obeyed:
    // here, a writable mapping of the guest's own L4 that would otherwise
    // break M2, and a non-present pattern.
    let new = mem.alloc();
    check!(mem.map(new, RW) == Ok(0), "map");
    for slot in 0..512 {
        poke(Memory::va(new) + slot * 8, 0);
    }
    for slot in FIRST..=LAST {
        poke(Memory::va(new) + slot * 8, if slot % 2 == 0 { l4 << 12 | RW } else { 0xdead_0000 });
    }
    poke(Memory::va(new) + 511 * 8, own_l3 | RW);
    check!(mem.map(new, RO) == Ok(0), "remap read-only");
    check!(mmu::pin(4, mem.mfn(new)) == Ok(0), "pin the new L4");
    for slot in FIRST..=LAST {
        let (got, want) = (peek(Memory::va(new) + slot * 8), peek(start.pt_base + slot * 8));
        check!(got & !a_d == want & !a_d, "slot {} of the new L4: {:#x}, want {:#x}", slot, got, want);
    }
    veneer_guest::success()
}
