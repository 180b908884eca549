//! The guest ELF note, laid out as the linker must emit it.

use hypercall_abi::note::{GuestNote, NOTE_NAME, NOTE_TYPE_GUEST};

/// An ELF note record: header, owner name (padded to 4), descriptor.
#[repr(C, align(4))]
pub struct GuestNoteRecord {
    namesz: u32,
    descsz: u32,
    n_type: u32,
    name: [u8; 8],
    desc: GuestNote,
}

impl GuestNoteRecord {
    pub const fn new(abi_major: u16, abi_minor: u16, required_features: u64) -> GuestNoteRecord {
        let mut name = [0u8; 8];
        let mut i = 0;
        while i < NOTE_NAME.len() {
            name[i] = NOTE_NAME[i];
            i += 1;
        }
        GuestNoteRecord {
            namesz: NOTE_NAME.len() as u32,
            descsz: core::mem::size_of::<GuestNote>() as u32,
            n_type: NOTE_TYPE_GUEST,
            name,
            desc: GuestNote { abi_major, abi_minor, reserved0: 0, required_features },
        }
    }
}

const _: () = assert!(NOTE_NAME.len() <= 8);
