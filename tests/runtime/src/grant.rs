//! A guest's grant table (SPEC §17) and the grant calls, typed.
//!
//! [`Grants`] owns the frames of the table, mapped writable at their
//! [`Memory::va`] addresses, and hands out references from a bitmap.
//! Granting writes `grantee` and `frame` first and sets the flags last with
//! a release store; revoking is a compare-and-swap of the flags to 0 that
//! fails while the hypervisor holds `IN_USE` bits.

use core::sync::atomic::{AtomicU16, Ordering};

use hypercall_abi::call::{hypercall1, hypercall2};
use hypercall_abi::grant::{grant_consts, grant_flags, GrantCopyOp, GrantEntry, GrantMapOp, GrantTableInfo, GrantUnmapOp};
use hypercall_abi::{Error, Hypercall};

use crate::hypercall::result;
use crate::mmu::{poke, Memory, RW};

/// The most table frames a guest here keeps: 1024 references.
pub const FRAMES_MAX: usize = 4;
const PER_FRAME: usize = hypercall_abi::layout::usize_of(grant_consts::ENTRIES_PER_FRAME);
const REFS_MAX: usize = FRAMES_MAX * PER_FRAME;

/// `grant_set_table(frames)`.
pub fn set_table(frames: &[u64]) -> Result<u64, Error> {
    result(hypercall2(Hypercall::GrantSetTable.number(), frames.as_ptr() as u64, frames.len() as u64))
}

/// `grant_map(ops)`: the call's result; each op's `status` says how it went.
pub fn map(ops: &mut [GrantMapOp]) -> Result<u64, Error> {
    result(hypercall2(Hypercall::GrantMap.number(), ops.as_mut_ptr() as u64, ops.len() as u64))
}

pub fn unmap(ops: &mut [GrantUnmapOp]) -> Result<u64, Error> {
    result(hypercall2(Hypercall::GrantUnmap.number(), ops.as_mut_ptr() as u64, ops.len() as u64))
}

pub fn copy(ops: &mut [GrantCopyOp]) -> Result<u64, Error> {
    result(hypercall2(Hypercall::GrantCopy.number(), ops.as_mut_ptr() as u64, ops.len() as u64))
}

pub fn query() -> Result<GrantTableInfo, Error> {
    let mut info = GrantTableInfo::default();
    result(hypercall1(Hypercall::GrantQuery.number(), &mut info as *mut GrantTableInfo as u64))?;
    Ok(info)
}

/// An op's `status` as a result.
pub fn status(s: i32) -> Result<(), Error> {
    match s {
        0 => Ok(()),
        e => Err(Error::from_return(i64::from(e) as u64).err().flatten().unwrap_or_else(|| panic!("undefined status {e}"))),
    }
}

/// Maps grant `gref` of `domid` at `va` (whose L1 entry must exist and be
/// empty); returns the handle and the frame.
pub fn map_one(domid: u32, gref: u32, va: u64, readonly: bool) -> Result<(u32, u64), Error> {
    let flags = if readonly { hypercall_abi::grant::grant_op_flags::MAP_READONLY } else { 0 };
    let mut op = [GrantMapOp { host_addr: va, flags, gref, domid, status: 1, handle: 0, reserved0: 0, frame: 0 }];
    map(&mut op)?;
    status(op[0].status).map(|()| (op[0].handle, op[0].frame))
}

/// Undoes [`map_one`].
pub fn unmap_one(va: u64, handle: u32) -> Result<(), Error> {
    let mut op = [GrantUnmapOp { host_addr: va, handle, status: 1 }];
    unmap(&mut op)?;
    status(op[0].status)
}

/// Why a reference could not be revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InUse;

/// This domain's grant table.
pub struct Grants {
    /// Virtual address of entry 0.
    base: u64,
    nr: usize,
    used: [u64; REFS_MAX / 64],
}

