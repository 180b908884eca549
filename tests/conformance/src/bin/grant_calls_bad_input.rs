//! Bad input for every grant call (§17), in one domain: each is refused
//! with the error the section names and changes nothing.
//!
//! - `grant_set_table`: more than 32 frames (`TooBig`), a frame of another
//!   owner (`NotFound`), a page table (`Busy`), an unreadable list
//!   (`BadAddress`), a list that does not extend the table or names a
//!   frame twice (`Invalid`);
//! - `grant_map`, `grant_unmap`, `grant_copy`: more than 128 ops
//!   (`TooBig`), an unreadable or read-only op array (`BadAddress`), and
//!   per op: the caller's own grants and undefined flags, reserved fields
//!   or unaligned addresses (`Invalid`), a domain that does not or cannot
//!   exist (`NotFound`), an unknown handle (`NotFound`), copies that cross
//!   a frame (`Invalid`), a local frame of another owner (`NotPermitted`)
//!   or a page table as destination (`Busy`);
//! - while a copy between two frames of the caller works.
#![no_std]
#![no_main]

use veneer_guest::grant;
use veneer_guest::hypercall::raw;
use veneer_guest::hypercall_abi::domid::domid;
use veneer_guest::hypercall_abi::grant::{GrantCopyOp, GrantCopySeg, GrantMapOp, GrantUnmapOp};
use veneer_guest::hypercall_abi::{Error, Hypercall};
use veneer_guest::mmu::{Memory, RW};
use veneer_guest::{check, trap, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");

fn map_status(op: GrantMapOp) -> Result<(), Error> {
    let mut ops = [op];
    grant::map(&mut ops).expect("the batch itself");
    grant::status(ops[0].status)
}

fn copy_status(op: GrantCopyOp) -> Result<(), Error> {
    let mut ops = [op];
    grant::copy(&mut ops).expect("the batch itself");
    grant::status(ops[0].status)
}

fn main(start: &StartInfo) -> ! {
    let mut mem = Memory::new(start);
    let page_table = trap::bootstrap_l4_mfn(start);
    let (a, b) = (mem.alloc(), mem.alloc());
    let (fa, fb) = (mem.mfn(a), mem.mfn(b));

    // grant_set_table.
    check!(grant::set_table(&[fa; 33]) == Err(Error::TooBig), "33 frames");
    check!(grant::set_table(&[1]) == Err(Error::NotFound), "a frame of another owner");
    check!(grant::set_table(&[page_table]) == Err(Error::Busy), "a page table");
    check!(raw(Hypercall::GrantSetTable.number(), [0x1000, 1, 0, 0, 0, 0]) == Err(Error::BadAddress), "an unreadable list");
    check!(grant::query().map(|q| q.nr_frames) == Ok(0), "nothing registered by refused calls");
    check!(grant::set_table(&[fa]) == Ok(0), "one frame");
    for bad in [&[fb][..], &[], &[fa, fb, fb]] {
        check!(grant::set_table(bad) == Err(Error::Invalid), "{:?} does not extend the table", bad);
    }
    check!(grant::set_table(&[fa, fb]) == Ok(0), "extended");
    let q = grant::query().expect("query");
    check!(q.nr_frames == 2 && q.max_frames == 32 && q.nr_active == 0, "{:?}", q);

    // grant_map: the batches, then each op.
    let good = GrantMapOp { host_addr: Memory::va(mem.alloc()), flags: 0, gref: 1, domid: 2, status: 1, handle: 0, reserved0: 0, frame: 0 };
    let mut ops = [good; 1];
    check!(raw(Hypercall::GrantMap.number(), [ops.as_mut_ptr() as u64, 129, 0, 0, 0, 0]) == Err(Error::TooBig), "129 ops");
    check!(raw(Hypercall::GrantMap.number(), [0x1000, 1, 0, 0, 0, 0]) == Err(Error::BadAddress), "ops unmapped");
    check!(raw(Hypercall::GrantMap.number(), [main as *const () as u64, 1, 0, 0, 0, 0]) == Err(Error::BadAddress), "ops read-only");
    for (op, want) in [
        (GrantMapOp { domid: domid::SELF, ..good }, Error::Invalid),
        (GrantMapOp { domid: start.domain_id, ..good }, Error::Invalid),
        (GrantMapOp { domid: 5, ..good }, Error::NotFound),
        (GrantMapOp { domid: domid::INVALID, ..good }, Error::NotFound),
        (GrantMapOp { host_addr: good.host_addr + 8, ..good }, Error::Invalid),
        (GrantMapOp { flags: 2, ..good }, Error::Invalid),
        (GrantMapOp { reserved0: 1, ..good }, Error::Invalid),
    ] {
        check!(map_status(op) == Err(want), "{:?}: {:?} expected", op, want);
    }
    let mut un = [GrantUnmapOp { host_addr: good.host_addr, handle: 5, status: 1 }];
    check!(grant::unmap(&mut un) == Ok(1) && grant::status(un[0].status) == Err(Error::NotFound), "an unknown handle");

    // grant_copy: between two of its own frames, then refused ones.
    let (x, y) = (mem.alloc(), mem.alloc());
    mem.map(x, RW).expect("map");
    mem.map(y, RW).expect("map");
    // SAFETY: mapped writable just above.
    unsafe { core::ptr::copy_nonoverlapping(b"copied".as_ptr(), (Memory::va(x) + 100) as *mut u8, 6) };
    let seg = |frame, offset| GrantCopySeg { gref_or_frame: frame, domid: domid::SELF, offset, reserved0: 0 };
    let good = GrantCopyOp { src: seg(mem.mfn(x), 100), dst: seg(mem.mfn(y), 4090), len: 6, flags: 0, status: 1 };
    check!(copy_status(good) == Ok(()), "a local copy");
    let mut back = [0u8; 6];
    // SAFETY: mapped above.
    unsafe { core::ptr::copy_nonoverlapping((Memory::va(y) + 4090) as *const u8, back.as_mut_ptr(), 6) };
    check!(&back == b"copied", "the copy arrived: {:?}", back);
    for (op, want) in [
        (GrantCopyOp { len: 7, ..good }, Error::Invalid),
        (GrantCopyOp { src: seg(mem.mfn(x), 4000), len: 200, dst: seg(mem.mfn(y), 0), ..good }, Error::Invalid),
        (GrantCopyOp { src: seg(1, 0), ..good }, Error::NotPermitted),
        (GrantCopyOp { dst: seg(page_table, 0), ..good }, Error::Busy),
        (GrantCopyOp { src: GrantCopySeg { domid: 7, ..good.src }, ..good }, Error::Invalid),
        (GrantCopyOp { src: GrantCopySeg { domid: start.domain_id, gref_or_frame: 1, ..good.src }, flags: 2, ..good }, Error::Invalid),
        (GrantCopyOp { dst: GrantCopySeg { reserved0: 1, ..good.dst }, ..good }, Error::Invalid),
        (GrantCopyOp { flags: 8, ..good }, Error::Invalid),
    ] {
        check!(copy_status(op) == Err(want), "{:?}: {:?} expected", op, want);
    }
    veneer_guest::success()
}
