//! Hypercall decoding and handling.
//!
//! Each call is decoded from the saved registers into a typed [`Call`]
//! (every register argument checked, nothing changed), then carried out. A
//! call that fails changes nothing and returns an [`Error`] in `rax`, except
//! the batches, which say how much they did (`mmu.rs`).

use core::mem::{offset_of, size_of};

use hypercall_abi::error::encode;
use hypercall_abi::hypercall::{AbiInfo, Privilege, ShutdownReason, CONSOLE_WRITE_MAX};
use hypercall_abi::memory::memory_consts::{MMUEXT_OP_MAX, MMU_UPDATE_MAX};
use hypercall_abi::memory::uvmf;
use hypercall_abi::version::AbiVersion;
use hypercall_abi::{Error, Hypercall};

use crate::domain::{Domain, Outcome};
use crate::machine::MachineMemory;
use crate::mmu::{self, check_vcpu_mask, VaFlush, ALL_VCPUS};
use crate::phys::PhysMemory;
use crate::vcpu::GuestRegisters;

/// A decoded call with its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    AbiQuery { info: u64 },
    ConsoleWrite { buf: u64, len: usize },
    Shutdown(Outcome),
    MmuUpdate { reqs: u64, count: usize, done: u64 },
    UpdateVaMapping { va: u64, value: u64, flush: VaFlush },
    MmuextOp { ops: u64, count: usize, done: u64 },
    MemoryMap { buf: u64, max: u64 },
    ReservationIncrease { args: u64 },
    ReservationDecrease { args: u64 },
    ReservationExchange { args: u64 },
    ReservationQuery { out: u64 },
}

/// What the caller of [`handle`] must do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Resume the vCPU with this value in `rax`.
    Return(u64),
    /// The domain has ended.
    End(Outcome),
}

/// The hypervisor's side of the calls: what it offers, machine memory and
/// where console output goes.
pub struct Services<'a, M: PhysMemory> {
    pub abi: AbiVersion,
    pub features: u64,
    pub mem: &'a mut M,
    pub machine: &'a mut MachineMemory,
    pub console: &'a mut dyn FnMut(&[u8]),
}

/// The six argument registers, in ABI order.
fn args(regs: &GuestRegisters) -> [u64; 6] {
    let g = &regs.gprs;
    [g.rdi, g.rsi, g.rdx, g.r10, g.r8, g.r9]
}

/// A batch count: at most `max` (else `TooBig`).
fn count(n: u64, max: u64) -> Result<usize, Error> {
    if n > max {
        return Err(Error::TooBig);
    }
    usize::try_from(n).map_err(|_| Error::TooBig)
}

/// Decodes `update_va_mapping`'s flags and vCPU mask (§12.3).
fn va_flush(flags: u64, mask: u64) -> Result<VaFlush, Error> {
    let defined = uvmf::FLUSH_MASK | uvmf::MULTI | uvmf::ALL;
    if flags & !defined != 0 || flags & uvmf::FLUSH_MASK == uvmf::FLUSH_MASK {
        return Err(Error::Invalid);
    }
    let vcpus = match (flags & uvmf::MULTI != 0, flags & uvmf::ALL != 0) {
        (true, true) => return Err(Error::Invalid),
        (true, false) => check_vcpu_mask(mask)?,
        // The mask is read only with MULTI; anything else there is a
        // mistake the guest hears about.
        (false, _) if mask != 0 => return Err(Error::Invalid),
        (false, true) => ALL_VCPUS,
        (false, false) => 1,
    };
    Ok(match flags & uvmf::FLUSH_MASK {
        uvmf::TLB_FLUSH => VaFlush::All(vcpus),
        uvmf::INVLPG => VaFlush::Page(vcpus),
        _ => VaFlush::None,
    })
}