impl Grants {
    /// Takes `frames` frames from `mem`, zeroes and maps them writable, and
    /// registers them as the table. Reference 0 is never handed out.
    pub fn setup(mem: &mut Memory<'_>, frames: usize) -> Result<Grants, Error> {
        assert!((1..=FRAMES_MAX).contains(&frames));
        let mut mfns = [0u64; FRAMES_MAX];
        let first = mem.alloc();
        for (i, m) in mfns.iter_mut().enumerate().take(frames) {
            let pfn = if i == 0 { first } else { mem.alloc() };
            assert_eq!(pfn, first + i as u64, "table frames are consecutive");
            mem.map(pfn, RW)?;
            for w in 0..512 {
                poke(Memory::va(pfn) + w * 8, 0);
            }
            *m = mem.mfn(pfn);
        }
        set_table(&mfns[..frames])?;
        let mut used = [0u64; REFS_MAX / 64];
        used[0] = 1;
        Ok(Grants { base: Memory::va(first), nr: frames * PER_FRAME, used })
    }

    fn entry(&self, gref: u32) -> *mut GrantEntry {
        assert!((gref as usize) < self.nr, "reference {gref} beyond the table");
        (self.base + u64::from(gref) * core::mem::size_of::<GrantEntry>() as u64) as *mut GrantEntry
    }

    fn flags_word(&self, gref: u32) -> &AtomicU16 {
        // SAFETY: the entry lies in a table frame this domain maps writable
        // for its whole life; the hypervisor changes the flags concurrently,
        // so they are only touched atomically.
        unsafe { AtomicU16::from_ptr(core::ptr::addr_of_mut!((*self.entry(gref)).flags)) }
    }

    /// A free reference, now taken.
    pub fn alloc(&mut self) -> Option<u32> {
        let i = (0..self.nr).find(|&i| self.used[i / 64] & (1 << (i % 64)) == 0)?;
        self.used[i / 64] |= 1 << (i % 64);
        u32::try_from(i).ok()
    }

    /// Grants `mfn` to `grantee` as entry `gref` (which must be free or
    /// revoked).
    pub fn grant_at(&mut self, gref: u32, grantee: u32, mfn: u64, readonly: bool) {
        let e = self.entry(gref);
        // SAFETY: as for `flags_word`; the other fields are written while
        // the entry grants nothing, then published by the release store.
        unsafe {
            core::ptr::write_volatile(core::ptr::addr_of_mut!((*e).grantee), grantee);
            core::ptr::write_volatile(core::ptr::addr_of_mut!((*e).frame), mfn);
            core::ptr::write_volatile(core::ptr::addr_of_mut!((*e).reserved0), 0);
        }
        let flags = grant_flags::PERMIT | if readonly { grant_flags::READONLY } else { 0 };
        self.flags_word(gref).store(flags, Ordering::Release);
    }

    /// Grants `mfn` to `grantee` under a new reference.
    pub fn grant(&mut self, grantee: u32, mfn: u64, readonly: bool) -> Option<u32> {
        let gref = self.alloc()?;
        self.grant_at(gref, grantee, mfn, readonly);
        Some(gref)
    }

    /// The flags word of `gref` now.
    pub fn flags(&self, gref: u32) -> u16 {
        self.flags_word(gref).load(Ordering::Acquire)
    }

    /// Revokes `gref` if nobody uses it; the reference stays taken.
    pub fn revoke(&mut self, gref: u32) -> Result<(), InUse> {
        let w = self.flags_word(gref);
        let now = w.load(Ordering::Acquire);
        w.compare_exchange(now & grant_flags::GUEST_MASK, 0, Ordering::AcqRel, Ordering::Acquire).map(|_| ()).map_err(|_| InUse)
    }

    /// Revokes and frees `gref`.
    pub fn end(&mut self, gref: u32) -> Result<(), InUse> {
        self.revoke(gref)?;
        self.used[gref as usize / 64] &= !(1 << (gref % 64));
        Ok(())
    }

    /// Writes the flags word directly, as a misbehaving granter would.
    pub fn force_flags(&mut self, gref: u32, flags: u16) {
        self.flags_word(gref).store(flags, Ordering::Release);
    }
}
