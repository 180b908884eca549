//! Every pointer argument of the memory calls is checked (SPEC 1): one into
//! the hypervisor's range — even the m2p table, which the guest can read —
//! a non-canonical one, an unmapped one, or a read-only one for output
//! (the guest's own page tables) fails with `BadAddress`, and the batch
//! calls then do nothing at all.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::memory::memory_consts::M2P_VIRT_START;
use veneer_guest::hypercall_abi::memory::{MmuUpdate, Reservation};
use veneer_guest::hypercall_abi::domid::domid;
use veneer_guest::hypercall_abi::{Error, Hypercall};
use veneer_guest::mmu::{self, Memory, RO};
use veneer_guest::{check, hypercall, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"mmu_companion");

const SELF: u64 = domid::SELF as u64;

fn main(start: &StartInfo) -> ! {
    let mut mem = Memory::new(start);
    let window = Memory::va(mem.alloc());
    let entry = mem.entry_maddr(window, 1);
    let page = mem.alloc();
    let good = [MmuUpdate::pt_update(entry, mem.mfn(page) << 12 | RO)];
    let reqs = good.as_ptr() as u64;
    let mut done = 0u32;
    let done_at = core::ptr::addr_of_mut!(done) as u64;
    let bad = [
        M2P_VIRT_START,
        M2P_VIRT_START + 8 * mem.mfn(0),
        0xffff_8300_0010_0000,
        0xffff_8780_0020_0000,
        0xffff_87ff_ffff_fff8,
        0x0000_8000_0000_0000,
        0,
        0x0000_1000_0000_0000,
    ];
    let nr = |h: Hypercall| h.number();
    for &p in &bad {
        for (what, call, args) in [
            ("mmu_update requests", nr(Hypercall::MmuUpdate), [p, 1, done_at, SELF, 0, 0]),
            ("mmu_update done", nr(Hypercall::MmuUpdate), [reqs, 1, p, SELF, 0, 0]),
            ("mmuext_op operations", nr(Hypercall::MmuextOp), [p, 1, 0, 0, 0, 0]),
            ("mmuext_op done", nr(Hypercall::MmuextOp), [reqs, 0, p, 0, 0, 0]),
            ("memory_map", nr(Hypercall::MemoryMap), [p, 4, 0, 0, 0, 0]),
            ("reservation_increase", nr(Hypercall::ReservationIncrease), [p, 0, 0, 0, 0, 0]),
            ("reservation_decrease", nr(Hypercall::ReservationDecrease), [p, 0, 0, 0, 0, 0]),
            ("reservation_exchange", nr(Hypercall::ReservationExchange), [p, 0, 0, 0, 0, 0]),
            ("reservation_query", nr(Hypercall::ReservationQuery), [SELF, p, 0, 0, 0, 0]),
        ] {
            // A `done` of 0 means "no report", not a bad pointer.
            if p == 0 && what.ends_with("done") {
                continue;
            }
            let r = hypercall::raw(call, args);
            check!(r == Err(Error::BadAddress), "{} at {:#x}: {:?}", what, p, r);
        }
        // The extents array inside a good Reservation.
        let mut r = Reservation { extents: p, nr_extents: 1, extent_order: 0, address_bits: 0, domid: domid::SELF, reserved0: 0 };
        for call in [Hypercall::ReservationIncrease, Hypercall::ReservationDecrease] {
            let got = hypercall::raw(call.number(), [core::ptr::addr_of_mut!(r) as u64, 0, 0, 0, 0, 0]);
            check!(got == Err(Error::BadAddress), "{:?} extents at {:#x}: {:?}", call, p, got);
        }
    }
    // Output into the guest's own (read-only) page tables.
    for (what, call, args) in [
        ("done into the L4", nr(Hypercall::MmuUpdate), [reqs, 1, start.pt_base, SELF, 0, 0]),
        ("memory map into the L4", nr(Hypercall::MemoryMap), [start.pt_base, 4, 0, 0, 0, 0]),
        ("query into the L4", nr(Hypercall::ReservationQuery), [SELF, start.pt_base, 0, 0, 0, 0]),
    ] {
        let r = hypercall::raw(call, args);
        check!(r == Err(Error::BadAddress), "{}: {:?}", what, r);
    }
    check!(mem.read_entry(entry) == 0, "a refused batch changed the entry");
    check!(mmu::peek(start.pt_base) == 0, "the L4 was written");
    // The same request with good pointers works.
    check!(mmu::mmu_update(&good) == (1, Ok(0)), "good pointers");
    veneer_guest::success()
}
