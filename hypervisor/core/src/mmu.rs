//! The memory hypercalls (SPEC §12): batched page-table updates, the
//! single-entry fast path, pinning and base pointers, TLB flushes, the
//! memory map and the reservation calls.
//!
//! Each call's register arguments are decoded in `hypercall.rs`; here the
//! structures behind its pointers are checked readable in whole (so a bad
//! pointer fails before anything changes), then copied in and applied. The batches (`mmu_update`,
//! `mmuext_op`) are the stated exception to "a failed call changes nothing":
//! they stop at the first failing entry and report how many took effect.
//! Every rule is enforced by the frame table; this layer only parses and
//! routes.

use core::mem::{offset_of, size_of};

use hypercall_abi::domid::domid;
use hypercall_abi::memory::memory_consts::{EXTENT_ORDER_MAX, INVALID_FRAME, RESERVATION_MAX};
use hypercall_abi::memory::{
    MemoryKind, MemoryMapEntry, MmuUpdate, MmuUpdateCmd, MmuextCmd, MmuextOp, Reservation, ReservationExchange,
    ReservationInfo,
};
use hypercall_abi::layout::{u32_of, usize_of};
use hypercall_abi::Error;

use crate::addr::{is_canonical, range_is_guest, Mfn, PAGE_SIZE};
use crate::domain::{Domain, DomainId};
use crate::frame_table::FrameTable;
use crate::guest_memory::{Access, AddressSpace};
use crate::machine::MachineMemory;
use crate::phys::PhysMemory;
use crate::pte::{table_index, Pte, PteFlags};

const PAGE: u64 = PAGE_SIZE as u64;
const EXTENTS_MAX: usize = usize_of(RESERVATION_MAX);
const ORDER_MAX: u32 = u32_of(EXTENT_ORDER_MAX);

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(bytes[offset..offset + 8].try_into().expect("8 bytes"))
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"))
}

pub use crate::frame_table::VcpuMask;

/// Every vCPU of `dom`.
pub fn all_vcpus(dom: &Domain) -> VcpuMask {
    u64::MAX >> (64 - dom.vcpus.len())
}

/// Checks a vCPU mask names only vCPUs the domain has.
pub fn check_vcpu_mask(dom: &Domain, mask: u64) -> Result<VcpuMask, Error> {
    if mask & !all_vcpus(dom) != 0 {
        return Err(Error::NotFound);
    }
    Ok(mask)
}

/// What `update_va_mapping` flushes after its write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VaFlush {
    None,
    /// The whole TLB of the vCPUs in the mask.
    All(VcpuMask),
    /// The page of `va` on the vCPUs in the mask.
    Page(VcpuMask),
}

// The hypervisor carries a flush out on the CPUs where the named vCPUs
// are loaded; a vCPU coming onto a CPU later loads its address spaces
// afresh (both PCIDs flushed), so one not loaded anywhere needs nothing.
fn flush_all_on(frames: &mut FrameTable, vcpus: VcpuMask) {
    if vcpus != 0 {
        frames.flush_all(vcpus);
    }
}

fn flush_page_on(frames: &mut FrameTable, vcpus: VcpuMask, va: u64) {
    if vcpus != 0 {
        frames.flush_page(vcpus, va);
    }
}

/// Checks that `done` (0 for none) can take a u32, before a batch changes
/// anything.
fn probe_done(space: AddressSpace, mem: &impl PhysMemory, done: u64) -> Result<(), Error> {
    if done != 0 {
        space.probe(mem, done, size_of::<u32>() as u64, Access::Write)?;
    }
    Ok(())
}

/// Writes a batch's progress to `done` in the address space current when
/// the batch ends (it may have installed a new base pointer). Every call
/// that got past its register checks and the `done` probe reports, even
/// when its requests could not be read (0).
fn report_done(dom: &Domain, vcpu: usize, mem: &mut impl PhysMemory, done: u64, completed: u32) -> Result<(), Error> {
    if done != 0 {
        dom.space(vcpu).copy_to(mem, done, &completed.to_le_bytes())?;
    }
    Ok(())
}

// ---- mmu_update ------------------------------------------------------------

/// Entries a batch copies in at a time: the whole array is checked
/// readable first, then read a chunk at a time as it is applied.
const CHUNK_BYTES: usize = 512;

