//! The peer of `grant_granter_dies` (domain 2): grants a page holding a
//! message, and powers off as soon as domain 1 has mapped it.
#![no_std]
#![no_main]

use veneer_guest::grant::Grants;
use veneer_guest::mmu::{Memory, RW};
use veneer_guest::{check, event, hypercall, StartInfo};
use veneer_conformance::pair;

veneer_guest::entry!(main);

fn main(start: &StartInfo) -> ! {
    event::init(start);
    let mut mem = Memory::new(start);
    let mut g = Grants::setup(&mut mem, 1).expect("a grant table");
    let pfn = mem.alloc();
    mem.map(pfn, RW).expect("map");
    // SAFETY: mapped writable just above.
    unsafe { core::ptr::copy_nonoverlapping(b"last words".as_ptr(), Memory::va(pfn) as *mut u8, 10) };
    check!(g.grant(1, mem.mfn(pfn), false) == Some(1), "reference 1");
    let port = pair::offer(1);
    pair::wait(port);
    hypercall::poweroff(0)
}
