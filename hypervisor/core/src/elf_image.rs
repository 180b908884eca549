//! A guest kernel's ELF image, parsed and checked before anything is built.
//!
//! The domain builder only ever sees a [`GuestImage`]: an executable x86_64
//! ELF whose loadable segments are ordered, disjoint, canonical and clear of
//! the hypervisor's range, whose entry point lies in an executable segment,
//! and whose Veneer note asks for an ABI version and features this
//! hypervisor has.

use alloc::vec::Vec;
use core::fmt;

use elf::abi::{EM_X86_64, ET_EXEC, PF_W, PF_X, PT_LOAD, PT_NOTE};
use elf::endian::LittleEndian;
use elf::note::Note;
use elf::ElfBytes;
use hypercall_abi::note::{GuestNote, NOTE_NAME, NOTE_TYPE_GUEST};
use hypercall_abi::version::AbiVersion;

use crate::addr::{page_align_down, page_align_up, range_is_guest, PAGE_SIZE};

/// One `PT_LOAD` segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadSegment<'a> {
    pub vaddr: u64,
    pub mem_size: u64,
    /// The bytes from the file; the rest of `mem_size` is zero.
    pub data: &'a [u8],
    pub writable: bool,
    pub executable: bool,
}

#[derive(Debug)]
pub struct GuestImage<'a> {
    pub entry: u64,
    pub segments: Vec<LoadSegment<'a>>,
    /// Page-aligned span of all segments.
    pub virt_start: u64,
    pub virt_end: u64,
    pub note: GuestNote,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ImageError {
    /// The ELF structure itself is broken.
    Malformed(&'static str),
    NotX86_64,
    NotExecutable,
    NoLoadSegments,
    /// `p_vaddr` and `p_offset` disagree modulo the page size.
    Misaligned { vaddr: u64 },
    /// `p_filesz > p_memsz`, or a size overflows.
    BadSize { vaddr: u64 },
    /// A segment is non-canonical or inside the hypervisor's range.
    HypervisorRange { vaddr: u64, end: u64 },
    /// Segments overlap or are not in ascending order.
    Overlap { vaddr: u64 },
    EntryNotExecutable { entry: u64 },
    NoGuestNote,
    /// The note's descriptor has the wrong size or a reserved field set.
    BadGuestNote,
    UnsupportedAbi { guest: AbiVersion, hypervisor: AbiVersion },
    MissingFeatures { missing: u64 },
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::Malformed(what) => write!(f, "malformed ELF: {what}"),
            ImageError::NotX86_64 => write!(f, "not a little-endian 64-bit x86_64 ELF"),
            ImageError::NotExecutable => write!(f, "ELF is not an executable (ET_EXEC)"),
            ImageError::NoLoadSegments => write!(f, "ELF has no loadable segment"),
            ImageError::Misaligned { vaddr } => write!(f, "segment at {vaddr:#x} is not page-aligned with its file offset"),
            ImageError::BadSize { vaddr } => write!(f, "segment at {vaddr:#x} has inconsistent sizes"),
            ImageError::HypervisorRange { vaddr, end } => {
                write!(f, "segment {vaddr:#x}..{end:#x} overlaps the hypervisor's range or is not canonical")
            }
            ImageError::Overlap { vaddr } => write!(f, "segment at {vaddr:#x} overlaps or precedes the one before it"),
            ImageError::EntryNotExecutable { entry } => write!(f, "entry point {entry:#x} is not in an executable segment"),
            ImageError::NoGuestNote => write!(f, "no Veneer guest note (PT_NOTE, owner \"Veneer\", type {NOTE_TYPE_GUEST})"),
            ImageError::BadGuestNote => write!(f, "Veneer guest note has a bad size or reserved bits set"),
            ImageError::UnsupportedAbi { guest, hypervisor } => {
                write!(f, "guest needs ABI {guest}, hypervisor implements {hypervisor}")
            }
            ImageError::MissingFeatures { missing } => write!(f, "guest requires features {missing:#x} the hypervisor lacks"),
        }
    }
}

fn malformed(e: elf::ParseError) -> ImageError {
    ImageError::Malformed(match e {
        elf::ParseError::BadMagic(_) => "bad magic",
        elf::ParseError::UnsupportedElfClass(_) => "unsupported class",
        elf::ParseError::UnsupportedElfEndianness(_) => "unsupported byte order",
        elf::ParseError::UnsupportedVersion(_) => "unsupported version",
        elf::ParseError::SliceReadError(_) => "a table runs past the end of the file",
        _ => "unparseable headers",
    })
}