/// Checks the number and register arguments of the call `caller` made.
pub fn decode(regs: &GuestRegisters, features: u64, caller: &Domain) -> Result<Call, Error> {
    let a = args(regs);
    let call = Hypercall::from_number(regs.gprs.rax).ok_or(Error::NoSuchCall)?;
    if call.feature() & !features != 0 {
        return Err(Error::NoSuchCall);
    }
    // No domain holds a privilege yet: the privileged domain, console
    // ownership and I/O permissions arrive with domain control and
    // physical devices (SPEC P1, P2).
    if call.privilege() != Privilege::Any {
        return Err(Error::NotPermitted);
    }
    match call {
        Hypercall::AbiQuery => Ok(Call::AbiQuery { info: a[0] }),
        Hypercall::ConsoleWrite => {
            let len = usize::try_from(a[1]).map_err(|_| Error::TooBig)?;
            if len > CONSOLE_WRITE_MAX {
                return Err(Error::TooBig);
            }
            Ok(Call::ConsoleWrite { buf: a[0], len })
        }
        Hypercall::SchedShutdown => {
            let reason = ShutdownReason::from_number(a[0]).ok_or(Error::Invalid)?;
            let code = u32::try_from(a[1]).map_err(|_| Error::Invalid)?;
            Ok(Call::Shutdown(match reason {
                ShutdownReason::Poweroff => Outcome::Poweroff(code),
                ShutdownReason::Reboot => Outcome::Reboot(code),
                ShutdownReason::Crash => Outcome::Crash(code),
            }))
        }
        Hypercall::MmuUpdate => {
            let count = count(a[1], MMU_UPDATE_MAX)?;
            mmu::check_self(caller, a[3])?;
            Ok(Call::MmuUpdate { reqs: a[0], count, done: a[2] })
        }
        Hypercall::UpdateVaMapping => {
            let va = mmu::check_guest_va(a[0])?;
            Ok(Call::UpdateVaMapping { va, value: a[1], flush: va_flush(a[2], a[3])? })
        }
        Hypercall::MmuextOp => Ok(Call::MmuextOp { ops: a[0], count: count(a[1], MMUEXT_OP_MAX)?, done: a[2] }),
        Hypercall::MemoryMap => Ok(Call::MemoryMap { buf: a[0], max: a[1] }),
        Hypercall::ReservationIncrease => Ok(Call::ReservationIncrease { args: a[0] }),
        Hypercall::ReservationDecrease => Ok(Call::ReservationDecrease { args: a[0] }),
        Hypercall::ReservationExchange => Ok(Call::ReservationExchange { args: a[0] }),
        Hypercall::ReservationQuery => {
            mmu::check_self(caller, a[0])?;
            Ok(Call::ReservationQuery { out: a[1] })
        }
        // The rest of ABI v1 is specified but not yet served by this
        // hypervisor; it answers exactly as for an unknown number.
        _ => Err(Error::NoSuchCall),
    }
}

