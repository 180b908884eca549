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

    /// The 16-bit little-endian value at byte `offset` (2-aligned) of a frame.
    fn read_u16(&self, mfn: Mfn, offset: usize) -> u16 {
        u16::from_le_bytes([self.frame(mfn)[offset], self.frame(mfn)[offset + 1]])
    }

    /// Replaces the 16-bit value at byte `offset` (2-aligned) with `new` if
    /// it is `current`; returns the value found, as `Ok` if it was replaced.
    /// Atomic in the hypervisor's implementation, for the flags of grant
    /// entries a guest changes concurrently (SPEC §17).
    fn compare_exchange_u16(&mut self, mfn: Mfn, offset: usize, current: u16, new: u16) -> Result<u16, u16> {
        let found = self.read_u16(mfn, offset);
        if found != current {
            return Err(found);
        }
        self.frame_mut(mfn)[offset..offset + 2].copy_from_slice(&new.to_le_bytes());
        Ok(found)
    }

    /// ANDs `bits` into the 16-bit value at byte `offset` (2-aligned);
    /// returns the old value. Atomic as `compare_exchange_u16`.
    fn fetch_and_u16(&mut self, mfn: Mfn, offset: usize, bits: u16) -> u16 {
        let old = self.read_u16(mfn, offset);
        self.frame_mut(mfn)[offset..offset + 2].copy_from_slice(&(old & bits).to_le_bytes());
        old
    }

    /// Copies `len` bytes from byte `src_off` of `src` to byte `dst_off` of
    /// `dst` (the same frame or not; the ranges may overlap). The callers
    /// keep both ranges inside their frames.
    fn copy_between(&mut self, src: Mfn, src_off: usize, dst: Mfn, dst_off: usize, len: usize) {
        let mut buf = [0u8; PAGE_SIZE];
        buf[..len].copy_from_slice(&self.frame(src)[src_off..src_off + len]);
        self.frame_mut(dst)[dst_off..dst_off + len].copy_from_slice(&buf[..len]);
    }
}
