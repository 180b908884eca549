//! Memory: page-table updates, pinning, base pointers, TLB flushes, the
//! memory maps, the m2p table and reservations.

crate::abi_consts! {
    /// Fixed addresses and limits of the memory interface.
    pub mod memory_consts: u64, c_prefix = "MEM" {
        /// Bytes in a page and a frame.
        PAGE_SIZE = 4096;
        /// First virtual address the hypervisor reserves in every address
        /// space (top-level slot 256).
        HYPERVISOR_VIRT_START = 0xffff_8000_0000_0000;
        /// One past the last reserved address (slot 272 starts here).
        HYPERVISOR_VIRT_END = 0xffff_8800_0000_0000;
        /// First reserved top-level (L4) slot.
        HYPERVISOR_L4_FIRST_SLOT = 256;
        /// Last reserved top-level slot.
        HYPERVISOR_L4_LAST_SLOT = 271;
        /// Where the read-only m2p table (u64 per machine frame: its pfn)
        /// is mapped in every guest address space.
        M2P_VIRT_START = 0xffff_8000_0000_0000;
        /// One past the end of the m2p window (256 GiB: 2^35 frames).
        M2P_VIRT_END = 0xffff_8040_0000_0000;
        /// An m2p or p2m entry with no frame behind it.
        INVALID_FRAME = u64::MAX;
        /// The most entries one `mmu_update` takes.
        MMU_UPDATE_MAX = 512;
        /// The most operations one `mmuext_op` takes.
        MMUEXT_OP_MAX = 128;
        /// The most extents one reservation call takes.
        RESERVATION_MAX = 512;
        /// The largest extent order: 9 (2 MiB) with `SUPERPAGE_2M` or for
        /// `reservation_exchange`; 0 otherwise.
        EXTENT_ORDER_MAX = 9;
        /// The most entries a memory map has.
        MEMORY_MAP_MAX = 128;
    }
}

crate::abi_consts! {
    /// Bits of a page-table entry as the hypervisor validates them (the
    /// x86-64 format; `val` of `mmu_update` and `update_va_mapping`).
    pub mod pte: u64, c_prefix = "PTE" {
        /// Present.
        PRESENT = 1 << 0;
        /// Writable.
        RW = 1 << 1;
        /// User. The hypervisor sets it in every guest entry it writes
        /// (guest kernels run in ring 3); guests may leave it clear.
        USER = 1 << 2;
        /// Write-through.
        PWT = 1 << 3;
        /// Cache disable.
        PCD = 1 << 4;
        /// Accessed.
        ACCESSED = 1 << 5;
        /// Dirty (L1 entries and superpages).
        DIRTY = 1 << 6;
        /// Page size in L2 entries (needs `SUPERPAGE_2M`); PAT in L1 entries.
        PSE = 1 << 7;
        /// Global: refused (`Invalid`); the hypervisor owns global mappings.
        GLOBAL = 1 << 8;
        /// Bits 9–11: free for the guest; the hypervisor ignores and keeps them.
        AVAIL_LOW = 0x7 << 9;
        /// Machine-address bits 12–51.
        FRAME = 0x000f_ffff_ffff_f000;
        /// Bits 52–62: free for the guest; ignored and kept.
        AVAIL_HIGH = 0x7ff << 52;
        /// No-execute.
        NX = 1 << 63;
    }
}

crate::abi_enum! {
    /// Command in the low two bits of `MmuUpdate::ptr`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum MmuUpdateCmd: u64, c_prefix = "MMU" {
        /// Write `val` to the entry at machine address `ptr & !7`.
        PtUpdate = 0,
        /// Set the m2p entry of machine frame `ptr >> 12` to pfn `val`.
        MachphysUpdate = 1,
        /// As `PtUpdate`, but keep the accessed and dirty bits the CPU set in
        /// the old entry meanwhile (for read-modify-write of live entries).
        PtUpdatePreserveAd = 2,
    }
}

crate::abi_struct! {
    /// One entry of `mmu_update`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct MmuUpdate(size = 16) {
        /// Machine address of the target (8-byte aligned) with an
        /// `MmuUpdateCmd` in bits 0–1.
        @0 ptr: u64,
        /// The new entry, or the pfn for `MachphysUpdate`.
        @8 val: u64,
    }
}