/// Runs `apply` on each `SIZE`-byte record of the `count` at `at`, in
/// order, stopping at the first failure; returns how many succeeded and
/// the result. The array is probed readable before the first record is
/// applied, so a bad pointer changes nothing; a record that unmaps the
/// array's own pages stops the batch there with `BadAddress`.
fn for_each_record<M: PhysMemory, const SIZE: usize>(
    dom: &mut Domain, vcpu: usize,
    mem: &mut M,
    at: u64,
    count: usize,
    mut apply: impl FnMut(&mut Domain, &mut M, &[u8; SIZE]) -> Result<(), Error>,
) -> (u32, Result<u64, Error>) {
    let space = dom.space(vcpu);
    if let Err(e) = space.probe(mem, at, (count * SIZE) as u64, Access::Read) {
        return (0, Err(e));
    }
    let mut chunk = [0u8; CHUNK_BYTES];
    let per_chunk = CHUNK_BYTES / SIZE;
    let mut completed = 0u32;
    for first in (0..count).step_by(per_chunk) {
        let n = per_chunk.min(count - first);
        let bytes = &mut chunk[..n * SIZE];
        if let Err(e) = dom.space(vcpu).copy_from(mem, at + (first * SIZE) as u64, bytes) {
            return (completed, Err(e));
        }
        for record in bytes.chunks_exact(SIZE) {
            if let Err(e) = apply(dom, mem, record.try_into().expect("SIZE bytes")) {
                return (completed, Err(e));
            }
            completed += 1;
        }
    }
    (completed, Ok(0))
}

/// `mmu_update` (§12.2) of `count` entries at `reqs`, `count` already
/// checked against `MEM_MMU_UPDATE_MAX`.
pub fn mmu_update<M: PhysMemory>(
    dom: &mut Domain, vcpu: usize,
    machine: &mut MachineMemory,
    mem: &mut M,
    reqs: u64,
    count: usize,
    done: u64,
) -> Result<u64, Error> {
    const SIZE: usize = size_of::<MmuUpdate>();
    probe_done(dom.space(vcpu), mem, done)?;
    let (completed, result) = for_each_record::<M, SIZE>(dom, vcpu, mem, reqs, count, |dom, mem, entry| {
        let req = MmuUpdate { ptr: u64_at(entry, offset_of!(MmuUpdate, ptr)), val: u64_at(entry, offset_of!(MmuUpdate, val)) };
        apply_mmu_update(dom.id, machine, mem, req)
    });
    report_done(dom, vcpu, mem, done, completed)?;
    result
}

fn apply_mmu_update<M: PhysMemory>(dom: DomainId, machine: &mut MachineMemory, mem: &mut M, req: MmuUpdate) -> Result<(), Error> {
    match req.cmd().ok_or(Error::Invalid)? {
        cmd @ (MmuUpdateCmd::PtUpdate | MmuUpdateCmd::PtUpdatePreserveAd) => {
            // Bits 0-1 are the command; bit 2 set means an unaligned entry.
            if req.ptr & 4 != 0 {
                return Err(Error::Invalid);
            }
            let maddr = req.target();
            let index = ((maddr % PAGE) / 8) as usize;
            let preserve_ad = cmd == MmuUpdateCmd::PtUpdatePreserveAd;
            machine.frames.update_entry(dom, Mfn::from_phys(maddr), index, req.val, preserve_ad, mem)
        }
        MmuUpdateCmd::MachphysUpdate => {
            let mfn = Mfn::from_phys(req.ptr);
            // Bits 2-11 of a frame address are zero.
            if (req.ptr % PAGE) & !3 != 0 || machine.frames.owner(mfn) != Some(dom) {
                return Err(Error::Invalid);
            }
            machine.m2p.set(mem, mfn, req.val);
            Ok(())
        }
    }
}

// ---- update_va_mapping ----------------------------------------------------

/// The L1 table and index that map `va` in the address space of `l4`, if
/// the tables down to the L1 exist (no superpage on the way).
pub(crate) fn l1_entry_of(l4: Mfn, va: u64, mem: &impl PhysMemory) -> Option<(Mfn, usize)> {
    let mut table = l4;
    for level in (2..=4u32).rev() {
        let entry = Pte(mem.read_u64(table, table_index(va, level)));
        if !entry.is_present() || entry.flags().contains(PteFlags::HUGE) || !mem.contains(entry.mfn()) {
            return None;
        }
        table = entry.mfn();
    }
    Some((table, table_index(va, 1)))
}

