//! The memory calls, typed, and [`Memory`]: a test guest's view of its
//! pseudo-physical frames, the p2m and m2p tables and its page tables.

use hypercall_abi::call::{hypercall1, hypercall2, hypercall3, hypercall4};
use hypercall_abi::domid::domid;
use hypercall_abi::memory::{
    memory_consts, pte, uvmf, MemoryMapEntry, MmuUpdate, MmuextCmd, MmuextOp, Reservation, ReservationExchange,
    ReservationInfo,
};
use hypercall_abi::start_info::StartInfoExt;
use hypercall_abi::{Error, Hypercall};

use crate::hypercall::result;
use crate::{StartInfo, IMAGE_BASE};

pub const PAGE: u64 = 4096;
/// Present and writable; present only. (The hypervisor adds `USER`.)
pub const RW: u64 = pte::PRESENT | pte::RW;
pub const RO: u64 = pte::PRESENT;

/// `mmu_update` of `reqs` for the caller; returns how many took effect and
/// the call's result.
pub fn mmu_update(reqs: &[MmuUpdate]) -> (u32, Result<u64, Error>) {
    let mut done = u32::MAX;
    let r = result(hypercall4(
        Hypercall::MmuUpdate.number(),
        reqs.as_ptr() as u64,
        reqs.len() as u64,
        core::ptr::addr_of_mut!(done) as u64,
        u64::from(domid::SELF),
    ));
    (done, r)
}

/// `mmuext_op` of `ops`; returns how many took effect and the result.
pub fn mmuext(ops: &[MmuextOp]) -> (u32, Result<u64, Error>) {
    let mut done = u32::MAX;
    let r = result(hypercall3(
        Hypercall::MmuextOp.number(),
        ops.as_ptr() as u64,
        ops.len() as u64,
        core::ptr::addr_of_mut!(done) as u64,
    ));
    (done, r)
}

/// One `mmuext_op` operation.
pub const fn op(cmd: MmuextCmd, arg1: u64, arg2: u64) -> MmuextOp {
    MmuextOp { cmd: cmd as u32, reserved0: 0, arg1, arg2 }
}

/// A single `mmuext_op` operation; its result.
pub fn mmuext1(cmd: MmuextCmd, arg1: u64) -> Result<u64, Error> {
    mmuext(&[op(cmd, arg1, 0)]).1
}

/// Pins frame `mfn` as an L`level` table.
pub fn pin(level: u32, mfn: u64) -> Result<u64, Error> {
    let cmd = match level {
        1 => MmuextCmd::PinL1,
        2 => MmuextCmd::PinL2,
        3 => MmuextCmd::PinL3,
        _ => MmuextCmd::PinL4,
    };
    mmuext1(cmd, mfn)
}

pub fn unpin(mfn: u64) -> Result<u64, Error> {
    mmuext1(MmuextCmd::Unpin, mfn)
}

pub fn tlb_flush() -> Result<u64, Error> {
    mmuext(&[op(MmuextCmd::TlbFlushLocal, 0, 0)]).1
}

/// `update_va_mapping(va, entry, flags, 0)`.
pub fn update_va_mapping(va: u64, entry: u64, flags: u64) -> Result<u64, Error> {
    result(hypercall4(Hypercall::UpdateVaMapping.number(), va, entry, flags, 0))
}

/// `update_va_mapping(va, entry, flags, vcpu_mask)`: the flush reaches the
/// vCPUs of the mask (`MULTI`) or every vCPU (`ALL`).
pub fn update_va_mapping_multi(va: u64, entry: u64, flags: u64, vcpu_mask: u64) -> Result<u64, Error> {
    result(hypercall4(Hypercall::UpdateVaMapping.number(), va, entry, flags, vcpu_mask))
}

/// `memory_map` into `buf`; the number of entries written.
pub fn memory_map(buf: &mut [MemoryMapEntry]) -> Result<u64, Error> {
    result(hypercall2(Hypercall::MemoryMap.number(), buf.as_mut_ptr() as u64, buf.len() as u64))
}

/// A `Reservation` of the caller for the single frames in `extents`.
pub fn reservation(extents: &mut [u64]) -> Reservation {
    Reservation {
        extents: extents.as_mut_ptr() as u64,
        nr_extents: u32::try_from(extents.len()).expect("at most RESERVATION_MAX extents"),
        extent_order: 0,
        address_bits: 0,
        domid: domid::SELF,
        reserved0: 0,
    }
}

/// `reservation_increase`: `extents` holds pfns in, mfns out.
pub fn reservation_increase(extents: &mut [u64]) -> Result<u64, Error> {
    let mut r = reservation(extents);
    result(hypercall1(Hypercall::ReservationIncrease.number(), core::ptr::addr_of_mut!(r) as u64))
}

