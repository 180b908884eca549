//! One `mmu_update` of the maximum 512 entries fills a whole new L1 (hooked
//! into the bootstrap L2 for a fresh 2 MiB window) in one call; each of the
//! 512 pages reaches the frame its entry names; a second full batch maps
//! them in reverse and the window follows; 513 entries are `TooBig` and do
//! nothing.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::memory::MmuUpdate;
use veneer_guest::hypercall_abi::Error;
use veneer_guest::mmu::{self, peek, poke, Memory, RW};
use veneer_guest::{check, StartInfo, IMAGE_BASE};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");

/// The window: the 2 MiB after the bootstrap L1's.
const WINDOW: u64 = IMAGE_BASE + (2 << 20);
/// Frames the window maps: pfns 1024 .. 1536, which nothing else uses.
const FIRST: u64 = 1024;

static mut BATCH: [MmuUpdate; 513] = [MmuUpdate { ptr: 0, val: 0 }; 513];

fn main(start: &StartInfo) -> ! {
    let mut mem = Memory::new(start);
    check!(start.nr_pages >= FIRST + 512, "needs {} pages", FIRST + 512);
    let table = mem.alloc();
    check!(mem.fresh_table(table) == Ok(0), "fresh table");
    check!(mmu::pin(1, mem.mfn(table)) == Ok(0), "pin the new L1");
    let hook = MmuUpdate::pt_update(mem.entry_maddr(WINDOW, 2), mem.mfn(table) << 12 | RW);
    check!(mmu::mmu_update(&[hook]) == (1, Ok(0)), "hook the L1 into the L2");

    // SAFETY: single-threaded; BATCH is used only here.
    let batch = unsafe { &mut *core::ptr::addr_of_mut!(BATCH) };
    let fill = |batch: &mut [MmuUpdate; 513], reverse: bool| {
        for (i, slot) in (0u64..512).zip(batch.iter_mut()) {
            let pfn = if reverse { FIRST + 511 - i } else { FIRST + i };
            *slot = MmuUpdate::pt_update((mem.mfn(table) << 12) | (i * 8), (mem.mfn(pfn) << 12) | RW);
        }
    };
    fill(batch, false);
    let (done, r) = mmu::mmu_update(&batch[..512]);
    check!((done, r) == (512, Ok(0)), "512 entries: {} done, {:?}", done, r);
    for i in 0..512 {
        poke(WINDOW + i * 4096, FIRST + i);
    }
    fill(batch, true);
    let (done, r) = mmu::mmu_update(&batch[..512]);
    check!((done, r) == (512, Ok(0)), "512 entries reversed: {} done, {:?}", done, r);
    check!(mmu::tlb_flush() == Ok(0), "flush");
    for i in 0..512 {
        let tag = peek(WINDOW + i * 4096);
        check!(tag == FIRST + 511 - i, "page {} of the window holds {}, want {}", i, tag, FIRST + 511 - i);
    }
    batch[512] = batch[0];
    let (done, r) = mmu::mmu_update(&batch[..]);
    check!(r == Err(Error::TooBig) && done == u32::MAX, "513 entries: {} done, {:?}", done, r);
    veneer_guest::success()
}
