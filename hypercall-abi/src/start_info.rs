//! The start-info page: what the domain builder tells a guest at entry.
//!
//! A guest kernel starts in ring 3 at its ELF entry point with `rdi` holding
//! the virtual address of this page, `rsp` the top of a boot stack, and its
//! bootstrap address space built as follows (all addresses virtual, each
//! region page aligned and following the previous one):
//!
//! 1. the kernel image, at the addresses of its `PT_LOAD` segments;
//! 2. the ramdisk, if the domain has one (`ramdisk_base`, `ramdisk_len`);
//! 3. this page;
//! 4. the p2m array (`nr_pages` entries of `u64`: pfn → mfn);
//! 5. the bootstrap page tables (`nr_pt_frames` frames, mapped read-only);
//! 6. the boot stack.
//!
//! Pseudo-physical frame 0 holds the first page of the image; the regions
//! above occupy the frames that follow, so `first_free_pfn` is the first
//! frame the guest may use freely.
//!
//! The page holds a [`StartInfo`] at offset 0 and a [`StartInfoExt`] at
//! [`START_INFO_EXT_OFFSET`], right after it; the rest of the page is zero.

/// `StartInfo::magic`: "VENEERSI" in little-endian.
pub const START_INFO_MAGIC: u64 = u64::from_le_bytes(*b"VENEERSI");

/// Bytes of command line the page carries, NUL included.
pub const CMDLINE_MAX: usize = 1024;

/// `StartInfoExt::magic`: "VENEERSX" in little-endian.
pub const START_INFO_EXT_MAGIC: u64 = u64::from_le_bytes(*b"VENEERSX");

/// Byte offset of the [`StartInfoExt`] in the start-info page.
pub const START_INFO_EXT_OFFSET: usize = core::mem::size_of::<StartInfo>();

crate::abi_struct! {
    /// The first part of the start-info page (offset 0).
    #[derive(Clone, Copy, Debug)]
    pub struct StartInfo(size = 1152) {
        /// `START_INFO_MAGIC` ("VENEERSI").
        @0 magic: u64,
        /// ABI major version the hypervisor implements.
        @8 abi_major: u16,
        /// ABI minor version the hypervisor implements.
        @10 abi_minor: u16,
        /// This domain's id.
        @12 domain_id: u32,
        /// Pseudo-physical frames the domain owns (frames 0 .. nr_pages).
        @16 nr_pages: u64,
        /// First pseudo-physical frame not used by the bootstrap regions.
        @24 first_free_pfn: u64,
        /// Virtual address of the p2m array.
        @32 p2m_base: u64,
        /// Virtual address of the top-level page table (read-only mapping).
        @40 pt_base: u64,
        /// Frames of bootstrap page tables, starting at `pt_base`.
        @48 nr_pt_frames: u64,
        /// Virtual address of the domain's ramdisk, 0 if none.
        @56 ramdisk_base: u64,
        /// Length in bytes of the domain's ramdisk, 0 if none.
        @64 ramdisk_len: u64,
        /// Feature bits the hypervisor offers.
        @72 features: u64,
        /// Must be zero.
        @80 reserved0: [u64; 6],
        /// NUL-terminated command line from the domain configuration.
        @128 cmdline: [u8; CMDLINE_MAX],
    }
}

crate::abi_struct! {
    /// The second part of the start-info page (offset `START_INFO_EXT_OFFSET`):
    /// what the domain needs beyond its memory layout.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct StartInfoExt(size = 128) {
        /// `START_INFO_EXT_MAGIC` ("VENEERSX").
        @0 magic: u64,
        /// `start_flags` bits: what this domain may do.
        @8 flags: u64,
        /// Machine frame of the shared-info page; the guest may map it
        /// elsewhere with `update_va_mapping` (read-write).
        @16 shared_info_mfn: u64,
        /// vCPUs the domain has (ids 0 .. nr_vcpus); only vCPU 0 is online
        /// at entry.
        @24 nr_vcpus: u32,
        /// Handle of the domain's console device slot, `DEVICE_NONE` if it
        /// has none (the privileged domain uses `console_write`/`console_read`).
        @28 console_device: u32,
        /// Virtual address of the read-only m2p table (`M2P_VIRT_START`).
        @32 m2p_base: u64,
        /// Entries in the m2p table: one more than the highest machine frame.
        @40 m2p_nr_entries: u64,
        /// Virtual address at which the bootstrap address space maps the
        /// shared-info page read-write: the page after the boot stack.
        @48 shared_info_va: u64,
        /// Must be zero.
        @56 reserved0: [u64; 9],
    }
}

const _: () = assert!(START_INFO_EXT_OFFSET == 1152);
const _: () = assert!(START_INFO_EXT_OFFSET + core::mem::size_of::<StartInfoExt>() <= 4096);

crate::abi_consts! {
    /// Start-info page constants.
    pub mod start_info_consts: u64, c_prefix = "START_INFO" {
        /// `StartInfo::magic`.
        MAGIC = super::START_INFO_MAGIC;
        /// `StartInfoExt::magic`.
        EXT_MAGIC = super::START_INFO_EXT_MAGIC;
        /// Offset of the `StartInfoExt` in the page.
        EXT_OFFSET = super::START_INFO_EXT_OFFSET as u64;
        /// Bytes of command line, NUL included.
        CMDLINE_MAX = super::CMDLINE_MAX as u64;
    }
}

crate::abi_consts! {
    /// `StartInfoExt::flags`.
    pub mod start_flags: u64, c_prefix = "SIF" {
        /// The domain is privileged: it may use domain control, the machine
        /// memory map and foreign mappings.
        PRIVILEGED = 1 << 0;
        /// The domain owns the physical console: `console_read` and
        /// `VIRQ_CONSOLE` are its.
        CONSOLE_OWNER = 1 << 1;
        /// The domain holds I/O permissions (ports, MMIO, interrupts) at
        /// start: it is a driver domain.
        DRIVER = 1 << 2;
    }
}