/// `update_va_mapping` (§12.3): `va` already checked canonical and outside
/// the reserved range, `flush` decoded.
pub fn update_va_mapping<M: PhysMemory>(
    dom: &mut Domain, vcpu: usize,
    machine: &mut MachineMemory,
    mem: &mut M,
    va: u64,
    value: u64,
    flush: VaFlush,
) -> Result<u64, Error> {
    let (l1, index) = l1_entry_of(dom.vcpus[vcpu].kernel_base(), va, mem).ok_or(Error::Invalid)?;
    machine.frames.update_entry(dom.id, l1, index, value, false, mem)?;
    match flush {
        VaFlush::None => {}
        VaFlush::All(vcpus) => flush_all_on(&mut machine.frames, vcpus),
        VaFlush::Page(vcpus) => flush_page_on(&mut machine.frames, vcpus, va),
    }
    Ok(0)
}

// ---- mmuext_op ---------------------------------------------------------------

/// `mmuext_op` (§12.4) of `count` operations at `ops`, `count` already
/// checked against `MEM_MMUEXT_OP_MAX`.
pub fn mmuext_op<M: PhysMemory>(
    dom: &mut Domain, vcpu: usize,
    machine: &mut MachineMemory,
    mem: &mut M,
    ops: u64,
    count: usize,
    done: u64,
) -> Result<u64, Error> {
    const SIZE: usize = size_of::<MmuextOp>();
    probe_done(dom.space(vcpu), mem, done)?;
    let (completed, result) = for_each_record::<M, SIZE>(dom, vcpu, mem, ops, count, |dom, mem, op| {
        let op = MmuextOp {
            cmd: u32_at(op, offset_of!(MmuextOp, cmd)),
            reserved0: u32_at(op, offset_of!(MmuextOp, reserved0)),
            arg1: u64_at(op, offset_of!(MmuextOp, arg1)),
            arg2: u64_at(op, offset_of!(MmuextOp, arg2)),
        };
        apply_mmuext(dom, vcpu, machine, mem, op)
    });
    report_done(dom, vcpu, mem, done, completed)?;
    result
}

fn apply_mmuext<M: PhysMemory>(dom: &mut Domain, vcpu: usize, machine: &mut MachineMemory, mem: &mut M, op: MmuextOp) -> Result<(), Error> {
    use MmuextCmd::*;
    let cmd = MmuextCmd::from_value(op.cmd).ok_or(Error::Invalid)?;
    // Which arguments the command reads; any other must be zero.
    let (uses_arg1, uses_arg2) = match cmd {
        TlbFlushLocal | TlbFlushAll => (false, false),
        TlbFlushMulti => (false, true),
        InvlpgMulti => (true, true),
        _ => (true, false),
    };
    if op.reserved0 != 0 || (!uses_arg1 && op.arg1 != 0) || (!uses_arg2 && op.arg2 != 0) {
        return Err(Error::Invalid);
    }
    let frames = &mut machine.frames;
    match cmd {
        PinL1 | PinL2 | PinL3 | PinL4 => {
            let level = op.cmd - PinL1 as u32 + 1;
            frames.pin(dom.id, Mfn(op.arg1), level, mem)
        }
        Unpin => frames.unpin(dom.id, Mfn(op.arg1), mem),
        NewBaseptr => {
            let new = Mfn(op.arg1);
            frames.acquire_base(dom.id, new)?;
            let old = dom.vcpus[vcpu].replace_kernel_base(new);
            frames.release_base(old, mem);
            // The hypervisor loads the new base before the guest runs; with
            // PCIDs the load keeps the old space's translations, so they
            // are flushed.
            frames.flush_all(1 << vcpu);
            Ok(())
        }
        NewUserBaseptr => {
            let new = match op.arg1 {
                0 => None,
                mfn => {
                    frames.acquire_base(dom.id, Mfn(mfn))?;
                    Some(Mfn(mfn))
                }
            };
            if let Some(old) = dom.vcpus[vcpu].replace_user_base(new) {
                frames.release_base(old, mem);
            }
            Ok(())
        }
        TlbFlushLocal => {
            flush_all_on(frames, 1 << vcpu);
            Ok(())
        }
        TlbFlushAll => {
            flush_all_on(frames, all_vcpus(dom));
            Ok(())
        }
        TlbFlushMulti => {
            flush_all_on(frames, check_vcpu_mask(dom, op.arg2)?);
            Ok(())
        }
        InvlpgLocal | InvlpgAll | InvlpgMulti => {
            if !is_canonical(op.arg1) {
                return Err(Error::Invalid);
            }
            let vcpus = match cmd {
                InvlpgLocal => 1 << vcpu,
                InvlpgAll => all_vcpus(dom),
                _ => check_vcpu_mask(dom, op.arg2)?,
            };
            flush_page_on(frames, vcpus, op.arg1);
            Ok(())
        }
    }
}

