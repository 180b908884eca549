//! The frame table: for every machine frame, who owns it, what it is used
//! as, how many uses that type has, how many references the frame has, and
//! whether it is pinned. Every rule of direct paging (SPEC §9, M1–M5, M7,
//! M9) is enforced here, in one place, on every path that could break it.
//!
//! # The model
//!
//! - *Owner*: the domain a frame was given to, or none (free frames and the
//!   hypervisor's own). A domain's page-table entries may reference only
//!   frames it owns (M1).
//! - *Type* and *type count*: a frame is used as one thing at a time —
//!   writable data, an L1–L4 page table, a descriptor table, the
//!   shared-info page or a grant-table frame — and the type count says how
//!   many uses hold that type. The type can change only when the count is
//!   zero (it is then `None`). A writable mapping is a use of type
//!   `Writable` (or of `SharedInfo`/`GrantTable`, which their owner may map
//!   writable), so a frame that is a page table can never be mapped
//!   writable, and a frame mapped writable can never become a page table
//!   (M2).
//! - *Reference count*: every reference to the frame — the owner's
//!   allocation, each present entry that names it, each pin, each base
//!   pointer, each special registration. A frame goes back to the allocator
//!   only when its owner's allocation is the last reference (M9).
//! - *Pinned*: one use of a page-table type held by the guest's request
//!   (M7).
//! - *Grant uses*: references held on a frame by other domains (or the
//!   hypervisor) through its owner's grants — a grant mapping, a copy in
//!   progress, a backend's pin. Each is a reference, and a writable one also
//!   a `Writable` use, so a granted frame is neither reused nor turned into a
//!   page table while someone else may still reach it. A frame whose owner
//!   dies while grant uses remain is *orphaned*: it belongs to nobody, and
//!   goes back to the allocator when its last grant use is dropped.
//!
//! # Grant mappings
//!
//! An L1 entry may name a frame of another domain only when `grant_map`
//! put it there ([`FrameTable::map_grant_entry`]); validation refuses such
//! an entry anywhere else (M1). So a present L1 entry naming a frame its
//! table's owner does not own *is* a grant mapping. It holds no reference
//! of its own — the grant use behind it does — so dropping it (when its
//! table is torn down) takes nothing away, and `mmu_update` may not replace
//! it: only `grant_unmap` removes it, releasing the grant use and flushing
//! the TLB.
//!
//! A frame becomes an L*n* table only by validation: every present entry is
//! checked and takes its references, and an entry of an L*n* table with
//! n > 1 may only name a frame that already is an L*n−1* table (M3), so
//! validation never recurses and self-referencing ("linear") tables are
//! impossible. When a table's last use goes, it loses its type and drops
//! the references its entries hold, which may cascade down the tree.
//!
//! # Stale translations
//!
//! Dropping an entry does not remove what the TLB and the paging-structure
//! caches remember of it. Two things must therefore never happen while such
//! a stale translation may survive: a frame changing to a type that the
//! stale translation would let the guest subvert (a formerly writable frame
//! becoming a page table; a former page table becoming writable or a table
//! of another level), and a frame leaving the domain. The table keeps a
//! flush epoch, bumped every time a full flush is requested, and remembers
//! in which epoch each frame last lost a reference from an entry; such a
//! frame is *stale* until the epoch moves on. A type change or release of a
//! stale frame flushes every TLB: those of the other CPUs at once, through
//! the hypervisor's [`RemoteFlush`], before the frame takes its new type
//! (a vCPU running elsewhere could otherwise write through a stale
//! writable translation into a table being validated), and this CPU's
//! before its guest runs again ([`FrameTable::take_flush`]). The guest's
//! own flush requests name vCPUs instead (a mask, [`Flush::vcpus`]): the
//! hypervisor reaches the CPUs they run on before the call returns, and
//! those requests leave the epoch alone, since they do not reach every
//! TLB.

use hypercall_abi::Error;

use crate::addr::{Mfn, HYPERVISOR_L4_SLOTS};
use crate::domain::DomainId;
use crate::phys::PhysMemory;
use crate::pte::{Pte, PteFlags, ADDR_MASK, ENTRIES};

use alloc::vec;
use alloc::vec::Vec;

/// The hypervisor's entries for the reserved top-level slots (M4), written
/// into every L4 table a guest has validated.
pub type HypervisorSlots = [Pte; HYPERVISOR_L4_SLOTS.end - HYPERVISOR_L4_SLOTS.start];

/// What a frame is used as (M2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PageType {
    /// No use: free to take any type.
    None,
    /// Mapped writable by its owner.
    Writable,
    L1,
    L2,
    L3,
    L4,
    /// A GDT or LDT frame (rule C1): never writable.
    Descriptor,
    /// The domain's shared-info page: its owner may map it writable; it is
    /// never a page table and never given back.
    SharedInfo,
    /// A frame of the domain's grant table: as `SharedInfo`.
    GrantTable,
}

impl PageType {
    /// The page-table type of `level` (1–4).
    pub const fn table(level: u32) -> PageType {
        match level {
            1 => PageType::L1,
            2 => PageType::L2,
            3 => PageType::L3,
            4 => PageType::L4,
            _ => panic!("page-table levels are 1 to 4"),
        }
    }

    /// The level, if this is a page-table type.
    pub const fn table_level(self) -> Option<u32> {
        match self {
            PageType::L1 => Some(1),
            PageType::L2 => Some(2),
            PageType::L3 => Some(3),
            PageType::L4 => Some(4),
            _ => None,
        }
    }

    /// Whether a writable mapping of a frame of this type is a use of the
    /// type itself, so the owner may hold one (M2).
    const fn shares_with_writable_mappings(self) -> bool {
        matches!(self, PageType::SharedInfo | PageType::GrantTable)
    }
}

/// What the table knows of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    pub owner: Option<DomainId>,
    pub ty: PageType,
    pub type_count: u32,
    pub ref_count: u32,
    pub pinned: bool,
    /// Of `ref_count`, the references grant uses hold.
    pub grant_uses: u32,
    /// The type the frame had when its count last fell to zero.
    prev_type: PageType,
    /// The flush epoch in which an entry naming this frame was last dropped.
    stale_epoch: u32,
}

impl FrameInfo {
    const FREE: FrameInfo = FrameInfo {
        owner: None,
        ty: PageType::None,
        type_count: 0,
        ref_count: 0,
        pinned: false,
        grant_uses: 0,
        prev_type: PageType::None,
        // Never stale: the epoch starts at 0 and would need 2^32 - 1 flushes
        // to come round, which at worst costs one extra flush.
        stale_epoch: u32::MAX,
    };
}

/// vCPUs of one domain, as a mask (bit n: vCPU n).
pub type VcpuMask = u64;

/// Flushes the TLBs of every other CPU that may hold a guest translation,
/// returning once they are done. The hypervisor provides it; with one CPU
/// (and in host tests) there is nothing to do.
pub type RemoteFlush = fn();

fn no_other_cpus() {}

/// TLB work the hypervisor owes before guests run again: on this CPU
/// (`here`) and on the CPUs where the calling domain's vCPUs in `vcpus`
/// are loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flush {
    /// Flush every non-global translation.
    pub full: bool,
    nr_pages: usize,
    pages: [u64; Flush::MAX_PAGES],
    /// This CPU must do the work, whatever vCPU it runs.
    pub here: bool,
    /// The calling domain's vCPUs whose TLBs the work is for.
    pub vcpus: VcpuMask,
}

impl Flush {
    /// Single-page invalidations kept before the request becomes a full flush.
    pub const MAX_PAGES: usize = 8;

    /// The pages to invalidate one by one (empty when `full`).
    pub fn pages(&self) -> &[u64] {
        if self.full {
            &[]
        } else {
            &self.pages[..self.nr_pages]
        }
    }

    pub fn is_empty(&self) -> bool {
        !self.full && self.nr_pages == 0
    }

