//! A granter that clears `PERMIT` while its grant is mapped revokes
//! nothing until it is unmapped (G3): peer `grant_revoker` (domain 2)
//! grants a page, and once it is mapped here overwrites the entry's flags
//! with 0, as a misbehaving granter would. The mapping still works both
//! ways; a new mapping of the reference is refused; the unmap succeeds,
//! and then the frame is the granter's alone again (it checks the
//! hypervisor left the flags at 0 and reads what was written here).
#![no_std]
#![no_main]

use veneer_guest::grant::{self, Grants};
use veneer_guest::hypercall_abi::Error;
use veneer_guest::mmu::Memory;
use veneer_guest::{check, event, StartInfo};
use veneer_conformance::pair;

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"grant_revoker");

fn main(start: &StartInfo) -> ! {
    event::init(start);
    let mut mem = Memory::new(start);
    Grants::setup(&mut mem, 1).expect("a grant table");
    let port = pair::bind(2);
    let (va, other) = (Memory::va(mem.alloc()), Memory::va(mem.alloc()));
    let (handle, _) = grant::map_one(2, 1, va, false).expect("map");
    pair::signal(port);
    pair::wait(port);
    // Revoked under the mapping: the mapping is unaffected.
    // SAFETY: mapped writable above and still mapped.
    unsafe { core::ptr::copy_nonoverlapping(b"still mapped".as_ptr(), va as *mut u8, 12) };
    // SAFETY: as above.
    let first = unsafe { core::ptr::read_volatile(va as *const u8) };
    check!(first == b's', "the mapping reads what was written");
    check!(grant::map_one(2, 1, other, false) == Err(Error::NotPermitted), "a new mapping of a revoked grant");
    check!(grant::map_one(2, 1, other, true) == Err(Error::NotPermitted), "read-only too");
    grant::unmap_one(va, handle).expect("unmap");
    pair::signal(port);
    pair::wait(port);
    veneer_guest::success()
}
