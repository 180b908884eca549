//! The start-info page: what the domain builder tells a guest at entry.
//!
//! A guest kernel starts in ring 3 at its ELF entry point with `rdi` holding
//! the virtual address of this page, `rsp` the top of a boot stack, and its
//! bootstrap address space built as follows (all addresses virtual, each
//! region page aligned and following the previous one):
//!
//! 1. the kernel image, at the addresses of its `PT_LOAD` segments;
//! 2. this page;
//! 3. the p2m array (`nr_pages` entries of `u64`: pfn → mfn);
//! 4. the bootstrap page tables (`nr_pt_frames` frames, mapped read-only);
//! 5. the boot stack.
//!
//! Pseudo-physical frame 0 holds the first page of the image; the regions
//! above occupy the frames that follow, so `first_free_pfn` is the first
//! frame the guest may use freely.

/// `StartInfo::magic`: "VENEERSI" in little-endian.
pub const START_INFO_MAGIC: u64 = u64::from_le_bytes(*b"VENEERSI");

/// Bytes of command line the page carries, NUL included.
pub const CMDLINE_MAX: usize = 1024;

#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct StartInfo {
    /// [`START_INFO_MAGIC`].
    pub magic: u64,
    /// ABI version the hypervisor implements.
    pub abi_major: u16,
    pub abi_minor: u16,
    /// This domain's id.
    pub domain_id: u32,
    /// Pseudo-physical frames the domain owns (frames 0 .. nr_pages).
    pub nr_pages: u64,
    /// First pseudo-physical frame not used by the bootstrap regions.
    pub first_free_pfn: u64,
    /// Virtual address of the p2m array.
    pub p2m_base: u64,
    /// Virtual address of the top-level page table (read-only mapping).
    pub pt_base: u64,
    /// Frames of bootstrap page tables, starting at `pt_base`.
    pub nr_pt_frames: u64,
    /// Virtual address and length of the domain's ramdisk, 0 if none.
    pub ramdisk_base: u64,
    pub ramdisk_len: u64,
    /// Feature bits the hypervisor offers.
    pub features: u64,
    /// Must be zero.
    pub reserved0: [u64; 6],
    /// NUL-terminated command line from the domain configuration.
    pub cmdline: [u8; CMDLINE_MAX],
}
const _: () = assert!(core::mem::size_of::<StartInfo>() == 128 + CMDLINE_MAX);
const _: () = assert!(core::mem::offset_of!(StartInfo, nr_pages) == 16);
const _: () = assert!(core::mem::offset_of!(StartInfo, cmdline) == 128);
const _: () = assert!(core::mem::size_of::<StartInfo>() <= 4096);
