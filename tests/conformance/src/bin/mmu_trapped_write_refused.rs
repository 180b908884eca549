//! A trapped write to the guest's own L1 that would break a rule — here,
//! mapping its L4 writable — is refused, never applied: the page fault
//! stands and, with no trap table, the domain is stopped (SPEC 12.8). Had
//! the write been applied, the guest would go on and report it.
#![no_std]
#![no_main]

use veneer_guest::mmu::{peek, Memory, RW};
use veneer_guest::{println, StartInfo, IMAGE_BASE};

veneer_guest::entry!(main);
veneer_guest::expect!(b"stopped #PF (vector 14, error 0x7)");
veneer_guest::peers!(b"mmu_companion");

fn main(start: &StartInfo) -> ! {
    let mut mem = Memory::new(start);
    let window = Memory::va(mem.alloc());
    let maddr = mem.entry_maddr(window, 1);
    let entry = Memory::va(mem.m2p(maddr >> 12)) + (maddr & 0xfff);
    let l4 = mem.mfn((start.pt_base - IMAGE_BASE) / 4096);
    println!("writing a writable mapping of the L4 into the L1");
    // SAFETY: meant to fault; the hypervisor must refuse the update.
    unsafe { core::arch::asm!("mov qword ptr [{e}], {v}", e = in(reg) entry, v = in(reg) l4 << 12 | RW, options(nostack)) };
    veneer_guest::failure(format_args!("the write was applied: entry {:#x}", peek(entry)))
}
