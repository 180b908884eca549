//! A granter that dies while its grant is mapped leaves the frame mapped,
//! contents and all, until the grantee unmaps it; then the frame is freed
//! (the runner's `frames: all N free again` line): peer
//! `grant_dying_granter` (domain 2) grants a page holding a message and
//! powers off once it is mapped here. This domain waits until copies from
//! the grant fail with `NotFound` (the granter is gone), reads the message
//! and writes through the mapping, and unmaps.
#![no_std]
#![no_main]

use veneer_guest::grant::{self, Grants};
use veneer_guest::hypercall_abi::domid::domid;
use veneer_guest::hypercall_abi::grant::{grant_op_flags, GrantCopyOp, GrantCopySeg};
use veneer_guest::hypercall_abi::Error;
use veneer_guest::mmu::Memory;
use veneer_guest::{check, event, StartInfo};
use veneer_conformance::pair;

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"grant_dying_granter");

fn main(start: &StartInfo) -> ! {
    event::init(start);
    let mut mem = Memory::new(start);
    Grants::setup(&mut mem, 1).expect("a grant table");
    let port = pair::bind(2);
    let va = Memory::va(mem.alloc());
    let (handle, _) = grant::map_one(2, 1, va, false).expect("map");
    pair::signal(port);
    let pfn = mem.alloc();
    let local = GrantCopySeg { gref_or_frame: mem.mfn(pfn), domid: domid::SELF, offset: 0, reserved0: 0 };
    let theirs = GrantCopySeg { gref_or_frame: 1, domid: 2, offset: 0, reserved0: 0 };
    let deadline = event::now() + 60_000_000_000;
    loop {
        let mut op = [GrantCopyOp { src: theirs, dst: local, len: 8, flags: grant_op_flags::COPY_SRC_GREF as u16, status: 1 }];
        grant::copy(&mut op).expect("the copy op");
        match grant::status(op[0].status) {
            Ok(()) => {}
            Err(Error::NotFound) => break,
            Err(e) => veneer_guest::failure(format_args!("copy from the granter: {:?}", e)),
        }
        check!(event::now() < deadline, "the granter never went away");
        event::sched_yield().expect("yield");
    }
    let mut b = [0u8; 10];
    // SAFETY: the mapping made above, which the hypervisor keeps.
    unsafe { core::ptr::copy_nonoverlapping(va as *const u8, b.as_mut_ptr(), 10) };
    check!(&b == b"last words", "the dead granter's frame still holds {:?}", b);
    // SAFETY: as above, writable.
    unsafe { core::ptr::write_volatile(va as *mut u8, b'L') };
    grant::unmap_one(va, handle).expect("unmap the orphaned frame");
    veneer_guest::success()
}
