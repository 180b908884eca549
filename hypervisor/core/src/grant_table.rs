//! Grant tables (SPEC §17): how a domain lets another map or copy one of
//! its frames, and everything the hypervisor keeps to make that safe.
//!
//! Per domain there are three things:
//!
//! - its *table*: the frames it registered with `grant_set_table`, which it
//!   writes directly (256 [`GrantEntry`](hypercall_abi::grant::GrantEntry)
//!   per frame);
//! - its *active* grants: the references others (or the hypervisor) use now,
//!   each with the frame latched at first use and counts of uses and of
//!   writing uses. While a grant is active the hypervisor holds `IN_USE_READ`
//!   (and while written `IN_USE_WRITE`) in the shared entry, so a
//!   well-behaved granter cannot revoke it (G3);
//! - its *mappings*: the grant mappings it holds of others' frames, by
//!   handle (the maptrack).
//!
//! Every use of a grant is a [`Pin`]: the active entry's counts, the
//! `IN_USE` bits, and a grant use of the frame in the frame table (a
//! reference, plus a `Writable` use when written), so the frame is neither
//! reused nor retyped while anyone may reach it. A mapping holds one pin for
//! its life; a copy holds two for the duration of the copy; the hypervisor's
//! backends hold pins on the rings and data they serve.
//!
//! A granter that clears `PERMIT` while its grant is used revokes nothing:
//! uses in place go on until they are dropped, new ones are refused (G3). A
//! granter that dies leaves its used frames *orphaned*: they stay as they
//! are, owned by nobody, until the last use goes, and are freed then. A
//! grantee that dies drops all its mappings first.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::mem::{offset_of, size_of};

use hypercall_abi::domid::domid;
use hypercall_abi::grant::{
    grant_consts, grant_flags, grant_op_flags, permits, GrantCopyOp, GrantCopySeg, GrantEntry, GrantMapOp,
    GrantTableInfo, GrantUnmapOp,
};
use hypercall_abi::layout::{u32_of, usize_of, Wire};
use hypercall_abi::Error;

use crate::addr::{range_is_guest, Mfn, PAGE_SIZE};
use crate::domain::{Domain, DomainId};
use crate::frame_table::{FrameTable, PageType};
use crate::guest_memory::Access;
use crate::machine::MachineMemory;
use crate::mmu::l1_entry_of;
use crate::phys::PhysMemory;

/// The most grant mappings one domain holds at once; `grant_map` answers
/// `NoSpace` beyond.
pub const MAPTRACK_MAX: usize = 1024;

const ENTRIES_PER_FRAME: u32 = u32_of(grant_consts::ENTRIES_PER_FRAME);
const TABLE_FRAMES_MAX: usize = usize_of(grant_consts::TABLE_FRAMES_MAX);
const OPS_MAX: usize = usize_of(grant_consts::OPS_MAX);
const ENTRY_SIZE: usize = size_of::<GrantEntry>();
const FLAGS_AT: usize = offset_of!(GrantEntry, flags);
const GRANTEE_AT: usize = offset_of!(GrantEntry, grantee);
const FRAME_AT: usize = offset_of!(GrantEntry, frame);

/// How often the hypervisor retries setting `IN_USE` in an entry the granter
/// keeps changing under it before it answers `Again`.
const CAS_RETRIES: usize = 8;

/// A grant of this domain in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Active {
    frame: Mfn,
    grantee: u32,
    /// Uses, writing or not.
    pins: u32,
    /// Of those, writing uses.
    writers: u32,
}

/// One use of a grant, as [`GrantTable::pin`] took it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pin {
    pub granter: DomainId,
    pub gref: u32,
    pub frame: Mfn,
    pub writable: bool,
}

/// A grant mapping this domain holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub pin: Pin,
    pub host_addr: u64,
    /// Where the entry was installed.
    l1: Mfn,
    index: usize,
}

/// One domain's grant state (see the module documentation).
#[derive(Debug, Default)]
pub struct GrantTable {
    frames: Vec<Mfn>,
    active: BTreeMap<u32, Active>,
    maps: Vec<Option<Mapping>>,
}

impl GrantTable {
    pub fn new() -> GrantTable {
        GrantTable::default()
    }

    /// The registered table frames, in order.
    pub fn frames(&self) -> &[Mfn] {
        &self.frames
    }

    /// The mappings this domain holds.
    #[cfg(test)]
    pub fn mappings(&self) -> impl Iterator<Item = &Mapping> {
        self.maps.iter().flatten()
    }

    /// Uses others hold on this domain's grants now.
    pub fn nr_active(&self) -> u32 {
        self.active.values().map(|a| a.pins).sum()
    }

    /// Where entry `gref` lies: its frame and byte offset. `NotFound` for
    /// reference 0 or one beyond the table (or no table).
    fn locate(&self, gref: u32) -> Result<(Mfn, usize), Error> {
        if u64::from(gref) == grant_consts::REF_INVALID {
            return Err(Error::NotFound);
        }
        let frame = self.frames.get((gref / ENTRIES_PER_FRAME) as usize).ok_or(Error::NotFound)?;
        Ok((*frame, (gref % ENTRIES_PER_FRAME) as usize * ENTRY_SIZE))
    }

    /// Takes one use of grant `gref` of this domain (`me`) for `grantee`,
    /// writing if `write`: checks G1 in the shared entry, sets the `IN_USE`
    /// bits the use needs, and takes the frame's grant use (G2, M2).
    /// Errors: `NotFound` (no such reference), `NotPermitted` (G1 or G2
    /// fails), `Busy` (a writing use of a frame that is a page table or
    /// another frame only its owner may write), `Again` (the granter kept
    /// changing the entry).
    pub fn pin<M: PhysMemory>(&mut self, me: DomainId, gref: u32, grantee: u32, write: bool, frames: &mut FrameTable, mem: &mut M) -> Result<Pin, Error> {
        let (table, at) = self.locate(gref)?;
        let active = self.active.get(&gref).copied();
        if active.is_some_and(|a| a.grantee != grantee) {
            return Err(Error::NotPermitted);
        }
        let want = grant_flags::IN_USE_READ | if write { grant_flags::IN_USE_WRITE } else { 0 };
        let mut attempt = 0;
        let (frame, set) = loop {
            // Flags first, then the fields they vouch for (the granter
            // writes them before setting PERMIT).
            let flags = mem.read_u16(table, at + FLAGS_AT);
            let named = u32::from_le_bytes(mem.frame(table)[at + GRANTEE_AT..at + GRANTEE_AT + 4].try_into().expect("4 bytes"));
            let frame = active.map_or_else(|| Mfn(mem.read_u64(table, (at + FRAME_AT) / 8)), |a| a.frame);
            if !permits(flags, named, grantee, write) {
                return Err(Error::NotPermitted);
            }
            if flags & want == want {
                break (frame, 0);
            }
            if mem.compare_exchange_u16(table, at + FLAGS_AT, flags, flags | want).is_ok() {
                break (frame, want & !flags);
            }
            attempt += 1;
            if attempt == CAS_RETRIES {
                return Err(Error::Again);
            }
        };
        if let Err(e) = frames.grant_pin(me, frame, write, mem) {
            // Only the bits this use set, and only if no other use needs them.
            let a = active.unwrap_or(Active { frame, grantee, pins: 0, writers: 0 });
            let mut undo = 0;
            if a.pins == 0 {
                undo |= set & grant_flags::IN_USE_READ;
            }
            if a.writers == 0 {
                undo |= set & grant_flags::IN_USE_WRITE;
            }
            mem.fetch_and_u16(table, at + FLAGS_AT, !undo);
            return Err(e);
        }
        let a = self.active.entry(gref).or_insert(Active { frame, grantee, pins: 0, writers: 0 });
        a.pins += 1;
        a.writers += u32::from(write);
        Ok(Pin { granter: me, gref, frame, writable: write })
    }

