//! Machine memory for host tests.

use crate::addr::{Mfn, PAGE_SIZE};
use crate::phys::PhysMemory;

/// `frames` zeroed frames, numbered from 0.
pub struct VecMemory {
    frames: Vec<[u8; PAGE_SIZE]>,
}

impl VecMemory {
    pub fn new(frames: usize) -> VecMemory {
        VecMemory { frames: vec![[0; PAGE_SIZE]; frames] }
    }
}

impl PhysMemory for VecMemory {
    fn contains(&self, mfn: Mfn) -> bool {
        (mfn.0 as usize) < self.frames.len()
    }
    fn frame(&self, mfn: Mfn) -> &[u8; PAGE_SIZE] {
        &self.frames[mfn.0 as usize]
    }
    fn frame_mut(&mut self, mfn: Mfn) -> &mut [u8; PAGE_SIZE] {
        &mut self.frames[mfn.0 as usize]
    }
}

/// Writes small guest ELF images for tests: a read-execute text page at
/// `base`, a read-write data segment after it (0x100 bytes of file, two
/// pages in memory) and a Veneer note.
pub struct ElfBuilder {
    base: u64,
    entry: Option<u64>,
    machine: u16,
    note: Option<(u16, u16, u64)>,
    overlapping: bool,
}

impl ElfBuilder {
    pub fn guest() -> ElfBuilder {
        ElfBuilder { base: 0xffff_ffff_8000_0000, entry: None, machine: 62, note: Some((1, 0, 0)), overlapping: false }
    }
    pub fn base(mut self, base: u64) -> Self {
        self.base = base;
        self
    }
    pub fn entry(mut self, entry: u64) -> Self {
        self.entry = Some(entry);
        self
    }
    pub fn machine(mut self, m: u16) -> Self {
        self.machine = m;
        self
    }
    pub fn note_version(mut self, major: u16, minor: u16) -> Self {
        self.note = self.note.map(|(_, _, f)| (major, minor, f));
        self
    }
    pub fn note_features(mut self, features: u64) -> Self {
        self.note = self.note.map(|(a, b, _)| (a, b, features));
        self
    }
    pub fn without_note(mut self) -> Self {
        self.note = None;
        self
    }
    pub fn overlapping(mut self) -> Self {
        self.overlapping = true;
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let mut f = vec![0u8; 0x2100];
        let put = |f: &mut Vec<u8>, at: usize, bytes: &[u8]| f[at..at + bytes.len()].copy_from_slice(bytes);
        // ELF header.
        put(&mut f, 0, b"\x7fELF\x02\x01\x01");
        put(&mut f, 16, &2u16.to_le_bytes()); // ET_EXEC
        put(&mut f, 18, &self.machine.to_le_bytes());
        put(&mut f, 20, &1u32.to_le_bytes());
        put(&mut f, 24, &self.entry.unwrap_or(self.base).to_le_bytes());
        put(&mut f, 32, &64u64.to_le_bytes()); // e_phoff
        put(&mut f, 52, &64u16.to_le_bytes()); // e_ehsize
        put(&mut f, 54, &56u16.to_le_bytes()); // e_phentsize
        put(&mut f, 56, &3u16.to_le_bytes()); // e_phnum
        put(&mut f, 58, &64u16.to_le_bytes()); // e_shentsize
        let phdr = |f: &mut Vec<u8>, i: usize, ty: u32, flags: u32, off: u64, va: u64, filesz: u64, memsz: u64| {
            let at = 64 + i * 56;
            put(f, at, &ty.to_le_bytes());
            put(f, at + 4, &flags.to_le_bytes());
            put(f, at + 8, &off.to_le_bytes());
            put(f, at + 16, &va.to_le_bytes());
            put(f, at + 24, &va.to_le_bytes());
            put(f, at + 32, &filesz.to_le_bytes());
            put(f, at + 40, &memsz.to_le_bytes());
            put(f, at + 48, &0x1000u64.to_le_bytes());
        };
        phdr(&mut f, 0, 1, 5, 0x1000, self.base, 0x10, 0x10);
        let data_va = if self.overlapping { self.base } else { self.base + 0x1000 };
        phdr(&mut f, 1, 1, 6, 0x2000, data_va, 0x100, 0x2000);
        // The note, or an unrelated one in its place.
        let (owner, ty, desc) = match self.note {
            Some((major, minor, features)) => {
                let mut d = Vec::new();
                d.extend_from_slice(&major.to_le_bytes());
                d.extend_from_slice(&minor.to_le_bytes());
                d.extend_from_slice(&0u32.to_le_bytes());
                d.extend_from_slice(&features.to_le_bytes());
                (&b"Veneer\0\0"[..], 1u32, d)
            }
            None => (&b"Other\0\0\0"[..], 1u32, vec![0; 16]),
        };
        put(&mut f, 0x100, &7u32.to_le_bytes());
        put(&mut f, 0x104, &16u32.to_le_bytes());
        put(&mut f, 0x108, &ty.to_le_bytes());
        put(&mut f, 0x10c, owner);
        put(&mut f, 0x114, &desc);
        phdr(&mut f, 2, 4, 4, 0x100, 0, 36, 36);
        put(&mut f, 64 + 2 * 56 + 48, &4u64.to_le_bytes()); // notes align to 4
        // Text: recognisable bytes; data: a counting pattern.
        put(&mut f, 0x1000, &[0xcc; 0x10]);
        for i in 0..0x100 {
            f[0x2000 + i] = i as u8;
        }
        f
    }
}
