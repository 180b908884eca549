//! Without the `SUPERPAGE_2M` feature (this hypervisor does not offer it)
//! a 2 MiB page (`PSE` in an L2 entry) is refused, and 1 GiB pages (`PSE`
//! in an L3 entry) and `PSE` in an L4 entry are refused always (M5, SPEC
//! 12.7); so is a reservation of 2 MiB extents. A superpage over the
//! guest's own page tables would map them writable.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::domid::domid;
use veneer_guest::hypercall_abi::features;
use veneer_guest::hypercall_abi::memory::{pte, MmuUpdate, Reservation};
use veneer_guest::hypercall_abi::{Error, Hypercall};
use veneer_guest::mmu::{self, Memory, RW};
use veneer_guest::{check, hypercall, StartInfo, IMAGE_BASE};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"mmu_companion");

fn main(start: &StartInfo) -> ! {
    let mem = Memory::new(start);
    check!(start.features & features::SUPERPAGE_2M == 0, "this test expects no SUPERPAGE_2M");
    // 2 MiB of the guest's own frames starting at pfn 0: its image and
    // page tables. Entry 5 of each upper table is free.
    let base = mem.mfn(0) << 12 & !((2 << 20) - 1);
    for level in 2..=4u32 {
        let at = (mem.entry_maddr(IMAGE_BASE, level) & !0xfff) | (5 * 8);
        let r = mmu::mmu_update(&[MmuUpdate::pt_update(at, base | RW | pte::PSE)]);
        check!(r == (0, Err(Error::Invalid)), "PSE in an L{} entry: {:?}", level, r);
        check!(mem.read_entry(at) == 0, "L{} entry changed", level);
    }
    let mut extents = [start.nr_pages];
    let mut r = Reservation { extents: extents.as_mut_ptr() as u64, nr_extents: 1, extent_order: 9, address_bits: 0, domid: domid::SELF, reserved0: 0 };
    let got = hypercall::raw(Hypercall::ReservationIncrease.number(), [core::ptr::addr_of_mut!(r) as u64, 0, 0, 0, 0, 0]);
    check!(got == Err(Error::Invalid), "an order-9 reservation: {:?}", got);
    veneer_guest::success()
}