/// `reservation_decrease` of the frames in `extents`.
pub fn reservation_decrease(extents: &mut [u64]) -> Result<u64, Error> {
    let mut r = reservation(extents);
    result(hypercall1(Hypercall::ReservationDecrease.number(), core::ptr::addr_of_mut!(r) as u64))
}

pub fn reservation_exchange(x: &mut ReservationExchange) -> Result<u64, Error> {
    result(hypercall1(Hypercall::ReservationExchange.number(), x as *mut ReservationExchange as u64))
}

pub fn reservation_query() -> Result<ReservationInfo, Error> {
    let mut info = ReservationInfo::default();
    result(hypercall2(Hypercall::ReservationQuery.number(), u64::from(domid::SELF), core::ptr::addr_of_mut!(info) as u64))?;
    Ok(info)
}

/// The start-info extension, right after the `StartInfo`.
pub fn start_info_ext(start: &StartInfo) -> &StartInfoExt {
    let at = start as *const StartInfo as usize + core::mem::size_of::<StartInfo>();
    // SAFETY: the builder places a `StartInfoExt` at this offset of the
    // start-info page, which stays mapped for the guest's life.
    unsafe { &*(at as *const StartInfoExt) }
}

/// Reads the u64 at `va`.
pub fn peek(va: u64) -> u64 {
    // SAFETY: callers pass addresses they have mapped readable; a wrong
    // one faults, which ends the test as it should.
    unsafe { core::ptr::read_volatile(va as *const u64) }
}

/// Writes the u64 at `va`.
pub fn poke(va: u64, value: u64) {
    // SAFETY: as for `peek`, for a writable mapping.
    unsafe { core::ptr::write_volatile(va as *mut u64, value) }
}

/// A guest's view of its memory. Pseudo-physical frame `pfn` below 512
/// is mapped, when it is mapped at all, at [`Memory::va`]`(pfn)` (the
/// bootstrap region starts at pfn 0, 2 MiB aligned, so one bootstrap L1
/// covers all of them); [`Memory::alloc`] hands out the frames after the
/// bootstrap region.
pub struct Memory<'a> {
    pub start: &'a StartInfo,
    next_free: u64,
}

impl<'a> Memory<'a> {
    pub fn new(start: &'a StartInfo) -> Memory<'a> {
        Memory { start, next_free: start.first_free_pfn }
    }

    /// The virtual address of pfn `pfn` in the bootstrap L1's range.
    pub fn va(pfn: u64) -> u64 {
        IMAGE_BASE + pfn * PAGE
    }

    /// The machine frame of `pfn`, from the p2m array.
    pub fn mfn(&self, pfn: u64) -> u64 {
        peek(self.start.p2m_base + pfn * 8)
    }

    /// The m2p entry of machine frame `mfn`.
    pub fn m2p(&self, mfn: u64) -> u64 {
        peek(memory_consts::M2P_VIRT_START + mfn * 8)
    }

    /// A pseudo-physical frame nothing uses yet, unmapped.
    pub fn alloc(&mut self) -> u64 {
        let pfn = self.next_free;
        assert!(pfn < 512, "test guests use the first 2 MiB");
        self.next_free += 1;
        pfn
    }

    /// Maps `pfn` at `va(pfn)` with `flags`, flushing that page.
    pub fn map(&self, pfn: u64, flags: u64) -> Result<u64, Error> {
        update_va_mapping(Self::va(pfn), self.mfn(pfn) << 12 | flags, uvmf::INVLPG)
    }

    pub fn unmap(&self, pfn: u64) -> Result<u64, Error> {
        update_va_mapping(Self::va(pfn), 0, uvmf::INVLPG)
    }

    /// Machine address of the entry that maps `va` at `level` (1 = L1), by
    /// walking the current tables through their read-only mappings (every
    /// table on the way must be one [`Memory::va`] reaches).
    pub fn entry_maddr(&self, va: u64, level: u32) -> u64 {
        let mut table = self.mfn((self.start.pt_base - IMAGE_BASE) / PAGE);
        for l in (level..=4).rev() {
            let index = (va >> (12 + 9 * (l - 1))) & 511;
            if l == level {
                return (table << 12) | (index * 8);
            }
            let entry = peek(Self::va(self.m2p(table)) + index * 8);
            table = (entry & pte::FRAME) >> 12;
        }
        unreachable!()
    }

    /// The entry at machine address `maddr` of a table [`Memory::va`] maps.
    pub fn read_entry(&self, maddr: u64) -> u64 {
        peek(Self::va(self.m2p(maddr >> 12)) + (maddr & 0xfff))
    }

    /// Fills frame `pfn` with zeros through a temporary writable mapping,
    /// then maps it read-only: ready to become a page table.
    pub fn fresh_table(&self, pfn: u64) -> Result<u64, Error> {
        self.map(pfn, RW)?;
        for i in 0..512 {
            poke(Self::va(pfn) + i * 8, 0);
        }
        self.map(pfn, RO)
    }
}
