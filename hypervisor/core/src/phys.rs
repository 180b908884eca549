//! Access to machine memory by frame.

use crate::addr::{Mfn, PAGE_SIZE};

/// Machine memory, one frame at a time.
///
/// The hypervisor implements this over its direct map; host tests over a
/// vector. Callers ask only for frames that [`contains`](Self::contains)
/// reports; implementations may panic on others.
pub trait PhysMemory {
    /// Whether `mfn` is RAM this memory can reach.
    fn contains(&self, mfn: Mfn) -> bool;
    fn frame(&self, mfn: Mfn) -> &[u8; PAGE_SIZE];
    fn frame_mut(&mut self, mfn: Mfn) -> &mut [u8; PAGE_SIZE];

    /// Reads the 64-bit little-endian word at `index` of a frame.
    fn read_u64(&self, mfn: Mfn, index: usize) -> u64 {
        let b = &self.frame(mfn)[index * 8..index * 8 + 8];
        u64::from_le_bytes(b.try_into().expect("8 bytes"))
    }

    fn write_u64(&mut self, mfn: Mfn, index: usize, value: u64) {
        self.frame_mut(mfn)[index * 8..index * 8 + 8].copy_from_slice(&value.to_le_bytes());
    }

    /// ORs `bits` into word `index` and returns the old value. Frames a
    /// guest may write while the hypervisor does (the shared-info page)
    /// need this to be atomic: the hypervisor's implementation is; this
    /// default, for memory no guest runs on, is not.
    fn fetch_or_u64(&mut self, mfn: Mfn, index: usize, bits: u64) -> u64 {
        let old = self.read_u64(mfn, index);
        self.write_u64(mfn, index, old | bits);
        old
    }

    /// ANDs `bits` into word `index` and returns the old value; atomic as
    /// for `fetch_or_u64`.
    fn fetch_and_u64(&mut self, mfn: Mfn, index: usize, bits: u64) -> u64 {
        let old = self.read_u64(mfn, index);
        self.write_u64(mfn, index, old & bits);
        old
    }
}
