//! The m2p table is where the start-info page says (`MEM_M2P_VIRT_START`),
//! readable without a call, and agrees with the p2m array for every frame
//! the domain owns; frames it does not own (its shared-info page, low
//! memory) read `MEM_INVALID_FRAME`; a `MachphysUpdate` shows at once. The
//! memory map and `reservation_query` describe the same memory.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::memory::memory_consts::{INVALID_FRAME, M2P_VIRT_START};
use veneer_guest::hypercall_abi::memory::{MemoryKind, MemoryMapEntry, MmuUpdate};
use veneer_guest::mmu::{self, Memory};
use veneer_guest::{check, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");

fn main(start: &StartInfo) -> ! {
    let ext = mmu::start_info_ext(start);
    check!(ext.m2p_base == M2P_VIRT_START, "m2p at {:#x}", ext.m2p_base);
    let mem = Memory::new(start);
    let mut highest = 0;
    for pfn in 0..start.nr_pages {
        let mfn = mem.mfn(pfn);
        highest = highest.max(mfn);
        check!(mfn < ext.m2p_nr_entries, "pfn {} is mfn {:#x}, beyond {} m2p entries", pfn, mfn, ext.m2p_nr_entries);
        check!(mem.m2p(mfn) == pfn, "m2p[{:#x}] = {:#x}, p2m says pfn {}", mfn, mem.m2p(mfn), pfn);
    }
    check!(ext.shared_info_mfn != 0 && ext.shared_info_mfn < ext.m2p_nr_entries, "shared info {:#x}", ext.shared_info_mfn);
    check!(mem.m2p(ext.shared_info_mfn) == INVALID_FRAME, "shared info has m2p {:#x}", mem.m2p(ext.shared_info_mfn));
    check!(mem.m2p(0) == INVALID_FRAME && mem.m2p(0xff) == INVALID_FRAME, "low memory is not ours");
    check!(mem.m2p(ext.m2p_nr_entries - 1) == INVALID_FRAME || highest == ext.m2p_nr_entries - 1, "last entry");

    let mfn = mem.mfn(start.first_free_pfn);
    let (done, r) = mmu::mmu_update(&[MmuUpdate::machphys_update(mfn, 0x1234_5678)]);
    check!((done, r) == (1, Ok(0)), "MachphysUpdate: {} {:?}", done, r);
    check!(mem.m2p(mfn) == 0x1234_5678, "m2p did not change: {:#x}", mem.m2p(mfn));
    let (done, r) = mmu::mmu_update(&[MmuUpdate::machphys_update(mfn, start.first_free_pfn)]);
    check!((done, r) == (1, Ok(0)) && mem.m2p(mfn) == start.first_free_pfn, "restore");

    let mut map = [MemoryMapEntry::default(); 4];
    let n = mmu::memory_map(&mut map);
    check!(n == Ok(1), "memory_map: {:?}", n);
    check!(map[0].addr == 0 && map[0].len == start.nr_pages * 4096 && map[0].kind == MemoryKind::Ram as u32, "map {:?}", map[0]);
    check!(map[0].reserved0 == 0, "reserved field");
    let info = mmu::reservation_query();
    let info = info.unwrap_or_else(|e| veneer_guest::failure(format_args!("reservation_query: {:?}", e)));
    check!(info.current_pages == start.nr_pages && info.max_pages == start.nr_pages, "{:?}", info);
    check!(info.free_pages > 0, "no free frames at all?");
    veneer_guest::success()
}