    /// Whether the work reaches vCPU `vcpu` of the calling domain.
    pub fn reaches(&self, vcpu: u32) -> bool {
        !self.is_empty() && (self.here || vcpu < 64 && self.vcpus & (1 << vcpu) != 0)
    }
}

/// What became of a domain's frames at teardown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Released {
    /// Frames handed to the allocator.
    pub freed: u64,
    /// Frames other domains still reach through grants: they belong to
    /// nobody now and are freed when the last grant use goes.
    pub orphaned: u64,
}

/// What teardown does with one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    Freed,
    Orphaned,
}

/// Why a domain's frames could not all be released at teardown: references
/// the bookkeeping says should be gone are not. Always a hypervisor bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaked {
    pub frames: u64,
    pub first: Mfn,
}

pub struct FrameTable {
    frames: Vec<FrameInfo>,
    hypervisor_slots: HypervisorSlots,
    /// Entry bits 12..52 the host's physical address width allows.
    frame_mask: u64,
    epoch: u32,
    flush: Flush,
    remote_flush: RemoteFlush,
}

const A_D: u64 = PteFlags::ACCESSED.bits() | PteFlags::DIRTY.bits();

fn is_hypervisor_slot(level: u32, index: usize) -> bool {
    level == 4 && HYPERVISOR_L4_SLOTS.contains(&index)
}

impl FrameTable {
    /// A table for frames `0 .. limit`, all unowned. `phys_addr_bits` is the
    /// host's physical address width (CPUID 0x80000008): entry address bits
    /// at or above it are reserved and refused (M5).
    pub fn new(limit: u64, hypervisor_slots: HypervisorSlots, phys_addr_bits: u32) -> FrameTable {
        let len = usize::try_from(limit).expect("the frame table fits in memory");
        let width_mask = 1u64.checked_shl(phys_addr_bits.min(52)).map_or(u64::MAX, |b| b - 1);
        FrameTable {
            frames: vec![FrameInfo::FREE; len],
            hypervisor_slots,
            frame_mask: ADDR_MASK & width_mask,
            epoch: 0,
            flush: Flush::default(),
            remote_flush: no_other_cpus,
        }
    }

    /// Sets how the other CPUs' TLBs are flushed (once they can run guests).
    pub fn set_remote_flush(&mut self, f: RemoteFlush) {
        self.remote_flush = f;
    }

    /// One past the highest frame the table covers.
    pub fn limit(&self) -> u64 {
        self.frames.len() as u64
    }

    pub fn hypervisor_slots(&self) -> &HypervisorSlots {
        &self.hypervisor_slots
    }

    pub fn info(&self, mfn: Mfn) -> Option<&FrameInfo> {
        self.frames.get(usize::try_from(mfn.0).ok()?)
    }

    /// The entry of a frame the caller knows is covered.
    fn get(&self, mfn: Mfn) -> &FrameInfo {
        self.info(mfn).expect("a frame the table covers")
    }

    fn at(&mut self, mfn: Mfn) -> &mut FrameInfo {
        let i = usize::try_from(mfn.0).expect("a frame the table covers");
        &mut self.frames[i]
    }

    pub fn owner(&self, mfn: Mfn) -> Option<DomainId> {
        self.info(mfn).and_then(|f| f.owner)
    }

    fn owned_by(&self, mfn: Mfn, dom: DomainId) -> bool {
        self.owner(mfn) == Some(dom)
    }

    /// Whether `mfn` is an L*n* table owned by `dom`, and which level.
    pub fn table_level(&self, mfn: Mfn, dom: DomainId) -> Option<u32> {
        let f = self.info(mfn)?;
        if f.owner != Some(dom) {
            return None;
        }
        f.ty.table_level()
    }

    /// Gives a free frame, just taken from the allocator, to `dom`: the
    /// allocation is its first reference.
    pub fn assign(&mut self, mfn: Mfn, dom: DomainId) {
        let f = self.at(mfn);
        assert!(f.owner.is_none() && f.ref_count == 0 && f.type_count == 0, "{mfn} assigned while in use");
        f.owner = Some(dom);
        f.ref_count = 1;
    }

    // ---- TLB epochs ----------------------------------------------------

    /// Flushes every TLB (M10): the other CPUs' now, this one's before its
    /// guest runs again. Sound because nothing the hypervisor does
    /// meanwhile goes through guest mappings.
    fn request_full_flush(&mut self) {
        (self.remote_flush)();
        self.flush.full = true;
        self.flush.here = true;
        self.epoch = self.epoch.wrapping_add(1);
    }

    /// Asks for a full flush of the TLBs of the calling domain's `vcpus`
    /// (a guest request, or a new base pointer).
    pub fn flush_all(&mut self, vcpus: VcpuMask) {
        self.flush.full = true;
        self.flush.vcpus |= vcpus;
    }

    /// Asks for the translation of `va` to be invalidated on `vcpus`.
    pub fn flush_page(&mut self, vcpus: VcpuMask, va: u64) {
        let f = &mut self.flush;
        f.vcpus |= vcpus;
        if f.full {
            return;
        }
        if f.nr_pages == Flush::MAX_PAGES {
            f.full = true;
        } else {
            f.pages[f.nr_pages] = va;
            f.nr_pages += 1;
        }
    }

    /// The TLB work owed since the last call; the hypervisor must do it
    /// before the guest runs again.
    pub fn take_flush(&mut self) -> Flush {
        core::mem::take(&mut self.flush)
    }

    fn is_stale(&self, mfn: Mfn) -> bool {
        self.get(mfn).stale_epoch == self.epoch
    }

    fn mark_stale(&mut self, mfn: Mfn) {
        let epoch = self.epoch;
        self.at(mfn).stale_epoch = epoch;
    }

    // ---- references and types --------------------------------------------

    fn get_ref(&mut self, mfn: Mfn) -> Result<(), Error> {
        let f = self.at(mfn);
        f.ref_count = f.ref_count.checked_add(1).ok_or(Error::Busy)?;
        Ok(())
    }

    fn put_ref(&mut self, mfn: Mfn) {
        let f = self.at(mfn);
        f.ref_count = f.ref_count.checked_sub(1).expect("reference count underflow");
        assert!(f.ref_count > 0 || f.owner.is_none(), "{mfn}: the owner's reference was dropped");
    }

