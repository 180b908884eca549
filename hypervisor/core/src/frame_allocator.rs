//! The machine frame allocator: a bitmap over every frame of RAM.
//!
//! One bit per frame below the highest usable frame; a set bit is a free
//! frame. Frames that are not RAM, or that hold the hypervisor image, the
//! boot modules or the allocator's own heap, are never set. Allocation takes
//! the lowest free frame, so early page tables stay inside the boot map.

use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

use crate::addr::Mfn;

#[derive(Debug, PartialEq, Eq)]
pub enum FreeError {
    /// The allocator never hands out this frame (not RAM, or reserved).
    NotManaged(Mfn),
    /// The frame is free already.
    DoubleFree(Mfn),
}

pub struct FrameAllocator {
    free: Vec<u64>,
    /// Frames the allocator may hand out at all: RAM that is not reserved.
    managed: Vec<u64>,
    limit: u64,
    free_count: u64,
    /// No free frame lies below this word.
    search_from: usize,
}

impl FrameAllocator {
    /// Frames in `usable` are free, minus any in `reserved`.
    pub fn new(usable: &[Range<Mfn>], reserved: &[Range<Mfn>]) -> FrameAllocator {
        let limit = usable.iter().map(|r| r.end.0).max().unwrap_or(0);
        let words = usize::try_from(limit.div_ceil(64)).expect("bitmap fits in memory");
        let mut alloc = FrameAllocator { free: vec![0; words], managed: vec![0; words], limit, free_count: 0, search_from: 0 };
        for r in usable {
            for f in r.start.0..r.end.0 {
                if !reserved.iter().any(|x| x.start.0 <= f && f < x.end.0) {
                    alloc.set(f, true);
                    alloc.managed[(f / 64) as usize] |= 1 << (f % 64);
                }
            }
        }
        alloc.free_count = alloc.free.iter().map(|w| u64::from(w.count_ones())).sum();
        alloc
    }

    fn set(&mut self, f: u64, free: bool) {
        let (w, b) = ((f / 64) as usize, f % 64);
        if free {
            self.free[w] |= 1 << b;
        } else {
            self.free[w] &= !(1 << b);
        }
    }

    fn is_free_bit(&self, f: u64) -> bool {
        self.free[(f / 64) as usize] & (1 << (f % 64)) != 0
    }

    /// Takes the lowest free frame.
    pub fn alloc(&mut self) -> Option<Mfn> {
        let w = (self.search_from..self.free.len()).find(|&w| self.free[w] != 0)?;
        self.search_from = w;
        let f = w as u64 * 64 + u64::from(self.free[w].trailing_zeros());
        self.set(f, false);
        self.free_count -= 1;
        Some(Mfn(f))
    }

    /// Takes `n` frames, or none at all if fewer than `n` are free.
    pub fn alloc_many(&mut self, n: u64) -> Option<Vec<Mfn>> {
        if n > self.free_count {
            return None;
        }
        let count = usize::try_from(n).ok()?;
        let mut frames = Vec::new();
        frames.try_reserve_exact(count).ok()?;
        for _ in 0..n {
            frames.push(self.alloc().expect("free_count said there were enough"));
        }
        Some(frames)
    }

    /// Takes the lowest run of `count` free frames (a power of two) that is
    /// aligned to `count` and ends at or below frame `end`: a
    /// machine-contiguous extent, for DMA by a domain without an IOMMU.
    pub fn alloc_contiguous(&mut self, count: u64, end: Mfn) -> Option<Mfn> {
        assert!(count.is_power_of_two());
        let end = end.0.min(self.limit);
        let mut start = (self.search_from as u64 * 64).next_multiple_of(count);
        while start.checked_add(count)? <= end {
            match (start..start + count).rev().find(|&f| !self.is_free_bit(f)) {
                // Skip past the taken frame, to the next aligned start.
                Some(taken) => start = (taken + 1).next_multiple_of(count),
                None => {
                    for f in start..start + count {
                        self.set(f, false);
                    }
                    self.free_count -= count;
                    return Some(Mfn(start));
                }
            }
        }
        None
    }

    /// Returns a frame taken by [`alloc`](Self::alloc).
    pub fn free(&mut self, mfn: Mfn) -> Result<(), FreeError> {
        if mfn.0 >= self.limit || self.managed[(mfn.0 / 64) as usize] & (1 << (mfn.0 % 64)) == 0 {
            return Err(FreeError::NotManaged(mfn));
        }
        if self.is_free_bit(mfn.0) {
            return Err(FreeError::DoubleFree(mfn));
        }
        self.set(mfn.0, true);
        self.free_count += 1;
        self.search_from = self.search_from.min((mfn.0 / 64) as usize);
        Ok(())
    }

    /// One past the highest frame the allocator manages.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn free_count(&self) -> u64 {
        self.free_count
    }

    pub fn is_free(&self, mfn: Mfn) -> bool {
        mfn.0 < self.limit && self.is_free_bit(mfn.0)
    }
}

