//! Physical devices, for a domain holding I/O permissions: interrupts as
//! events and PCI configuration space. Port I/O goes through
//! `set_io_privilege` and `set_io_bitmap`; device memory through
//! `mmu_update` of frames the domain is permitted.

crate::abi_consts! {
    /// `physdev_irq_bind` flags.
    pub mod irq_flags: u64, c_prefix = "IRQF" {
        /// Level-triggered (needs `physdev_irq_eoi` after each event); else edge.
        LEVEL = 1 << 0;
        /// Active low; else active high.
        ACTIVE_LOW = 1 << 1;
    }
}

crate::abi_consts! {
    /// `physdev_msi_bind` flags.
    pub mod msi_flags: u64, c_prefix = "MSIF" {
        /// Use the function's MSI-X capability (`entry` is the table index);
        /// else its MSI capability (`entry` is the vector number within a
        /// multi-message block, 0 for single).
        MSIX = 1 << 0;
    }
}

crate::abi_consts! {
    /// Physical-device limits.
    pub mod physdev_consts: u64, c_prefix = "PHYSDEV" {
        /// Bytes of a function's configuration space (extended).
        PCI_CONFIG_SIZE = 4096;
        /// Ports `0xcf8–0xcff` (configuration mechanism #1) are never
        /// permitted: configuration space goes through the calls.
        PCI_CONFIG_PORT = 0xcf8;
    }
}

/// A PCI function's address as the calls take it: segment, bus, device,
/// function in one number (`segment << 16 | bus << 8 | device << 3 | function`).
pub const fn sbdf(segment: u16, bus: u8, device: u8, function: u8) -> u32 {
    (segment as u32) << 16 | (bus as u32) << 8 | ((device as u32) & 0x1f) << 3 | (function as u32) & 7
}

/// Whether a configuration access of `size` bytes at `offset` is well
/// formed: size 1, 2 or 4, naturally aligned, inside the 4 KiB space.
pub const fn config_access_ok(offset: u32, size: u32) -> bool {
    matches!(size, 1 | 2 | 4)
        && offset.is_multiple_of(size)
        && offset as u64 + size as u64 <= physdev_consts::PCI_CONFIG_SIZE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbdf_packing() {
        assert_eq!(sbdf(0, 0, 0, 0), 0);
        assert_eq!(sbdf(0, 3, 0x1f, 7), 0x3ff);
        assert_eq!(sbdf(1, 0xff, 0, 1), 0x1_ff01);
    }

    #[test]
    fn config_access_rules() {
        assert!(config_access_ok(0, 4));
        assert!(config_access_ok(0xffc, 4));
        assert!(config_access_ok(3, 1));
        assert!(!config_access_ok(2, 4), "unaligned");
        assert!(!config_access_ok(0x1000, 1), "outside the space");
        assert!(!config_access_ok(0, 8), "bad size");
        assert!(!config_access_ok(0, 0), "bad size");
    }
}