    /// Takes one use of type `ty` on a frame of `dom`. A frame whose count
    /// is zero takes the type, after validation if it is a page table; a
    /// frame already of that type gains a use; any other is `Busy` (M2).
    /// Validation failure is `Invalid`, and leaves nothing changed.
    fn get_type<M: PhysMemory>(&mut self, dom: DomainId, mfn: Mfn, ty: PageType, mem: &mut M) -> Result<(), Error> {
        let f = self.at(mfn);
        if f.type_count > 0 {
            if f.ty != ty {
                return Err(Error::Busy);
            }
            f.type_count = f.type_count.checked_add(1).ok_or(Error::Busy)?;
            return Ok(());
        }
        let prev = f.prev_type;
        if self.is_stale(mfn) && ty != prev {
            // Before the frame takes the type, and before validation reads
            // it: no CPU may still reach it through an old translation.
            self.request_full_flush();
        }
        // Take the type before validating, so an entry of the table that
        // names the table itself sees it as what it is becoming.
        let f = self.at(mfn);
        f.ty = ty;
        f.type_count = 1;
        if let Some(level) = ty.table_level() {
            if let Err(e) = self.validate(dom, mfn, level, mem) {
                let f = self.at(mfn);
                f.ty = PageType::None;
                f.type_count = 0;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Drops one use of the frame's type; at zero the frame loses its type
    /// and, if it was a page table, every reference its entries held.
    fn put_type<M: PhysMemory>(&mut self, mfn: Mfn, mem: &mut M) {
        let f = self.at(mfn);
        f.type_count = f.type_count.checked_sub(1).expect("type count underflow");
        if f.type_count == 0 {
            let (ty, owner) = (f.ty, f.owner);
            f.prev_type = ty;
            f.ty = PageType::None;
            if let Some(level) = ty.table_level() {
                let owner = owner.expect("page tables have owners");
                for index in 0..ENTRIES {
                    if !is_hypervisor_slot(level, index) {
                        let entry = mem.read_u64(mfn, index);
                        self.release_entry(owner, level, entry, mem);
                    }
                }
            }
        }
    }

    /// Whether `raw`, an entry of an L*level* table of `owner`, is a grant
    /// mapping: a present L1 entry naming a frame `owner` does not own
    /// (nothing else can put one there, M1).
    fn is_grant_entry(&self, owner: DomainId, level: u32, raw: u64) -> bool {
        let entry = Pte(raw);
        level == 1 && entry.is_present() && self.owner(entry.mfn()) != Some(owner)
    }

    /// Checks one entry of an L*level* table of `dom` (M1, M2, M3, M5) and
    /// takes the references it needs. Returns the value to store: the entry
    /// with `USER` forced on (guest kernels run in ring 3).
    fn acquire_entry<M: PhysMemory>(&mut self, dom: DomainId, level: u32, raw: u64, mem: &mut M) -> Result<u64, Error> {
        let entry = Pte(raw);
        if !entry.is_present() {
            return Ok(raw);
        }
        let flags = entry.flags();
        if flags.contains(PteFlags::GLOBAL) || raw & ADDR_MASK & !self.frame_mask != 0 {
            return Err(Error::Invalid);
        }
        // SUPERPAGE_2M is not offered, and 1 GiB pages never are (§12.7).
        if level > 1 && flags.contains(PteFlags::HUGE) {
            return Err(Error::Invalid);
        }
        let target = entry.mfn();
        if !self.owned_by(target, dom) {
            return Err(Error::Invalid);
        }
        if level == 1 {
            let writable = flags.contains(PteFlags::WRITABLE);
            if writable {
                let ty = self.get(target).ty;
                let want = if ty.shares_with_writable_mappings() { ty } else { PageType::Writable };
                self.get_type(dom, target, want, mem)?;
            }
            if let Err(e) = self.get_ref(target) {
                if writable {
                    self.put_type(target, mem);
                }
                return Err(e);
            }
        } else {
            let f = self.at(target);
            if f.ty != PageType::table(level - 1) {
                return Err(Error::Invalid);
            }
            f.type_count = f.type_count.checked_add(1).ok_or(Error::Busy)?;
            if let Err(e) = self.get_ref(target) {
                self.put_type(target, mem);
                return Err(e);
            }
        }
        Ok(raw | PteFlags::USER.bits())
    }

    /// Drops what [`acquire_entry`](Self::acquire_entry) took for an entry
    /// now leaving an L*level* table.
    fn release_entry<M: PhysMemory>(&mut self, owner: DomainId, level: u32, raw: u64, mem: &mut M) {
        let entry = Pte(raw);
        // A grant mapping holds nothing of its own: its grant use does.
        if !entry.is_present() || self.is_grant_entry(owner, level, raw) {
            return;
        }
        let target = entry.mfn();
        self.mark_stale(target);
        if level > 1 || entry.flags().contains(PteFlags::WRITABLE) {
            self.put_type(target, mem);
        }
        self.put_ref(target);
    }

    /// Validates every entry of `mfn` as an L*level* table of `dom`, taking
    /// their references, then writes the adjusted entries (USER forced on
    /// and, for an L4, the hypervisor's slots, M4). On failure every
    /// reference taken is dropped again and the frame's contents are
    /// untouched.
    fn validate<M: PhysMemory>(&mut self, dom: DomainId, mfn: Mfn, level: u32, mem: &mut M) -> Result<(), Error> {
        for index in 0..ENTRIES {
            if is_hypervisor_slot(level, index) {
                continue;
            }
            if self.acquire_entry(dom, level, mem.read_u64(mfn, index), mem).is_err() {
                for done in (0..index).filter(|&i| !is_hypervisor_slot(level, i)) {
                    let entry = mem.read_u64(mfn, done);
                    self.release_entry(dom, level, entry, mem);
                }
                return Err(Error::Invalid);
            }
        }
        for index in 0..ENTRIES {
            let old = mem.read_u64(mfn, index);
            let new = if is_hypervisor_slot(level, index) {
                self.hypervisor_slots[index - HYPERVISOR_L4_SLOTS.start].0
            } else if Pte(old).is_present() {
                old | PteFlags::USER.bits()
            } else {
                old
            };
            if new != old {
                mem.write_u64(mfn, index, new);
            }
        }
        Ok(())
    }

    // ---- operations ------------------------------------------------------

    /// Writes `value` into entry `index` of table `table` of `dom`, after
    /// validating it as an entry of that table's level: the frame it names
    /// gains the use it needs, the frame the old entry named loses one.
    /// With `preserve_ad` the old entry's accessed and dirty bits are kept.
    /// Errors: `Invalid` if `table` is not a page table of `dom` or the entry
    /// breaks M1–M5; `NotPermitted` for a reserved L4 slot (M4) or an entry
    /// holding a grant mapping; `Busy` if the frame named cannot take the
    /// type (M2).
    pub fn update_entry<M: PhysMemory>(
        &mut self,
        dom: DomainId,
        table: Mfn,
        index: usize,
        value: u64,
        preserve_ad: bool,
        mem: &mut M,
    ) -> Result<(), Error> {
        assert!(index < ENTRIES);
        let level = self.table_level(table, dom).ok_or(Error::Invalid)?;
        if is_hypervisor_slot(level, index) {
            return Err(Error::NotPermitted);
        }
        let old = mem.read_u64(table, index);
        if self.is_grant_entry(dom, level, old) {
            // Only `grant_unmap` removes a grant mapping.
            return Err(Error::NotPermitted);
        }
        let new = if preserve_ad { value | (old & A_D) } else { value };
        // Take the new references before dropping the old ones, so an entry
        // rewritten with the same frame never lets that frame's type go.
        let stored = self.acquire_entry(dom, level, new, mem)?;
        mem.write_u64(table, index, stored);
        self.release_entry(dom, level, old, mem);
        Ok(())
    }

    /// Validates `mfn` as an L*level* table and pins it (M7). Errors:
    /// `NotFound` for a frame `dom` does not own, `Exists` if pinned,
    /// `Busy` if the frame has another type, `Invalid` if an entry fails.
    pub fn pin<M: PhysMemory>(&mut self, dom: DomainId, mfn: Mfn, level: u32, mem: &mut M) -> Result<(), Error> {
        if !self.owned_by(mfn, dom) {
            return Err(Error::NotFound);
        }
        if self.get(mfn).pinned {
            return Err(Error::Exists);
        }
        self.get_type(dom, mfn, PageType::table(level), mem)?;
        if let Err(e) = self.get_ref(mfn) {
            self.put_type(mfn, mem);
            return Err(e);
        }
        self.at(mfn).pinned = true;
        Ok(())
    }

    /// Drops the pin of `mfn`; the table keeps its type while anything else
    /// uses it (M7). Errors: `NotFound`, or `NotPermitted` if not pinned.
    pub fn unpin<M: PhysMemory>(&mut self, dom: DomainId, mfn: Mfn, mem: &mut M) -> Result<(), Error> {
        if !self.owned_by(mfn, dom) {
            return Err(Error::NotFound);
        }
        if !self.get(mfn).pinned {
            return Err(Error::NotPermitted);
        }
        self.at(mfn).pinned = false;
        self.put_type(mfn, mem);
        self.put_ref(mfn);
        Ok(())
    }

    /// Takes the use a base pointer holds on an L4 table of `dom` (M6).
    /// Errors: `NotFound` for a frame `dom` does not own, `Invalid` if it is
    /// not an L4 table.
    pub fn acquire_base(&mut self, dom: DomainId, mfn: Mfn) -> Result<(), Error> {
        if !self.owned_by(mfn, dom) {
            return Err(Error::NotFound);
        }
        let f = self.at(mfn);
        if f.ty != PageType::L4 {
            return Err(Error::Invalid);
        }
        f.type_count = f.type_count.checked_add(1).ok_or(Error::Busy)?;
        if let Err(e) = self.get_ref(mfn) {
            self.at(mfn).type_count -= 1;
            return Err(e);
        }
        Ok(())
    }

    /// Drops a base pointer's use; may release the whole tree below it.
    pub fn release_base<M: PhysMemory>(&mut self, mfn: Mfn, mem: &mut M) {
        assert_eq!(self.get(mfn).ty, PageType::L4, "{mfn} is a base pointer");
        self.put_type(mfn, mem);
        self.put_ref(mfn);
    }

    /// Registers a frame of `dom` as a descriptor table, the shared-info
    /// page or a grant-table frame: one use of that type. `Busy` if the
    /// frame has another type (a descriptor table must not be mapped
    /// writable; the others must not be in use as anything else).
    pub fn acquire_special<M: PhysMemory>(&mut self, dom: DomainId, mfn: Mfn, ty: PageType, mem: &mut M) -> Result<(), Error> {
        assert!(matches!(ty, PageType::Descriptor | PageType::SharedInfo | PageType::GrantTable));
        if !self.owned_by(mfn, dom) {
            return Err(Error::NotFound);
        }
        let f = self.at(mfn);
        if ty.shares_with_writable_mappings() && f.ty == PageType::Writable && f.grant_uses == 0 {
            // The owner's writable mappings become uses of the new type
            // (which its owner may map writable too): it keeps them (SPEC
            // §17). Others' writable grant uses would not, so a frame with
            // any is refused below as `Busy`.
            f.ty = ty;
        }
        self.get_type(dom, mfn, ty, mem)?;
        if let Err(e) = self.get_ref(mfn) {
            self.put_type(mfn, mem);
            return Err(e);
        }
        Ok(())
    }

    /// Drops a registration taken by [`acquire_special`](Self::acquire_special).
    pub fn release_special<M: PhysMemory>(&mut self, mfn: Mfn, mem: &mut M) {
        self.put_type(mfn, mem);
        self.put_ref(mfn);
    }

    /// Whether `dom` may give `mfn` back (M9): it owns it, and nothing but
    /// the allocation refers to it. Errors: `NotFound`, `Busy`.
    pub fn check_give_back(&self, dom: DomainId, mfn: Mfn) -> Result<(), Error> {
        if !self.owned_by(mfn, dom) {
            return Err(Error::NotFound);
        }
        let f = &self.get(mfn);
        if f.pinned || f.type_count > 0 || f.ref_count != 1 {
            return Err(Error::Busy);
        }
        Ok(())
    }

    /// Takes `mfn` away from `dom` (M9), to be freed by the caller.
    pub fn give_back(&mut self, dom: DomainId, mfn: Mfn) -> Result<(), Error> {
        self.check_give_back(dom, mfn)?;
        self.unassign(mfn);
        Ok(())
    }

    fn unassign(&mut self, mfn: Mfn) {
        if self.is_stale(mfn) {
            self.request_full_flush();
        }
        let stale_epoch = self.get(mfn).stale_epoch;
        *self.at(mfn) = FrameInfo { stale_epoch, ..FrameInfo::FREE };
    }

    /// Teardown, first half: drops every pin `dom` holds, which with its
    /// base pointers and registrations already dropped takes every page
    /// table of the domain down.
    pub fn unpin_all<M: PhysMemory>(&mut self, dom: DomainId, mem: &mut M) {
        for i in 0..self.frames.len() {
            let mfn = Mfn(i as u64);
            if self.frames[i].owner == Some(dom) && self.frames[i].pinned {
                self.unpin(dom, mfn, mem).expect("a pinned frame of the domain");
            }
        }
    }

    /// Teardown, second half: takes every frame of `dom` away and hands it
    /// to `fate`: freed, or orphaned if other domains still reach it
    /// through grants (their grant uses are then its only references). A
    /// frame anything else still refers to is kept out of the allocator
    /// and reported: that is a bookkeeping bug, and leaking the frame is
    /// the only safe answer to it.
    pub fn release_all(&mut self, dom: DomainId, mut fate: impl FnMut(Mfn, Fate)) -> Result<Released, Leaked> {
        let (mut released, mut leaked) = (Released::default(), None::<Leaked>);
        for i in 0..self.frames.len() {
            let mfn = Mfn(i as u64);
            if self.frames[i].owner != Some(dom) {
                continue;
            }
            if self.give_back(dom, mfn).is_ok() {
                fate(mfn, Fate::Freed);
                released.freed += 1;
                continue;
            }
            let f = &mut self.frames[i];
            // Only grant uses left: the owner's reference goes, theirs stay.
            let only_grants = f.grant_uses > 0
                && f.ref_count == f.grant_uses + 1
                && !f.pinned
                && (f.ty == PageType::None || (f.ty == PageType::Writable && f.type_count <= f.grant_uses));
            if only_grants {
                f.owner = None;
                f.ref_count -= 1;
                fate(mfn, Fate::Orphaned);
                released.orphaned += 1;
                continue;
            }
            match &mut leaked {
                Some(l) => l.frames += 1,
                None => leaked = Some(Leaked { frames: 1, first: mfn }),
            }
        }
        leaked.map_or(Ok(released), Err)
    }

    // ---- grant uses ---------------------------------------------------------

    /// Takes a grant use of `mfn`, a frame `granter` granted: a reference,
    /// and if `writable` a `Writable` use (G2, G3). Errors: `NotPermitted`
    /// if `granter` does not own the frame (G2); `Busy` for the granter's
    /// shared-info page or a grant-table frame, or a writable use of a
    /// frame with another type (a page table, a descriptor table: nobody
    /// else may write those, M2).
    pub fn grant_pin<M: PhysMemory>(&mut self, granter: DomainId, mfn: Mfn, writable: bool, mem: &mut M) -> Result<(), Error> {
        if !self.owned_by(mfn, granter) {
            return Err(Error::NotPermitted);
        }
        // The shared-info page and grant-table frames are their owner's
        // alone (SPEC §17), even to read.
        if matches!(self.get(mfn).ty, PageType::SharedInfo | PageType::GrantTable) {
            return Err(Error::Busy);
        }
        if writable {
            self.get_type(granter, mfn, PageType::Writable, mem)?;
        }
        if let Err(e) = self.get_ref(mfn) {
            if writable {
                self.put_type(mfn, mem);
            }
            return Err(e);
        }
        self.at(mfn).grant_uses += 1;
        Ok(())
    }

    /// Drops a grant use taken by [`grant_pin`](Self::grant_pin). Returns
    /// true when that was the last reference to an orphaned frame, which
    /// the caller then frees.
    pub fn grant_unpin<M: PhysMemory>(&mut self, mfn: Mfn, writable: bool, mem: &mut M) -> bool {
        if writable {
            self.put_type(mfn, mem);
        }
        let f = self.at(mfn);
        f.grant_uses = f.grant_uses.checked_sub(1).expect("grant use underflow");
        f.ref_count = f.ref_count.checked_sub(1).expect("reference count underflow");
        if f.owner.is_some() {
            assert!(f.ref_count > 0, "{mfn}: the owner's reference was dropped");
            return false;
        }
        if f.ref_count > 0 {
            return false;
        }
        // An orphan's last use: whatever TLB still maps it is flushed before
        // anyone can be given it.
        self.unassign(mfn);
        true
    }

    /// Whether the caller may copy into its own frame `mfn` (G4): it owns
    /// it and, for writing, the frame is not one that only validation may
    /// change (a page table or descriptor table). Errors: `NotPermitted`,
    /// `Busy`.
    pub fn check_local_copy(&self, dom: DomainId, mfn: Mfn, write: bool) -> Result<(), Error> {
        if !self.owned_by(mfn, dom) {
            return Err(Error::NotPermitted);
        }
        let ty = self.get(mfn).ty;
        if write && (ty.table_level().is_some() || ty == PageType::Descriptor) {
            return Err(Error::Busy);
        }
        Ok(())
    }

    /// Installs a grant mapping of `mfn` into entry `index` of L1 table
    /// `l1` of `dom`, the grantee: present, user, no-execute, writable if
    /// `writable`. The grant use the caller holds on `mfn` keeps it alive;
    /// the entry takes nothing. Errors: `Invalid` if `l1` is not an L1 table
    /// of `dom`; `Busy` if the entry is present.
    pub fn map_grant_entry<M: PhysMemory>(&mut self, dom: DomainId, l1: Mfn, index: usize, mfn: Mfn, writable: bool, mem: &mut M) -> Result<(), Error> {
        assert!(index < ENTRIES);
        if self.table_level(l1, dom) != Some(1) {
            return Err(Error::Invalid);
        }
        if Pte(mem.read_u64(l1, index)).is_present() {
            return Err(Error::Busy);
        }
        let mut flags = PteFlags::PRESENT | PteFlags::USER | PteFlags::NO_EXECUTE | PteFlags::ACCESSED;
        flags.set(PteFlags::WRITABLE, writable);
        mem.write_u64(l1, index, Pte::new(mfn, flags).0);
        Ok(())
    }

    /// Removes the grant mapping of `mfn` at entry `index` of `l1` if it is
    /// still there (the table may have been torn down since), and asks for
    /// a full TLB flush: the translation may be cached at every address the
    /// table was reachable at.
    pub fn unmap_grant_entry<M: PhysMemory>(&mut self, dom: DomainId, l1: Mfn, index: usize, mfn: Mfn, mem: &mut M) {
        assert!(index < ENTRIES);
        let entry = Pte(mem.read_u64(l1, index));
        if self.table_level(l1, dom) == Some(1) && entry.is_present() && entry.mfn() == mfn {
            mem.write_u64(l1, index, 0);
        }
        self.request_full_flush();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::test_support::VecMemory;
    use proptest::prelude::*;
    use std::collections::HashMap;

    const D1: DomainId = DomainId(1);
    const D2: DomainId = DomainId(2);
    const P: u64 = PteFlags::PRESENT.bits();
    const RW: u64 = PteFlags::WRITABLE.bits();
    const U: u64 = PteFlags::USER.bits();

    pub(crate) fn slots() -> HypervisorSlots {
        core::array::from_fn(|i| Pte::new(Mfn(2 + i as u64), PteFlags::PRESENT | PteFlags::WRITABLE))
    }

    fn e(mfn: u64, flags: u64) -> u64 {
        (mfn << 12) | flags
    }

    /// 64 frames: 0-17 the hypervisor's, 20-39 d1's, 40-59 d2's, 60-63 free.
    fn setup() -> (FrameTable, VecMemory) {
        let mut t = FrameTable::new(64, slots(), 40);
        for f in 20..40 {
            t.assign(Mfn(f), D1);
        }
        for f in 40..60 {
            t.assign(Mfn(f), D2);
        }
        (t, VecMemory::new(64))
    }

    fn info(t: &FrameTable, f: u64) -> FrameInfo {
        *t.info(Mfn(f)).unwrap()
    }

    /// Builds a d1 tree: L4 20 -> L3 21 -> L2 22 -> L1 23, pinned at the L4.
    fn tree(t: &mut FrameTable, mem: &mut VecMemory) {
        mem.write_u64(Mfn(23), 0, e(30, P | RW));
        mem.write_u64(Mfn(23), 1, e(31, P));
        t.pin(D1, Mfn(23), 1, mem).unwrap();
        mem.write_u64(Mfn(22), 0, e(23, P | RW));
        t.pin(D1, Mfn(22), 2, mem).unwrap();
        mem.write_u64(Mfn(21), 0, e(22, P | RW));
        t.pin(D1, Mfn(21), 3, mem).unwrap();
        mem.write_u64(Mfn(20), 0, e(21, P | RW));
        t.pin(D1, Mfn(20), 4, mem).unwrap();
        for f in [21, 22, 23] {
            t.unpin(D1, Mfn(f), mem).unwrap();
        }
    }

    #[test]
    fn a_tree_types_bottom_up_and_falls_with_its_pin() {
        let (mut t, mut mem) = setup();
        tree(&mut t, &mut mem);
        assert_eq!(info(&t, 20).ty, PageType::L4);
        assert_eq!((info(&t, 23).ty, info(&t, 23).type_count), (PageType::L1, 1));
        assert_eq!((info(&t, 30).ty, info(&t, 30).ref_count), (PageType::Writable, 2));
        assert_eq!((info(&t, 31).ty, info(&t, 31).ref_count), (PageType::None, 2));
        // USER was forced on, and the L4 carries the hypervisor's slots.
        assert_eq!(mem.read_u64(Mfn(23), 0), e(30, P | RW | U));
        assert_eq!(mem.read_u64(Mfn(20), 256), slots()[0].0);
        t.unpin(D1, Mfn(20), &mut mem).unwrap();
        for f in 20..40 {
            let i = info(&t, f);
            assert_eq!((i.ty, i.type_count, i.ref_count, i.pinned), (PageType::None, 0, 1, false), "frame {f}");
        }
    }

    #[test]
    fn tables_are_never_writable_and_writable_frames_never_tables() {
        let (mut t, mut mem) = setup();
        tree(&mut t, &mut mem);
        // Map the L1 (23) writable through its own entry 2: refused (M2),
        // and so is every other level.
        for table in [20, 21, 22, 23] {
            assert_eq!(t.update_entry(D1, Mfn(23), 2, e(table, P | RW), false, &mut mem), Err(Error::Busy));
            assert_eq!(t.update_entry(D1, Mfn(23), 2, e(table, P), false, &mut mem), Ok(()), "read-only is fine");
        }
        // Frame 30 is mapped writable: it cannot become a table.
        assert_eq!(t.pin(D1, Mfn(30), 1, &mut mem), Err(Error::Busy));
        // Once the writable mapping goes it can.
        t.update_entry(D1, Mfn(23), 0, 0, false, &mut mem).unwrap();
        assert_eq!(t.pin(D1, Mfn(30), 1, &mut mem), Ok(()));
    }

    #[test]
    fn self_references_are_refused_at_every_level() {
        let (mut t, mut mem) = setup();
        tree(&mut t, &mut mem);
        for (table, level) in [(20, 4), (21, 3), (22, 2)] {
            let before = mem.read_u64(Mfn(table), 5);
            assert_eq!(t.update_entry(D1, Mfn(table), 5, e(table, P | RW), false, &mut mem), Err(Error::Invalid), "L{level}");
            assert_eq!(t.update_entry(D1, Mfn(table), 5, e(table, P), false, &mut mem), Err(Error::Invalid), "L{level}");
            assert_eq!(mem.read_u64(Mfn(table), 5), before);
        }
        // A fresh frame whose entry names itself cannot be pinned at any level.
        for level in 1..=4 {
            mem.write_u64(Mfn(33), 7, e(33, P | RW));
            assert_eq!(t.pin(D1, Mfn(33), level, &mut mem), Err(Error::Invalid), "L{level}");
            assert_eq!(info(&t, 33).ty, PageType::None);
        }
    }

    #[test]
    fn entries_name_only_own_frames() {
        let (mut t, mut mem) = setup();
        tree(&mut t, &mut mem);
        for target in [0, 5, 40, 59, 61, 63, 64, 1 << 20] {
            assert_eq!(t.update_entry(D1, Mfn(23), 3, e(target, P), false, &mut mem), Err(Error::Invalid), "frame {target}");
        }
        // d2 cannot touch d1's tables.
        assert_eq!(t.update_entry(D2, Mfn(23), 3, e(41, P), false, &mut mem), Err(Error::Invalid));
        assert_eq!(t.pin(D2, Mfn(30), 1, &mut mem), Err(Error::NotFound));
        assert_eq!(t.unpin(D2, Mfn(20), &mut mem), Err(Error::NotFound));
    }

    #[test]
    fn entry_bits_m5() {
        let (mut t, mut mem) = setup();
        tree(&mut t, &mut mem);
        let global = PteFlags::GLOBAL.bits();
        let huge = PteFlags::HUGE.bits();
        assert_eq!(t.update_entry(D1, Mfn(23), 3, e(32, P | global), false, &mut mem), Err(Error::Invalid));
        assert_eq!(t.update_entry(D1, Mfn(23), 3, e(32, P) | 1 << 45, false, &mut mem), Err(Error::Invalid), "above 40 bits");
        assert_eq!(t.update_entry(D1, Mfn(22), 3, e(32, P | huge), false, &mut mem), Err(Error::Invalid), "2 MiB page");
        assert_eq!(t.update_entry(D1, Mfn(21), 3, e(32, P | huge), false, &mut mem), Err(Error::Invalid), "1 GiB page");
        // Free bits, NX, PAT and caching bits are kept.
        let kept = e(32, P | huge | 0x18) | 0x7ff << 52 | 1 << 63 | 0xe00;
        assert_eq!(t.update_entry(D1, Mfn(23), 3, kept, false, &mut mem), Ok(()));
        assert_eq!(mem.read_u64(Mfn(23), 3), kept | U);
        // Not present: anything goes, nothing is referenced.
        assert_eq!(t.update_entry(D1, Mfn(23), 4, 0xdead_beef_0000_0000 | global | RW, false, &mut mem), Ok(()));
    }

    #[test]
    fn hypervisor_slots_belong_to_the_hypervisor() {
        let (mut t, mut mem) = setup();
        tree(&mut t, &mut mem);
        for slot in HYPERVISOR_L4_SLOTS {
            assert_eq!(t.update_entry(D1, Mfn(20), slot, 0, false, &mut mem), Err(Error::NotPermitted));
        }
        // Whatever a frame holds there is not validated but overwritten.
        mem.write_u64(Mfn(24), 260, e(5, P | RW));
        assert_eq!(t.pin(D1, Mfn(24), 4, &mut mem), Ok(()));
        assert_eq!(mem.read_u64(Mfn(24), 260), slots()[4].0);
        assert_eq!(info(&t, 5).ref_count, 0, "hypervisor frame untouched");
    }

    #[test]
    fn preserve_ad_keeps_what_the_cpu_set() {
        let (mut t, mut mem) = setup();
        tree(&mut t, &mut mem);
        let a_d = PteFlags::ACCESSED.bits() | PteFlags::DIRTY.bits();
        mem.write_u64(Mfn(23), 0, e(30, P | RW | U | a_d));
        t.update_entry(D1, Mfn(23), 0, e(30, P), true, &mut mem).unwrap();
        assert_eq!(mem.read_u64(Mfn(23), 0), e(30, P | U | a_d));
        assert_eq!(info(&t, 30).ty, PageType::None, "the writable use went");
    }

    #[test]
    fn unpinning_a_table_in_use_keeps_its_type() {
        let (mut t, mut mem) = setup();
        tree(&mut t, &mut mem);
        t.acquire_base(D1, Mfn(20)).unwrap();
        t.unpin(D1, Mfn(20), &mut mem).unwrap();
        assert_eq!((info(&t, 20).ty, info(&t, 20).type_count), (PageType::L4, 1));
        assert_eq!(info(&t, 23).ty, PageType::L1, "the tree stands");
        assert_eq!(t.unpin(D1, Mfn(20), &mut mem), Err(Error::NotPermitted));
        assert_eq!(t.unpin(D1, Mfn(23), &mut mem), Err(Error::NotPermitted));
        assert_eq!(t.update_entry(D1, Mfn(23), 5, e(20, P | RW), false, &mut mem), Err(Error::Busy));
        // Pinned twice: Exists.
        t.pin(D1, Mfn(20), 4, &mut mem).unwrap();
        assert_eq!(t.pin(D1, Mfn(20), 4, &mut mem), Err(Error::Exists));
        assert_eq!(t.pin(D1, Mfn(23), 2, &mut mem), Err(Error::Busy), "an L1 is not an L2");
        t.release_base(Mfn(20), &mut mem);
        assert_eq!(info(&t, 20).type_count, 1);
    }

    #[test]
    fn give_back_needs_a_frame_nothing_uses() {
        let (mut t, mut mem) = setup();
        tree(&mut t, &mut mem);
        assert_eq!(t.give_back(D1, Mfn(30)), Err(Error::Busy), "mapped writable");
        assert_eq!(t.give_back(D1, Mfn(31)), Err(Error::Busy), "mapped read-only");
        assert_eq!(t.give_back(D1, Mfn(23)), Err(Error::Busy), "a page table");
        assert_eq!(t.give_back(D1, Mfn(20)), Err(Error::Busy), "pinned");
        assert_eq!(t.give_back(D1, Mfn(41)), Err(Error::NotFound), "someone else's");
        assert_eq!(t.give_back(D1, Mfn(1 << 30)), Err(Error::NotFound), "no such frame");
        t.acquire_special(D1, Mfn(35), PageType::SharedInfo, &mut mem).unwrap();
        assert_eq!(t.give_back(D1, Mfn(35)), Err(Error::Busy), "shared info");
        assert_eq!(t.give_back(D1, Mfn(36)), Ok(()));
        assert_eq!(t.owner(Mfn(36)), None);
    }

    #[test]
    fn special_types() {
        let (mut t, mut mem) = setup();
        tree(&mut t, &mut mem);
        t.acquire_special(D1, Mfn(35), PageType::SharedInfo, &mut mem).unwrap();
        t.acquire_special(D1, Mfn(36), PageType::GrantTable, &mut mem).unwrap();
        t.acquire_special(D1, Mfn(37), PageType::Descriptor, &mut mem).unwrap();
        // The owner may map shared-info and grant frames writable, never a
        // descriptor table; none of them becomes a page table.
        assert_eq!(t.update_entry(D1, Mfn(23), 5, e(35, P | RW), false, &mut mem), Ok(()));
        assert_eq!(t.update_entry(D1, Mfn(23), 6, e(36, P | RW), false, &mut mem), Ok(()));
        assert_eq!(t.update_entry(D1, Mfn(23), 7, e(37, P | RW), false, &mut mem), Err(Error::Busy));
        assert_eq!(t.update_entry(D1, Mfn(23), 7, e(37, P), false, &mut mem), Ok(()));
        for f in [35, 36, 37] {
            assert_eq!(t.pin(D1, Mfn(f), 1, &mut mem), Err(Error::Busy));
        }
        assert_eq!(info(&t, 35).type_count, 2);
        t.update_entry(D1, Mfn(23), 5, 0, false, &mut mem).unwrap();
        assert_eq!((info(&t, 35).ty, info(&t, 35).type_count), (PageType::SharedInfo, 1));
        // A frame mapped writable cannot become a descriptor table.
        assert_eq!(t.acquire_special(D1, Mfn(30), PageType::Descriptor, &mut mem), Err(Error::Busy));
    }

    #[test]
    fn a_failed_pin_changes_nothing() {
        let (mut t, mut mem) = setup();
        tree(&mut t, &mut mem);
        // An L1 whose last entry maps the tree's L2 writable.
        mem.write_u64(Mfn(33), 0, e(34, P | RW));
        mem.write_u64(Mfn(33), 1, e(32, P));
        mem.write_u64(Mfn(33), 511, e(22, P | RW));
        let before_t = t.frames.clone();
        let before_m = *mem.frame(Mfn(33));
        assert_eq!(t.pin(D1, Mfn(33), 1, &mut mem), Err(Error::Invalid));
        assert_eq!(*mem.frame(Mfn(33)), before_m, "USER not written on failure");
        for (a, b) in t.frames.iter().zip(&before_t) {
            assert_eq!((a.owner, a.ty, a.type_count, a.ref_count, a.pinned), (b.owner, b.ty, b.type_count, b.ref_count, b.pinned));
        }
    }

    #[test]
    fn stale_translations_force_a_flush_before_a_type_change() {
        let (mut t, mut mem) = setup();
        tree(&mut t, &mut mem);
        t.take_flush();
        // Frame 30 loses its writable mapping; becoming a table needs a flush.
        t.update_entry(D1, Mfn(23), 0, 0, false, &mut mem).unwrap();
        assert!(t.take_flush().is_empty(), "dropping a mapping alone flushes nothing");
        t.pin(D1, Mfn(30), 1, &mut mem).unwrap();
        assert!(t.take_flush().full);
        // Unpinned (no entry named it), re-pinned: no flush.
        t.unpin(D1, Mfn(30), &mut mem).unwrap();
        t.pin(D1, Mfn(30), 1, &mut mem).unwrap();
        assert!(t.take_flush().is_empty());
        // The same type again after a drop needs none either.
        t.update_entry(D1, Mfn(23), 9, e(32, P | RW), false, &mut mem).unwrap();
        t.update_entry(D1, Mfn(23), 9, 0, false, &mut mem).unwrap();
        t.update_entry(D1, Mfn(23), 9, e(32, P | RW), false, &mut mem).unwrap();
        assert!(t.take_flush().is_empty());
        // A former L1 hooked into the tree becoming writable does.
        t.update_entry(D1, Mfn(22), 0, 0, false, &mut mem).unwrap();
        assert!(t.take_flush().is_empty());
        t.update_entry(D1, Mfn(30), 0, e(23, P | RW), false, &mut mem).unwrap();
        assert!(t.take_flush().full);
        // After a flush nothing is stale: giving back needs no new one.
        t.update_entry(D1, Mfn(30), 1, e(38, P), false, &mut mem).unwrap();
        t.update_entry(D1, Mfn(30), 1, 0, false, &mut mem).unwrap();
        assert_eq!(t.give_back(D1, Mfn(38)), Ok(()));
        assert!(t.take_flush().full, "freed while a translation may survive");
        t.update_entry(D1, Mfn(30), 2, e(39, P), false, &mut mem).unwrap();
        t.update_entry(D1, Mfn(30), 2, 0, false, &mut mem).unwrap();
        t.flush_all(1);
        t.take_flush();
        assert_eq!(t.give_back(D1, Mfn(39)), Ok(()));
        let f = t.take_flush();
        assert!(f.full && f.here, "a guest's flush reaches only its vCPUs: the frame is still stale");
    }

    thread_local! {
        static REMOTE_FLUSHES: core::cell::Cell<u32> = const { core::cell::Cell::new(0) };
    }

    fn count_remote_flush() {
        REMOTE_FLUSHES.with(|c| c.set(c.get() + 1));
    }

    #[test]
    fn other_cpus_are_flushed_before_a_stale_frame_changes_type() {
        let (mut t, mut mem) = setup();
        t.set_remote_flush(count_remote_flush);
        tree(&mut t, &mut mem);
        let before = REMOTE_FLUSHES.with(|c| c.get());
        t.update_entry(D1, Mfn(23), 0, 0, false, &mut mem).unwrap();
        assert_eq!(REMOTE_FLUSHES.with(|c| c.get()), before, "dropping a mapping flushes nothing");
        // A validation that fails still flushed first: the flush comes
        // before the frame is read as a table.
        mem.write_u64(Mfn(30), 0, e(22, P | RW));
        assert_eq!(t.pin(D1, Mfn(30), 1, &mut mem), Err(Error::Invalid));
        assert_eq!(REMOTE_FLUSHES.with(|c| c.get()), before + 1);
        mem.write_u64(Mfn(30), 0, 0);
        t.pin(D1, Mfn(30), 1, &mut mem).unwrap();
        assert_eq!(REMOTE_FLUSHES.with(|c| c.get()), before + 1, "the first flush ended the staleness");
        let f = t.take_flush();
        assert!(f.full && f.here && f.reaches(7));
    }

    #[test]
    fn flush_requests_merge() {
        let (mut t, _) = setup();
        for i in 0..Flush::MAX_PAGES as u64 {
            t.flush_page(1 << (i % 2), i << 12);
        }
        let f = t.take_flush();
        assert_eq!(f.pages().len(), Flush::MAX_PAGES);
        assert_eq!(f.vcpus, 0b11);
        assert!(f.reaches(0) && f.reaches(1) && !f.reaches(2) && !f.here);
        for i in 0..=Flush::MAX_PAGES as u64 {
            t.flush_page(4, i << 12);
        }
        let f = t.take_flush();
        assert!(f.full && f.pages().is_empty() && f.vcpus == 4);
        assert!(t.take_flush().is_empty());
        assert!(!Flush::default().reaches(0), "no work reaches nobody");
    }

    #[test]
    fn teardown_returns_every_frame_and_reports_a_leak() {
        let (mut t, mut mem) = setup();
        tree(&mut t, &mut mem);
        t.acquire_base(D1, Mfn(20)).unwrap();
        t.acquire_special(D1, Mfn(35), PageType::SharedInfo, &mut mem).unwrap();
        // With the tables, the base pointer and the registration still up,
        // seven frames are in use: they are reported and kept out of the
        // allocator, the thirteen others are freed.
        let mut freed = Vec::new();
        assert_eq!(t.release_all(D1, |m, _| freed.push(m.0)), Err(Leaked { frames: 7, first: Mfn(20) }));
        assert_eq!(freed.len(), 13);
        assert!([20, 21, 22, 23, 30, 31, 35].iter().all(|&f| t.owner(Mfn(f)) == Some(D1)));
        // Dropped in teardown order, everything goes.
        t.release_base(Mfn(20), &mut mem);
        t.release_special(Mfn(35), &mut mem);
        t.unpin_all(D1, &mut mem);
        assert_eq!(t.release_all(D1, |m, _| freed.push(m.0)), Ok(Released { freed: 7, orphaned: 0 }));
        assert!((20..40).all(|f| t.owner(Mfn(f)).is_none()));
        assert_eq!(t.owner(Mfn(40)), Some(D2));
    }

    // ---- the invariants, checked from scratch ----------------------------

    /// Recounts every use and reference from what exists — allocations,
    /// pins, base pointers, registrations and the entries of every table
    /// that holds a page-table type — and checks the table agrees, that no
    /// page-table or descriptor frame is mapped writable, and that no entry
    /// names a frame of another owner.
    /// `grants` lists every grant use that exists (frame, writable); a
    /// present L1 entry naming another owner's frame must be one of them.
    pub(crate) fn audit(t: &FrameTable, mem: &VecMemory, bases: &[Mfn], specials: &[Mfn], grants: &[(Mfn, bool)]) -> Result<(), String> {
        let mut types: HashMap<u64, u32> = HashMap::new();
        let mut refs: HashMap<u64, u32> = HashMap::new();
        let mut uses: HashMap<u64, u32> = HashMap::new();
        for &(m, writable) in grants {
            *refs.entry(m.0).or_default() += 1;
            *uses.entry(m.0).or_default() += 1;
            if writable {
                *types.entry(m.0).or_default() += 1;
            }
        }
        for (i, f) in t.frames.iter().enumerate() {
            let i = i as u64;
            if f.owner.is_some() {
                *refs.entry(i).or_default() += 1;
            }
            if f.pinned {
                *types.entry(i).or_default() += 1;
                *refs.entry(i).or_default() += 1;
            }
            if (f.ty == PageType::None) != (f.type_count == 0) {
                return Err(format!("frame {i}: type {:?} with count {}", f.ty, f.type_count));
            }
        }
        for m in bases.iter().chain(specials) {
            *types.entry(m.0).or_default() += 1;
            *refs.entry(m.0).or_default() += 1;
        }
        for (i, f) in t.frames.iter().enumerate() {
            let Some(level) = f.ty.table_level() else { continue };
            for index in 0..ENTRIES {
                let entry = Pte(mem.read_u64(Mfn(i as u64), index));
                if is_hypervisor_slot(level, index) {
                    if entry != t.hypervisor_slots[index - 256] {
                        return Err(format!("L4 {i} slot {index} is not the hypervisor's"));
                    }
                    continue;
                }
                if !entry.is_present() {
                    continue;
                }
                let target = entry.mfn();
                let tf = t.info(target).ok_or(format!("{i}[{index}] names {target} outside RAM"))?;
                if tf.owner != f.owner {
                    // A grant mapping: its grant use holds the references.
                    if level != 1 || !grants.iter().any(|g| g.0 == target) {
                        return Err(format!("table {i} of {:?} maps {target} of {:?}", f.owner, tf.owner));
                    }
                    continue;
                }
                if !entry.flags().contains(PteFlags::USER) {
                    return Err(format!("{i}[{index}] lacks USER"));
                }
                *refs.entry(target.0).or_default() += 1;
                if level == 1 && entry.flags().contains(PteFlags::WRITABLE) {
                    if !matches!(tf.ty, PageType::Writable | PageType::SharedInfo | PageType::GrantTable) {
                        return Err(format!("{target} of type {:?} mapped writable by {i}[{index}]", tf.ty));
                    }
                    *types.entry(target.0).or_default() += 1;
                } else if level > 1 {
                    if tf.ty != PageType::table(level - 1) {
                        return Err(format!("L{level} {i}[{index}] names {target} of type {:?}", tf.ty));
                    }
                    *types.entry(target.0).or_default() += 1;
                }
            }
        }
        for (i, f) in t.frames.iter().enumerate() {
            let i = i as u64;
            let (want_t, want_r) = (types.get(&i).copied().unwrap_or(0), refs.get(&i).copied().unwrap_or(0));
            if f.grant_uses != uses.get(&i).copied().unwrap_or(0) {
                return Err(format!("frame {i}: {} grant uses recorded, {:?} exist", f.grant_uses, uses.get(&i)));
            }
            if f.type_count != want_t || f.ref_count != want_r {
                return Err(format!(
                    "frame {i} ({:?}): counts {}/{} but {want_t} uses and {want_r} references exist",
                    f.ty, f.type_count, f.ref_count
                ));
            }
        }
        Ok(())
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// The guest writes a frame it may write (untyped or writable).
        Write { dom: bool, frame: u8, index: u16, value: u64 },
        Update { dom: bool, table: u8, index: u16, value: u64, preserve: bool },
        Pin { dom: bool, frame: u8, level: u32 },
        Unpin { dom: bool, frame: u8 },
        SetBase { dom: bool, frame: u8 },
        GiveBack { dom: bool, frame: u8 },
        Flush,
    }

    /// Entry values that hit the interesting cases: frames of either
    /// domain, of the hypervisor, outside RAM; writable or not; the bits
    /// M5 refuses.
    /// Frames ops act on: mostly a few per domain, so tables fill, chain
    /// and fail validation part-way; sometimes any.
    fn hot_frame() -> impl Strategy<Value = u8> + Clone {
        prop_oneof![3 => 20u8..25, 3 => 40u8..45, 1 => 20u8..60]
    }

    fn entry_value() -> impl Strategy<Value = u64> {
        let frame = prop_oneof![6 => hot_frame().prop_map(u64::from), 1 => 0u64..20, 1 => 60u64..70];
        let flags = prop_oneof![
            4 => Just(P | RW),
            4 => Just(P),
            1 => Just(0),
            1 => Just(P | PteFlags::GLOBAL.bits()),
            1 => Just(P | PteFlags::HUGE.bits()),
            1 => Just(P | 1 << 50),
        ];
        (frame, flags).prop_map(|(f, fl)| e(f, fl))
    }

    fn index() -> impl Strategy<Value = u16> {
        prop_oneof![6 => 0u16..3, 1 => 250u16..275, 1 => 0u16..512]
    }

    fn op() -> impl Strategy<Value = Op> {
        let frame = hot_frame();
        prop_oneof![
            5 => (any::<bool>(), frame.clone(), index(), entry_value()).prop_map(|(dom, frame, index, value)| Op::Write { dom, frame, index, value }),
            6 => (any::<bool>(), frame.clone(), index(), entry_value(), any::<bool>())
                .prop_map(|(dom, table, index, value, preserve)| Op::Update { dom, table, index, value, preserve }),
            4 => (any::<bool>(), frame.clone(), 1u32..=4).prop_map(|(dom, frame, level)| Op::Pin { dom, frame, level }),
            2 => (any::<bool>(), frame.clone()).prop_map(|(dom, frame)| Op::Unpin { dom, frame }),
            1 => (any::<bool>(), frame.clone()).prop_map(|(dom, frame)| Op::SetBase { dom, frame }),
            1 => (any::<bool>(), frame).prop_map(|(dom, frame)| Op::GiveBack { dom, frame }),
            1 => Just(Op::Flush),
        ]
    }

    type Snapshot = Vec<(Option<DomainId>, PageType, u32, u32, bool)>;

    fn snapshot(t: &FrameTable) -> Snapshot {
        t.frames.iter().map(|f| (f.owner, f.ty, f.type_count, f.ref_count, f.pinned)).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Random sequences of guest writes and table operations by two
        /// domains keep every invariant after every step; a refused
        /// operation changes nothing; teardown returns every frame.
        #[test]
        fn invariants_hold_under_random_operations(ops in proptest::collection::vec(op(), 1..120)) {
            let (mut t, mut mem) = setup();
            let mut bases: HashMap<DomainId, Mfn> = HashMap::new();
            for op in ops {
                let before = (snapshot(&t), mem.clone());
                let d = |x: bool| if x { D2 } else { D1 };
                let result = match op {
                    Op::Write { dom, frame, index, value } => {
                        // Only what the guest could reach with a writable
                        // mapping: its own untyped or writable frames.
                        let f = info(&t, u64::from(frame));
                        if f.owner == Some(d(dom)) && matches!(f.ty, PageType::None | PageType::Writable) {
                            mem.write_u64(Mfn(u64::from(frame)), usize::from(index), value);
                        }
                        Ok(())
                    }
                    Op::Update { dom, table, index, value, preserve } =>
                        t.update_entry(d(dom), Mfn(u64::from(table)), usize::from(index), value, preserve, &mut mem),
                    Op::Pin { dom, frame, level } => t.pin(d(dom), Mfn(u64::from(frame)), level, &mut mem),
                    Op::Unpin { dom, frame } => t.unpin(d(dom), Mfn(u64::from(frame)), &mut mem),
                    Op::SetBase { dom, frame } => {
                        let r = t.acquire_base(d(dom), Mfn(u64::from(frame)));
                        if r.is_ok() {
                            if let Some(old) = bases.insert(d(dom), Mfn(u64::from(frame))) {
                                t.release_base(old, &mut mem);
                            }
                        }
                        r
                    }
                    Op::GiveBack { dom, frame } => t.give_back(d(dom), Mfn(u64::from(frame))),
                    Op::Flush => {
                        t.flush_all(1);
                        Ok(())
                    }
                };
                if result.is_err() {
                    prop_assert_eq!(&snapshot(&t), &before.0, "a refused operation changed the table");
                    prop_assert!(mem == before.1, "a refused operation changed memory");
                }
                let base_list: Vec<Mfn> = bases.values().copied().collect();
                if let Err(why) = audit(&t, &mem, &base_list, &[], &[]) {
                    prop_assert!(false, "{}", why);
                }
            }
            for (dom, base) in bases.drain() {
                t.release_base(base, &mut mem);
                let _ = dom;
            }
            for dom in [D1, D2] {
                t.unpin_all(dom, &mut mem);
                let released = t.release_all(dom, |_, _| {});
                prop_assert!(released.is_ok(), "teardown leaked: {:?}", released);
            }
            let all_free = t.frames.iter().all(|f| *f == FrameInfo { stale_epoch: f.stale_epoch, prev_type: f.prev_type, ..FrameInfo::FREE });
            prop_assert!(all_free, "a frame is still owned or counted after teardown");
        }
    }
}