// ---- memory_map ------------------------------------------------------------

/// `memory_map` (§12.5): one RAM range covering everything the domain owns
/// or may populate, `0 .. max_pages`.
pub fn memory_map<M: PhysMemory>(dom: &Domain, vcpu: usize, mem: &mut M, buf: u64, max: u64) -> Result<u64, Error> {
    const ENTRIES: u64 = 1;
    if max < ENTRIES {
        return Err(Error::TooBig);
    }
    let mut entry = [0u8; size_of::<MemoryMapEntry>()];
    let mut put = |offset: usize, bytes: &[u8]| entry[offset..offset + bytes.len()].copy_from_slice(bytes);
    put(offset_of!(MemoryMapEntry, addr), &0u64.to_le_bytes());
    put(offset_of!(MemoryMapEntry, len), &(dom.max_pages.max(dom.nr_pages) * PAGE).to_le_bytes());
    put(offset_of!(MemoryMapEntry, kind), &(MemoryKind::Ram as u32).to_le_bytes());
    dom.space(vcpu).copy_to(mem, buf, &entry)?;
    Ok(ENTRIES)
}

// ---- reservations ------------------------------------------------------------

/// Which way a `Reservation` moves frames.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Increase,
    Decrease,
}

fn parse_reservation(bytes: &[u8]) -> Reservation {
    Reservation {
        extents: u64_at(bytes, offset_of!(Reservation, extents)),
        nr_extents: u32_at(bytes, offset_of!(Reservation, nr_extents)),
        extent_order: u32_at(bytes, offset_of!(Reservation, extent_order)),
        address_bits: u32_at(bytes, offset_of!(Reservation, address_bits)),
        domid: u32_at(bytes, offset_of!(Reservation, domid)),
        reserved0: u64_at(bytes, offset_of!(Reservation, reserved0)),
    }
}

/// Whether `id` names the caller: `DOMID_SELF` or its own id. Acting on
/// another domain needs the privileged domain (P1), which does not exist
/// until domain control does, so every other id is `NotPermitted`.
pub fn check_self(dom: &Domain, id: u64) -> Result<(), Error> {
    let id = u32::try_from(id).map_err(|_| Error::Invalid)?;
    if id == domid::SELF || id == dom.id.0 {
        Ok(())
    } else {
        Err(Error::NotPermitted)
    }
}

/// Checks a `Reservation` for the calls of §12.6; `max_order` is the
/// largest extent order allowed for it.
fn check_reservation(dom: &Domain, r: &Reservation, direction: Direction, max_order: u32) -> Result<(), Error> {
    if r.reserved0 != 0 || (direction == Direction::Decrease && r.address_bits != 0) {
        return Err(Error::Invalid);
    }
    check_self(dom, u64::from(r.domid))?;
    if u64::from(r.nr_extents) > RESERVATION_MAX {
        return Err(Error::TooBig);
    }
    if r.extent_order > max_order {
        return Err(Error::Invalid);
    }
    Ok(())
}

/// Copies in the u64 array of a reservation; for an increase also checks
/// it can be written back, so the call cannot fail after taking frames.
fn read_extents<'a>(
    space: AddressSpace,
    mem: &impl PhysMemory,
    r: &Reservation,
    direction: Direction,
    buf: &'a mut [u64; EXTENTS_MAX],
) -> Result<&'a mut [u64], Error> {
    let n = r.nr_extents as usize;
    let mut bytes = [0u8; EXTENTS_MAX * 8];
    space.copy_from(mem, r.extents, &mut bytes[..n * 8])?;
    if direction == Direction::Increase {
        space.probe(mem, r.extents, n as u64 * 8, Access::Write)?;
    }
    for (i, slot) in buf[..n].iter_mut().enumerate() {
        *slot = u64_at(&bytes, i * 8);
    }
    Ok(&mut buf[..n])
}

fn write_extents(space: AddressSpace, mem: &mut impl PhysMemory, at: u64, extents: &[u64]) -> Result<(), Error> {
    let mut bytes = [0u8; EXTENTS_MAX * 8];
    for (i, e) in extents.iter().enumerate() {
        bytes[i * 8..i * 8 + 8].copy_from_slice(&e.to_le_bytes());
    }
    space.copy_to(mem, at, &bytes[..extents.len() * 8])
}

