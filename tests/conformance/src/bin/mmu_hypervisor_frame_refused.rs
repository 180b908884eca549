//! No hypervisor frame can be mapped, typed, retargeted or taken (M1, M8,
//! M9): the frames of the hypervisor's own L3 tables (read from the
//! reserved slots of the guest's L4), the hypervisor image and low memory,
//! the first frame past RAM and one far beyond. Mapping read-only or
//! writable and writing them as page tables is `Invalid`; the m2p of them
//! `Invalid`; pinning, base pointers and giving back `NotFound`.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::memory::{memory_consts, pte, uvmf, MmuUpdate, MmuextCmd};
use veneer_guest::hypercall_abi::Error;
use veneer_guest::mmu::{self, peek, Memory, RO, RW};
use veneer_guest::{check, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"mmu_companion");

fn attack(window: u64, mfn: u64) {
    for flags in [RO, RW] {
        let r = mmu::update_va_mapping(window, mfn << 12 | flags, uvmf::INVLPG);
        check!(r == Err(Error::Invalid), "mapping hypervisor frame {:#x} ({:#x}): {:?}", mfn, flags, r);
    }
    let r = mmu::mmu_update(&[MmuUpdate::pt_update(mfn << 12, 0)]);
    check!(r == (0, Err(Error::Invalid)), "writing {:#x} as a table: {:?}", mfn, r);
    let r = mmu::mmu_update(&[MmuUpdate::machphys_update(mfn, 0)]);
    check!(r == (0, Err(Error::Invalid)), "m2p of {:#x}: {:?}", mfn, r);
    for cmd in [MmuextCmd::PinL1, MmuextCmd::PinL3, MmuextCmd::Unpin, MmuextCmd::NewBaseptr] {
        let r = mmu::mmuext1(cmd, mfn);
        check!(r == Err(Error::NotFound), "{:?} of {:#x}: {:?}", cmd, mfn, r);
    }
    let r = mmu::reservation_decrease(&mut [mfn]);
    check!(r == Err(Error::NotFound), "giving back {:#x}: {:?}", mfn, r);
}

fn main(start: &StartInfo) -> ! {
    let mut mem = Memory::new(start);
    let ext = mmu::start_info_ext(start);
    let window = Memory::va(mem.alloc());
    let mut tried = 0;
    for slot in memory_consts::HYPERVISOR_L4_FIRST_SLOT..=memory_consts::HYPERVISOR_L4_LAST_SLOT {
        let entry = peek(start.pt_base + slot * 8);
        check!(entry & pte::PRESENT != 0, "hypervisor slot {} empty", slot);
        attack(window, (entry & pte::FRAME) >> 12);
        tried += 1;
    }
    // Low memory, the hypervisor image (loaded at 2 MiB), past RAM.
    for mfn in [0, 1, 0xff, 0x200, 0x201, ext.m2p_nr_entries, 1 << 26, (1 << 40) - 1] {
        attack(window, mfn);
        tried += 1;
    }
    check!(mem.read_entry(mem.entry_maddr(window, 1)) == 0, "the window got mapped");
    veneer_guest::println!("{} hypervisor frames attacked, every attempt refused", tried);
    veneer_guest::success()
}
