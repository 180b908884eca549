//! The ELF note a Veneer guest kernel carries.
//!
//! A note of owner [`NOTE_NAME`] and type [`NOTE_TYPE_GUEST`], in a
//! `PT_NOTE` segment, whose descriptor is a [`GuestNote`]. The domain
//! builder refuses an image without it, or whose ABI version it does not
//! support ([`GuestNote::admit`]).

use crate::version::AbiVersion;

/// The note owner, NUL-terminated as ELF requires.
pub const NOTE_NAME: &[u8] = b"Veneer\0";
/// Note type of the guest descriptor.
pub const NOTE_TYPE_GUEST: u32 = 1;

crate::abi_consts! {
    /// The guest ELF note.
    pub mod note_consts: u32, c_prefix = "NOTE" {
        /// Note type of the guest descriptor (`NOTE_TYPE_GUEST`); the owner
        /// name is the 7 bytes `"Veneer\0"` (`namesz` 7).
        TYPE_GUEST = 1;
        /// `namesz` of the note: the length of `"Veneer"` plus its NUL.
        NAME_SIZE = 7;
    }
}
const _: () = assert!(note_consts::NAME_SIZE as usize == NOTE_NAME.len());
const _: () = assert!(note_consts::TYPE_GUEST == NOTE_TYPE_GUEST);

crate::abi_struct! {
    /// Descriptor of the guest note.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct GuestNote(size = 16) {
        /// ABI major version the guest was built against.
        @0 abi_major: u16,
        /// ABI minor version the guest was built against.
        @2 abi_minor: u16,
        /// Must be zero.
        @4 reserved0: u32,
        /// Features the guest cannot run without; the builder refuses the
        /// image if the hypervisor lacks any.
        @8 required_features: u64,
    }
}

/// Why the domain builder refuses a guest note.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The descriptor is not exactly 16 bytes.
    BadSize,
    /// A reserved field is not zero.
    ReservedNotZero,
    /// The guest asks for a major version other than the hypervisor's, or a
    /// newer minor.
    Version,
    /// The guest requires features the hypervisor does not offer (the bits).
    MissingFeatures(u64),
}

impl GuestNote {
    /// The ABI version the guest asks for.
    pub const fn version(&self) -> AbiVersion {
        AbiVersion { major: self.abi_major, minor: self.abi_minor }
    }

    /// Decodes a descriptor from its little-endian bytes.
    pub fn from_bytes(desc: &[u8]) -> Option<GuestNote> {
        let desc: &[u8; 16] = desc.try_into().ok()?;
        let u16_at = |o: usize| u16::from_le_bytes([desc[o], desc[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes([desc[o], desc[o + 1], desc[o + 2], desc[o + 3]]);
        let u64_at = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&desc[o..o + 8]);
            u64::from_le_bytes(b)
        };
        Some(GuestNote {
            abi_major: u16_at(0),
            abi_minor: u16_at(2),
            reserved0: u32_at(4),
            required_features: u64_at(8),
        })
    }

    /// The builder's decision: may a hypervisor implementing `hv` and
    /// offering `offered` feature bits run a guest with this note?
    pub fn admit(&self, hv: AbiVersion, offered: u64) -> Result<(), Refusal> {
        if self.reserved0 != 0 {
            return Err(Refusal::ReservedNotZero);
        }
        if !hv.supports(self.version()) {
            return Err(Refusal::Version);
        }
        let missing = self.required_features & !offered;
        if missing != 0 {
            return Err(Refusal::MissingFeatures(missing));
        }
        Ok(())
    }

    /// Decodes and admits in one step, as the builder does.
    pub fn admit_bytes(desc: &[u8], hv: AbiVersion, offered: u64) -> Result<GuestNote, Refusal> {
        let note = GuestNote::from_bytes(desc).ok_or(Refusal::BadSize)?;
        note.admit(hv, offered).map(|()| note)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features;

    fn bytes(major: u16, minor: u16, reserved: u32, req: u64) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..2].copy_from_slice(&major.to_le_bytes());
        b[2..4].copy_from_slice(&minor.to_le_bytes());
        b[4..8].copy_from_slice(&reserved.to_le_bytes());
        b[8..16].copy_from_slice(&req.to_le_bytes());
        b
    }

    #[test]
    fn decodes_little_endian() {
        let n = GuestNote::from_bytes(&bytes(1, 2, 0, 0x0102_0304_0506_0708)).unwrap();
        assert_eq!(n.version(), AbiVersion { major: 1, minor: 2 });
        assert_eq!(n.required_features, 0x0102_0304_0506_0708);
        assert_eq!(GuestNote::from_bytes(&[0; 15]), None);
        assert_eq!(GuestNote::from_bytes(&[0; 17]), None);
    }

    #[test]
    fn builder_refuses_what_it_cannot_run() {
        let hv = AbiVersion { major: 1, minor: 0 };
        let offered = features::COUNTERS;
        assert!(GuestNote::admit_bytes(&bytes(1, 0, 0, 0), hv, offered).is_ok());
        assert!(GuestNote::admit_bytes(&bytes(1, 0, 0, features::COUNTERS), hv, offered).is_ok());
        assert_eq!(GuestNote::admit_bytes(&bytes(1, 1, 0, 0), hv, offered), Err(Refusal::Version));
        assert_eq!(GuestNote::admit_bytes(&bytes(2, 0, 0, 0), hv, offered), Err(Refusal::Version));
        assert_eq!(GuestNote::admit_bytes(&bytes(1, 0, 1, 0), hv, offered), Err(Refusal::ReservedNotZero));
        assert_eq!(
            GuestNote::admit_bytes(&bytes(1, 0, 0, features::PHYSDEV | features::COUNTERS), hv, offered),
            Err(Refusal::MissingFeatures(features::PHYSDEV))
        );
        assert_eq!(GuestNote::admit_bytes(&[0; 8], hv, offered), Err(Refusal::BadSize));
    }
}
