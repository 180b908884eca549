//! Building a domain from a checked guest image (direct paging).
//!
//! The builder plans the bootstrap address space first and refuses anything
//! that does not fit before it takes a single frame; once the frames are
//! taken nothing can fail. The guest receives frames it owns; its page
//! tables hold machine frame numbers and are mapped read-only into its own
//! address space, so it can read them but never write them; the top-level
//! slots the hypervisor reserves point at the hypervisor's own tables. The
//! order of the bootstrap regions is described in `hypercall_abi::start_info`.
//!
//! The builder's tables go through the same validation as a guest's: they
//! are typed bottom-up in the frame table and the L4 is pinned and
//! installed as vCPU 0's base pointer (SPEC §7.1), so a builder mistake is
//! caught as a refused table, not run.

use alloc::string::String;
use core::fmt;
use core::mem::{offset_of, size_of};

use hypercall_abi::memory::memory_consts::M2P_VIRT_START;
use hypercall_abi::start_info::{start_flags, StartInfo, StartInfoExt, CMDLINE_MAX, START_INFO_EXT_MAGIC, START_INFO_EXT_OFFSET, START_INFO_MAGIC};
use hypercall_abi::version::AbiVersion;

use crate::addr::{range_is_guest, Mfn, HYPERVISOR_L4_SLOTS, PAGE_SIZE};
use crate::domain::{Domain, DomainId};
use crate::console::ConsoleLines;
use crate::event_channel::{EventChannels, Privileges};
use crate::elf_image::GuestImage;
use crate::frame_table::{HypervisorSlots, PageType};
use crate::machine::MachineMemory;
use crate::phys::PhysMemory;
use crate::pte::{table_index, Pte, PteFlags};
use crate::vcpu::{vcpu_info_offset, GuestRegisters, Vcpu};
use hypercall_abi::shared_info::{VcpuInfo, VCPU_MAX};

/// Pages of boot stack a domain starts with.
pub const BOOT_STACK_PAGES: u64 = 4;

const PAGE: u64 = PAGE_SIZE as u64;

#[derive(Debug, PartialEq, Eq)]
pub enum BuildError {
    /// The bootstrap regions need more pages than the domain is given.
    DoesNotFit { needed_pages: u64, domain_pages: u64 },
    /// The bootstrap regions would run into the hypervisor's range or off
    /// the end of the address space.
    LayoutOutOfRange { end: u64 },
    /// The machine has too few free frames for the domain.
    OutOfMemory { needed_pages: u64, free_pages: u64 },
    CmdlineTooLong { len: usize },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::DoesNotFit { needed_pages, domain_pages } => write!(
                f,
                "image does not fit: bootstrap needs {needed_pages} pages, domain has {domain_pages}"
            ),
            BuildError::LayoutOutOfRange { end } => {
                write!(f, "bootstrap regions would end at {end:#x}, outside the guest's range")
            }
            BuildError::OutOfMemory { needed_pages, free_pages } => {
                write!(f, "out of memory: domain needs {needed_pages} frames, {free_pages} free")
            }
            BuildError::CmdlineTooLong { len } => {
                write!(f, "command line of {len} bytes exceeds {}", CMDLINE_MAX - 1)
            }
        }
    }
}

/// Where each bootstrap region lies, as page indices from `virt_start`
/// (equal to pseudo-physical frame numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub virt_start: u64,
    pub image_pages: u64,
    pub start_info_pfn: u64,
    pub p2m_pfn: u64,
    pub p2m_pages: u64,
    pub pt_pfn: u64,
    pub pt_pages: u64,
    pub stack_pfn: u64,
    pub ramdisk_pfn: u64,
    pub ramdisk_pages: u64,
    /// One past the last bootstrap page.
    pub end_pfn: u64,
    /// Where the shared-info page is mapped: the page after the last
    /// bootstrap page (not a pseudo-physical frame).
    pub shared_info_va: u64,
}

impl Layout {
    pub fn va(&self, pfn: u64) -> u64 {
        self.virt_start + pfn * PAGE
    }
}

