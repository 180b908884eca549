//! Every register and structure check of the memory calls, attacked:
//! counts over the maximum, foreign domids, undefined commands and flags,
//! reserved fields, arguments a command does not use, non-canonical and
//! reserved addresses, vCPUs the domain does not have, undefined entry
//! commands, unaligned entries, targets that are not page tables. Each
//! fails with the documented error and changes nothing.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::domid::domid;
use veneer_guest::hypercall_abi::memory::memory_consts::M2P_VIRT_START;
use veneer_guest::hypercall_abi::memory::{uvmf, MmuUpdate, MmuextCmd, MmuextOp, Reservation, ReservationExchange};
use veneer_guest::hypercall_abi::{Error, Hypercall};
use veneer_guest::mmu::{self, op, Memory, RO};
use veneer_guest::{check, hypercall, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"mmu_companion");

const SELF: u64 = domid::SELF as u64;

fn main(start: &StartInfo) -> ! {
    let mut mem = Memory::new(start);
    let window = Memory::va(mem.alloc());
    let entry = mem.entry_maddr(window, 1);
    let page_pfn = mem.alloc();
    let page = mem.mfn(page_pfn) << 12;
    let reqs = [MmuUpdate::pt_update(entry, page | RO); 513];
    let p = reqs.as_ptr() as u64;
    let uvm = Hypercall::UpdateVaMapping.number();
    let upd = Hypercall::MmuUpdate.number();
    for (what, call, args, want) in [
        ("513 updates", upd, [p, 513, 0, SELF, 0, 0], Error::TooBig),
        ("2^32 updates", upd, [p, 1 << 32, 0, SELF, 0, 0], Error::TooBig),
        ("another domain's id", upd, [p, 1, 0, 2, 0, 0], Error::NotPermitted),
        ("the hypervisor's id", upd, [p, 1, 0, u64::from(domid::HYPERVISOR), 0, 0], Error::NotPermitted),
        ("a domid over 32 bits", upd, [p, 1, 0, 1 << 32 | SELF, 0, 0], Error::Invalid),
        ("129 mmuext ops", Hypercall::MmuextOp.number(), [p, 129, 0, 0, 0, 0], Error::TooBig),
        ("uvm undefined flush", uvm, [window, page | RO, 3, 0, 0, 0], Error::Invalid),
        ("uvm undefined flag", uvm, [window, page | RO, 16, 0, 0, 0], Error::Invalid),
        ("uvm MULTI and ALL", uvm, [window, page | RO, uvmf::MULTI | uvmf::ALL | 1, 1, 0, 0], Error::Invalid),
        ("uvm mask without MULTI", uvm, [window, page | RO, 1, 1, 0, 0], Error::Invalid),
        ("uvm vCPU 1", uvm, [window, page | RO, uvmf::MULTI | 1, 2, 0, 0], Error::NotFound),
        ("uvm vCPU 63", uvm, [window, page | RO, uvmf::MULTI | 1, 1 << 63, 0, 0], Error::NotFound),
        ("uvm non-canonical", uvm, [1 << 47, page | RO, 0, 0, 0, 0], Error::Invalid),
        ("uvm in the hypervisor", uvm, [M2P_VIRT_START, page | RO, 0, 0, 0, 0], Error::Invalid),
        ("uvm with no L1", uvm, [0x4000_0000, page | RO, 0, 0, 0, 0], Error::Invalid),
        ("query of another domain", Hypercall::ReservationQuery.number(), [3, p, 0, 0, 0, 0], Error::NotPermitted),
        ("machine memory map", Hypercall::MachineMemoryMap.number(), [p, 4, 0, 0, 0, 0], Error::NotPermitted),
        ("memory map of no entries", Hypercall::MemoryMap.number(), [p, 0, 0, 0, 0, 0], Error::TooBig),
    ] {
        let r = hypercall::raw(call, args);
        check!(r == Err(want), "{}: {:?}, want {:?}", what, r, want);
    }
    let mut bad_cmd = reqs[0];
    bad_cmd.ptr |= 3;
    let mut unaligned = reqs[0];
    unaligned.ptr |= 4;
    for (what, u) in [
        ("undefined update command", bad_cmd),
        ("unaligned entry", unaligned),
        ("a data frame as table", MmuUpdate::pt_update(page, 0)),
        ("m2p update with low bits", MmuUpdate { ptr: page | 1 | 8, val: 0 }),
    ] {
        let r = mmu::mmu_update(&[u]);
        check!(r == (0, Err(Error::Invalid)), "{}: {:?}", what, r);
    }
    let table = mem.entry_maddr(window, 1) >> 12;
    for (what, o, want) in [
        ("undefined command", MmuextOp { cmd: 13, reserved0: 0, arg1: 0, arg2: 0 }, Error::Invalid),
        ("reserved field", MmuextOp { cmd: MmuextCmd::TlbFlushLocal as u32, reserved0: 1, arg1: 0, arg2: 0 }, Error::Invalid),
        ("flush with arg1", op(MmuextCmd::TlbFlushLocal, 1, 0), Error::Invalid),
        ("flush with arg2", op(MmuextCmd::TlbFlushAll, 0, 1), Error::Invalid),
        ("pin with arg2", op(MmuextCmd::PinL1, table, 1), Error::Invalid),
        ("invlpg non-canonical", op(MmuextCmd::InvlpgLocal, 1 << 47, 0), Error::Invalid),
        ("invlpg all non-canonical", op(MmuextCmd::InvlpgAll, 0xdead_0000_0000_0000, 0), Error::Invalid),
        ("multi flush of vCPU 1", op(MmuextCmd::TlbFlushMulti, 0, 2), Error::NotFound),
        ("multi invlpg of vCPU 5", op(MmuextCmd::InvlpgMulti, window, 1 << 5), Error::NotFound),
        ("pin a frame of no one", op(MmuextCmd::PinL2, 0x200, 0), Error::NotFound),
        ("user base of no one", op(MmuextCmd::NewUserBaseptr, 0x200, 0), Error::NotFound),
        ("user base an L1", op(MmuextCmd::NewUserBaseptr, table, 0), Error::Invalid),
    ] {
        let r = mmu::mmuext(&[o]);
        check!(r == (0, Err(want)), "{}: {:?}, want {:?}", what, r, want);
    }
    // Reservations: reserved fields, orders, address bits, sizes, domids.
    let mut extents = [start.nr_pages - 1];
    let base = Reservation { extents: extents.as_mut_ptr() as u64, nr_extents: 1, extent_order: 0, address_bits: 0, domid: domid::SELF, reserved0: 0 };
    for (what, call, r, want) in [
        ("reserved field", Hypercall::ReservationIncrease, Reservation { reserved0: 1, ..base }, Error::Invalid),
        ("order 1", Hypercall::ReservationIncrease, Reservation { extent_order: 1, ..base }, Error::Invalid),
        ("513 extents", Hypercall::ReservationDecrease, Reservation { nr_extents: 513, ..base }, Error::TooBig),
        ("address bits on decrease", Hypercall::ReservationDecrease, Reservation { address_bits: 32, ..base }, Error::Invalid),
        ("another domain", Hypercall::ReservationDecrease, Reservation { domid: 7, ..base }, Error::NotPermitted),
    ] {
        let mut r = r;
        let got = hypercall::raw(call.number(), [core::ptr::addr_of_mut!(r) as u64, 0, 0, 0, 0, 0]);
        check!(got == Err(want), "reservation {}: {:?}, want {:?}", what, got, want);
    }
    let mut out = [0u64];
    let output = Reservation { extents: out.as_mut_ptr() as u64, extent_order: 1, ..base };
    let mut x = ReservationExchange { input: base, output, nr_exchanged: 5 };
    check!(mmu::reservation_exchange(&mut x) == Err(Error::Invalid), "exchange of 1 frame for 2");
    x.output.extent_order = 10;
    check!(mmu::reservation_exchange(&mut x) == Err(Error::Invalid), "exchange for order 10");
    check!(x.nr_exchanged == 0, "a refused exchange leaves nr_exchanged {}, not 0", x.nr_exchanged);
    check!(mem.read_entry(entry) == 0, "something was mapped");
    veneer_guest::success()
}
