//! Frame numbers and the fixed regions of every address space.

use core::fmt;

pub const PAGE_SHIFT: u32 = 12;
pub const PAGE_SIZE: usize = 1 << PAGE_SHIFT;

/// A machine frame number: physical address >> 12.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mfn(pub u64);

/// A pseudo-physical frame number, as a domain numbers its own memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pfn(pub u64);

impl Mfn {
    pub const fn from_phys(addr: u64) -> Mfn {
        Mfn(addr >> PAGE_SHIFT)
    }
    pub const fn phys(self) -> u64 {
        self.0 << PAGE_SHIFT
    }
}

impl fmt::Display for Mfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mfn {:#x}", self.0)
    }
}

/// Top-level (L4) slots the hypervisor reserves in every address space:
/// 256..272, the hole Linux's x86_64 layout leaves below its direct map.
pub const HYPERVISOR_L4_SLOTS: core::ops::Range<usize> = 256..272;
/// First virtual address of the hypervisor's range.
pub const HYPERVISOR_BASE: u64 = 0xffff_8000_0000_0000;
/// One past the last virtual address of the hypervisor's range.
pub const HYPERVISOR_END: u64 = 0xffff_8800_0000_0000;
/// The hypervisor's map of all machine memory (slot 262). Slot 256 holds
/// the read-only m2p table the ABI places there (`MEM_M2P_VIRT_START`).
pub const DIRECT_MAP_BASE: u64 = 0xffff_8300_0000_0000;

/// Whether `va` is a canonical 48-bit virtual address.
pub const fn is_canonical(va: u64) -> bool {
    let top = va >> 47;
    top == 0 || top == 0x1_ffff
}

/// Whether any byte of `[va, va + len)` lies in the hypervisor's range or is
/// not canonical, or the range wraps. An empty range is never refused.
pub fn range_is_guest(va: u64, len: u64) -> bool {
    if len == 0 {
        return true;
    }
    let Some(last) = va.checked_add(len - 1) else { return false };
    if !is_canonical(va) || !is_canonical(last) {
        return false;
    }
    // Canonical and not wrapping: the range cannot straddle the hole between
    // the halves, because both ends are canonical and the range is ordered.
    if (va >> 47) != (last >> 47) {
        return false;
    }
    last < HYPERVISOR_BASE || va >= HYPERVISOR_END
}

/// Rounds up to a page boundary; `None` on overflow.
pub const fn page_align_up(x: u64) -> Option<u64> {
    match x.checked_add(PAGE_SIZE as u64 - 1) {
        Some(v) => Some(v & !(PAGE_SIZE as u64 - 1)),
        None => None,
    }
}

pub const fn page_align_down(x: u64) -> u64 {
    x & !(PAGE_SIZE as u64 - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_ranges() {
        assert!(range_is_guest(0x1000, 0x1000));
        assert!(range_is_guest(0xffff_ffff_8000_0000, 0x1000));
        assert!(range_is_guest(HYPERVISOR_END, 8));
        assert!(range_is_guest(0, 0));
        assert!(!range_is_guest(HYPERVISOR_BASE, 1));
        assert!(!range_is_guest(HYPERVISOR_BASE - 8, 16));
        assert!(!range_is_guest(HYPERVISOR_END - 1, 1));
        assert!(!range_is_guest(0x0000_8000_0000_0000, 1));
        assert!(!range_is_guest(0x0000_7fff_ffff_fff0, 0x20));
        assert!(!range_is_guest(u64::MAX, 2));
    }

    #[test]
    fn slots_match_addresses() {
        let slot = |va: u64| ((va >> 39) & 511) as usize;
        assert_eq!(slot(HYPERVISOR_BASE), HYPERVISOR_L4_SLOTS.start);
        assert_eq!(slot(HYPERVISOR_END), HYPERVISOR_L4_SLOTS.end);
        assert_eq!(slot(DIRECT_MAP_BASE), 262);
        assert_eq!(slot(hypercall_abi::memory::memory_consts::M2P_VIRT_START), 256);
    }
}
