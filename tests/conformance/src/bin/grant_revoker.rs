//! The peer of `grant_revoked_while_mapped` (domain 2): grants a page,
//! clears the flags while it is mapped, and after the unmap checks that
//! they stayed 0 and that the write made through the mapping is in its
//! frame.
#![no_std]
#![no_main]

use veneer_guest::grant::Grants;
use veneer_guest::hypercall_abi::grant::grant_flags::{IN_USE_READ, IN_USE_WRITE, PERMIT};
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
    check!(g.grant(1, mem.mfn(pfn), false) == Some(1), "reference 1");
    let port = pair::offer(1);
    pair::wait(port);
    check!(g.flags(1) == PERMIT | IN_USE_READ | IN_USE_WRITE, "in use: {:#x}", g.flags(1));
    g.force_flags(1, 0);
    pair::signal(port);
    pair::wait(port);
    check!(g.flags(1) == 0, "the hypervisor cleared its bits and nothing else: {:#x}", g.flags(1));
    let mut b = [0u8; 12];
    // SAFETY: this domain's page, mapped writable above.
    unsafe { core::ptr::copy_nonoverlapping(Memory::va(pfn) as *const u8, b.as_mut_ptr(), 12) };
    check!(&b == b"still mapped", "the grantee wrote this frame through the revoked grant");
    pair::signal(port);
    hypercall::poweroff(0)
}
