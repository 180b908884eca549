//! The peer of `grant_map_between_domains` (domain 2): grants domain 1 a
//! writable page (reference 1), a read-only one (2) and a page for domain 3
//! (3); checks it cannot revoke while domain 1 maps them and can after.
#![no_std]
#![no_main]

use veneer_guest::grant::{self, Grants};
use veneer_guest::hypercall_abi::grant::grant_flags::{IN_USE_READ, IN_USE_WRITE, PERMIT};
use veneer_guest::mmu::{Memory, RW};
use veneer_guest::{check, event, hypercall, StartInfo};
use veneer_conformance::pair;

veneer_guest::entry!(main);

fn page(mem: &mut Memory<'_>, text: &[u8]) -> (u64, u64) {
    let pfn = mem.alloc();
    mem.map(pfn, RW).expect("map");
    // SAFETY: mapped writable just above.
    unsafe { core::ptr::copy_nonoverlapping(text.as_ptr(), Memory::va(pfn) as *mut u8, text.len()) };
    (Memory::va(pfn), mem.mfn(pfn))
}

fn main(start: &StartInfo) -> ! {
    event::init(start);
    let mut mem = Memory::new(start);
    let mut g = Grants::setup(&mut mem, 1).expect("a grant table");
    let (va, frame) = page(&mut mem, b"granted by d2");
    let (_, ro) = page(&mut mem, b"read only");
    check!(g.grant(1, frame, false) == Some(1) && g.grant(1, ro, true) == Some(2) && g.grant(3, frame, false) == Some(3), "references 1-3");
    let port = pair::offer(1);
    pair::wait(port);
    check!(g.revoke(1).is_err() && g.revoke(2).is_err(), "revoked while mapped");
    check!(g.flags(1) == PERMIT | IN_USE_READ | IN_USE_WRITE, "flags {:#x} while mapped writable", g.flags(1));
    check!(grant::query().map(|q| q.nr_active) == Ok(2), "two uses counted");
    let mut b = [0u8; 12];
    // SAFETY: this domain's page, mapped writable above.
    unsafe { core::ptr::copy_nonoverlapping(va as *const u8, b.as_mut_ptr(), 12) };
    check!(&b == b"mapped by d1", "domain 1 wrote this frame");
    pair::signal(port);
    pair::wait(port);
    check!(g.end(1).is_ok() && g.end(2).is_ok(), "revocable once unmapped");
    check!(grant::query().map(|q| q.nr_active) == Ok(0), "no uses left");
    pair::signal(port);
    hypercall::poweroff(0)
}