/// Page tables of each level needed to map `[start, end)`, top level
/// included.
fn tables_for(start: u64, end: u64) -> u64 {
    let span = |shift: u32| ((end - 1) >> shift) - (start >> shift) + 1;
    1 + span(39) + span(30) + span(21)
}

/// Plans the bootstrap address space of a domain of `nr_pages` pages.
pub fn plan(image: &GuestImage<'_>, nr_pages: u64, ramdisk_len: u64) -> Result<Layout, BuildError> {
    let image_pages = (image.virt_end - image.virt_start) / PAGE;
    let p2m_pages = (nr_pages * 8).div_ceil(PAGE);
    let ramdisk_pages = ramdisk_len.div_ceil(PAGE);
    let ramdisk_pfn = image_pages;
    let start_info_pfn = ramdisk_pfn + ramdisk_pages;
    let p2m_pfn = start_info_pfn + 1;
    let pt_pfn = p2m_pfn + p2m_pages;
    // The tables must also map themselves: grow until the count is stable.
    let mut pt_pages = 1;
    loop {
        // The shared-info page follows the boot stack.
        let end_pfn = pt_pfn + pt_pages + BOOT_STACK_PAGES + 1;
        let end = end_pfn
            .checked_mul(PAGE)
            .and_then(|b| image.virt_start.checked_add(b))
            .filter(|&end| range_is_guest(image.virt_start, end - image.virt_start))
            .ok_or(BuildError::LayoutOutOfRange { end: image.virt_start.wrapping_add(end_pfn.wrapping_mul(PAGE)) })?;
        let needed = tables_for(image.virt_start, end);
        if needed <= pt_pages {
            break;
        }
        pt_pages = needed;
    }
    let stack_pfn = pt_pfn + pt_pages;
    // The page after the stack maps the shared-info page; the pseudo-
    // physical frame of that page is left unused, so that every frame the
    // guest allocates from `first_free_pfn` on has its usual virtual address
    // free.
    let end_pfn = stack_pfn + BOOT_STACK_PAGES + 1;
    if end_pfn > nr_pages {
        return Err(BuildError::DoesNotFit { needed_pages: end_pfn, domain_pages: nr_pages });
    }
    Ok(Layout {
        virt_start: image.virt_start,
        image_pages,
        start_info_pfn,
        p2m_pfn,
        p2m_pages,
        pt_pfn,
        pt_pages,
        stack_pfn,
        ramdisk_pfn,
        ramdisk_pages,
        end_pfn,
        shared_info_va: image.virt_start + (end_pfn - 1) * PAGE,
    })
}

/// What to build.
pub struct DomainSpec<'a> {
    pub id: DomainId,
    pub name: &'a str,
    pub image: &'a GuestImage<'a>,
    pub memory_bytes: u64,
    pub cmdline: &'a str,
    pub ramdisk: Option<&'a [u8]>,
    pub abi: AbiVersion,
    pub features: u64,
    /// vCPUs, `1 ..= VCPU_MAX`; vCPU 0 starts online, the others offline.
    pub vcpus: u32,
    /// The handle of its console slot, `DEVICE_NONE` if it has none
    /// (`StartInfoExt::console_device`).
    pub console_device: u32,
    /// It owns the physical console (`SIF_CONSOLE_OWNER`).
    pub console_owner: bool,
}