fn read_struct<const N: usize>(space: AddressSpace, mem: &impl PhysMemory, at: u64) -> Result<[u8; N], Error> {
    let mut bytes = [0u8; N];
    space.copy_from(mem, at, &mut bytes)?;
    Ok(bytes)
}

/// The frame below which an extent must end for `address_bits` (0: any).
fn frame_limit(address_bits: u32) -> Mfn {
    match address_bits {
        0 => Mfn(u64::MAX),
        bits => Mfn(1u64.checked_shl(bits).map_or(u64::MAX, |end| end >> 12)),
    }
}

/// Gives the extent of `1 << order` frames at `first` to `dom`, zeroed,
/// with m2p entries `pfn ..`.
fn take_extent(dom: DomainId, machine: &mut MachineMemory, mem: &mut impl PhysMemory, first: Mfn, order: u32, pfn: u64) {
    for k in 0..1u64 << order {
        let mfn = Mfn(first.0 + k);
        machine.frames.assign(mfn, dom);
        // The frame may hold a previous owner's data.
        mem.frame_mut(mfn).fill(0);
        machine.m2p.set(mem, mfn, pfn.wrapping_add(k));
    }
}

/// Takes `mfn` back from `dom` (M9) into the allocator. The frame may be
/// handed out again only by a later call or build, after the flush the
/// frame table asked for if a translation of it may survive.
fn give_back(dom: DomainId, machine: &mut MachineMemory, mem: &mut impl PhysMemory, mfn: Mfn) -> Result<(), Error> {
    machine.frames.give_back(dom, mfn)?;
    machine.m2p.set(mem, mfn, INVALID_FRAME);
    machine.allocator.free(mfn).expect("a domain's frame came from the allocator");
    Ok(())
}

/// `reservation_increase` (§12.6) with the `Reservation` at `at`.
pub fn reservation_increase<M: PhysMemory>(dom: &mut Domain, vcpu: usize, machine: &mut MachineMemory, mem: &mut M, at: u64) -> Result<u64, Error> {
    let space = dom.space(vcpu);
    let r = parse_reservation(&read_struct::<{ size_of::<Reservation>() }>(space, mem, at)?);
    // Without SUPERPAGE_2M extents are single frames.
    check_reservation(dom, &r, Direction::Increase, 0)?;
    let mut buf = [0u64; EXTENTS_MAX];
    let extents = read_extents(space, mem, &r, Direction::Increase, &mut buf)?;
    let limit = frame_limit(r.address_bits);
    let mut done = 0;
    for pfn_then_mfn in extents.iter_mut() {
        if dom.nr_pages >= dom.max_pages {
            break;
        }
        let Some(mfn) = machine.allocator.alloc_contiguous(1, limit) else { break };
        take_extent(dom.id, machine, mem, mfn, 0, *pfn_then_mfn);
        *pfn_then_mfn = mfn.0;
        dom.nr_pages += 1;
        done += 1;
    }
    write_extents(space, mem, r.extents, &extents[..done])?;
    if done == 0 && !extents.is_empty() {
        return Err(Error::NoMemory);
    }
    Ok(done as u64)
}

/// `reservation_decrease` (§12.6) with the `Reservation` at `at`.
pub fn reservation_decrease<M: PhysMemory>(dom: &mut Domain, vcpu: usize, machine: &mut MachineMemory, mem: &mut M, at: u64) -> Result<u64, Error> {
    let space = dom.space(vcpu);
    let r = parse_reservation(&read_struct::<{ size_of::<Reservation>() }>(space, mem, at)?);
    check_reservation(dom, &r, Direction::Decrease, 0)?;
    let mut buf = [0u64; EXTENTS_MAX];
    let extents = read_extents(space, mem, &r, Direction::Decrease, &mut buf)?;
    let mut done = 0;
    for &mfn in extents.iter() {
        if let Err(e) = give_back(dom.id, machine, mem, Mfn(mfn)) {
            if done == 0 {
                return Err(e);
            }
            break;
        }
        dom.nr_pages -= 1;
        done += 1;
    }
    Ok(done)
}

