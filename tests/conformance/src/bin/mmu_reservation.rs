//! Giving memory back and taking more: `reservation_decrease` of unused
//! frames (their m2p entries become invalid, the count drops), then
//! `reservation_increase` to the maximum (zeroed frames, m2p entries set to
//! the pfns asked for, usable once the guest records them in its p2m), one
//! more is `NoMemory`; `reservation_exchange` of eight scattered frames for
//! one machine-contiguous, aligned extent.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::domid::domid;
use veneer_guest::hypercall_abi::memory::memory_consts::INVALID_FRAME;
use veneer_guest::hypercall_abi::memory::{Reservation, ReservationExchange};
use veneer_guest::hypercall_abi::Error;
use veneer_guest::mmu::{self, peek, poke, Memory, RW};
use veneer_guest::{check, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");

fn set_p2m(start: &StartInfo, pfn: u64, mfn: u64) {
    poke(start.p2m_base + pfn * 8, mfn);
}

fn main(start: &StartInfo) -> ! {
    let mut mem = Memory::new(start);
    let (a, b) = (mem.alloc(), mem.alloc());
    let old = [mem.mfn(a), mem.mfn(b)];
    let mut extents = old;
    check!(mmu::reservation_decrease(&mut extents) == Ok(2), "decrease");
    check!(mem.m2p(old[0]) == INVALID_FRAME && mem.m2p(old[1]) == INVALID_FRAME, "m2p invalidated");
    let info = mmu::reservation_query().unwrap();
    check!(info.current_pages == start.nr_pages - 2, "{:?}", info);
    let r = mmu::reservation_decrease(&mut extents);
    check!(r == Err(Error::NotFound), "decrease of frames no longer ours: {:?}", r);

    let mut extents = [a, b, 0x5005];
    let r = mmu::reservation_increase(&mut extents);
    check!(r == Ok(2), "increase to the maximum: {:?}", r);
    check!(extents[2] == 0x5005, "the third entry was not written");
    check!(mmu::reservation_increase(&mut extents[2..]) == Err(Error::NoMemory), "beyond the maximum");
    for (pfn, mfn) in [(a, extents[0]), (b, extents[1])] {
        check!(mem.m2p(mfn) == pfn, "m2p of new frame {:#x}: {:#x}", mfn, mem.m2p(mfn));
        set_p2m(start, pfn, mfn);
        check!(mem.map(pfn, RW) == Ok(0), "map the new frame");
        check!((0..512).all(|i| peek(Memory::va(pfn) + i * 8) == 0), "new frame not zeroed");
        poke(Memory::va(pfn), pfn);
    }

    // Eight scattered frames for one order-3 extent.
    let first = mem.alloc();
    for _ in 1..8 {
        mem.alloc();
    }
    let mut inputs: [u64; 8] = core::array::from_fn(|k| mem.mfn(first + k as u64));
    let mut output = [first];
    let res = |extents: &mut [u64], order| Reservation {
        extents: extents.as_mut_ptr() as u64,
        nr_extents: u32::try_from(extents.len()).expect("a few extents"),
        extent_order: order,
        address_bits: 0,
        domid: domid::SELF,
        reserved0: 0,
    };
    let mut x = ReservationExchange { input: res(&mut inputs, 0), output: res(&mut output, 3), nr_exchanged: 99 };
    let r = mmu::reservation_exchange(&mut x);
    check!(r == Ok(0) && x.nr_exchanged == 8, "exchange: {:?}, {} exchanged", r, x.nr_exchanged);
    let extent = output[0];
    check!(extent.is_multiple_of(8), "extent {:#x} not aligned", extent);
    for (k, &input) in (0u64..).zip(inputs.iter()) {
        check!(mem.m2p(extent + k) == first + k, "m2p of {:#x}", extent + k);
        check!(mem.m2p(input) == INVALID_FRAME, "input {:#x} still ours", input);
        set_p2m(start, first + k, extent + k);
        check!(mem.map(first + k, RW) == Ok(0), "map extent page {}", k);
    }
    let info = mmu::reservation_query().unwrap();
    check!(info.current_pages == start.nr_pages && info.max_pages == start.nr_pages, "{:?}", info);
    veneer_guest::success()
}