/// Decodes and carries out the call in `regs` for the running vCPU of
/// `dom`. TLB work the call leaves is in `hv.machine.frames`
/// (`take_flush`); a new base pointer is in `dom.vcpu`.
pub fn handle<M: PhysMemory>(regs: &GuestRegisters, dom: &mut Domain, hv: &mut Services<'_, M>) -> Disposition {
    let call = match decode(regs, hv.features, dom) {
        Ok(call) => call,
        Err(e) => return Disposition::Return(e.to_return()),
    };
    let space = dom.space();
    let (mem, machine) = (&mut *hv.mem, &mut *hv.machine);
    let result = match call {
        Call::Shutdown(outcome) => return Disposition::End(outcome),
        Call::AbiQuery { info } => {
            let mut bytes = [0u8; size_of::<AbiInfo>()];
            bytes[offset_of!(AbiInfo, major)..][..2].copy_from_slice(&hv.abi.major.to_le_bytes());
            bytes[offset_of!(AbiInfo, minor)..][..2].copy_from_slice(&hv.abi.minor.to_le_bytes());
            bytes[offset_of!(AbiInfo, features)..][..8].copy_from_slice(&hv.features.to_le_bytes());
            space.copy_to(mem, info, &bytes).map(|()| 0)
        }
        Call::ConsoleWrite { buf, len } => {
            let console = &mut hv.console;
            space.read_chunks(mem, buf, len, |bytes| console(bytes)).map(|()| len as u64)
        }
        Call::MmuUpdate { reqs, count, done } => mmu::mmu_update(dom, machine, mem, reqs, count, done),
        Call::UpdateVaMapping { va, value, flush } => mmu::update_va_mapping(dom, machine, mem, va, value, flush),
        Call::MmuextOp { ops, count, done } => mmu::mmuext_op(dom, machine, mem, ops, count, done),
        Call::MemoryMap { buf, max } => mmu::memory_map(dom, mem, buf, max),
        Call::ReservationIncrease { args } => mmu::reservation_increase(dom, machine, mem, args),
        Call::ReservationDecrease { args } => mmu::reservation_decrease(dom, machine, mem, args),
        Call::ReservationExchange { args } => mmu::reservation_exchange(dom, machine, mem, args),
        Call::ReservationQuery { out } => mmu::reservation_query(dom, machine, mem, out),
    };
    Disposition::Return(encode(result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Mfn;
    use crate::frame_table::PageType;
    use crate::pte::PteFlags;
    use crate::test_support::TestDomain as T;
    use hypercall_abi::memory::memory_consts::{INVALID_FRAME, M2P_VIRT_START};
    use hypercall_abi::memory::{MmuUpdate, MmuextCmd};
    use Hypercall as H;

    const P: u64 = PteFlags::PRESENT.bits();
    const RW: u64 = PteFlags::WRITABLE.bits();
    const U: u64 = PteFlags::USER.bits();
    /// A VA in the first L1 that nothing maps: page 20 of the domain.
    const FREE_VA: u64 = T::TEXT + 20 * 0x1000;

    fn err(e: Error) -> Disposition {
        Disposition::Return(e.to_return())
    }

    fn page(t: &T, va: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        t.dom.space().copy_from(&t.mem, va, &mut b).unwrap();
        b
    }

    #[test]
    fn abi_query_writes_version_and_features() {
        let mut t = T::new();
        t.write(T::DATA, &[0xee; 32]);
        assert_eq!(t.call(0, [T::DATA + 8, 0, 0, 0, 0, 0]), Disposition::Return(0));
        let page = page(&t, T::DATA, 32);
        assert_eq!(&page[..8], &[0xee; 8]);
        assert_eq!(&page[8..12], &[1, 0, 0, 0]);
        assert_eq!(u64::from_le_bytes(page[16..24].try_into().unwrap()), T::FEATURES);
        assert_eq!(&page[24..32], &[0xee; 8]);
    }

    #[test]
    fn abi_query_refuses_bad_pointers() {
        let mut t = T::new();
        t.write(T::DATA, &[0xee; 32]);
        for bad in [0, T::TEXT, T::DATA - 8, T::END - 8, T::END, M2P_VIRT_START, 0x8000_0000_0000, u64::MAX] {
            assert_eq!(t.call(0, [bad, 0, 0, 0, 0, 0]), err(Error::BadAddress), "pointer {bad:#x}");
            assert_eq!(page(&t, T::DATA, 32), [0xee; 32]);
        }
    }

    #[test]
    fn console_write_copies_exactly_len_bytes() {
        let mut t = T::new();
        t.write(T::DATA, b"hello world");
        assert_eq!(t.call(1, [T::DATA, 5, 0, 0, 0, 0]), Disposition::Return(5));
        assert_eq!(t.console, b"hello");
        assert_eq!(t.call(1, [T::END - 3, 3, 0, 0, 0, 0]), Disposition::Return(3), "the last mapped bytes are readable");
        assert_eq!(t.call(1, [T::DATA, 0, 0, 0, 0, 0]), Disposition::Return(0));
        assert_eq!(t.console.len(), 8);
    }

    #[test]
    fn console_write_refuses_bad_input() {
        let max = CONSOLE_WRITE_MAX as u64;
        let mut t = T::new();
        for (buf, len, e) in [
            (T::DATA, max + 1, Error::TooBig),
            (T::DATA, u64::MAX, Error::TooBig),
            (0xffff_8000_0000_0000, 4, Error::BadAddress),
            (0x1234_0000, 4, Error::BadAddress),
            (T::END - 2, 4, Error::BadAddress),
            (T::END, 1, Error::BadAddress),
        ] {
            assert_eq!(t.call(1, [buf, len, 0, 0, 0, 0]), err(e), "buf {buf:#x} len {len}");
        }
        assert!(t.console.is_empty());
    }

    #[test]
    fn shutdown_reasons_and_codes() {
        let mut t = T::new();
        assert_eq!(t.call(0x53, [0, 7, 0, 0, 0, 0]), Disposition::End(Outcome::Poweroff(7)));
        assert_eq!(t.call(0x53, [1, 0, 0, 0, 0, 0]), Disposition::End(Outcome::Reboot(0)));
        assert_eq!(t.call(0x53, [2, 9, 0, 0, 0, 0]), Disposition::End(Outcome::Crash(9)));
        assert_eq!(t.call(0x53, [3, 0, 0, 0, 0, 0]), err(Error::Invalid));
        assert_eq!(t.call(0x53, [0, 1 << 32, 0, 0, 0, 0]), err(Error::Invalid));
    }

    #[test]
    fn unknown_unoffered_and_unprivileged_numbers() {
        let mut t = T::new();
        for nr in [0x0f, 0x19, 0x52, 0x54, 0xff, 1 << 32, u64::MAX] {
            assert_eq!(t.call(nr, [0; 6]), err(Error::NoSuchCall), "number {nr:#x}");
        }
        // Features not offered: the counters, domain control.
        for h in [H::CountersRead, H::DomainCreate, H::PhysdevIrqBind] {
            assert_eq!(t.call(h.number(), [0; 6]), err(Error::NoSuchCall), "{h:?}");
        }
        // Offered, but for a privilege no domain has yet.
        for h in [H::MachineMemoryMap, H::ConsoleRead, H::WallclockSet] {
            assert_eq!(t.call(h.number(), [0; 6]), err(Error::NotPermitted), "{h:?}");
        }
    }

    /// Writes `reqs` to the data page and runs them as one `mmu_update`,
    /// with `done` after them.
    fn mmu_update(t: &mut T, reqs: &[MmuUpdate]) -> (Result<u64, Error>, u32) {
        let mut bytes = Vec::new();
        for r in reqs {
            bytes.extend_from_slice(&r.ptr.to_le_bytes());
            bytes.extend_from_slice(&r.val.to_le_bytes());
        }
        let done = T::DATA + bytes.len() as u64;
        bytes.extend_from_slice(&[0xff; 4]);
        t.write(T::DATA, &bytes);
        let r = t.result(H::MmuUpdate, [T::DATA, reqs.len() as u64, done, 0x7ff0, 0, 0]);
        (r, t.read_u64(done) as u32)
    }

    fn l1_maddr(t: &T, index: u64) -> u64 {
        let (l1, _) = t.dom.space().translate(&t.mem, T::L1, crate::guest_memory::Access::Read).unwrap();
        l1.phys() + index * 8
    }

    #[test]
    fn mmu_update_applies_validates_and_reports_progress() {
        let mut t = T::new();
        let frame = t.mfn(20);
        let entry = l1_maddr(&t, 20);
        // Map page 20 writable at FREE_VA: the guest can now write it.
        assert_eq!(mmu_update(&mut t, &[MmuUpdate::pt_update(entry, frame.phys() | P | RW)]), (Ok(0), 1));
        t.write(FREE_VA, b"mapped");
        assert_eq!(&t.mem.frame(frame)[..6], b"mapped");
        t.audit();
        // A batch whose third entry maps the L4 writable stops there.
        let l4 = t.dom.vcpu.kernel_base;
        let batch = [
            MmuUpdate::pt_update(l1_maddr(&t, 21), t.mfn(21).phys() | P),
            MmuUpdate::pt_update(l1_maddr(&t, 22), t.mfn(22).phys() | P),
            MmuUpdate::pt_update(l1_maddr(&t, 23), l4.phys() | P | RW),
            MmuUpdate::pt_update(l1_maddr(&t, 24), t.mfn(24).phys() | P),
        ];
        assert_eq!(mmu_update(&mut t, &batch), (Err(Error::Busy), 2));
        assert_eq!(t.read_u64(T::L1 + 22 * 8), t.mfn(22).phys() | P | U);
        assert_eq!(t.read_u64(T::L1 + 23 * 8), 0);
        assert_eq!(t.read_u64(T::L1 + 24 * 8), 0, "nothing after the failure");
        t.audit();
        // Bad commands and targets.
        let mut bad = MmuUpdate::pt_update(entry, 0);
        bad.ptr |= 3;
        assert_eq!(mmu_update(&mut t, &[bad]), (Err(Error::Invalid), 0), "undefined command");
        assert_eq!(mmu_update(&mut t, &[MmuUpdate { ptr: entry | 4, val: 0 }]), (Err(Error::Invalid), 0), "unaligned");
        assert_eq!(mmu_update(&mut t, &[MmuUpdate::pt_update(frame.phys(), 0)]), (Err(Error::Invalid), 0), "not a table");
        let l4_slot = l4.phys() + 256 * 8;
        assert_eq!(mmu_update(&mut t, &[MmuUpdate::pt_update(l4_slot, 0)]), (Err(Error::NotPermitted), 0));
        // The m2p: own frames only.
        assert_eq!(mmu_update(&mut t, &[MmuUpdate::machphys_update(frame.0, 77)]), (Ok(0), 1));
        assert_eq!(t.machine.m2p.get(&t.mem, frame), 77);
        assert_eq!(mmu_update(&mut t, &[MmuUpdate::machphys_update(3, 77)]), (Err(Error::Invalid), 0));
        assert_eq!(t.machine.m2p.get(&t.mem, Mfn(3)), INVALID_FRAME);
        // Register arguments.
        assert_eq!(t.result(H::MmuUpdate, [T::DATA, 513, 0, 0x7ff0, 0, 0]), Err(Error::TooBig));
        assert_eq!(t.result(H::MmuUpdate, [T::DATA, 1, 0, 2, 0, 0]), Err(Error::NotPermitted), "foreign");
        assert_eq!(t.result(H::MmuUpdate, [T::DATA, 1, 0, 1 << 32, 0, 0]), Err(Error::Invalid));
        assert_eq!(t.result(H::MmuUpdate, [M2P_VIRT_START, 1, 0, 0x7ff0, 0, 0]), Err(Error::BadAddress));
        t.write(T::DATA, &[0xff; 4]);
        assert_eq!(t.result(H::MmuUpdate, [M2P_VIRT_START, 1, T::DATA, 0x7ff0, 0, 0]), Err(Error::BadAddress));
        assert_eq!(t.read_u64(T::DATA) as u32, 0, "done reports 0 for unreadable requests");
        t.write(T::DATA, &[0xff; 4]);
        assert_eq!(t.result(H::MmuUpdate, [T::DATA, 513, T::DATA, 0x7ff0, 0, 0]), Err(Error::TooBig));
        assert_eq!(t.read_u64(T::DATA) as u32, u32::MAX, "a call refused on its registers writes nothing");
        assert_eq!(t.result(H::MmuUpdate, [T::DATA, 1, T::TEXT, 0x7ff0, 0, 0]), Err(Error::BadAddress), "done read-only");
        assert_eq!(t.result(H::MmuUpdate, [T::DATA, 0, 0, 1, 0, 0]), Ok(0), "own id, nothing to do");
        t.audit();
    }

    #[test]
    fn a_batch_that_unmaps_its_own_requests_stops_there() {
        let mut t = T::new();
        // 40 updates in the data page; the first unmaps the data page. The
        // first chunk is already read, so its entries all apply; the next
        // chunk cannot be read.
        let data_entry = l1_maddr(&t, 1);
        let mut reqs = vec![MmuUpdate::pt_update(data_entry, 0)];
        for i in 1..40 {
            reqs.push(MmuUpdate::pt_update(l1_maddr(&t, 20 + i), t.mfn(20 + i).phys() | P));
        }
        let bytes: Vec<u8> = reqs.iter().flat_map(|r| [r.ptr.to_le_bytes(), r.val.to_le_bytes()].concat()).collect();
        t.write(T::DATA, &bytes);
        assert_eq!(t.result(H::MmuUpdate, [T::DATA, 40, 0, 0x7ff0, 0, 0]), Err(Error::BadAddress));
        let applied = (1..40).filter(|&i| t.read_u64(T::L1 + (20 + i) * 8) != 0).count();
        assert_eq!(applied, 31, "the first chunk of 32, less the unmapping entry itself");
        t.audit();
    }

    #[test]
    fn update_va_mapping_flags_and_flushes() {
        let mut t = T::new();
        let frame = t.mfn(20).phys();
        let uvm = |t: &mut T, va, val, flags, mask| t.result(H::UpdateVaMapping, [va, val, flags, mask, 0, 0]);
        t.machine.frames.take_flush();
        assert_eq!(uvm(&mut t, FREE_VA, frame | P | RW, 2, 0), Ok(0));
        assert_eq!(t.machine.frames.take_flush().pages(), &[FREE_VA]);
        assert_eq!(uvm(&mut t, FREE_VA, frame | P, 1 | 4, 1), Ok(0));
        assert!(t.machine.frames.take_flush().full);
        assert_eq!(uvm(&mut t, FREE_VA, frame | P, 8, 0), Ok(0));
        assert!(t.machine.frames.take_flush().is_empty());
        for (flags, mask, e) in [(3, 0, Error::Invalid), (16, 0, Error::Invalid), (4 | 8, 1, Error::Invalid), (4, 2, Error::NotFound), (1, 1, Error::Invalid)] {
            assert_eq!(uvm(&mut t, FREE_VA, 0, flags, mask), Err(e), "flags {flags:#x} mask {mask:#x}");
        }
        assert_eq!(uvm(&mut t, M2P_VIRT_START, 0, 0, 0), Err(Error::Invalid), "reserved range");
        assert_eq!(uvm(&mut t, 1 << 47, 0, 0, 0), Err(Error::Invalid), "non-canonical");
        assert_eq!(uvm(&mut t, 0x4000_0000, 0, 0, 0), Err(Error::Invalid), "no L1 there");
        let l4 = t.dom.vcpu.kernel_base.phys();
        assert_eq!(uvm(&mut t, T::L4, l4 | P | RW, 0, 0), Err(Error::Busy));
        t.audit();
    }

    fn mmuext(t: &mut T, ops: &[(MmuextCmd, u64, u64)]) -> (Result<u64, Error>, u32) {
        let mut bytes = Vec::new();
        for &(cmd, a1, a2) in ops {
            bytes.extend_from_slice(&(cmd as u32).to_le_bytes());
            bytes.extend_from_slice(&0u32.to_le_bytes());
            bytes.extend_from_slice(&a1.to_le_bytes());
            bytes.extend_from_slice(&a2.to_le_bytes());
        }
        let done = T::DATA + bytes.len() as u64;
        bytes.extend_from_slice(&[0xff; 4]);
        t.write(T::DATA, &bytes);
        let r = t.result(H::MmuextOp, [T::DATA, ops.len() as u64, done, 0, 0, 0]);
        (r, t.read_u64(done) as u32)
    }

    /// Makes page `pfn` a copy of the bootstrap L4's guest half, pinned.
    fn second_l4(t: &mut T, pfn: u64) -> Mfn {
        let l4 = t.dom.vcpu.kernel_base;
        let new = t.mfn(pfn);
        for i in 0..512 {
            let v = t.mem.read_u64(l4, i);
            t.mem.write_u64(new, i, v);
        }
        assert_eq!(mmuext(t, &[(MmuextCmd::PinL4, new.0, 0)]), (Ok(0), 1));
        new
    }

    #[test]
    fn mmuext_pins_switches_and_flushes() {
        use MmuextCmd::*;
        let mut t = T::new();
        let boot_l4 = t.dom.vcpu.kernel_base;
        let new = second_l4(&mut t, 30);
        assert_eq!(t.machine.frames.info(new).unwrap().ty, PageType::L4);
        t.machine.frames.take_flush();
        // Switch, unpin the old one (the tree stays: the new L4 names the
        // same L3), switch back.
        assert_eq!(mmuext(&mut t, &[(NewBaseptr, new.0, 0), (Unpin, boot_l4.0, 0)]), (Ok(0), 2));
        assert_eq!(t.dom.vcpu.kernel_base, new);
        assert!(t.machine.frames.take_flush().full);
        assert_eq!(t.machine.frames.info(boot_l4).unwrap().ty, PageType::None, "no use left");
        t.audit();
        assert_eq!(mmuext(&mut t, &[(NewBaseptr, boot_l4.0, 0)]), (Err(Error::Invalid), 0), "no longer an L4");
        assert_eq!(mmuext(&mut t, &[(PinL4, boot_l4.0, 0), (NewBaseptr, boot_l4.0, 0)]), (Ok(0), 2));
        // User base pointer in and out.
        assert_eq!(mmuext(&mut t, &[(NewUserBaseptr, new.0, 0)]), (Ok(0), 1));
        assert_eq!(t.dom.vcpu.user_base, Some(new));
        t.audit();
        assert_eq!(mmuext(&mut t, &[(NewUserBaseptr, 0, 0)]), (Ok(0), 1));
        assert_eq!(t.dom.vcpu.user_base, None);
        // Flushes.
        t.machine.frames.take_flush();
        assert_eq!(mmuext(&mut t, &[(InvlpgLocal, FREE_VA, 0), (InvlpgMulti, T::DATA, 1)]), (Ok(0), 2));
        assert_eq!(t.machine.frames.take_flush().pages(), &[FREE_VA, T::DATA]);
        assert_eq!(mmuext(&mut t, &[(TlbFlushMulti, 0, 0)]), (Ok(0), 1));
        assert!(t.machine.frames.take_flush().is_empty(), "an empty mask flushes nothing");
        assert_eq!(mmuext(&mut t, &[(TlbFlushAll, 0, 0)]), (Ok(0), 1));
        assert!(t.machine.frames.take_flush().full);
        // Errors, each stopping the batch where it stands.
        let pt_frame = t.mfn(8).0;
        for (ops, want) in [
            (vec![(TlbFlushLocal, 1, 0)], (Err(Error::Invalid), 0)),
            (vec![(TlbFlushLocal, 0, 0), (InvlpgLocal, 1 << 47, 0)], (Err(Error::Invalid), 1)),
            (vec![(TlbFlushMulti, 0, 2)], (Err(Error::NotFound), 0)),
            (vec![(PinL1, 3, 0)], (Err(Error::NotFound), 0)),
            (vec![(PinL4, new.0, 0)], (Err(Error::Exists), 0)),
            (vec![(PinL2, pt_frame, 0)], (Err(Error::Busy), 0)),
            (vec![(Unpin, pt_frame, 0)], (Err(Error::NotPermitted), 0)),
            (vec![(NewBaseptr, pt_frame, 0)], (Err(Error::Invalid), 0)),
            (vec![(PinL1, t.mfn(31).0, 5)], (Err(Error::Invalid), 0)),
        ] {
            assert_eq!(mmuext(&mut t, &ops), want, "{ops:?}");
        }
        let mut raw = [0u8; 24];
        raw[0] = 13;
        t.write(T::DATA, &raw);
        assert_eq!(t.result(H::MmuextOp, [T::DATA, 1, 0, 0, 0, 0]), Err(Error::Invalid), "undefined command");
        raw[0] = TlbFlushLocal as u8;
        raw[4] = 1;
        t.write(T::DATA, &raw);
        assert_eq!(t.result(H::MmuextOp, [T::DATA, 1, 0, 0, 0, 0]), Err(Error::Invalid), "reserved field");
        assert_eq!(t.result(H::MmuextOp, [T::DATA, 129, 0, 0, 0, 0]), Err(Error::TooBig));
        t.audit();
    }

    #[test]
    fn memory_map_describes_the_pseudo_physical_space() {
        let mut t = T::new();
        assert_eq!(t.result(H::MemoryMap, [T::DATA, 4, 0, 0, 0, 0]), Ok(1));
        assert_eq!(page(&t, T::DATA, 24), [&0u64.to_le_bytes()[..], &(1u64 << 20).to_le_bytes(), &[1, 0, 0, 0, 0, 0, 0, 0]].concat());
        assert_eq!(t.result(H::MemoryMap, [T::DATA, 0, 0, 0, 0, 0]), Err(Error::TooBig));
        assert_eq!(t.result(H::MemoryMap, [T::TEXT, 1, 0, 0, 0, 0]), Err(Error::BadAddress));
    }

    fn reservation(t: &mut T, call: H, extents: &[u64], order: u32, bits: u32) -> (Result<u64, Error>, Vec<u64>) {
        let array = T::DATA + 0x100;
        let bytes: Vec<u8> = extents.iter().flat_map(|e| e.to_le_bytes()).collect();
        t.write(array, &bytes);
        let mut r = Vec::new();
        r.extend_from_slice(&array.to_le_bytes());
        r.extend_from_slice(&(extents.len() as u32).to_le_bytes());
        r.extend_from_slice(&order.to_le_bytes());
        r.extend_from_slice(&bits.to_le_bytes());
        r.extend_from_slice(&0x7ff0u32.to_le_bytes());
        r.extend_from_slice(&0u64.to_le_bytes());
        t.write(T::DATA, &r);
        let result = t.result(call, [T::DATA, 0, 0, 0, 0, 0]);
        let back = (0..extents.len() as u64).map(|i| t.read_u64(array + i * 8)).collect();
        (result, back)
    }

    #[test]
    fn reservations_give_back_and_take_again() {
        let mut t = T::new();
        let free = t.machine.allocator.free_count();
        let (a, b, c) = (t.mfn(40), t.mfn(41), t.mfn(42));
        // Page 13 is the first after the bootstrap region: map it, then try
        // to give it back while mapped.
        assert_eq!(t.result(H::UpdateVaMapping, [FREE_VA, c.phys() | P, 0, 0, 0, 0]), Ok(0));
        assert_eq!(reservation(&mut t, H::ReservationDecrease, &[c.0], 0, 0).0, Err(Error::Busy));
        assert_eq!(reservation(&mut t, H::ReservationDecrease, &[3], 0, 0).0, Err(Error::NotFound));
        let shared_info = t.dom.shared_info.0;
        assert_eq!(reservation(&mut t, H::ReservationDecrease, &[shared_info], 0, 0).0, Err(Error::Busy));
        // Two go back; the third is mapped, so the call stops at it.
        assert_eq!(reservation(&mut t, H::ReservationDecrease, &[a.0, b.0, c.0], 0, 0).0, Ok(2));
        assert_eq!((t.dom.nr_pages, t.machine.allocator.free_count()), (254, free + 2));
        assert_eq!(t.machine.m2p.get(&t.mem, a), INVALID_FRAME);
        assert_eq!(t.machine.frames.owner(a), None);
        // Take three more: only two fit under the maximum.
        let (r, got) = reservation(&mut t, H::ReservationIncrease, &[40, 41, 99], 0, 0);
        assert_eq!(r, Ok(2));
        assert_eq!(got[2], 99, "the third entry untouched");
        for (pfn, mfn) in [(40, got[0]), (41, got[1])] {
            assert_eq!(t.machine.frames.owner(Mfn(mfn)), Some(t.dom.id));
            assert_eq!(t.machine.m2p.get(&t.mem, Mfn(mfn)), pfn);
            assert!(t.mem.frame(Mfn(mfn)).iter().all(|&b| b == 0), "zeroed");
        }
        assert_eq!(reservation(&mut t, H::ReservationIncrease, &[50], 0, 0).0, Err(Error::NoMemory), "at the maximum");
        // Argument checks.
        assert_eq!(reservation(&mut t, H::ReservationIncrease, &[50], 9, 0).0, Err(Error::Invalid), "no superpages");
        assert_eq!(reservation(&mut t, H::ReservationDecrease, &[got[0]], 0, 32).0, Err(Error::Invalid), "address bits");
        assert_eq!(reservation(&mut t, H::ReservationDecrease, &[0; 513], 0, 0).0, Err(Error::TooBig));
        // Query.
        assert_eq!(t.result(H::ReservationQuery, [0x7ff0, T::DATA, 0, 0, 0, 0]), Ok(0));
        assert_eq!([t.read_u64(T::DATA), t.read_u64(T::DATA + 8)], [256, 256]);
        assert_eq!(t.read_u64(T::DATA + 16), t.machine.allocator.free_count());
        assert_eq!(t.result(H::ReservationQuery, [7, T::DATA, 0, 0, 0, 0]), Err(Error::NotPermitted));
        t.audit();
    }

    #[test]
    fn reservation_exchange_is_all_or_nothing() {
        let mut t = T::new();
        let inputs: Vec<u64> = (100..108).map(|p| t.mfn(p).0).collect();
        let ex = T::DATA + 0x200;
        let put_exchange = |t: &mut T, input: &[u64], out_order: u32, out_bits: u32| {
            let in_arr = T::DATA + 0x400;
            let out_arr = T::DATA + 0x800;
            let bytes: Vec<u8> = input.iter().flat_map(|e| e.to_le_bytes()).collect();
            t.write(in_arr, &bytes);
            t.write(out_arr, &100u64.to_le_bytes());
            let mut r = Vec::new();
            for (arr, n, order, bits) in [(in_arr, input.len() as u32, 0, 0), (out_arr, 1, out_order, out_bits)] {
                r.extend_from_slice(&arr.to_le_bytes());
                r.extend_from_slice(&n.to_le_bytes());
                r.extend_from_slice(&order.to_le_bytes());
                r.extend_from_slice(&bits.to_le_bytes());
                r.extend_from_slice(&0x7ff0u32.to_le_bytes());
                r.extend_from_slice(&0u64.to_le_bytes());
            }
            r.extend_from_slice(&u64::MAX.to_le_bytes());
            t.write(ex, &r);
            (t.result(H::ReservationExchange, [ex, 0, 0, 0, 0, 0]), t.read_u64(out_arr), t.read_u64(ex + 64))
        };
        // Sizes must match; inputs must be givable and named once.
        assert_eq!(put_exchange(&mut t, &inputs[..7], 3, 0).0, Err(Error::Invalid));
        let mut twice = inputs.clone();
        twice[7] = twice[0];
        assert_eq!(put_exchange(&mut t, &twice, 3, 0).0, Err(Error::Invalid));
        let mut mapped = inputs.clone();
        mapped[3] = t.mfn(0).0;
        assert_eq!(put_exchange(&mut t, &mapped, 3, 0).0, Err(Error::Busy));
        // No 8-frame run below 64 KiB: nothing changes.
        let (r, _, n) = put_exchange(&mut t, &inputs, 3, 16);
        assert_eq!((r, n), (Err(Error::NoMemory), 0), "nr_exchanged reads 0 on failure");
        assert!(inputs.iter().all(|&m| t.machine.frames.owner(Mfn(m)) == Some(t.dom.id)));
        // A contiguous, aligned extent of 8 for 8 scattered frames.
        let free = t.machine.allocator.free_count();
        let (r, first, n) = put_exchange(&mut t, &inputs, 3, 0);
        assert_eq!((r, n), (Ok(0), 8));
        assert_eq!(first % 8, 0);
        for k in 0..8 {
            assert_eq!(t.machine.frames.owner(Mfn(first + k)), Some(t.dom.id));
            assert_eq!(t.machine.m2p.get(&t.mem, Mfn(first + k)), 100 + k);
        }
        assert!(inputs.iter().all(|&m| t.machine.frames.owner(Mfn(m)).is_none()));
        assert_eq!((t.dom.nr_pages, t.machine.allocator.free_count()), (256, free));
        t.audit();
    }

    #[test]
    fn teardown_after_activity_returns_every_frame() {
        let mut t = T::new();
        let free_before_build = t.machine.allocator.free_count() + 257;
        let new = second_l4(&mut t, 30);
        assert_eq!(mmuext(&mut t, &[(MmuextCmd::NewUserBaseptr, new.0, 0)]), (Ok(0), 1));
        assert_eq!(t.result(H::UpdateVaMapping, [FREE_VA, t.mfn(20).phys() | P | RW, 0, 0, 0, 0]), Ok(0));
        let T { mut machine, mut mem, dom, .. } = t;
        assert_eq!(dom.teardown(&mut machine, &mut mem), Ok(257));
        assert_eq!(machine.allocator.free_count(), free_before_build);
    }
}