impl MmuUpdate {
    /// An entry write of `val` to the page-table entry at machine address `pte_maddr`.
    pub const fn pt_update(pte_maddr: u64, val: u64) -> MmuUpdate {
        MmuUpdate { ptr: (pte_maddr & !7) | MmuUpdateCmd::PtUpdate as u64, val }
    }

    /// An m2p update: machine frame `mfn` now backs pfn `pfn`.
    pub const fn machphys_update(mfn: u64, pfn: u64) -> MmuUpdate {
        MmuUpdate { ptr: (mfn << 12) | MmuUpdateCmd::MachphysUpdate as u64, val: pfn }
    }

    /// The command, or `None` if bits 0–1 hold an undefined one.
    pub const fn cmd(&self) -> Option<MmuUpdateCmd> {
        MmuUpdateCmd::from_value(self.ptr & 3)
    }

    /// The target machine address: of the entry (8-byte aligned), or of
    /// the frame for `MachphysUpdate`.
    pub const fn target(&self) -> u64 {
        self.ptr & !7
    }
}

crate::abi_enum! {
    /// `MmuextOp::cmd`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum MmuextCmd: u32, c_prefix = "MMUEXT" {
        /// Validate frame `arg1` (mfn) as an L1 table and pin it.
        PinL1 = 0,
        /// Validate frame `arg1` as an L2 table and pin it.
        PinL2 = 1,
        /// Validate frame `arg1` as an L3 table and pin it.
        PinL3 = 2,
        /// Validate frame `arg1` as an L4 table and pin it.
        PinL4 = 3,
        /// Drop the pin on frame `arg1`.
        Unpin = 4,
        /// Use L4 frame `arg1` as the kernel-mode base (CR3) of this vCPU.
        NewBaseptr = 5,
        /// Use L4 frame `arg1` as the user-mode base of this vCPU; 0: none.
        NewUserBaseptr = 6,
        /// Flush this vCPU's TLB (non-global entries of both address spaces).
        TlbFlushLocal = 7,
        /// Invalidate the translation of virtual address `arg1` on this vCPU.
        InvlpgLocal = 8,
        /// Flush the TLBs of the vCPUs in mask `arg2`.
        TlbFlushMulti = 9,
        /// Invalidate `arg1` on the vCPUs in mask `arg2`.
        InvlpgMulti = 10,
        /// Flush the TLBs of all the domain's vCPUs.
        TlbFlushAll = 11,
        /// Invalidate `arg1` on all the domain's vCPUs.
        InvlpgAll = 12,
    }
}

crate::abi_struct! {
    /// One operation of `mmuext_op`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct MmuextOp(size = 24) {
        /// An `MmuextCmd`.
        @0 cmd: u32,
        /// Must be zero.
        @4 reserved0: u32,
        /// Machine frame or virtual address, per command; else zero.
        @8 arg1: u64,
        /// vCPU mask (bit n: vCPU n) for the `*Multi` commands; else zero.
        @16 arg2: u64,
    }
}

crate::abi_consts! {
    /// `update_va_mapping` flags (third argument). Bits 0–1 choose the flush;
    /// bit 2 widens it from the calling vCPU to the vCPUs in the fourth
    /// argument's mask; bit 3 to all the domain's vCPUs.
    pub mod uvmf: u64, c_prefix = "UVMF" {
        /// No flush.
        NONE = 0;
        /// Flush the whole TLB.
        TLB_FLUSH = 1;
        /// Invalidate only `va`.
        INVLPG = 2;
        /// Bits 0–1.
        FLUSH_MASK = 3;
        /// Flush on the vCPUs in the mask argument instead of only the caller.
        MULTI = 1 << 2;
        /// Flush on every vCPU of the domain.
        ALL = 1 << 3;
    }
}

crate::abi_enum! {
    /// `MemoryMapEntry::kind`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum MemoryKind: u32, c_prefix = "MEMORY" {
        /// Usable RAM.
        Ram = 1,
        /// Reserved: not RAM, not to be used.
        Reserved = 2,
        /// ACPI tables, reclaimable after they are read.
        AcpiReclaimable = 3,
        /// ACPI non-volatile storage.
        AcpiNvs = 4,
        /// Unusable (bad) memory.
        Unusable = 5,
    }
}