    /// Drops the active counts of a use of this domain's grant, clearing
    /// the `IN_USE` bits no use needs any more.
    fn unpin_active<M: PhysMemory>(&mut self, pin: &Pin, mem: &mut M) {
        let a = self.active.get_mut(&pin.gref).expect("a pinned grant is active");
        a.pins -= 1;
        a.writers -= u32::from(pin.writable);
        let mut clear = 0;
        if a.writers == 0 {
            clear |= grant_flags::IN_USE_WRITE;
        }
        if a.pins == 0 {
            clear |= grant_flags::IN_USE_READ;
            self.active.remove(&pin.gref);
        }
        let (table, at) = self.locate(pin.gref).expect("an active grant is in the table");
        mem.fetch_and_u16(table, at + FLAGS_AT, !clear);
    }

    fn free_handle(&self) -> Option<usize> {
        self.maps.iter().position(Option::is_none).or((self.maps.len() < MAPTRACK_MAX).then_some(self.maps.len()))
    }

    fn record(&mut self, handle: usize, m: Mapping) {
        if handle == self.maps.len() {
            self.maps.push(Some(m));
        } else {
            self.maps[handle] = Some(m);
        }
    }
}

/// Drops a use taken by [`GrantTable::pin`]: the granter's counts and bits
/// (if the granter still exists) and the frame's grant use; an orphaned
/// frame whose last use this was goes back to the allocator.
pub fn unpin<M: PhysMemory>(domains: &mut BTreeMap<u32, Domain>, pin: &Pin, machine: &mut MachineMemory, mem: &mut M) {
    if let Some(g) = domains.get_mut(&pin.granter.0) {
        g.grants.unpin_active(pin, mem);
    }
    if machine.frames.grant_unpin(pin.frame, pin.writable, mem) {
        machine.allocator.free(pin.frame).expect("an orphaned frame came from the allocator");
    }
}

/// Takes a use of grant `gref` of domain `granter` for `grantee`.
/// `NotFound` for a domain that does not exist.
pub fn pin<M: PhysMemory>(
    domains: &mut BTreeMap<u32, Domain>,
    granter: u32,
    gref: u32,
    grantee: u32,
    write: bool,
    machine: &mut MachineMemory,
    mem: &mut M,
) -> Result<Pin, Error> {
    let g = domains.get_mut(&granter).ok_or(Error::NotFound)?;
    g.grants.pin(g.id, gref, grantee, write, &mut machine.frames, mem)
}

/// The granting domain an op names: `DOMID_SELF` is the caller, which may
/// not use its own grants (it owns the frames). Errors: `Invalid` for the
/// caller itself, `NotFound` for an id no domain can have.
fn granter_arg(domid_arg: u32, caller: u32) -> Result<u32, Error> {
    let id = if domid_arg == domid::SELF { caller } else { domid_arg };
    if id == caller {
        return Err(Error::Invalid);
    }
    if id > domid::MAX {
        return Err(Error::NotFound);
    }
    Ok(id)
}

// ---- the calls ----------------------------------------------------------------

/// `grant_set_table` (§17): registers `nr` frames of the caller, listed at
/// `list`, as its grant table; a new list extends the old one.
pub fn set_table<M: PhysMemory>(dom: &mut Domain, vcpu: usize, machine: &mut MachineMemory, mem: &mut M, list: u64, nr: u64) -> Result<u64, Error> {
    let nr = usize::try_from(nr).ok().filter(|&n| n <= TABLE_FRAMES_MAX).ok_or(Error::TooBig)?;
    let mut bytes = [0u8; 8 * TABLE_FRAMES_MAX];
    dom.space(vcpu).copy_from(mem, list, &mut bytes[..8 * nr])?;
    let new: Vec<Mfn> = bytes[..8 * nr].chunks_exact(8).map(|c| Mfn(u64::decode(c))).collect();
    let old = &dom.grants.frames;
    if new.len() < old.len() || new[..old.len()] != old[..] {
        return Err(Error::Invalid);
    }
    for (i, &mfn) in new.iter().enumerate().skip(old.len()) {
        if new[..i].contains(&mfn) {
            return Err(Error::Invalid);
        }
        if machine.frames.owner(mfn) != Some(dom.id) {
            return Err(Error::NotFound);
        }
    }
    // Decoded; now take the registrations, undoing them if one is refused.
    for (i, &mfn) in new.iter().enumerate().skip(old.len()) {
        if let Err(e) = machine.frames.acquire_special(dom.id, mfn, PageType::GrantTable, mem) {
            for &done in &new[dom.grants.frames.len()..i] {
                machine.frames.release_special(done, mem);
            }
            return Err(e);
        }
    }
    dom.grants.frames = new;
    Ok(0)
}

/// `grant_query` (§17).
pub fn query<M: PhysMemory>(dom: &Domain, vcpu: usize, mem: &mut M, out: u64) -> Result<u64, Error> {
    let info = GrantTableInfo {
        nr_frames: u32::try_from(dom.grants.frames.len()).expect("at most 32 frames"),
        max_frames: u32_of(grant_consts::TABLE_FRAMES_MAX),
        nr_active: dom.grants.nr_active(),
        reserved0: 0,
    };
    let mut bytes = [0u8; size_of::<GrantTableInfo>()];
    info.encode(&mut bytes);
    dom.space(vcpu).copy_to(mem, out, &bytes)?;
    Ok(0)
}