impl<'a> GuestImage<'a> {
    /// Parses and checks `bytes` for a hypervisor offering `version` and
    /// `features`.
    pub fn parse(bytes: &'a [u8], version: AbiVersion, features: u64) -> Result<GuestImage<'a>, ImageError> {
        let elf = ElfBytes::<LittleEndian>::minimal_parse(bytes).map_err(malformed)?;
        if elf.ehdr.class != elf::file::Class::ELF64 || elf.ehdr.e_machine != EM_X86_64 {
            return Err(ImageError::NotX86_64);
        }
        if elf.ehdr.e_type != ET_EXEC {
            return Err(ImageError::NotExecutable);
        }
        let phdrs = elf.segments().ok_or(ImageError::NoLoadSegments)?;

        let mut note = None;
        let mut segments: Vec<LoadSegment<'a>> = Vec::new();
        for ph in phdrs.iter() {
            match ph.p_type {
                PT_LOAD if ph.p_memsz > 0 => {
                    let vaddr = ph.p_vaddr;
                    if vaddr % PAGE_SIZE as u64 != ph.p_offset % PAGE_SIZE as u64 {
                        return Err(ImageError::Misaligned { vaddr });
                    }
                    if ph.p_filesz > ph.p_memsz {
                        return Err(ImageError::BadSize { vaddr });
                    }
                    let end = vaddr.checked_add(ph.p_memsz).ok_or(ImageError::BadSize { vaddr })?;
                    let page_end = page_align_up(end).ok_or(ImageError::HypervisorRange { vaddr, end })?;
                    let page_start = page_align_down(vaddr);
                    if !range_is_guest(page_start, page_end - page_start) {
                        return Err(ImageError::HypervisorRange { vaddr, end });
                    }
                    if let Some(prev) = segments.last() {
                        if vaddr < prev.vaddr + prev.mem_size {
                            return Err(ImageError::Overlap { vaddr });
                        }
                    }
                    let data = elf.segment_data(&ph).map_err(malformed)?;
                    segments.push(LoadSegment {
                        vaddr,
                        mem_size: ph.p_memsz,
                        data,
                        writable: ph.p_flags & PF_W != 0,
                        executable: ph.p_flags & PF_X != 0,
                    });
                }
                PT_NOTE => {
                    let notes = elf.segment_data_as_notes(&ph).map_err(malformed)?;
                    for n in notes {
                        if let Note::Unknown(any) = n {
                            if any.name.as_bytes() == &NOTE_NAME[..NOTE_NAME.len() - 1]
                                && any.n_type == u64::from(NOTE_TYPE_GUEST)
                            {
                                let parsed = GuestNote::from_bytes(any.desc).ok_or(ImageError::BadGuestNote)?;
                                if parsed.reserved0 != 0 {
                                    return Err(ImageError::BadGuestNote);
                                }
                                note = Some(parsed);
                            }
                        }
                    }
                }
                _ => {}
            }
        }

        let note = note.ok_or(ImageError::NoGuestNote)?;
        if !version.supports(note.version()) {
            return Err(ImageError::UnsupportedAbi { guest: note.version(), hypervisor: version });
        }
        let missing = note.required_features & !features;
        if missing != 0 {
            return Err(ImageError::MissingFeatures { missing });
        }
        let (first, last) = match (segments.first(), segments.last()) {
            (Some(f), Some(l)) => (f, l),
            _ => return Err(ImageError::NoLoadSegments),
        };
        let virt_start = page_align_down(first.vaddr);
        // Checked above: every segment's page-aligned end is representable.
        let virt_end = page_align_up(last.vaddr + last.mem_size).expect("checked per segment");
        let entry = elf.ehdr.e_entry;
        if !segments.iter().any(|s| s.executable && s.vaddr <= entry && entry < s.vaddr + s.mem_size) {
            return Err(ImageError::EntryNotExecutable { entry });
        }
        Ok(GuestImage { entry, segments, virt_start, virt_end, note })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::test_support::ElfBuilder;

    const V1: AbiVersion = AbiVersion { major: 1, minor: 0 };

    #[test]
    fn accepts_a_well_formed_guest() {
        let bytes = ElfBuilder::guest().build();
        let img = GuestImage::parse(&bytes, V1, 0).unwrap();
        assert_eq!(img.entry, 0xffff_ffff_8000_0000);
        assert_eq!(img.segments.len(), 2);
        assert_eq!(img.virt_start, 0xffff_ffff_8000_0000);
        assert_eq!(img.virt_end, 0xffff_ffff_8000_3000);
        assert!(img.segments[0].executable && !img.segments[0].writable);
        assert!(img.segments[1].writable);
    }

    #[test]
    fn refuses_broken_images() {
        let parse = |b: ElfBuilder| GuestImage::parse(&b.build(), V1, 0).map(|_| ()).unwrap_err();
        assert_eq!(parse(ElfBuilder::guest().note_version(2, 0)), ImageError::UnsupportedAbi {
            guest: AbiVersion { major: 2, minor: 0 },
            hypervisor: V1
        });
        assert_eq!(parse(ElfBuilder::guest().note_version(1, 1)), ImageError::UnsupportedAbi {
            guest: AbiVersion { major: 1, minor: 1 },
            hypervisor: V1
        });
        assert_eq!(parse(ElfBuilder::guest().without_note()), ImageError::NoGuestNote);
        assert_eq!(parse(ElfBuilder::guest().note_features(1 << 5)), ImageError::MissingFeatures { missing: 1 << 5 });
        assert!(matches!(parse(ElfBuilder::guest().base(0xffff_8000_0010_0000)), ImageError::HypervisorRange { .. }));
        assert!(matches!(parse(ElfBuilder::guest().base(0xffff_87ff_ffff_f000)), ImageError::HypervisorRange { .. }));
        assert!(matches!(parse(ElfBuilder::guest().base(0x0000_7fff_ffff_f000)), ImageError::HypervisorRange { .. }));
        assert!(matches!(parse(ElfBuilder::guest().entry(0xffff_ffff_8000_2000)), ImageError::EntryNotExecutable { .. }));
        assert!(matches!(parse(ElfBuilder::guest().overlapping()), ImageError::Overlap { .. }));
        assert!(matches!(parse(ElfBuilder::guest().machine(3)), ImageError::NotX86_64));
    }

    #[test]
    fn refuses_truncations_without_panicking() {
        let bytes = ElfBuilder::guest().build();
        for cut in 0..bytes.len() {
            let _ = GuestImage::parse(&bytes[..cut], V1, 0);
        }
        assert!(matches!(GuestImage::parse(&bytes[..40], V1, 0), Err(ImageError::Malformed(_))));
    }
}
