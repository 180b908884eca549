//! A domain can do nothing to another domain's frames (M1, M8, M9, P3). The
//! test finds every frame of the domain running beside it through the m2p
//! (frames with a valid entry that its own p2m does not name) and tries to
//! map each read-only and writable, to write it as a page table, to
//! retarget its m2p entry, to pin and unpin it, to make it a base pointer,
//! to give it back and to trade it in an exchange. Every attempt fails with
//! the documented error; the companion then checks it is intact.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::domid::domid;
use veneer_guest::hypercall_abi::memory::memory_consts::INVALID_FRAME;
use veneer_guest::hypercall_abi::memory::{uvmf, MmuUpdate, MmuextCmd, Reservation, ReservationExchange};
use veneer_guest::hypercall_abi::Error;
use veneer_guest::mmu::{self, Memory, RO, RW};
use veneer_guest::{check, println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"mmu_companion");

fn main(start: &StartInfo) -> ! {
    let mut mem = Memory::new(start);
    let ext = mmu::start_info_ext(start);
    let window = Memory::va(mem.alloc());
    let window_entry = mem.entry_maddr(window, 1);
    let mut foreign = 0u64;
    for mfn in 0..ext.m2p_nr_entries {
        let pfn = mem.m2p(mfn);
        if pfn == INVALID_FRAME || (pfn < start.nr_pages && mem.mfn(pfn) == mfn) {
            continue;
        }
        foreign += 1;
        for flags in [RO, RW] {
            let r = mmu::update_va_mapping(window, mfn << 12 | flags, uvmf::INVLPG);
            check!(r == Err(Error::Invalid), "mapping foreign {:#x} ({:#x}): {:?}", mfn, flags, r);
        }
        let r = mmu::mmu_update(&[MmuUpdate::pt_update(mfn << 12 | 8, mfn << 12 | RW)]);
        check!(r == (0, Err(Error::Invalid)), "writing foreign {:#x} as a table: {:?}", mfn, r);
        let r = mmu::mmu_update(&[MmuUpdate::machphys_update(mfn, 0)]);
        check!(r == (0, Err(Error::Invalid)), "m2p of foreign {:#x}: {:?}", mfn, r);
        for cmd in [MmuextCmd::PinL1, MmuextCmd::PinL4, MmuextCmd::Unpin, MmuextCmd::NewBaseptr, MmuextCmd::NewUserBaseptr] {
            let r = mmu::mmuext1(cmd, mfn);
            check!(r == Err(Error::NotFound), "{:?} of foreign {:#x}: {:?}", cmd, mfn, r);
        }
        let r = mmu::reservation_decrease(&mut [mfn]);
        check!(r == Err(Error::NotFound), "giving back foreign {:#x}: {:?}", mfn, r);
        let (mut input, mut output) = ([mfn], [0u64]);
        let res = |e: &mut [u64]| Reservation { extents: e.as_mut_ptr() as u64, nr_extents: 1, extent_order: 0, address_bits: 0, domid: domid::SELF, reserved0: 0 };
        let mut x = ReservationExchange { input: res(&mut input), output: res(&mut output), nr_exchanged: 0 };
        let r = mmu::reservation_exchange(&mut x);
        check!(r == Err(Error::NotFound), "exchanging foreign {:#x}: {:?}", mfn, r);
    }
    check!(foreign >= 4096, "found only {} frames of the domain beside us", foreign);
    check!(mem.read_entry(window_entry) == 0, "the window got mapped");
    println!("{} foreign frames attacked, every attempt refused", foreign);
    veneer_guest::success()
}