crate::abi_struct! {
    /// One range of a memory map.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct MemoryMapEntry(size = 24) {
        /// Start address (pseudo-physical for `memory_map`, machine for
        /// `machine_memory_map`), page aligned.
        @0 addr: u64,
        /// Length in bytes, a multiple of the page size.
        @8 len: u64,
        /// A `MemoryKind`.
        @16 kind: u32,
        /// Must be zero.
        @20 reserved0: u32,
    }
}

crate::abi_struct! {
    /// Argument of `reservation_increase` and `reservation_decrease`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Reservation(size = 32) {
        /// Guest virtual address of an array of `nr_extents` u64. Increase:
        /// pfns in, first machine frame of each new extent out. Decrease:
        /// first machine frame of each extent to give back.
        @0 extents: u64,
        /// Entries in the array, at most `RESERVATION_MAX`.
        @8 nr_extents: u32,
        /// log2 of the frames per extent.
        @12 extent_order: u32,
        /// Highest machine address bit the frames may use (0: any); only
        /// for increase.
        @16 address_bits: u32,
        /// `DOMID_SELF`, or (privileged) the domain to act on.
        @20 domid: u32,
        /// Must be zero.
        @24 reserved0: u64,
    }
}

crate::abi_struct! {
    /// Argument of `reservation_exchange`: give `input` extents, take
    /// `output` extents of the same total size.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct ReservationExchange(size = 72) {
        /// The frames given (a decrease-style `Reservation`).
        @0 input: Reservation,
        /// The frames taken (an increase-style `Reservation`).
        @32 output: Reservation,
        /// Out: input extents exchanged (all of them or none in v1).
        @64 nr_exchanged: u64,
    }
}

crate::abi_struct! {
    /// What `reservation_query` writes.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct ReservationInfo(size = 24) {
        /// Frames the domain owns now.
        @0 current_pages: u64,
        /// Frames it may own at most.
        @8 max_pages: u64,
        /// Frames the hypervisor has free for any domain.
        @16 free_pages: u64,
    }
}

/// Whether `va` lies in the hypervisor's reserved range (L4 slots 256–271).
pub const fn is_hypervisor_va(va: u64) -> bool {
    va >= memory_consts::HYPERVISOR_VIRT_START && va < memory_consts::HYPERVISOR_VIRT_END
}

/// The L4 slot that maps `va`.
pub const fn l4_slot(va: u64) -> u64 {
    (va >> 39) & 511
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_range_is_slots_256_to_271() {
        assert_eq!(l4_slot(memory_consts::HYPERVISOR_VIRT_START), memory_consts::HYPERVISOR_L4_FIRST_SLOT);
        assert_eq!(l4_slot(memory_consts::HYPERVISOR_VIRT_END - 1), memory_consts::HYPERVISOR_L4_LAST_SLOT);
        assert!(is_hypervisor_va(memory_consts::M2P_VIRT_START));
        assert!(is_hypervisor_va(memory_consts::M2P_VIRT_END - 1));
        assert!(!is_hypervisor_va(memory_consts::HYPERVISOR_VIRT_END));
        assert!(!is_hypervisor_va(0xffff_7fff_ffff_ffff));
        // Linux's direct map begins right above the hole.
        assert!(!is_hypervisor_va(0xffff_8880_0000_0000));
    }

    #[test]
    fn mmu_update_encoding() {
        let u = MmuUpdate::pt_update(0x1234_5678, 7);
        assert_eq!(u.cmd(), Some(MmuUpdateCmd::PtUpdate));
        assert_eq!(u.target(), 0x1234_5678);
        let m = MmuUpdate::machphys_update(0x42, 9);
        assert_eq!(m.cmd(), Some(MmuUpdateCmd::MachphysUpdate));
        assert_eq!(m.target(), 0x42 << 12);
        assert_eq!(MmuUpdate { ptr: 3, val: 0 }.cmd(), None);
    }

    #[test]
    fn pte_bit_groups_do_not_overlap() {
        let groups = [
            pte::PRESENT, pte::RW, pte::USER, pte::PWT, pte::PCD, pte::ACCESSED, pte::DIRTY,
            pte::PSE, pte::GLOBAL, pte::AVAIL_LOW, pte::FRAME, pte::AVAIL_HIGH, pte::NX,
        ];
        let mut all = 0u64;
        for g in groups {
            assert_eq!(all & g, 0);
            all |= g;
        }
        assert_eq!(all, u64::MAX, "every bit of an entry has a meaning");
    }
}
