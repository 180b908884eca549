//! A frame goes back to the hypervisor only when nothing uses it (M9):
//! giving back a frame that is mapped (writable or read-only), a page
//! table, the pinned L4, or the shared-info page is `Busy`; a frame of
//! someone else or none `NotFound`. A batch of gifts stops at the first
//! refused one and says how many went. Once unmapped, the frame can go.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::Error;
use veneer_guest::mmu::{self, Memory, RO, RW};
use veneer_guest::{check, StartInfo, IMAGE_BASE};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"mmu_companion");

fn main(start: &StartInfo) -> ! {
    let mut mem = Memory::new(start);
    let ext = mmu::start_info_ext(start);
    let (rw, ro) = (mem.alloc(), mem.alloc());
    check!(mem.map(rw, RW) == Ok(0) && mem.map(ro, RO) == Ok(0), "map");
    let l4 = mem.mfn((start.pt_base - IMAGE_BASE) / 4096);
    let l1 = mem.entry_maddr(IMAGE_BASE, 1) >> 12;
    for (what, mfn, want) in [
        ("the image's first page", mem.mfn(0), Error::Busy),
        ("a frame mapped writable", mem.mfn(rw), Error::Busy),
        ("a frame mapped read-only", mem.mfn(ro), Error::Busy),
        ("the L1", l1, Error::Busy),
        ("the pinned L4", l4, Error::Busy),
        ("the shared-info page", ext.shared_info_mfn, Error::Busy),
        ("a hypervisor frame", 0x200, Error::NotFound),
        ("a frame past RAM", ext.m2p_nr_entries, Error::NotFound),
    ] {
        let r = mmu::reservation_decrease(&mut [mfn]);
        check!(r == Err(want), "giving back {}: {:?}", what, r);
    }
    let (a, b, c) = (mem.alloc(), mem.alloc(), mem.alloc());
    let mut batch = [mem.mfn(a), mem.mfn(b), mem.mfn(rw), mem.mfn(c)];
    let r = mmu::reservation_decrease(&mut batch);
    check!(r == Ok(2), "a batch with a mapped frame third: {:?}", r);
    check!(mmu::reservation_decrease(&mut batch[..1]) == Err(Error::NotFound), "given back already");
    check!(mem.unmap(rw) == Ok(0), "unmap");
    check!(mmu::reservation_decrease(&mut batch[2..]) == Ok(2), "now it can go");
    veneer_guest::success()
}
