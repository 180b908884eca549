//! A guest can read its own page tables but never write them directly: the
//! builder maps every page-table frame read-only, so a store to the L4
//! through that mapping raises #PF (a write to a present page). Stores to
//! an L1 are decoded and applied as validated updates (SPEC 12.8); stores
//! to L2-L4 never are, so the fault stands and the domain is stopped. Were
//! the write allowed, the guest could map any machine frame.
#![no_std]
#![no_main]

use veneer_guest::{check, println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"stopped #PF (vector 14, error 0x7)");

fn main(start: &StartInfo) -> ! {
    let l4 = start.pt_base as *mut u64;
    // SAFETY: reading our own L4 through its read-only mapping is allowed.
    let slot511 = unsafe { core::ptr::read_volatile(l4.add(511)) };
    check!(slot511 & 1 == 1, "L4 slot 511 (the image) is not present: {:#x}", slot511);
    println!("L4 readable (slot 511 = {:#x}); writing it", slot511);
    // SAFETY: meant to fault; a user-mode write to a present read-only page.
    unsafe { core::ptr::write_volatile(l4.add(0), slot511) };
    veneer_guest::failure(format_args!("the write to the L4 went through"))
}
