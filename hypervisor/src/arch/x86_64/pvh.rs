//! The PVH boot protocol: the `hvm_start_info` structure the loader leaves
//! for us, its memory map and its modules (our boot bundle).

use core::ops::Range;

use veneer_core::acpi::{self, AcpiError, Madt};

use super::direct_map::phys_to_virt;

const START_INFO_MAGIC: u32 = 0x336e_c578;
const MEMMAP_TYPE_RAM: u32 = 1;
pub const MAX_REGIONS: usize = 64;

#[repr(C)]
struct HvmStartInfo {
    magic: u32,
    version: u32,
    flags: u32,
    nr_modules: u32,
    modlist_paddr: u64,
    cmdline_paddr: u64,
    rsdp_paddr: u64,
    memmap_paddr: u64,
    memmap_entries: u32,
    reserved: u32,
}

#[repr(C)]
struct HvmModlistEntry {
    paddr: u64,
    size: u64,
    cmdline_paddr: u64,
    reserved: u64,
}

#[repr(C)]
struct HvmMemmapEntry {
    addr: u64,
    size: u64,
    kind: u32,
    reserved: u32,
}

/// What the loader told us, copied out of its structures.
pub struct BootInfo {
    /// RAM regions (physical byte ranges), in the loader's order.
    pub ram: [Range<u64>; MAX_REGIONS],
    pub ram_count: usize,
    /// The first module: the boot bundle.
    pub bundle: Option<Range<u64>>,
    /// The hypervisor's command line (QEMU's `-append`), if any.
    pub cmdline: &'static str,
    /// Physical address of the ACPI RSDP; 0 if the loader gave none.
    pub rsdp: u64,
}

pub enum PvhError {
    BadMagic(u32),
    /// Version 0 has no memory map; Veneer needs one.
    NoMemoryMap,
}

impl core::fmt::Display for PvhError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PvhError::BadMagic(m) => write!(f, "magic {m:#x}, expected {START_INFO_MAGIC:#x} (not booted through PVH?)"),
            PvhError::NoMemoryMap => write!(f, "no memory map (start info version 0)"),
        }
    }
}

/// Reads the start info at physical `addr`.
///
/// # Safety
/// `addr` must be the pointer the PVH loader passed in `%ebx`, and the
/// direct map must cover the loader's structures (the boot tables map the
/// first 4 GiB).
pub unsafe fn read(addr: u64) -> Result<BootInfo, PvhError> {
    // SAFETY: per the contract, a valid hvm_start_info lies at `addr`.
    let si = unsafe { &*(phys_to_virt(addr) as *const HvmStartInfo) };
    if si.magic != START_INFO_MAGIC {
        return Err(PvhError::BadMagic(si.magic));
    }
    if si.version < 1 || si.memmap_entries == 0 {
        return Err(PvhError::NoMemoryMap);
    }
    let mut info = BootInfo { ram: [const { 0..0 }; MAX_REGIONS], ram_count: 0, bundle: None, cmdline: "", rsdp: si.rsdp_paddr };
    if si.cmdline_paddr != 0 {
        // SAFETY: the loader leaves a NUL-terminated string at
        // `cmdline_paddr`, in memory below 4 GiB that nothing reuses.
        let c = unsafe { core::ffi::CStr::from_ptr(phys_to_virt(si.cmdline_paddr) as *const core::ffi::c_char) };
        info.cmdline = c.to_str().unwrap_or("");
    }
    for i in 0..si.memmap_entries as usize {
        // SAFETY: the loader promises `memmap_entries` entries at
        // `memmap_paddr`, inside the mapped first 4 GiB.
        let e = unsafe { &*(phys_to_virt(si.memmap_paddr) as *const HvmMemmapEntry).add(i) };
        if e.kind == MEMMAP_TYPE_RAM && e.size > 0 && info.ram_count < MAX_REGIONS {
            info.ram[info.ram_count] = e.addr..e.addr + e.size;
            info.ram_count += 1;
        }
    }
    if si.nr_modules > 0 {
        // SAFETY: as above, for the module list.
        let m = unsafe { &*(phys_to_virt(si.modlist_paddr) as *const HvmModlistEntry) };
        info.bundle = Some(m.paddr..m.paddr + m.size);
    }
    Ok(info)
}

/// The CPUs the firmware's ACPI MADT lists, from the RSDP at `rsdp`.
///
/// # Safety
/// The boot tables must still be loaded: they map the first 4 GiB at the
/// direct-map address, where the firmware keeps its ACPI tables (reads
/// above 4 GiB are refused).
pub unsafe fn read_madt(rsdp: u64) -> Result<Madt, AcpiError> {
    let read = |at: u64, buf: &mut [u8]| {
        if at.checked_add(buf.len() as u64).is_none_or(|end| end > BOOT_MAPPED) {
            return false;
        }
        // SAFETY: the range lies in the first 4 GiB, mapped by the boot
        // tables (the caller's contract); firmware tables are not written
        // by anyone meanwhile.
        unsafe { core::ptr::copy_nonoverlapping(phys_to_virt(at) as *const u8, buf.as_mut_ptr(), buf.len()) };
        true
    };
    acpi::read_madt(rsdp, &read)
}

/// What the boot tables map at the direct-map address: the first 4 GiB.
const BOOT_MAPPED: u64 = 1 << 32;
