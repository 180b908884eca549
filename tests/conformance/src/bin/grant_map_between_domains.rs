//! Grant mapping between two domains (with peer `grant_granter`, domain
//! 2), rule by rule (G1–G3, §17):
//!
//! - d2's writable grant maps writable here; both see one frame;
//! - its read-only grant maps only read-only, and refuses copies into it;
//! - a grant to another domain, reference 0, a reference past the table
//!   and this domain's own grants are refused with `NotPermitted`,
//!   `NotFound`, `NotFound`, `Invalid`;
//! - `mmu_update` cannot replace the grant's entry (`NotPermitted`);
//! - while mapped, d2 cannot revoke (its compare-and-swap fails) and
//!   `grant_query` counts two uses; once unmapped, it can.
#![no_std]
#![no_main]

use veneer_guest::grant::{self, Grants};
use veneer_guest::hypercall_abi::domid::domid;
use veneer_guest::hypercall_abi::grant::{grant_op_flags, GrantCopyOp, GrantCopySeg};
use veneer_guest::hypercall_abi::memory::MmuUpdate;
use veneer_guest::hypercall_abi::Error;
use veneer_guest::mmu::{self, Memory};
use veneer_guest::{check, event, StartInfo};
use veneer_conformance::pair;

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"grant_granter");

const PEER: u32 = 2;

fn read(va: u64, n: usize) -> [u8; 32] {
    let mut b = [0u8; 32];
    for (i, x) in b.iter_mut().enumerate().take(n) {
        // SAFETY: `va` is mapped readable for `n` bytes by the test.
        *x = unsafe { core::ptr::read_volatile((va + i as u64) as *const u8) };
    }
    b
}

fn main(start: &StartInfo) -> ! {
    event::init(start);
    let mut mem = Memory::new(start);
    let mut mine = Grants::setup(&mut mem, 1).expect("a grant table");
    let pfn = mem.alloc();
    let own = mine.grant(PEER, mem.mfn(pfn), false).expect("a reference");
    let port = pair::bind(PEER);
    let (rw_va, ro_va, spare_va) = (Memory::va(mem.alloc()), Memory::va(mem.alloc()), Memory::va(mem.alloc()));
    // Reference 1: writable; 2: read-only; 3: for another domain.
    let (h1, f1) = grant::map_one(PEER, 1, rw_va, false).expect("the writable grant maps");
    check!(&read(rw_va, 13)[..13] == b"granted by d2", "the granter's data");
    // SAFETY: mapped writable just above.
    unsafe { core::ptr::copy_nonoverlapping(b"mapped by d1".as_ptr(), rw_va as *mut u8, 12) };
    check!(grant::map_one(PEER, 2, ro_va, false) == Err(Error::NotPermitted), "a read-only grant refuses a writable mapping");
    let (h2, _) = grant::map_one(PEER, 2, ro_va, true).expect("the read-only grant maps read-only");
    check!(&read(ro_va, 9)[..9] == b"read only", "read-only data");
    for (gref, want) in [(3, Error::NotPermitted), (0, Error::NotFound), (300, Error::NotFound)] {
        check!(grant::map_one(PEER, gref, spare_va, true) == Err(want), "reference {}: {:?} expected", gref, want);
    }
    check!(grant::map_one(domid::SELF, own, spare_va, true) == Err(Error::Invalid), "its own grant");
    check!(grant::map_one(start.domain_id, own, spare_va, true) == Err(Error::Invalid), "its own grant by id");
    check!(grant::map_one(PEER, 1, rw_va, false) == Err(Error::Busy), "a present entry");
    // The entry holding the mapping is the hypervisor's to remove.
    let entry = mem.entry_maddr(rw_va, 1);
    check!(mem.read_entry(entry) >> 12 & 0xff_ffff_ffff == f1, "the entry maps the frame reported");
    check!(mmu::mmu_update(&[MmuUpdate::pt_update(entry, 0)]).1 == Err(Error::NotPermitted), "mmu_update replaced a grant mapping");
    // Copies: out of the read-only grant yes, into it no.
    let pfn = mem.alloc();
    let local = GrantCopySeg { gref_or_frame: mem.mfn(pfn), domid: domid::SELF, offset: 0, reserved0: 0 };
    let theirs = GrantCopySeg { gref_or_frame: 2, domid: PEER, offset: 0, reserved0: 0 };
    let mut ops = [
        GrantCopyOp { src: theirs, dst: local, len: 9, flags: grant_op_flags::COPY_SRC_GREF as u16, status: 1 },
        GrantCopyOp { src: local, dst: theirs, len: 9, flags: grant_op_flags::COPY_DST_GREF as u16, status: 1 },
    ];
    check!(grant::copy(&mut ops) == Ok(2), "the copy batch");
    check!(ops[0].status == 0 && grant::status(ops[1].status) == Err(Error::NotPermitted), "copy statuses {} {}", ops[0].status, ops[1].status);
    // The granter's turn: it must fail to revoke, and count two uses.
    pair::signal(port);
    pair::wait(port);
    grant::unmap_one(rw_va, h1).expect("unmap");
    grant::unmap_one(ro_va, h2).expect("unmap");
    check!(grant::unmap_one(rw_va, h1) == Err(Error::NotFound), "unmapped twice");
    pair::signal(port);
    pair::wait(port);
    veneer_guest::success()
}