/// Runs a batch of `count` ops of `SIZE` bytes at `ops` of the caller:
/// each is read, handled by `apply` (which returns the op with its outputs
/// filled) and written back. The op's own bytes are checked writable
/// before it is handled, so an op takes effect only if its results can be
/// reported; a batch that cannot read or write an op stops there with
/// `BadAddress`, earlier ops having taken effect.
fn batch<M: PhysMemory, T: Wire, const SIZE: usize>(
    domains: &mut BTreeMap<u32, Domain>,
    caller: u32,
    vcpu: usize,
    mem: &mut M,
    ops: u64,
    count: u64,
    mut apply: impl FnMut(&mut BTreeMap<u32, Domain>, &mut M, T) -> T,
) -> Result<u64, Error> {
    let count = usize::try_from(count).ok().filter(|&c| c <= OPS_MAX).ok_or(Error::TooBig)?;
    for i in 0..count {
        let at = ops.checked_add((i * SIZE) as u64).ok_or(Error::BadAddress)?;
        let space = domains[&caller].space(vcpu);
        space.probe(mem, at, SIZE as u64, Access::Write)?;
        let mut bytes = [0u8; SIZE];
        space.copy_from(mem, at, &mut bytes)?;
        let done = apply(domains, mem, T::decode(&bytes));
        done.encode(&mut bytes);
        // The op may have unmapped its own page: then it is done but its
        // results cannot be reported.
        domains[&caller].space(vcpu).copy_to(mem, at, &bytes)?;
    }
    Ok(count as u64)
}

/// A negated error as an op's `status`.
fn status(r: Result<(), Error>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => i32::try_from(-e.code()).expect("error numbers are small"),
    }
}

/// `grant_map` (§17) of `count` ops at `ops` by vCPU `vcpu` of `caller`.
pub fn map<M: PhysMemory>(
    domains: &mut BTreeMap<u32, Domain>,
    caller: u32,
    vcpu: usize,
    machine: &mut MachineMemory,
    mem: &mut M,
    ops: u64,
    count: u64,
) -> Result<u64, Error> {
    batch::<M, GrantMapOp, { size_of::<GrantMapOp>() }>(domains, caller, vcpu, mem, ops, count, |domains, mem, mut op| {
        let r = map_one(domains, caller, vcpu, machine, mem, &op);
        op.status = status(r.map(|(handle, frame)| {
            op.handle = handle;
            op.frame = frame.0;
        }));
        op
    })
}

fn map_one<M: PhysMemory>(
    domains: &mut BTreeMap<u32, Domain>,
    caller: u32,
    vcpu: usize,
    machine: &mut MachineMemory,
    mem: &mut M,
    op: &GrantMapOp,
) -> Result<(u32, Mfn), Error> {
    if op.flags & !grant_op_flags::MAP_READONLY != 0 || op.reserved0 != 0 {
        return Err(Error::Invalid);
    }
    let va = op.host_addr;
    if !va.is_multiple_of(PAGE_SIZE as u64) || !range_is_guest(va, PAGE_SIZE as u64) {
        return Err(Error::Invalid);
    }
    let granter = granter_arg(op.domid, caller)?;
    let me = &domains[&caller];
    let (l1, index) = l1_entry_of(me.vcpus[vcpu].kernel_base(), va, mem).ok_or(Error::Invalid)?;
    if machine.frames.table_level(l1, me.id) != Some(1) {
        return Err(Error::Invalid);
    }
    if crate::pte::Pte(mem.read_u64(l1, index)).is_present() {
        return Err(Error::Busy);
    }
    let handle = me.grants.free_handle().ok_or(Error::NoSpace)?;
    let writable = op.flags & grant_op_flags::MAP_READONLY == 0;
    let pin = pin(domains, granter, op.gref, caller, writable, machine, mem)?;
    let me = domains.get_mut(&caller).expect("the caller exists");
    machine.frames.map_grant_entry(me.id, l1, index, pin.frame, writable, mem).expect("the entry was checked free in an L1 of the caller");
    me.grants.record(handle, Mapping { pin, host_addr: va, l1, index });
    Ok((u32::try_from(handle).expect("handles fit 32 bits"), pin.frame))
}

/// `grant_unmap` (§17).
pub fn unmap<M: PhysMemory>(
    domains: &mut BTreeMap<u32, Domain>,
    caller: u32,
    vcpu: usize,
    machine: &mut MachineMemory,
    mem: &mut M,
    ops: u64,
    count: u64,
) -> Result<u64, Error> {
    batch::<M, GrantUnmapOp, { size_of::<GrantUnmapOp>() }>(domains, caller, vcpu, mem, ops, count, |domains, mem, mut op| {
        op.status = status(unmap_one(domains, caller, machine, mem, op.host_addr, op.handle));
        op
    })
}

/// Removes mapping `handle` of `caller`, which must have been made at
/// `host_addr`. Errors: `NotFound` for a handle that names no mapping,
/// `Invalid` for another address.
fn unmap_one<M: PhysMemory>(domains: &mut BTreeMap<u32, Domain>, caller: u32, machine: &mut MachineMemory, mem: &mut M, host_addr: u64, handle: u32) -> Result<(), Error> {
    let me = domains.get_mut(&caller).expect("the caller exists");
    let slot = me.grants.maps.get_mut(handle as usize).ok_or(Error::NotFound)?;
    let m = slot.ok_or(Error::NotFound)?;
    if m.host_addr != host_addr {
        return Err(Error::Invalid);
    }
    *slot = None;
    machine.frames.unmap_grant_entry(me.id, m.l1, m.index, m.pin.frame, mem);
    unpin(domains, &m.pin, machine, mem);
    Ok(())
}

/// `grant_copy` (§17).
pub fn copy<M: PhysMemory>(
    domains: &mut BTreeMap<u32, Domain>,
    caller: u32,
    vcpu: usize,
    machine: &mut MachineMemory,
    mem: &mut M,
    ops: u64,
    count: u64,
) -> Result<u64, Error> {
    batch::<M, GrantCopyOp, { size_of::<GrantCopyOp>() }>(domains, caller, vcpu, mem, ops, count, |domains, mem, mut op| {
        op.status = status(copy_one(domains, caller, machine, mem, &op));
        op
    })
}

/// One side of a copy, checked and, for a grant, pinned.
enum Side {
    Local(Mfn),
    Granted(Pin),
}

impl Side {
    fn frame(&self) -> Mfn {
        match self {
            Side::Local(m) => *m,
            Side::Granted(p) => p.frame,
        }
    }
}

fn copy_side<M: PhysMemory>(
    domains: &mut BTreeMap<u32, Domain>,
    caller: u32,
    machine: &mut MachineMemory,
    mem: &mut M,
    seg: &GrantCopySeg,
    is_gref: bool,
    write: bool,
) -> Result<Side, Error> {
    if is_gref {
        let granter = granter_arg(seg.domid, caller)?;
        let gref = u32::try_from(seg.gref_or_frame).map_err(|_| Error::NotFound)?;
        return pin(domains, granter, gref, caller, write, machine, mem).map(Side::Granted);
    }
    if seg.domid != domid::SELF && seg.domid != caller {
        return Err(Error::Invalid);
    }
    let mfn = Mfn(seg.gref_or_frame);
    machine.frames.check_local_copy(DomainId(caller), mfn, write)?;
    Ok(Side::Local(mfn))
}

