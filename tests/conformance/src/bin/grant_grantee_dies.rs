//! A grantee that dies with a grant mapped gives the use back: this domain
//! grants a page to peer `grant_dying_grantee` (domain 2), which maps it,
//! writes to it and powers off without unmapping. Revoking fails while it
//! lives and succeeds once it is gone, and the page holds what it wrote.
#![no_std]
#![no_main]

use veneer_guest::grant::Grants;
use veneer_guest::mmu::{Memory, RW};
use veneer_guest::{check, event, StartInfo};
use veneer_conformance::pair;

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"grant_dying_grantee");

fn main(start: &StartInfo) -> ! {
    event::init(start);
    let mut mem = Memory::new(start);
    let mut g = Grants::setup(&mut mem, 1).expect("a grant table");
    let pfn = mem.alloc();
    mem.map(pfn, RW).expect("map");
    check!(g.grant(2, mem.mfn(pfn), false) == Some(1), "reference 1");
    let port = pair::offer(2);
    pair::wait(port);
    check!(g.revoke(1).is_err(), "revoked while the grantee maps it");
    pair::signal(port);
    let deadline = event::now() + 60_000_000_000;
    while g.revoke(1).is_err() {
        check!(event::now() < deadline, "the dead grantee's use was never given back");
        event::sched_yield().expect("yield");
    }
    let mut b = [0u8; 7];
    // SAFETY: this domain's page, mapped writable above.
    unsafe { core::ptr::copy_nonoverlapping(Memory::va(pfn) as *const u8, b.as_mut_ptr(), 7) };
    check!(&b == b"from d2", "the grantee's write: {:?}", b);
    veneer_guest::success()
}
