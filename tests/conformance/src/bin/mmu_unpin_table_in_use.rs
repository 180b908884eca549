//! Unpinning drops the pin's use only (M7): the L4 the vCPU runs on,
//! unpinned, stays an L4 because the base pointer uses it — the domain
//! keeps running, and the table still cannot be mapped writable. Unpinning
//! what is not pinned (again, or an L1 typed only through its L2) is
//! `NotPermitted`; pinning twice is `Exists`; a frame of another type is
//! `Busy`; a base pointer must be an L4 (`Invalid`).
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::memory::{uvmf, MmuextCmd};
use veneer_guest::hypercall_abi::Error;
use veneer_guest::mmu::{self, peek, Memory, RW};
use veneer_guest::{check, println, StartInfo, IMAGE_BASE};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"mmu_companion");

fn main(start: &StartInfo) -> ! {
    let mem = Memory::new(start);
    let l4 = mem.mfn((start.pt_base - IMAGE_BASE) / 4096);
    let l1 = mem.entry_maddr(IMAGE_BASE, 1) >> 12;
    check!(mmu::unpin(l4) == Ok(0), "unpin the running L4");
    println!("still running on the unpinned L4");
    let r = mmu::update_va_mapping(start.pt_base, l4 << 12 | RW, uvmf::INVLPG);
    check!(r == Err(Error::Busy), "the unpinned L4 mapped writable: {:?}", r);
    check!(peek(start.pt_base + 511 * 8) & 1 == 1, "the L4 still maps the image");
    let r = mmu::unpin(l4);
    check!(r == Err(Error::NotPermitted), "unpinning twice: {:?}", r);
    let r = mmu::unpin(l1);
    check!(r == Err(Error::NotPermitted), "unpinning an L1 that was never pinned: {:?}", r);
    check!(mmu::pin(4, l4) == Ok(0), "pin it again");
    check!(mmu::pin(4, l4) == Err(Error::Exists), "pin twice");
    check!(mmu::pin(2, l1) == Err(Error::Busy), "an L1 pinned as an L2");
    let r = mmu::mmuext1(MmuextCmd::NewBaseptr, l1);
    check!(r == Err(Error::Invalid), "an L1 as base pointer: {:?}", r);
    let r = mmu::mmuext1(MmuextCmd::NewBaseptr, mem.mfn(0));
    check!(r == Err(Error::Invalid), "a data frame as base pointer: {:?}", r);
    // Pinning the L1 keeps it a table even when its L2 entry goes.
    check!(mmu::pin(1, l1) == Ok(0), "pin the L1 too");
    check!(mmu::unpin(l1) == Ok(0), "and unpin it");
    veneer_guest::success()
}