fn release_side<M: PhysMemory>(domains: &mut BTreeMap<u32, Domain>, machine: &mut MachineMemory, mem: &mut M, side: Side) {
    if let Side::Granted(p) = side {
        unpin(domains, &p, machine, mem);
    }
}

fn copy_one<M: PhysMemory>(domains: &mut BTreeMap<u32, Domain>, caller: u32, machine: &mut MachineMemory, mem: &mut M, op: &GrantCopyOp) -> Result<(), Error> {
    let defined = grant_op_flags::COPY_SRC_GREF | grant_op_flags::COPY_DST_GREF;
    let flags = u32::from(op.flags);
    if flags & !defined != 0 || op.src.reserved0 != 0 || op.dst.reserved0 != 0 {
        return Err(Error::Invalid);
    }
    let len = usize::from(op.len);
    let fits = |seg: &GrantCopySeg| usize::from(seg.offset) + len <= PAGE_SIZE;
    if !fits(&op.src) || !fits(&op.dst) {
        return Err(Error::Invalid);
    }
    let src = copy_side(domains, caller, machine, mem, &op.src, flags & grant_op_flags::COPY_SRC_GREF != 0, false)?;
    let dst = match copy_side(domains, caller, machine, mem, &op.dst, flags & grant_op_flags::COPY_DST_GREF != 0, true) {
        Ok(d) => d,
        Err(e) => {
            release_side(domains, machine, mem, src);
            return Err(e);
        }
    };
    mem.copy_between(src.frame(), usize::from(op.src.offset), dst.frame(), usize::from(op.dst.offset), len);
    release_side(domains, machine, mem, dst);
    release_side(domains, machine, mem, src);
    Ok(())
}

/// Drops every grant mapping domain `id` holds (it is ending): each entry
/// comes out of its table, each use goes back to its granter.
pub fn release_mappings<M: PhysMemory>(domains: &mut BTreeMap<u32, Domain>, id: u32, machine: &mut MachineMemory, mem: &mut M) {
    let Some(d) = domains.get_mut(&id) else { return };
    let maps: Vec<Mapping> = core::mem::take(&mut d.grants.maps).into_iter().flatten().collect();
    for m in maps {
        machine.frames.unmap_grant_entry(DomainId(id), m.l1, m.index, m.pin.frame, mem);
        unpin(domains, &m.pin, machine, mem);
    }
}

