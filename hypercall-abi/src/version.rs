//! ABI versioning: `major.minor`, independent of the crate version.
//!
//! A hypervisor implementing `M.n` runs a guest that asks for `M.m` with
//! `m <= n`; a different major is refused. Optional capabilities are feature
//! bits, never inferred from the minor number.

/// Major version: bumped only by a breaking change.
pub const ABI_MAJOR: u16 = 1;
/// Minor version: bumped by every backwards-compatible addition.
pub const ABI_MINOR: u16 = 0;

crate::abi_consts! {
    /// The ABI version this crate and these headers describe.
    pub mod abi_version: u16, c_prefix = "ABI" {
        /// Major version (`ABI_MAJOR`): bumped only by a breaking change.
        MAJOR = 1;
        /// Minor version (`ABI_MINOR`): bumped by every backwards-compatible addition.
        MINOR = 0;
    }
}

const _: () = assert!(abi_version::MAJOR == ABI_MAJOR && abi_version::MINOR == ABI_MINOR);

/// An ABI version as carried in the guest ELF note and by `ABI_QUERY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AbiVersion {
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
}

impl AbiVersion {
    /// The version this crate describes.
    pub const CURRENT: AbiVersion = AbiVersion { major: ABI_MAJOR, minor: ABI_MINOR };

    /// Whether an implementation of `self` can run a guest built for `guest`.
    pub const fn supports(self, guest: AbiVersion) -> bool {
        self.major == guest.major && guest.minor <= self.minor
    }
}

impl core::fmt::Display for AbiVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_major_older_minor_is_supported() {
        let hv = AbiVersion { major: 1, minor: 3 };
        assert!(hv.supports(AbiVersion { major: 1, minor: 0 }));
        assert!(hv.supports(AbiVersion { major: 1, minor: 3 }));
        assert!(!hv.supports(AbiVersion { major: 1, minor: 4 }));
        assert!(!hv.supports(AbiVersion { major: 2, minor: 0 }));
        assert!(!hv.supports(AbiVersion { major: 0, minor: 3 }));
    }
}
