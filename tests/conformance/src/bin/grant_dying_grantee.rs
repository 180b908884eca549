//! The peer of `grant_grantee_dies` (domain 2): maps domain 1's grant,
//! writes to it, and once domain 1 has seen it cannot revoke, powers off
//! with it mapped.
#![no_std]
#![no_main]

use veneer_guest::grant::{self, Grants};
use veneer_guest::mmu::Memory;
use veneer_guest::{event, hypercall, StartInfo};
use veneer_conformance::pair;

veneer_guest::entry!(main);

fn main(start: &StartInfo) -> ! {
    event::init(start);
    let mut mem = Memory::new(start);
    Grants::setup(&mut mem, 1).expect("a grant table");
    let port = pair::bind(1);
    let va = Memory::va(mem.alloc());
    grant::map_one(1, 1, va, false).expect("map");
    // SAFETY: mapped writable just above.
    unsafe { core::ptr::copy_nonoverlapping(b"from d2".as_ptr(), va as *mut u8, 7) };
    pair::signal(port);
    pair::wait(port);
    hypercall::poweroff(0)
}