/// Every grant use held on frames, for audits: (frame, writable), from
/// every domain's mappings and `extra` pins (the hypervisor's).
#[cfg(test)]
pub fn all_uses<'a>(domains: impl Iterator<Item = &'a Domain>, extra: &[Pin]) -> Vec<(Mfn, bool)> {
    let mut v: Vec<(Mfn, bool)> = extra.iter().map(|p| (p.frame, p.writable)).collect();
    for d in domains {
        v.extend(d.grants.mappings().map(|m| (m.pin.frame, m.pin.writable)));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{TestDomain as T, World};
    use hypercall_abi::grant::grant_flags::{IN_USE_READ, IN_USE_WRITE, PERMIT, READONLY};

    /// Each domain's grant table lives in its frame 20, mapped writable at
    /// `T::TEXT + 20 pages`.
    const TABLE_PFN: u64 = 20;
    /// Unmapped addresses in every domain's first L1.
    const HOST: u64 = T::TEXT + 40 * 0x1000;
    const HOST2: u64 = T::TEXT + 41 * 0x1000;

    fn table_va(gref: u32) -> u64 {
        T::TEXT + TABLE_PFN * 0x1000 + u64::from(gref) * 16
    }

    fn setup(n: u32) -> World {
        let mut w = World::new(n);
        for d in 1..=n {
            w.map(d, TABLE_PFN, true);
            let list = w.mfn(d, TABLE_PFN).0.to_le_bytes();
            w.write(d, T::DATA, &list);
            let dom = w.domains.get_mut(&d).unwrap();
            assert_eq!(set_table(dom, 0, &mut w.machine, &mut w.mem, T::DATA, 1), Ok(0));
        }
        w
    }

    /// `d` grants its frame `pfn` to `grantee` as entry `gref`.
    fn grant(w: &mut World, d: u32, gref: u32, grantee: u32, pfn: u64, flags: u16) {
        let e = GrantEntry { flags, reserved0: 0, grantee, frame: w.mfn(d, pfn).0 };
        let mut b = [0u8; 16];
        e.encode(&mut b);
        w.write(d, table_va(gref), &b);
    }

    fn flags(w: &World, d: u32, gref: u32) -> u16 {
        u16::decode(&w.read(d, table_va(gref), 2))
    }

    fn map_op(w: &mut World, caller: u32, granter: u32, gref: u32, host_addr: u64, flags: u32) -> (Result<u64, Error>, GrantMapOp) {
        let op = GrantMapOp { host_addr, flags, gref, domid: granter, status: 1, handle: 0, reserved0: 0, frame: 0 };
        let mut b = [0u8; 40];
        op.encode(&mut b);
        w.write(caller, T::DATA + 0x100, &b);
        let r = map(&mut w.domains, caller, 0, &mut w.machine, &mut w.mem, T::DATA + 0x100, 1);
        (r, GrantMapOp::decode(&w.read(caller, T::DATA + 0x100, 40)))
    }

    fn unmap_op(w: &mut World, caller: u32, host_addr: u64, handle: u32) -> i32 {
        let op = GrantUnmapOp { host_addr, handle, status: 1 };
        let mut b = [0u8; 16];
        op.encode(&mut b);
        w.write(caller, T::DATA + 0x100, &b);
        assert_eq!(unmap(&mut w.domains, caller, 0, &mut w.machine, &mut w.mem, T::DATA + 0x100, 1), Ok(1));
        GrantUnmapOp::decode(&w.read(caller, T::DATA + 0x100, 16)).status
    }

    fn copy_op(w: &mut World, caller: u32, src: GrantCopySeg, dst: GrantCopySeg, len: u16, flags: u16) -> i32 {
        let op = GrantCopyOp { src, dst, len, flags, status: 1 };
        let mut b = [0u8; 40];
        op.encode(&mut b);
        w.write(caller, T::DATA + 0x100, &b);
        assert_eq!(copy(&mut w.domains, caller, 0, &mut w.machine, &mut w.mem, T::DATA + 0x100, 1), Ok(1));
        GrantCopyOp::decode(&w.read(caller, T::DATA + 0x100, 40)).status
    }

    fn st(e: Error) -> i32 {
        status(Err(e))
    }

    /// The copy flags as `GrantCopyOp::flags` holds them (a u16).
    const SG: u16 = grant_op_flags::COPY_SRC_GREF.to_le_bytes()[0] as u16;
    const DG: u16 = grant_op_flags::COPY_DST_GREF.to_le_bytes()[0] as u16;

    #[test]
    fn a_mapping_shares_the_frame_and_holds_it() {
        let mut w = setup(2);
        w.map(1, 21, true);
        w.write(1, T::TEXT + 21 * 0x1000, b"from d1");
        grant(&mut w, 1, 5, 2, 21, PERMIT);
        let frame = w.mfn(1, 21);
        let (r, op) = map_op(&mut w, 2, 1, 5, HOST, 0);
        assert_eq!((r, op.status, op.frame), (Ok(1), 0, frame.0));
        assert_eq!(flags(&w, 1, 5), PERMIT | IN_USE_READ | IN_USE_WRITE);
        // Both see one frame.
        assert_eq!(w.read(2, HOST, 7), b"from d1");
        w.write(2, HOST, b"from d2");
        assert_eq!(w.read(1, T::TEXT + 21 * 0x1000, 7), b"from d2");
        w.audit(&[]);
        // The granter cannot give the frame back or make it a page table;
        // the grantee cannot replace the entry behind the hypervisor's back.
        assert_eq!(w.machine.frames.check_give_back(w.dom(1).id, frame), Err(Error::Busy));
        w.map(1, 21, false);
        assert_eq!(w.machine.frames.pin(w.dom(1).id, frame, 1, &mut w.mem), Err(Error::Busy));
        let (l1, index) = l1_entry_of(w.dom(2).vcpus[0].kernel_base(), HOST, &w.mem).unwrap();
        assert_eq!(w.machine.frames.update_entry(w.dom(2).id, l1, index, 0, false, &mut w.mem), Err(Error::NotPermitted));
        // A second mapping of the same grant is a second use.
        let (_, op2) = map_op(&mut w, 2, 1, 5, HOST2, grant_op_flags::MAP_READONLY);
        assert_eq!(op2.status, 0);
        assert_ne!(op2.handle, op.handle);
        assert_eq!(w.dom(1).grants.nr_active(), 2);
        w.audit(&[]);
        assert_eq!(unmap_op(&mut w, 2, HOST, op.handle), 0);
        assert_eq!(flags(&w, 1, 5), PERMIT | IN_USE_READ, "the read-only mapping still uses it");
        assert!(w.machine.frames.take_flush().full, "an unmap flushes the grantee's TLB");
        assert_eq!(unmap_op(&mut w, 2, HOST2, op2.handle), 0);
        assert_eq!(flags(&w, 1, 5), PERMIT, "revocable again");
        assert!(!crate::pte::Pte(w.mem.read_u64(l1, index)).is_present());
        w.audit(&[]);
        assert_eq!(w.machine.frames.info(frame).unwrap().ref_count, 2, "the owner's and its read-only mapping's");
        // The same handle again, or the wrong address, is refused.
        assert_eq!(unmap_op(&mut w, 2, HOST, op.handle), st(Error::NotFound));
        let (_, op3) = map_op(&mut w, 2, 1, 5, HOST, 0);
        assert_eq!(unmap_op(&mut w, 2, HOST2, op3.handle), st(Error::Invalid));
        assert_eq!(unmap_op(&mut w, 2, HOST, op3.handle), 0);
    }

    #[test]
    fn read_only_grants_refuse_writers() {
        let mut w = setup(2);
        grant(&mut w, 1, 1, 2, 21, PERMIT | READONLY);
        assert_eq!(map_op(&mut w, 2, 1, 1, HOST, 0).1.status, st(Error::NotPermitted));
        let (_, op) = map_op(&mut w, 2, 1, 1, HOST, grant_op_flags::MAP_READONLY);
        assert_eq!(op.status, 0);
        assert_eq!(flags(&w, 1, 1), PERMIT | READONLY | IN_USE_READ);
        let mut b = [0u8; 4];
        assert_eq!(w.dom(2).space(0).copy_to(&mut w.mem, HOST, &b), Err(Error::BadAddress), "mapped read-only");
        assert_eq!(w.dom(2).space(0).copy_from(&w.mem, HOST, &mut b), Ok(()));
        // Copying into it is refused too.
        let mine = GrantCopySeg { gref_or_frame: w.mfn(2, 22).0, domid: domid::SELF, offset: 0, reserved0: 0 };
        let theirs = GrantCopySeg { gref_or_frame: 1, domid: 1, offset: 0, reserved0: 0 };
        assert_eq!(copy_op(&mut w, 2, mine, theirs, 8, DG), st(Error::NotPermitted));
        assert_eq!(copy_op(&mut w, 2, theirs, mine, 8, SG), 0);
        w.audit(&[]);
    }

    #[test]
    fn every_bad_map_is_refused_and_changes_nothing() {
        let mut w = setup(3);
        grant(&mut w, 1, 1, 2, 21, PERMIT);
        grant(&mut w, 1, 2, 2, TABLE_PFN, PERMIT);
        let pt = crate::mmu::l1_entry_of(w.dom(1).vcpus[0].kernel_base(), T::TEXT, &w.mem).unwrap().0;
        let e = GrantEntry { flags: PERMIT, reserved0: 0, grantee: 2, frame: pt.0 };
        let mut b = [0u8; 16];
        e.encode(&mut b);
        w.write(1, table_va(3), &b);
        let e = GrantEntry { flags: PERMIT, reserved0: 0, grantee: 2, frame: w.mfn(3, 21).0 };
        e.encode(&mut b);
        w.write(1, table_va(4), &b);
        let before = format!("{:?}", (0..2048).map(|m| w.machine.frames.info(Mfn(m)).copied()).collect::<Vec<_>>());
        for (caller, granter, gref, host, fl, want) in [
            (3, 1, 1, HOST, 0, Error::NotPermitted),            // not the grantee (G1)
            (2, 1, 0, HOST, 0, Error::NotFound),                // reference 0
            (2, 1, 256, HOST, 0, Error::NotFound),              // beyond the table
            (2, 9, 1, HOST, 0, Error::NotFound),                // no such domain
            (2, 0x7ff0, 1, HOST, 0, Error::Invalid),            // its own grants
            (2, 2, 1, HOST, 0, Error::Invalid),
            (2, 1, 1, HOST + 8, 0, Error::Invalid),             // unaligned
            (2, 1, 1, 0xffff_8000_0000_0000, 0, Error::Invalid), // the hypervisor's
            (2, 1, 1, T::TEXT + 600 * 0x1000, 0, Error::Invalid), // no L1 there
            (2, 1, 1, T::DATA, 0, Error::Busy),                 // present
            (2, 1, 1, HOST, 2, Error::Invalid),                 // undefined flag
            (2, 1, 2, HOST, grant_op_flags::MAP_READONLY, Error::Busy), // the granter's grant table
            (2, 1, 3, HOST, 0, Error::Busy),                    // a page table, writable
            (2, 1, 4, HOST, 0, Error::NotPermitted),            // a frame the granter does not own (G2)
            (2, 1, 7, HOST, 0, Error::NotPermitted),            // never granted
        ] {
            let (r, op) = map_op(&mut w, caller, granter, gref, host, fl);
            assert_eq!((r, op.status), (Ok(1), st(want)), "{caller} {granter} {gref} {host:#x} {fl}");
        }
        assert_eq!(flags(&w, 1, 1), PERMIT, "a refused op leaves the entry alone");
        let after = format!("{:?}", (0..2048).map(|m| w.machine.frames.info(Mfn(m)).copied()).collect::<Vec<_>>());
        assert_eq!(before, after);
        // A page table may be mapped read-only: it is only the granter's
        // choice to show it.
        assert_eq!(map_op(&mut w, 2, 1, 3, HOST, grant_op_flags::MAP_READONLY).1.status, 0);
        w.audit(&[]);
        // Batch limits and pointers.
        assert_eq!(map(&mut w.domains, 2, 0, &mut w.machine, &mut w.mem, T::DATA, 129), Err(Error::TooBig));
        assert_eq!(map(&mut w.domains, 2, 0, &mut w.machine, &mut w.mem, T::END, 1), Err(Error::BadAddress));
        assert_eq!(map(&mut w.domains, 2, 0, &mut w.machine, &mut w.mem, T::TEXT, 1), Err(Error::BadAddress), "text is read-only");
    }

    #[test]
    fn revoking_while_mapped_revokes_nothing_until_unmapped() {
        let mut w = setup(2);
        grant(&mut w, 1, 1, 2, 21, PERMIT);
        let (_, op) = map_op(&mut w, 2, 1, 1, HOST, 0);
        // A well-behaved granter's compare-and-swap fails while in use...
        let table = w.mfn(1, TABLE_PFN);
        assert_eq!(w.mem.compare_exchange_u16(table, 16, PERMIT, 0), Err(PERMIT | IN_USE_READ | IN_USE_WRITE));
        // ... and one that clears the flags anyway changes nothing for the
        // mapping, only for new uses.
        w.write(1, table_va(1), &[0, 0]);
        w.write(2, HOST, b"still mine");
        assert_eq!(w.read(2, HOST, 10), b"still mine");
        assert_eq!(map_op(&mut w, 2, 1, 1, HOST2, 0).1.status, st(Error::NotPermitted));
        assert_eq!(unmap_op(&mut w, 2, HOST, op.handle), 0);
        assert_eq!(flags(&w, 1, 1), 0);
        let f = *w.machine.frames.info(w.mfn(1, 21)).unwrap();
        assert_eq!((f.ref_count, f.type_count, f.grant_uses), (1, 0, 0), "the frame is the granter's alone");
        w.audit(&[]);
    }

    #[test]
    fn a_granter_that_dies_leaves_mapped_frames_until_unmapped() {
        let mut w = setup(2);
        w.map(1, 21, true);
        w.write(1, T::TEXT + 21 * 0x1000, b"last words");
        grant(&mut w, 1, 1, 2, 21, PERMIT);
        let frame = w.mfn(1, 21);
        let (_, op) = map_op(&mut w, 2, 1, 1, HOST, 0);
        let free = w.machine.allocator.free_count();
        release_mappings(&mut w.domains, 1, &mut w.machine, &mut w.mem);
        let d1 = w.domains.remove(&1).unwrap();
        let released = d1.teardown(&mut w.machine, &mut w.mem).unwrap();
        assert_eq!((released.freed, released.orphaned), (256, 1), "256 pages and the shared-info page, less the mapped one");
        assert_eq!(w.machine.allocator.free_count(), free + 256);
        assert_eq!(w.machine.frames.owner(frame), None);
        // The grantee still has the frame, contents and all.
        assert_eq!(w.read(2, HOST, 10), b"last words");
        w.audit(&[]);
        // Its unmap frees it; a new map of the dead domain's grant fails.
        assert_eq!(map_op(&mut w, 2, 1, 1, HOST2, 0).1.status, st(Error::NotFound));
        assert_eq!(unmap_op(&mut w, 2, HOST, op.handle), 0);
        assert_eq!(w.machine.allocator.free_count(), free + 257);
        let f = *w.machine.frames.info(frame).unwrap();
        assert_eq!((f.owner, f.ty, f.type_count, f.ref_count, f.grant_uses), (None, PageType::None, 0, 0, 0), "a free frame like any other");
        w.audit(&[]);
    }

    #[test]
    fn a_grantee_that_dies_gives_every_use_back() {
        let mut w = setup(3);
        grant(&mut w, 1, 1, 2, 21, PERMIT);
        grant(&mut w, 3, 1, 2, 21, PERMIT | READONLY);
        assert_eq!(map_op(&mut w, 2, 1, 1, HOST, 0).1.status, 0);
        assert_eq!(map_op(&mut w, 2, 3, 1, HOST2, grant_op_flags::MAP_READONLY).1.status, 0);
        let free = w.machine.allocator.free_count();
        release_mappings(&mut w.domains, 2, &mut w.machine, &mut w.mem);
        assert_eq!((flags(&w, 1, 1), flags(&w, 3, 1)), (PERMIT, PERMIT | READONLY), "revocable again");
        let d2 = w.domains.remove(&2).unwrap();
        assert_eq!(d2.teardown(&mut w.machine, &mut w.mem).unwrap().freed, 257);
        assert_eq!(w.machine.allocator.free_count(), free + 257);
        w.audit(&[]);
    }

    #[test]
    fn copies_check_both_sides_and_stay_inside_frames() {
        let mut w = setup(3);
        for (d, pfn, text) in [(1, 21, b"one"), (2, 22, b"two"), (3, 23, b"thr")] {
            w.map(d, pfn, true);
            w.write(d, T::TEXT + pfn * 0x1000 + 100, text);
        }
        grant(&mut w, 1, 1, 3, 21, PERMIT);
        grant(&mut w, 2, 1, 3, 22, PERMIT);
        let g = |d: u32| GrantCopySeg { gref_or_frame: 1, domid: d, offset: 100, reserved0: 0 };
        let local = |w: &World, pfn: u64, offset: u16| GrantCopySeg { gref_or_frame: w.mfn(3, pfn).0, domid: domid::SELF, offset, reserved0: 0 };
        let (sg, dg) = (SG, DG);
        // Grant to grant, between two other domains.
        assert_eq!(copy_op(&mut w, 3, g(1), g(2), 3, sg | dg), 0);
        assert_eq!(w.read(2, T::TEXT + 22 * 0x1000 + 100, 3), b"one");
        // Grant to a local frame and back.
        let l = local(&w, 23, 100);
        assert_eq!(copy_op(&mut w, 3, l, g(1), 3, dg), 0);
        assert_eq!(w.read(1, T::TEXT + 21 * 0x1000 + 100, 3), b"thr");
        let l = local(&w, 23, 4093);
        assert_eq!(copy_op(&mut w, 3, g(2), l, 3, sg), 0, "up to the frame's last byte");
        assert_eq!(w.read(3, T::TEXT + 23 * 0x1000 + 4093, 3), b"one");
        let before = (w.read(1, T::TEXT + 21 * 0x1000, 4096), flags(&w, 1, 1));
        let l1 = crate::mmu::l1_entry_of(w.dom(3).vcpus[0].kernel_base(), T::TEXT, &w.mem).unwrap().0;
        let other = GrantCopySeg { gref_or_frame: w.mfn(1, 30).0, domid: domid::SELF, offset: 0, reserved0: 0 };
        for (src, dst, len, fl, want) in [
            (g(1), local(&w, 23, 4094), 3, sg, Error::Invalid),        // crosses the frame's end
            (local(&w, 23, 4000), g(1), 200, dg, Error::Invalid),
            (other, g(1), 3, dg, Error::NotPermitted),                 // not the caller's frame (G4)
            (g(1), GrantCopySeg { gref_or_frame: l1.0, ..local(&w, 0, 0) }, 3, sg, Error::Busy), // its own page table
            (g(1), g(1), 3, sg | dg | 8, Error::Invalid),              // undefined flag
            (GrantCopySeg { domid: 3, ..g(1) }, local(&w, 23, 0), 3, sg, Error::Invalid), // its own grant
            (GrantCopySeg { gref_or_frame: 1 << 32, ..g(1) }, local(&w, 23, 0), 3, sg, Error::NotFound),
            (GrantCopySeg { reserved0: 1, ..g(1) }, local(&w, 23, 0), 3, sg, Error::Invalid),
            (GrantCopySeg { domid: 2, ..local(&w, 23, 0) }, g(1), 3, dg, Error::Invalid), // local side naming a domain
        ] {
            assert_eq!(copy_op(&mut w, 3, src, dst, len, fl), st(want), "{src:?} {dst:?}");
        }
        assert_eq!((w.read(1, T::TEXT + 21 * 0x1000, 4096), flags(&w, 1, 1)), before, "refused copies touch nothing");
        w.audit(&[]);
    }

    #[test]
    fn the_table_is_registered_once_and_only_extended() {
        let mut w = World::new(1);
        let (a, b, c) = (w.mfn(1, 20), w.mfn(1, 21), w.mfn(1, 22));
        w.map(1, 21, true);
        let set = |w: &mut World, list: &[Mfn]| {
            let bytes: Vec<u8> = list.iter().flat_map(|m| m.0.to_le_bytes()).collect();
            w.write(1, T::DATA, &bytes);
            let d = w.domains.get_mut(&1).unwrap();
            set_table(d, 0, &mut w.machine, &mut w.mem, T::DATA, list.len() as u64)
        };
        assert_eq!(set(&mut w, &[a, b]), Ok(0), "a frame mapped writable keeps its mapping");
        assert_eq!(w.machine.frames.info(b).unwrap().ty, PageType::GrantTable);
        w.write(1, T::TEXT + 21 * 0x1000, b"entries");
        assert_eq!(set(&mut w, &[b, a]), Err(Error::Invalid), "not an extension");
        assert_eq!(set(&mut w, &[a]), Err(Error::Invalid), "shorter");
        assert_eq!(set(&mut w, &[a, b, c, c]), Err(Error::Invalid), "twice");
        assert_eq!(set(&mut w, &[a, b, Mfn(3)]), Err(Error::NotFound), "not the domain's");
        let l1 = crate::mmu::l1_entry_of(w.dom(1).vcpus[0].kernel_base(), T::TEXT, &w.mem).unwrap().0;
        assert_eq!(set(&mut w, &[a, b, c, l1]), Err(Error::Busy), "a page table");
        assert_eq!(w.dom(1).grants.frames(), &[a, b]);
        assert_eq!(w.machine.frames.info(c).unwrap().ty, PageType::None, "a refused list takes nothing");
        assert_eq!(set(&mut w, &[a, b, c]), Ok(0));
        let d = w.domains.get_mut(&1).unwrap();
        assert_eq!(set_table(d, 0, &mut w.machine, &mut w.mem, T::DATA, 33), Err(Error::TooBig));
        // Reported, and given back only when the domain ends.
        let d = &w.domains[&1];
        assert_eq!(query(d, 0, &mut w.mem, T::DATA + 0x200), Ok(0));
        let info = GrantTableInfo::decode(&w.read(1, T::DATA + 0x200, 16));
        assert_eq!((info.nr_frames, info.max_frames, info.nr_active), (3, 32, 0));
        assert_eq!(w.machine.frames.check_give_back(d.id, a), Err(Error::Busy));
        w.audit(&[]);
        let d1 = w.domains.remove(&1).unwrap();
        assert_eq!(d1.teardown(&mut w.machine, &mut w.mem).unwrap().freed, 257);
    }

    #[test]
    fn the_hypervisor_pins_like_any_grantee() {
        let mut w = setup(1);
        grant(&mut w, 1, 1, domid::HYPERVISOR, 21, PERMIT);
        let p = pin(&mut w.domains, 1, 1, domid::HYPERVISOR, true, &mut w.machine, &mut w.mem).unwrap();
        assert_eq!(flags(&w, 1, 1), PERMIT | IN_USE_READ | IN_USE_WRITE);
        assert_eq!(pin(&mut w.domains, 1, 1, 2, false, &mut w.machine, &mut w.mem), Err(Error::NotPermitted));
        w.audit(&[p]);
        unpin(&mut w.domains, &p, &mut w.machine, &mut w.mem);
        assert_eq!(flags(&w, 1, 1), PERMIT);
        w.audit(&[]);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Grant { d: u32, gref: u32, grantee: u32, pfn: u64, readonly: bool },
        Revoke { d: u32, gref: u32, forced: bool },
        Map { caller: u32, granter: u32, gref: u32, slot: u64, readonly: bool },
        Unmap { caller: u32, slot: u64 },
        Copy { caller: u32, granter: u32, gref: u32, to_grant: bool },
        HvPin { granter: u32, gref: u32, write: bool },
        HvUnpin(usize),
        Retype { d: u32, pfn: u64 },
        Kill(u32),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        let d = 1u32..=3;
        let gref = 1u32..5;
        prop_oneof![
            4 => (d.clone(), gref.clone(), prop_oneof![1u32..=3, Just(domid::HYPERVISOR)], 21u64..25, any::<bool>())
                .prop_map(|(d, gref, grantee, pfn, readonly)| Op::Grant { d, gref, grantee, pfn, readonly }),
            2 => (d.clone(), gref.clone(), any::<bool>()).prop_map(|(d, gref, forced)| Op::Revoke { d, gref, forced }),
            5 => (d.clone(), d.clone(), gref.clone(), 0u64..4, any::<bool>())
                .prop_map(|(caller, granter, gref, slot, readonly)| Op::Map { caller, granter, gref, slot, readonly }),
            3 => (d.clone(), 0u64..4).prop_map(|(caller, slot)| Op::Unmap { caller, slot }),
            2 => (d.clone(), d.clone(), gref.clone(), any::<bool>()).prop_map(|(caller, granter, gref, to_grant)| Op::Copy { caller, granter, gref, to_grant }),
            2 => (d.clone(), gref.clone(), any::<bool>()).prop_map(|(granter, gref, write)| Op::HvPin { granter, gref, write }),
            1 => (0usize..4).prop_map(Op::HvUnpin),
            1 => (d.clone(), 21u64..25).prop_map(|(d, pfn)| Op::Retype { d, pfn }),
            1 => d.prop_map(Op::Kill),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 128, ..Default::default() })]

        /// Grants, revocations (polite and not), mappings, copies,
        /// hypervisor pins and domain deaths in any order keep every count
        /// of the frame table exact, never let a granted frame be given
        /// back or retyped while used, and in the end return every frame.
        #[test]
        fn every_frame_comes_back_whatever_the_order(ops in proptest::collection::vec(op(), 1..60)) {
            let mut w = setup(3);
            let free_at_start = w.machine.allocator.free_count();
            let mut hv_pins: Vec<Pin> = Vec::new();
            let mut handles: BTreeMap<(u32, u64), u32> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Grant { d, gref, grantee, pfn, readonly } if w.domains.contains_key(&d) => {
                        // Only an unused entry is rewritten, as a granter would.
                        if flags(&w, d, gref) & (IN_USE_READ | IN_USE_WRITE) == 0 {
                            grant(&mut w, d, gref, grantee, pfn, PERMIT | if readonly { READONLY } else { 0 });
                        }
                    }
                    Op::Revoke { d, gref, forced } if w.domains.contains_key(&d) => {
                        let table = w.mfn(d, TABLE_PFN);
                        let at = gref as usize * 16;
                        if forced {
                            w.write(d, table_va(gref), &[0, 0]);
                        } else {
                            let f = w.mem.read_u16(table, at);
                            let _ = w.mem.compare_exchange_u16(table, at, f & 0xff, 0);
                        }
                    }
                    Op::Map { caller, granter, gref, slot, readonly } if w.domains.contains_key(&caller) => {
                        if handles.contains_key(&(caller, slot)) {
                            continue;
                        }
                        let fl = if readonly { grant_op_flags::MAP_READONLY } else { 0 };
                        let (_, o) = map_op(&mut w, caller, granter, gref, HOST + slot * 0x1000, fl);
                        if o.status == 0 {
                            handles.insert((caller, slot), o.handle);
                        }
                    }
                    Op::Unmap { caller, slot } => {
                        if let Some(h) = handles.remove(&(caller, slot)) {
                            if w.domains.contains_key(&caller) {
                                proptest::prop_assert_eq!(unmap_op(&mut w, caller, HOST + slot * 0x1000, h), 0);
                            }
                        }
                    }
                    Op::Copy { caller, granter, gref, to_grant } if w.domains.contains_key(&caller) => {
                        let g = GrantCopySeg { gref_or_frame: u64::from(gref), domid: granter, offset: 8, reserved0: 0 };
                        let l = GrantCopySeg { gref_or_frame: w.mfn(caller, 30).0, domid: domid::SELF, offset: 0, reserved0: 0 };
                        let (src, dst, fl) = if to_grant { (l, g, DG) } else { (g, l, SG) };
                        copy_op(&mut w, caller, src, dst, 64, fl);
                    }
                    Op::HvPin { granter, gref, write } => {
                        if let Ok(p) = pin(&mut w.domains, granter, gref, domid::HYPERVISOR, write, &mut w.machine, &mut w.mem) {
                            hv_pins.push(p);
                        }
                    }
                    Op::HvUnpin(i) if i < hv_pins.len() => {
                        let p = hv_pins.remove(i);
                        unpin(&mut w.domains, &p, &mut w.machine, &mut w.mem);
                    }
                    Op::Retype { d, pfn } if w.domains.contains_key(&d) => {
                        let m = w.mfn(d, pfn);
                        let id = w.dom(d).id;
                        let used = w.machine.frames.info(m).unwrap().grant_uses > 0;
                        if used {
                            proptest::prop_assert_eq!(w.machine.frames.check_give_back(id, m), Err(Error::Busy));
                        }
                        if w.machine.frames.pin(id, m, 1, &mut w.mem).is_ok() {
                            let writers = hv_pins.iter().any(|p| p.frame == m && p.writable)
                                || w.domains.values().any(|x| x.grants.mappings().any(|mp| mp.pin.frame == m && mp.pin.writable));
                            proptest::prop_assert!(!writers, "a frame others may write became a page table");
                            w.machine.frames.unpin(id, m, &mut w.mem).unwrap();
                        }
                    }
                    Op::Kill(d) if w.domains.contains_key(&d) => {
                        release_mappings(&mut w.domains, d, &mut w.machine, &mut w.mem);
                        handles.retain(|k, _| k.0 != d);
                        let dom = w.domains.remove(&d).unwrap();
                        let r = dom.teardown(&mut w.machine, &mut w.mem);
                        proptest::prop_assert!(r.is_ok(), "teardown leaked: {:?}", r);
                    }
                    _ => {}
                }
                w.audit(&hv_pins);
                // Every mapping still reaches the frame its use holds.
                for (&(caller, slot), &h) in &handles {
                    let frame = w.dom(caller).grants.maps[h as usize].unwrap().pin.frame;
                    proptest::prop_assert_eq!(w.read(caller, HOST + slot * 0x1000, 64), w.mem.frame(frame)[..64].to_vec());
                }
            }
            for p in hv_pins.drain(..) {
                unpin(&mut w.domains, &p, &mut w.machine, &mut w.mem);
            }
            let ids: Vec<u32> = w.domains.keys().copied().collect();
            for d in ids {
                release_mappings(&mut w.domains, d, &mut w.machine, &mut w.mem);
                let dom = w.domains.remove(&d).unwrap();
                proptest::prop_assert!(dom.teardown(&mut w.machine, &mut w.mem).is_ok());
            }
            proptest::prop_assert_eq!(w.machine.allocator.free_count(), free_at_start + 3 * 257, "a frame was lost");
            proptest::prop_assert!((0..2048).all(|m| w.machine.frames.info(Mfn(m)).unwrap().grant_uses == 0));
        }
    }
}