/// `reservation_exchange` (§12.6) with the `ReservationExchange` at `at`:
/// all or nothing. `nr_exchanged` reads the input count on success and 0
/// on failure (once the structure is readable and that field writable).
pub fn reservation_exchange<M: PhysMemory>(dom: &mut Domain, vcpu: usize, machine: &mut MachineMemory, mem: &mut M, at: u64) -> Result<u64, Error> {
    let space = dom.space(vcpu);
    let bytes = read_struct::<{ size_of::<ReservationExchange>() }>(space, mem, at)?;
    let nr_exchanged_at = at + offset_of!(ReservationExchange, nr_exchanged) as u64;
    space.probe(mem, nr_exchanged_at, 8, Access::Write)?;
    let input = parse_reservation(&bytes[offset_of!(ReservationExchange, input)..]);
    let output = parse_reservation(&bytes[offset_of!(ReservationExchange, output)..]);
    let exchanged = match exchange(dom, vcpu, machine, mem, &input, &output) {
        Ok(()) => u64::from(input.nr_extents),
        Err(e) => {
            space.copy_to(mem, nr_exchanged_at, &0u64.to_le_bytes())?;
            return Err(e);
        }
    };
    space.copy_to(mem, nr_exchanged_at, &exchanged.to_le_bytes())?;
    Ok(0)
}

fn exchange<M: PhysMemory>(dom: &mut Domain, vcpu: usize, machine: &mut MachineMemory, mem: &mut M, input: &Reservation, output: &Reservation) -> Result<(), Error> {
    let space = dom.space(vcpu);
    check_reservation(dom, input, Direction::Decrease, 0)?;
    check_reservation(dom, output, Direction::Increase, ORDER_MAX)?;
    let given = u64::from(input.nr_extents) << input.extent_order;
    if given != u64::from(output.nr_extents) << output.extent_order {
        return Err(Error::Invalid);
    }
    let (mut in_buf, mut out_buf) = ([0u64; EXTENTS_MAX], [0u64; EXTENTS_MAX]);
    let inputs = read_extents(space, mem, input, Direction::Decrease, &mut in_buf)?;
    let outputs = read_extents(space, mem, output, Direction::Increase, &mut out_buf)?;
    // Every input must be givable (M9), and named once.
    for (i, &mfn) in inputs.iter().enumerate() {
        machine.frames.check_give_back(dom.id, Mfn(mfn))?;
        if inputs[..i].contains(&mfn) {
            return Err(Error::Invalid);
        }
    }
    // Take the outputs before giving anything back, so failure is clean.
    let size = 1u64 << output.extent_order;
    let limit = frame_limit(output.address_bits);
    let mut firsts = [Mfn(0); EXTENTS_MAX];
    for i in 0..outputs.len() {
        match machine.allocator.alloc_contiguous(size, limit) {
            Some(first) => firsts[i] = first,
            None => {
                for first in &firsts[..i] {
                    for k in 0..size {
                        machine.allocator.free(Mfn(first.0 + k)).expect("taken just above");
                    }
                }
                return Err(Error::NoMemory);
            }
        }
    }
    for &mfn in inputs.iter() {
        give_back(dom.id, machine, mem, Mfn(mfn)).expect("checked above");
    }
    for (pfn_then_mfn, first) in outputs.iter_mut().zip(firsts) {
        take_extent(dom.id, machine, mem, first, output.extent_order, *pfn_then_mfn);
        *pfn_then_mfn = first.0;
    }
    // Probed writable by read_extents: cannot fail.
    write_extents(space, mem, output.extents, outputs)
}

/// `reservation_query` (§12.6) for the caller, written to `out`.
pub fn reservation_query<M: PhysMemory>(dom: &Domain, vcpu: usize, machine: &MachineMemory, mem: &mut M, out: u64) -> Result<u64, Error> {
    let mut info = [0u8; size_of::<ReservationInfo>()];
    let mut put = |offset: usize, v: u64| info[offset..offset + 8].copy_from_slice(&v.to_le_bytes());
    put(offset_of!(ReservationInfo, current_pages), dom.nr_pages);
    put(offset_of!(ReservationInfo, max_pages), dom.max_pages);
    put(offset_of!(ReservationInfo, free_pages), machine.allocator.free_count());
    dom.space(vcpu).copy_to(mem, out, &info)?;
    Ok(0)
}

/// Checks a virtual address a call acts on: canonical and the guest's.
pub fn check_guest_va(va: u64) -> Result<u64, Error> {
    if range_is_guest(va, 1) {
        Ok(va)
    } else {
        Err(Error::Invalid)
    }
}
