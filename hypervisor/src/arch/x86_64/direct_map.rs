//! The hypervisor's map of machine memory, at `DIRECT_MAP_BASE` + physical
//! address, and the `PhysMemory` implementation over it.

use core::ops::Range;
use core::sync::atomic::{AtomicU16, AtomicU64, Ordering};

use veneer_core::addr::{Mfn, DIRECT_MAP_BASE, PAGE_SIZE};
use veneer_core::phys::PhysMemory;

/// The virtual address at which the hypervisor sees physical `addr`.
pub const fn phys_to_virt(addr: u64) -> u64 {
    DIRECT_MAP_BASE + addr
}

/// Machine RAM, reached through the direct map. It holds the RAM regions so
/// that a frame number from a guest page table is never turned into an
/// address outside RAM.
pub struct DirectMap {
    ram: [Range<Mfn>; MAX_RAM_REGIONS],
    count: usize,
}

pub const MAX_RAM_REGIONS: usize = 32;

impl DirectMap {
    /// # Safety
    /// Every frame of `ram` must be mapped read-write in the direct map for
    /// as long as the value lives, and used only by the hypervisor or the
    /// domain that owns it.
    pub unsafe fn new(ram: &[Range<Mfn>]) -> DirectMap {
        let mut map = DirectMap { ram: [const { Mfn(0)..Mfn(0) }; MAX_RAM_REGIONS], count: 0 };
        for r in ram.iter().take(MAX_RAM_REGIONS) {
            map.ram[map.count] = r.clone();
            map.count += 1;
        }
        map
    }
}

impl DirectMap {
    /// Word `index` of RAM frame `mfn` as an atomic, for words a guest
    /// changes concurrently.
    fn atomic(&self, mfn: Mfn, index: usize) -> &AtomicU64 {
        assert!(self.contains(mfn) && index < PAGE_SIZE / 8, "{mfn} word {index} is not RAM");
        // SAFETY: the word is inside a RAM frame that `new`'s contract keeps
        // mapped, 8-byte aligned; every access to it that may race (the
        // guest's and these) is atomic.
        unsafe { AtomicU64::from_ptr((phys_to_virt(mfn.phys()) as *mut u64).add(index)) }
    }
}

impl DirectMap {
    /// The 16-bit value at byte `offset` of RAM frame `mfn` as an atomic.
    fn atomic16(&self, mfn: Mfn, offset: usize) -> &AtomicU16 {
        assert!(self.contains(mfn) && offset < PAGE_SIZE && offset.is_multiple_of(2), "{mfn} byte {offset} is not an aligned u16 of RAM");
        // SAFETY: inside a RAM frame `new`'s contract keeps mapped, 2-byte
        // aligned; every access to it that may race (the guest's and these)
        // is atomic.
        unsafe { AtomicU16::from_ptr((phys_to_virt(mfn.phys()) as *mut u8).add(offset).cast::<u16>()) }
    }
}

impl PhysMemory for DirectMap {
    fn contains(&self, mfn: Mfn) -> bool {
        self.ram[..self.count].iter().any(|r| r.contains(&mfn))
    }

    fn frame(&self, mfn: Mfn) -> &[u8; PAGE_SIZE] {
        assert!(self.contains(mfn), "{mfn} is not RAM");
        // SAFETY: `mfn` is RAM, which `new`'s contract keeps mapped; the
        // borrow of `self` keeps callers from holding a mutable view at the
        // same time through this map.
        unsafe { &*(phys_to_virt(mfn.phys()) as *const [u8; PAGE_SIZE]) }
    }

    fn fetch_or_u64(&mut self, mfn: Mfn, index: usize, bits: u64) -> u64 {
        self.atomic(mfn, index).fetch_or(bits, Ordering::SeqCst)
    }

    fn fetch_and_u64(&mut self, mfn: Mfn, index: usize, bits: u64) -> u64 {
        self.atomic(mfn, index).fetch_and(bits, Ordering::SeqCst)
    }

    fn read_u16(&self, mfn: Mfn, offset: usize) -> u16 {
        self.atomic16(mfn, offset).load(Ordering::SeqCst)
    }

    fn compare_exchange_u16(&mut self, mfn: Mfn, offset: usize, current: u16, new: u16) -> Result<u16, u16> {
        self.atomic16(mfn, offset).compare_exchange(current, new, Ordering::SeqCst, Ordering::SeqCst)
    }

    fn fetch_and_u16(&mut self, mfn: Mfn, offset: usize, bits: u16) -> u16 {
        self.atomic16(mfn, offset).fetch_and(bits, Ordering::SeqCst)
    }

    fn copy_between(&mut self, src: Mfn, src_off: usize, dst: Mfn, dst_off: usize, len: usize) {
        assert!(self.contains(src) && self.contains(dst), "{src} or {dst} is not RAM");
        assert!(src_off + len <= PAGE_SIZE && dst_off + len <= PAGE_SIZE, "a copy crosses its frame");
        // SAFETY: both ranges lie inside RAM frames `new`'s contract keeps
        // mapped; `copy` allows them to overlap (the same frame), and `&mut
        // self` keeps any other view of them within the hypervisor from
        // living across the call.
        unsafe {
            core::ptr::copy(
                (phys_to_virt(src.phys()) as *const u8).add(src_off),
                (phys_to_virt(dst.phys()) as *mut u8).add(dst_off),
                len,
            )
        }
    }

    fn frame_mut(&mut self, mfn: Mfn) -> &mut [u8; PAGE_SIZE] {
        assert!(self.contains(mfn), "{mfn} is not RAM");
        // SAFETY: as for `frame`; `&mut self` makes the view exclusive
        // within the hypervisor.
        unsafe { &mut *(phys_to_virt(mfn.phys()) as *mut [u8; PAGE_SIZE]) }
    }
}
