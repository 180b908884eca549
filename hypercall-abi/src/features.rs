//! Feature bits: what a v1 hypervisor offers optionally.
//!
//! `abi_query` and the start-info page report the offered set; a guest's
//! ELF note names the bits it cannot run without, and the domain builder
//! refuses a guest that requires a bit not offered. A guest tests bits,
//! never the minor version. A call that belongs to a feature not offered
//! answers `NoSuchCall`; behaviour that belongs to one answers `Invalid`.
//! Bits not defined here are never set by a v1 hypervisor.

crate::abi_consts! {
    /// Feature bits (`AbiInfo::features`, `StartInfo::features`,
    /// `GuestNote::required_features`).
    pub mod features: u64, c_prefix = "FEATURE" {
        /// L2 entries with the page-size bit map 2 MiB of machine-contiguous
        /// memory, and reservations accept extent order 9.
        SUPERPAGE_2M = 1 << 0;
        /// `counters_read` and `counters_reset` exist: the hypervisor counts
        /// every hypercall and bounce per domain.
        COUNTERS = 1 << 1;
        /// The domain-control calls (`0x80–0x8f`) exist, so a privileged
        /// domain can create and manage domains at run time.
        DOMAIN_CONTROL = 1 << 2;
        /// The physical-device calls (`0x90–0x9f`), `set_io_privilege` and
        /// `set_io_bitmap` exist, so a domain can drive real devices.
        PHYSDEV = 1 << 3;
        /// Split-device backends may live in the hypervisor
        /// (`DOMID_HYPERVISOR` as a slot's backend).
        HYPERVISOR_BACKENDS = 1 << 4;
        /// Every bit v1 defines.
        ALL_V1 = (1 << 5) - 1;
    }
}

pub use features::*;

#[cfg(test)]
mod tests {
    #[test]
    fn bits_are_distinct_and_covered_by_all_v1() {
        let mut seen = 0u64;
        for v in super::TABLE.values.iter().filter(|v| v.name != "ALL_V1") {
            assert!(v.value.is_power_of_two(), "{} is not one bit", v.name);
            assert_eq!(seen & v.value, 0, "{} reuses a bit", v.name);
            seen |= v.value;
        }
        assert_eq!(seen, super::ALL_V1);
    }
}