/// Builds the domain: takes its frames (its pseudo-physical memory and its
/// shared-info page), loads the image, writes the start-info page, the p2m
/// array, the m2p entries and the page tables, pins the tables and sets up
/// vCPU 0.
pub fn build(spec: &DomainSpec<'_>, machine: &mut MachineMemory, mem: &mut impl PhysMemory) -> Result<Domain, BuildError> {
    if spec.cmdline.len() >= CMDLINE_MAX {
        return Err(BuildError::CmdlineTooLong { len: spec.cmdline.len() });
    }
    let nr_pages = spec.memory_bytes / PAGE;
    let ramdisk = spec.ramdisk.unwrap_or(&[]);
    let layout = plan(spec.image, nr_pages, ramdisk.len() as u64)?;
    let free_pages = machine.allocator.free_count();
    let mut p2m = machine
        .allocator
        .alloc_many(nr_pages + 1)
        .ok_or(BuildError::OutOfMemory { needed_pages: nr_pages + 1, free_pages })?;
    let shared_info = p2m.pop().expect("one frame more than the pages");

    // From here on nothing fails. Frames may hold a previous owner's data.
    for &mfn in p2m.iter().chain([&shared_info]) {
        machine.frames.assign(mfn, spec.id);
        mem.frame_mut(mfn).fill(0);
    }
    for (pfn, &mfn) in p2m.iter().enumerate() {
        machine.m2p.set(mem, mfn, pfn as u64);
    }
    load_image(spec.image, &layout, &p2m, mem);
    copy_to_frames(ramdisk, &p2m[layout.ramdisk_pfn as usize..], mem);
    for (pfn, mfn) in p2m.iter().enumerate() {
        let at = layout.p2m_pfn as usize * PAGE_SIZE + pfn * 8;
        mem.write_u64(p2m[at / PAGE_SIZE], (at % PAGE_SIZE) / 8, mfn.0);
    }
    let boot = BootFacts { nr_pages, ramdisk_len: ramdisk.len() as u64, shared_info, m2p_entries: machine.m2p.entries() };
    write_start_info(spec, &layout, &boot, mem.frame_mut(p2m[layout.start_info_pfn as usize]));
    // The shared-info page is typed before the tables that map it are
    // validated: its owner may map it writable (M2).
    machine.frames.acquire_special(spec.id, shared_info, PageType::SharedInfo, mem).expect("a fresh frame");
    let l4 = build_page_tables(spec.image, &layout, &p2m, shared_info, machine.frames.hypervisor_slots(), mem);
    type_tree(machine, spec.id, l4, 4, mem);
    machine.frames.acquire_base(spec.id, l4).expect("the bootstrap L4 is an L4");
    // Every vCPU starts with events masked (section 7.1).
    for id in 0..VCPU_MAX as u32 {
        mem.frame_mut(shared_info)[vcpu_info_offset(id) + offset_of!(VcpuInfo, upcall_mask)] = 1;
    }

    let stack_top = layout.va(layout.stack_pfn + BOOT_STACK_PAGES);
    let regs = GuestRegisters::at_entry(spec.image.entry, stack_top, layout.va(layout.start_info_pfn));
    Ok(Domain {
        id: spec.id,
        name: String::from(spec.name),
        nr_pages,
        max_pages: nr_pages,
        shared_info,
        vcpus: (0..spec.vcpus)
            .map(|id| {
                // Offline vCPUs get their registers and base pointers from
                // `vcpu_initialise`; only vCPU 0 holds a use of the L4 now.
                let regs = if id == 0 { regs } else { GuestRegisters::default() };
                alloc::boxed::Box::new(Vcpu::new(id, regs, l4, shared_info))
            })
            .collect(),
        events: EventChannels::new(spec.vcpus, Privileges { console_owner: spec.console_owner, ..Privileges::default() }),
        grants: crate::grant_table::GrantTable::new(),
        console: ConsoleLines::new(spec.id.0, spec.vcpus),
    })
}

/// Types the bootstrap tree below `table` bottom-up, as a guest would: each
/// table is pinned after the tables its entries name, which are then
/// unpinned and keep their type through those entries (M3). Only the L4
/// stays pinned (SPEC §7.1).
fn type_tree(machine: &mut MachineMemory, dom: DomainId, table: Mfn, level: u32, mem: &mut impl PhysMemory) {
    let mut children = alloc::vec::Vec::new();
    if level > 1 {
        for index in 0..crate::pte::ENTRIES {
            let entry = Pte(mem.read_u64(table, index));
            if entry.is_present() && !(level == 4 && HYPERVISOR_L4_SLOTS.contains(&index)) {
                type_tree(machine, dom, entry.mfn(), level - 1, mem);
                children.push(entry.mfn());
            }
        }
    }
    machine.frames.pin(dom, table, level, mem).expect("the builder's page tables pass validation");
    for child in children {
        machine.frames.unpin(dom, child, mem).expect("pinned just above");
    }
}

