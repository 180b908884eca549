//! x86_64 page-table entries (4-level paging).

use bitflags::bitflags;

use crate::addr::{Mfn, PAGE_SHIFT};

bitflags! {
    /// The flag bits of a page-table entry.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct PteFlags: u64 {
        const PRESENT = 1 << 0;
        const WRITABLE = 1 << 1;
        const USER = 1 << 2;
        const WRITE_THROUGH = 1 << 3;
        const CACHE_DISABLE = 1 << 4;
        const ACCESSED = 1 << 5;
        const DIRTY = 1 << 6;
        /// Large page in L2/L3 entries; PAT in L1 entries.
        const HUGE = 1 << 7;
        const GLOBAL = 1 << 8;
        const NO_EXECUTE = 1 << 63;
    }
}

/// Bits 12..52 of an entry: the frame address.
pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
pub const ENTRIES: usize = 512;

/// A page-table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pte(pub u64);

impl Pte {
    pub const fn new(mfn: Mfn, flags: PteFlags) -> Pte {
        Pte((mfn.0 << PAGE_SHIFT) & ADDR_MASK | flags.bits())
    }
    pub const fn flags(self) -> PteFlags {
        PteFlags::from_bits_truncate(self.0)
    }
    pub const fn mfn(self) -> Mfn {
        Mfn((self.0 & ADDR_MASK) >> PAGE_SHIFT)
    }
    pub const fn is_present(self) -> bool {
        self.0 & PteFlags::PRESENT.bits() != 0
    }
}

/// Index of `va` in the table at `level` (4 = top, 1 = leaf).
pub const fn table_index(va: u64, level: u32) -> usize {
    ((va >> (PAGE_SHIFT + 9 * (level - 1))) & 511) as usize
}

/// Bytes one entry at `level` maps: 4 KiB, 2 MiB, 1 GiB, 512 GiB.
pub const fn level_span(level: u32) -> u64 {
    1 << (PAGE_SHIFT + 9 * (level - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_fields() {
        let e = Pte::new(Mfn(0x12345), PteFlags::PRESENT | PteFlags::NO_EXECUTE);
        assert_eq!(e.mfn(), Mfn(0x12345));
        assert!(e.is_present());
        assert!(e.flags().contains(PteFlags::NO_EXECUTE));
        assert_eq!(table_index(0xffff_ffff_8000_0000, 4), 511);
        assert_eq!(table_index(0xffff_ffff_8000_0000, 3), 510);
        assert_eq!(table_index(0xffff_8000_0020_1000, 1), 1);
        assert_eq!(level_span(2), 2 << 20);
    }
}