/// The lowest run of `count` frames inside one `usable` range that touches
/// no `reserved` range: where the boot code puts the heap before the
/// allocator (which lives on the heap) exists.
pub fn find_free_run(usable: &[Range<Mfn>], reserved: &[Range<Mfn>], count: u64) -> Option<Range<Mfn>> {
    let mut best: Option<Range<Mfn>> = None;
    for r in usable {
        let mut start = r.start.0;
        while start.checked_add(count)? <= r.end.0 {
            let end = start + count;
            match reserved.iter().filter(|x| x.start.0 < end && start < x.end.0).map(|x| x.end.0).max() {
                Some(past) => start = past,
                None => {
                    if best.as_ref().is_none_or(|b| start < b.start.0) {
                        best = Some(Mfn(start)..Mfn(end));
                    }
                    break;
                }
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn free_run_avoids_reserved_ranges() {
        let ram = [Mfn(0x100)..Mfn(0x200), Mfn(0x10)..Mfn(0x40)];
        let reserved = [Mfn(0x100)..Mfn(0x120), Mfn(0x130)..Mfn(0x131), Mfn(0x10)..Mfn(0x30)];
        assert_eq!(find_free_run(&ram, &reserved, 0x10), Some(Mfn(0x30)..Mfn(0x40)));
        assert_eq!(find_free_run(&ram, &reserved, 0x11), Some(Mfn(0x131)..Mfn(0x142)));
        assert_eq!(find_free_run(&ram, &reserved, 0xd0), None);
        assert_eq!(find_free_run(&ram, &reserved, 0xcf), Some(Mfn(0x131)..Mfn(0x200)));
    }

    #[test]
    fn reserved_frames_are_never_handed_out() {
        let mut a = FrameAllocator::new(&[Mfn(0x100)..Mfn(0x200)], &[Mfn(0x100)..Mfn(0x180)]);
        assert_eq!(a.free_count(), 0x80);
        let mut seen = Vec::new();
        while let Some(f) = a.alloc() {
            assert!((0x180..0x200).contains(&f.0));
            seen.push(f);
        }
        assert_eq!(seen.len(), 0x80);
        assert_eq!(a.free(Mfn(0x100)), Err(FreeError::NotManaged(Mfn(0x100))));
        assert_eq!(a.free(Mfn(0x1000)), Err(FreeError::NotManaged(Mfn(0x1000))));
        assert_eq!(a.free(seen[0]), Ok(()));
        assert_eq!(a.free(seen[0]), Err(FreeError::DoubleFree(seen[0])));
    }

    #[test]
    fn alloc_many_is_all_or_nothing() {
        let mut a = FrameAllocator::new(&[Mfn(0)..Mfn(10)], &[]);
        assert!(a.alloc_many(11).is_none());
        assert_eq!(a.free_count(), 10);
        assert_eq!(a.alloc_many(10).map(|v| v.len()), Some(10));
        assert_eq!(a.free_count(), 0);
    }

    #[test]
    fn contiguous_runs_are_aligned_free_and_below_the_limit() {
        let mut a = FrameAllocator::new(&[Mfn(0)..Mfn(64)], &[Mfn(0)..Mfn(3), Mfn(17)..Mfn(18)]);
        assert_eq!(a.alloc_contiguous(8, Mfn(64)), Some(Mfn(8)));
        assert_eq!(a.alloc_contiguous(8, Mfn(64)), Some(Mfn(24)), "16..24 holds the reserved 17");
        assert_eq!(a.alloc_contiguous(4, Mfn(64)), Some(Mfn(4)));
        assert_eq!(a.alloc_contiguous(16, Mfn(48)), Some(Mfn(32)));
        assert_eq!(a.alloc_contiguous(16, Mfn(64)), Some(Mfn(48)));
        assert_eq!(a.alloc_contiguous(16, Mfn(64)), None);
        assert_eq!(a.alloc_contiguous(1, Mfn(3)), None, "below 3 is reserved");
        assert_eq!(a.free_count(), 64 - 4 - 8 - 8 - 4 - 16 - 16);
        for f in 8..16 {
            assert_eq!(a.free(Mfn(f)), Ok(()));
        }
        assert_eq!(a.alloc_contiguous(8, Mfn(64)), Some(Mfn(8)));
    }

    proptest! {
        /// Any sequence of allocations and frees keeps the count exact, never
        /// hands out a frame twice, and never hands out a reserved frame.
        #[test]
        fn count_and_uniqueness(ops in proptest::collection::vec(any::<(bool, u8)>(), 1..400)) {
            let mut a = FrameAllocator::new(&[Mfn(3)..Mfn(70), Mfn(100)..Mfn(230)], &[Mfn(60)..Mfn(110)]);
            let total = a.free_count();
            prop_assert_eq!(total, (60 - 3) + (230 - 110));
            let mut held: Vec<Mfn> = Vec::new();
            for (take, pick) in ops {
                if take {
                    if let Some(f) = a.alloc() {
                        prop_assert!(!held.contains(&f));
                        prop_assert!(!(60..110).contains(&f.0));
                        held.push(f);
                    } else {
                        prop_assert_eq!(held.len() as u64, total);
                    }
                } else if !held.is_empty() {
                    let f = held.swap_remove(pick as usize % held.len());
                    prop_assert_eq!(a.free(f), Ok(()));
                }
                prop_assert_eq!(a.free_count() + held.len() as u64, total);
            }
        }
    }
}
