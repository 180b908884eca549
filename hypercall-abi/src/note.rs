//! The ELF note a Veneer guest kernel carries.
//!
//! A note of owner [`NOTE_NAME`] and type [`NOTE_TYPE_GUEST`], in a
//! `PT_NOTE` segment, whose descriptor is a [`GuestNote`]. The domain
//! builder refuses an image without it, or whose ABI version it does not
//! support.

use crate::version::AbiVersion;

/// The note owner, NUL-terminated as ELF requires.
pub const NOTE_NAME: &[u8] = b"Veneer\0";
/// Note type of the guest descriptor.
pub const NOTE_TYPE_GUEST: u32 = 1;

/// Descriptor of the guest note.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct GuestNote {
    /// ABI version the guest was built against.
    pub abi_major: u16,
    pub abi_minor: u16,
    /// Must be zero.
    pub reserved0: u32,
    /// Features the guest cannot run without; the builder refuses the image
    /// if the hypervisor lacks any.
    pub required_features: u64,
}
const _: () = assert!(core::mem::size_of::<GuestNote>() == 16);
const _: () = assert!(core::mem::offset_of!(GuestNote, required_features) == 8);

impl GuestNote {
    pub const fn version(&self) -> AbiVersion {
        AbiVersion { major: self.abi_major, minor: self.abi_minor }
    }

    /// Decodes a descriptor from its little-endian bytes.
    pub fn from_bytes(desc: &[u8]) -> Option<GuestNote> {
        if desc.len() != core::mem::size_of::<GuestNote>() {
            return None;
        }
        let u16_at = |o: usize| u16::from_le_bytes([desc[o], desc[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes(desc[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_le_bytes(desc[o..o + 8].try_into().unwrap());
        Some(GuestNote {
            abi_major: u16_at(0),
            abi_minor: u16_at(2),
            reserved0: u32_at(4),
            required_features: u64_at(8),
        })
    }
}