/// What the start-info page reports beyond the layout.
struct BootFacts {
    nr_pages: u64,
    ramdisk_len: u64,
    shared_info: Mfn,
    m2p_entries: u64,
}

fn copy_to_frames(bytes: &[u8], frames: &[Mfn], mem: &mut impl PhysMemory) {
    for (chunk, &mfn) in bytes.chunks(PAGE_SIZE).zip(frames) {
        mem.frame_mut(mfn)[..chunk.len()].copy_from_slice(chunk);
    }
}

fn load_image(image: &GuestImage<'_>, layout: &Layout, p2m: &[Mfn], mem: &mut impl PhysMemory) {
    for seg in &image.segments {
        let mut off = 0usize;
        while off < seg.data.len() {
            let va = seg.vaddr + off as u64;
            let pfn = ((va - layout.virt_start) / PAGE) as usize;
            let in_page = (va % PAGE) as usize;
            let n = (PAGE_SIZE - in_page).min(seg.data.len() - off);
            mem.frame_mut(p2m[pfn])[in_page..in_page + n].copy_from_slice(&seg.data[off..off + n]);
            off += n;
        }
    }
}

fn write_start_info(spec: &DomainSpec<'_>, layout: &Layout, boot: &BootFacts, page: &mut [u8; PAGE_SIZE]) {
    let mut put = |offset: usize, bytes: &[u8]| page[offset..offset + bytes.len()].copy_from_slice(bytes);
    put(offset_of!(StartInfo, magic), &START_INFO_MAGIC.to_le_bytes());
    put(offset_of!(StartInfo, abi_major), &spec.abi.major.to_le_bytes());
    put(offset_of!(StartInfo, abi_minor), &spec.abi.minor.to_le_bytes());
    put(offset_of!(StartInfo, domain_id), &spec.id.0.to_le_bytes());
    put(offset_of!(StartInfo, nr_pages), &boot.nr_pages.to_le_bytes());
    put(offset_of!(StartInfo, first_free_pfn), &layout.end_pfn.to_le_bytes());
    put(offset_of!(StartInfo, p2m_base), &layout.va(layout.p2m_pfn).to_le_bytes());
    put(offset_of!(StartInfo, pt_base), &layout.va(layout.pt_pfn).to_le_bytes());
    put(offset_of!(StartInfo, nr_pt_frames), &layout.pt_pages.to_le_bytes());
    if boot.ramdisk_len > 0 {
        put(offset_of!(StartInfo, ramdisk_base), &layout.va(layout.ramdisk_pfn).to_le_bytes());
        put(offset_of!(StartInfo, ramdisk_len), &boot.ramdisk_len.to_le_bytes());
    }
    put(offset_of!(StartInfo, features), &spec.features.to_le_bytes());
    // The rest of the page, cmdline padding included, is already zero.
    put(offset_of!(StartInfo, cmdline), spec.cmdline.as_bytes());
    let ext = |field: usize| START_INFO_EXT_OFFSET + field;
    put(ext(offset_of!(StartInfoExt, magic)), &START_INFO_EXT_MAGIC.to_le_bytes());
    let flags = if spec.console_owner { start_flags::CONSOLE_OWNER } else { 0 };
    put(ext(offset_of!(StartInfoExt, flags)), &flags.to_le_bytes());
    put(ext(offset_of!(StartInfoExt, shared_info_mfn)), &boot.shared_info.0.to_le_bytes());
    put(ext(offset_of!(StartInfoExt, shared_info_va)), &layout.shared_info_va.to_le_bytes());
    put(ext(offset_of!(StartInfoExt, nr_vcpus)), &spec.vcpus.to_le_bytes());
    put(ext(offset_of!(StartInfoExt, console_device)), &spec.console_device.to_le_bytes());
    put(ext(offset_of!(StartInfoExt, m2p_base)), &M2P_VIRT_START.to_le_bytes());
    put(ext(offset_of!(StartInfoExt, m2p_nr_entries)), &boot.m2p_entries.to_le_bytes());
    const _: () = assert!(size_of::<StartInfo>() <= PAGE_SIZE);
}

