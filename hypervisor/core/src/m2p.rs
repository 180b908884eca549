//! The m2p table: for every machine frame, the pseudo-physical frame its
//! owner says it backs (SPEC §12.1). One u64 per frame, in frames the
//! hypervisor owns; the hypervisor maps them read-only into every guest
//! address space at `MEM_M2P_VIRT_START`, so a guest translates machine to
//! pseudo-physical addresses without a call. Frames no domain owns read
//! `MEM_INVALID_FRAME`.

use alloc::vec::Vec;

use hypercall_abi::memory::memory_consts::INVALID_FRAME;

use crate::addr::{Mfn, PAGE_SIZE};
use crate::frame_allocator::FrameAllocator;
use crate::phys::PhysMemory;

const PER_FRAME: u64 = (PAGE_SIZE / 8) as u64;

pub struct M2p {
    frames: Vec<Mfn>,
    entries: u64,
}

impl M2p {
    /// Takes the frames for an m2p of one entry per frame below the
    /// allocator's limit, and marks every entry invalid. `None` if the
    /// allocator has too few frames.
    pub fn allocate(allocator: &mut FrameAllocator, mem: &mut impl PhysMemory) -> Option<M2p> {
        let entries = allocator.limit();
        let frames = allocator.alloc_many(entries.div_ceil(PER_FRAME))?;
        for &f in &frames {
            for i in 0..PAGE_SIZE / 8 {
                mem.write_u64(f, i, INVALID_FRAME);
            }
        }
        Some(M2p { frames, entries })
    }

    /// Entries: one more than the highest machine frame.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// The frames holding the table, in order.
    pub fn frames(&self) -> &[Mfn] {
        &self.frames
    }

    fn slot(&self, mfn: Mfn) -> (Mfn, usize) {
        assert!(mfn.0 < self.entries, "{mfn} beyond the m2p");
        (self.frames[(mfn.0 / PER_FRAME) as usize], (mfn.0 % PER_FRAME) as usize)
    }

    pub fn get(&self, mem: &impl PhysMemory, mfn: Mfn) -> u64 {
        let (frame, index) = self.slot(mfn);
        mem.read_u64(frame, index)
    }

    pub fn set(&self, mem: &mut impl PhysMemory, mfn: Mfn, pfn: u64) {
        let (frame, index) = self.slot(mfn);
        mem.write_u64(frame, index, pfn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::VecMemory;

    #[test]
    fn one_entry_per_frame_all_invalid_at_first() {
        let mut mem = VecMemory::new(1200);
        let mut alloc = FrameAllocator::new(&[Mfn(100)..Mfn(1200)], &[]);
        let m2p = M2p::allocate(&mut alloc, &mut mem).unwrap();
        assert_eq!(m2p.entries(), 1200);
        assert_eq!(m2p.frames().len(), 3);
        assert_eq!(m2p.get(&mem, Mfn(0)), INVALID_FRAME);
        assert_eq!(m2p.get(&mem, Mfn(1199)), INVALID_FRAME);
        m2p.set(&mut mem, Mfn(700), 42);
        assert_eq!(m2p.get(&mem, Mfn(700)), 42);
        assert_eq!(mem.read_u64(m2p.frames()[1], 700 - 512), 42);
    }
}