/// Leaf permissions of bootstrap page `pfn`.
fn leaf_flags(image: &GuestImage<'_>, layout: &Layout, pfn: u64) -> PteFlags {
    let base = PteFlags::PRESENT | PteFlags::USER;
    if pfn < layout.image_pages {
        let (page_lo, page_hi) = (layout.va(pfn), layout.va(pfn + 1));
        let touching = image.segments.iter().filter(|s| s.vaddr < page_hi && page_lo < s.vaddr + s.mem_size);
        let (mut writable, mut executable) = (false, false);
        for s in touching {
            writable |= s.writable;
            executable |= s.executable;
        }
        let mut flags = base;
        flags.set(PteFlags::WRITABLE, writable);
        flags.set(PteFlags::NO_EXECUTE, !executable);
        return flags;
    }
    let is_page_table = (layout.pt_pfn..layout.pt_pfn + layout.pt_pages).contains(&pfn);
    if is_page_table {
        base | PteFlags::NO_EXECUTE
    } else {
        base | PteFlags::WRITABLE | PteFlags::NO_EXECUTE
    }
}

fn build_page_tables(
    image: &GuestImage<'_>,
    layout: &Layout,
    p2m: &[Mfn],
    shared_info: Mfn,
    hypervisor_slots: &HypervisorSlots,
    mem: &mut impl PhysMemory,
) -> Mfn {
    let table_flags = PteFlags::PRESENT | PteFlags::WRITABLE | PteFlags::USER;
    let l4 = p2m[layout.pt_pfn as usize];
    let mut next_table = layout.pt_pfn + 1;
    for (slot, entry) in HYPERVISOR_L4_SLOTS.zip(hypervisor_slots) {
        mem.write_u64(l4, slot, entry.0);
    }
    let shared_info_pfn = (layout.shared_info_va - layout.virt_start) / PAGE;
    for pfn in 0..=shared_info_pfn {
        let va = layout.va(pfn);
        let mut table = l4;
        for level in (2..=4u32).rev() {
            let index = table_index(va, level);
            let entry = Pte(mem.read_u64(table, index));
            table = if entry.is_present() {
                entry.mfn()
            } else {
                let t = p2m[next_table as usize];
                next_table += 1;
                mem.write_u64(table, index, Pte::new(t, table_flags).0);
                t
            };
        }
        let leaf = if pfn == shared_info_pfn {
            Pte::new(shared_info, PteFlags::PRESENT | PteFlags::USER | PteFlags::WRITABLE | PteFlags::NO_EXECUTE)
        } else {
            Pte::new(p2m[pfn as usize], leaf_flags(image, layout, pfn))
        };
        mem.write_u64(table, table_index(va, 1), leaf.0);
    }
    assert_eq!(next_table, layout.pt_pfn + layout.pt_pages, "planned page-table count matches");
    l4
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame_table::tests::audit;
    use crate::guest_memory::Access;
    use crate::test_support::{machine, ElfBuilder};
    use hypercall_abi::memory::memory_consts::INVALID_FRAME;
    use hypercall_abi::version::AbiVersion;
    use proptest::prelude::*;

    const V1: AbiVersion = AbiVersion { major: 1, minor: 0 };

    fn spec<'a>(image: &'a GuestImage<'a>, memory_bytes: u64, ramdisk: Option<&'a [u8]>) -> DomainSpec<'a> {
        DomainSpec { id: DomainId(1), name: "t", image, memory_bytes, cmdline: "hello", ramdisk, abi: V1, features: 0, vcpus: 1, console_device: 3, console_owner: false }
    }

    #[test]
    fn builds_the_documented_address_space() {
        let bytes = ElfBuilder::guest().build();
        let image = GuestImage::parse(&bytes, V1, 0).unwrap();
        let (mut m, mut mem) = machine(2048, 100);
        let before = m.allocator.free_count();
        let ramdisk = [0x5au8; 5000];
        let d = build(&spec(&image, 4 << 20, Some(&ramdisk)), &mut m, &mut mem).unwrap();
        assert_eq!(d.nr_pages, 1024);
        assert_eq!(m.allocator.free_count(), before - 1024 - 1, "the pages and the shared-info page");

        let space = d.space(0);
        let si_va = d.vcpus[0].regs.gprs.rdi;
        let mut si = [0u8; 128 + 8];
        space.copy_from(&mem, si_va, &mut si).unwrap();
        let word = |o: usize| u64::from_le_bytes(si[o..o + 8].try_into().unwrap());
        assert_eq!(word(offset_of!(StartInfo, magic)), START_INFO_MAGIC);
        assert_eq!(word(offset_of!(StartInfo, nr_pages)), 1024);
        assert_eq!(&si[128..134], b"hello\0");
        let mut ext = [0u8; 48];
        space.copy_from(&mem, si_va + START_INFO_EXT_OFFSET as u64, &mut ext).unwrap();
        let ext_word = |o: usize| u64::from_le_bytes(ext[o..o + 8].try_into().unwrap());
        assert_eq!(ext_word(offset_of!(StartInfoExt, magic)), START_INFO_EXT_MAGIC);
        assert_eq!(ext_word(offset_of!(StartInfoExt, flags)), 0, "no console ownership unless configured");
        assert!(!d.events.privileges().console_owner);
        assert_eq!(u32::from_le_bytes(ext[24..28].try_into().unwrap()), 1, "nr_vcpus");
        assert_eq!(u32::from_le_bytes(ext[28..32].try_into().unwrap()), 3, "console_device");
        assert_eq!(ext_word(offset_of!(StartInfoExt, shared_info_mfn)), d.shared_info.0);
        assert_eq!(ext_word(offset_of!(StartInfoExt, m2p_base)), M2P_VIRT_START);
        assert_eq!(ext_word(offset_of!(StartInfoExt, m2p_nr_entries)), 2048);

        // The image is where its ELF says, data initialised and bss zero.
        let mut data = [0u8; 0x200];
        space.copy_from(&mem, 0xffff_ffff_8000_1000, &mut data).unwrap();
        assert_eq!(data[0xff], 0xff);
        assert!(data[0x100..].iter().all(|&b| b == 0));
        // Text is read-only, data writable.
        assert!(space.translate(&mem, 0xffff_ffff_8000_0000, Access::Write).is_err());
        assert!(space.translate(&mem, 0xffff_ffff_8000_1000, Access::Write).is_ok());

        // The p2m array says what the builder took.
        let p2m_va = word(offset_of!(StartInfo, p2m_base));
        let mut e = [0u8; 8];
        space.copy_from(&mem, p2m_va + 8 * 7, &mut e).unwrap();
        let mfn7 = Mfn(u64::from_le_bytes(e));
        assert_eq!(m.frames.owner(mfn7), Some(DomainId(1)));
        assert_eq!(m.m2p.get(&mem, mfn7), 7, "the m2p agrees");
        assert_eq!(m.m2p.get(&mem, d.shared_info), INVALID_FRAME, "shared info has no pfn");

        // Every page-table frame is mapped, and only read-only.
        let pt_base = word(offset_of!(StartInfo, pt_base));
        let nr_pt = word(offset_of!(StartInfo, nr_pt_frames));
        assert!(nr_pt >= 4);
        for i in 0..nr_pt {
            let va = pt_base + i * PAGE;
            assert!(space.translate(&mem, va, Access::Read).is_ok());
            assert_eq!(space.translate(&mem, va, Access::Write), Err(hypercall_abi::Error::BadAddress));
        }
        assert_eq!(space.translate(&mem, pt_base, Access::Read).unwrap().0, space.l4);

        // The stack and the ramdisk.
        let rsp = d.vcpus[0].regs.rsp;
        assert!(space.translate(&mem, rsp - 8, Access::Write).is_ok());
        let rd = word(offset_of!(StartInfo, ramdisk_base));
        let mut r = [0u8; 16];
        space.copy_from(&mem, rd + 4990, &mut r[..10]).unwrap();
        assert_eq!(&r[..10], &[0x5a; 10]);

        // Hypervisor slots are the hypervisor's.
        for (slot, entry) in HYPERVISOR_L4_SLOTS.zip(*m.frames.hypervisor_slots()) {
            assert_eq!(mem.read_u64(space.l4, slot), entry.0);
        }
        assert_eq!(space.translate(&mem, 0xffff_8000_0000_0000, Access::Read), Err(hypercall_abi::Error::BadAddress));

        // The tables are typed and the L4 pinned and installed (SPEC 7.1);
        // every count matches what exists.
        let l4 = m.frames.info(space.l4).unwrap();
        assert_eq!((l4.ty, l4.pinned, l4.type_count), (PageType::L4, true, 2));
        for i in 1..nr_pt {
            let (mfn, _) = space.translate(&mem, pt_base + i * PAGE, Access::Read).unwrap();
            let f = m.frames.info(mfn).unwrap();
            assert!(f.ty.table_level().is_some() && !f.pinned, "table {i}: {f:?}");
        }
        audit(&m.frames, &mem, &[space.l4], &[d.shared_info], &[]).unwrap();

        d.teardown(&mut m, &mut mem).unwrap();
        assert_eq!(m.allocator.free_count(), before);
        assert_eq!(m.m2p.get(&mem, mfn7), INVALID_FRAME);
        assert!((0..2048).all(|f| m.frames.owner(Mfn(f)).is_none()));
    }

    #[test]
    fn refuses_before_taking_frames() {
        let bytes = ElfBuilder::guest().build();
        let image = GuestImage::parse(&bytes, V1, 0).unwrap();
        let (mut m, mut mem) = machine(512, 100);
        let before = m.allocator.free_count();
        // 12 pages cannot hold image (3) + start info + p2m + tables (4) +
        // stack (4) + the slot of the shared-info page.
        let small = build(&spec(&image, 12 * PAGE, None), &mut m, &mut mem).map(|_| ());
        assert_eq!(small, Err(BuildError::DoesNotFit { needed_pages: 14, domain_pages: 12 }));
        let huge = build(&spec(&image, 1 << 30, None), &mut m, &mut mem).map(|_| ());
        assert!(matches!(huge, Err(BuildError::OutOfMemory { .. })));
        let long = "x".repeat(CMDLINE_MAX);
        let mut s = spec(&image, 1 << 20, None);
        s.cmdline = &long;
        assert!(matches!(build(&s, &mut m, &mut mem), Err(BuildError::CmdlineTooLong { .. })));
        assert_eq!(m.allocator.free_count(), before);
        assert!((0..512).all(|f| m.frames.owner(Mfn(f)).is_none()));
    }

    proptest! {
        /// The planned page-table count always matches what mapping the
        /// bootstrap region needs, wherever the image lies.
        #[test]
        fn plan_counts_tables_exactly(base_page in 0u64..(1 << 20), pages in 1u64..4096) {
            let base = 0xffff_ff00_0000_0000 + base_page * PAGE;
            let bytes = ElfBuilder::guest().base(base).build();
            let image = GuestImage::parse(&bytes, V1, 0).unwrap();
            let l = plan(&image, pages + 16, 0);
            if let Ok(l) = l {
                prop_assert_eq!(l.pt_pages, tables_for(base, l.va(l.end_pfn)));
                prop_assert!(l.end_pfn <= pages + 16);
            }
        }
    }
}
