//! The hypervisor's own page tables, and the only code that writes CR3.
//!
//! Layout of the hypervisor's range (top-level slots 256-271, shared by
//! every address space):
//! - slot 256: the m2p table at `MEM_M2P_VIRT_START`, read-only and
//!   user-accessible (guest kernels run in ring 3 and read it directly);
//!   nothing else lives in this slot;
//! - slot 262: the direct map of RAM (`DIRECT_MAP_BASE` + physical), read-
//!   write, never executable, supervisor-only;
//! - slot 263: the CPUs' hypervisor stacks (`STACKS_BASE`), a window of
//!   `STACK_WINDOW` per CPU holding its main stack and its three IST
//!   stacks, each with an unmapped guard page below it, so an overflow
//!   faults (and the double fault, on its own IST stack, reports it)
//!   instead of running into other data;
//! - slot 271: the image, at `IMAGE_OFFSET` + physical, with text read-only
//!   and executable, rodata read-only, data and bss read-write,
//!   supervisor-only.
//!
//! Every one of the 16 slots gets its L3 table at boot and never changes,
//! so copying the 16 entries into a guest's L4 shares everything the
//! hypervisor maps now or later. This module also owns the TLB: CR3 loads,
//! full flushes and single-page invalidations.

use core::ops::Range;

use hypercall_abi::memory::memory_consts::M2P_VIRT_START;
use veneer_core::addr::{Mfn, HYPERVISOR_L4_SLOTS, PAGE_SIZE};
use veneer_core::frame_allocator::FrameAllocator;
use veneer_core::frame_table::{Flush, HypervisorSlots};
use veneer_core::phys::PhysMemory;
use veneer_core::pte::{level_span, table_index, Pte, PteFlags};
use x86_64::registers::control::{Cr3, Cr3Flags, Cr4, Cr4Flags};
use x86_64::structures::paging::PhysFrame;
use x86_64::PhysAddr;

use super::direct_map::{phys_to_virt, DirectMap};

/// Where the image runs: virtual = `IMAGE_OFFSET` + physical (link.ld).
pub const IMAGE_OFFSET: u64 = 0xffff_8780_0000_0000;

extern "C" {
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __data_start: u8;
    static __data_end: u8;
}

/// The hypervisor's top-level table.
pub struct HypervisorTables {
    pub l4: Mfn,
}

struct Mapper<'a> {
    l4: Mfn,
    frames: &'a mut FrameAllocator,
    mem: &'a mut DirectMap,
    /// Flags of the intermediate tables it creates.
    table_flags: PteFlags,
}

impl Mapper<'_> {
    fn new_table(&mut self) -> Mfn {
        let t = self.frames.alloc().expect("frames for the hypervisor's page tables");
        self.mem.frame_mut(t).fill(0);
        t
    }

    /// Maps `[virt, virt + len)` to `phys`, with 2 MiB pages where both are
    /// aligned and 4 KiB pages elsewhere.
    fn map(&mut self, virt: u64, phys: u64, len: u64, flags: PteFlags) {
        let table_flags = self.table_flags;
        let mut off = 0;
        while off < len {
            let (va, pa) = (virt + off, phys + off);
            let large = va % level_span(2) == 0 && pa % level_span(2) == 0 && len - off >= level_span(2);
            let leaf_level = if large { 2 } else { 1 };
            let mut table = self.l4;
            for level in ((leaf_level + 1)..=4).rev() {
                let i = table_index(va, level);
                let e = Pte(self.mem.read_u64(table, i));
                table = if e.is_present() {
                    e.mfn()
                } else {
                    let t = self.new_table();
                    self.mem.write_u64(table, i, Pte::new(t, table_flags).0);
                    t
                };
            }
            let leaf_flags = if large { flags | PteFlags::HUGE } else { flags };
            self.mem.write_u64(table, table_index(va, leaf_level), Pte::new(Mfn::from_phys(pa), leaf_flags).0);
            off += level_span(leaf_level);
        }
    }
}

/// Where the per-CPU stacks are (slot 263).
pub const STACKS_BASE: u64 = 0xffff_8380_0000_0000;
/// Virtual space per CPU for its stacks and their guard pages.
const STACK_WINDOW: u64 = 1 << 20;
/// Pages of a CPU's main stack (every entry from a guest and all
/// hypervisor work) and of each IST stack.
const MAIN_STACK_PAGES: u64 = 16;
const IST_STACK_PAGES: u64 = 4;
/// IST stacks per CPU (double fault, NMI, machine check).
pub const IST_STACKS: usize = 3;

/// The tops of one CPU's stacks.
#[derive(Clone, Copy, Debug)]
pub struct CpuStacks {
    pub main_top: u64,
    pub ist_tops: [u64; IST_STACKS],
}

/// If `va` is a guard page of the stacks: which CPU's, and which stack it
/// guards (0: main, 1-3: IST).
pub fn stack_guard(va: u64) -> Option<(u64, usize)> {
    let off = va.checked_sub(STACKS_BASE)?;
    let (cpu, page) = (off / STACK_WINDOW, (off % STACK_WINDOW) / PAGE_SIZE as u64);
    let mut first = 0;
    for which in 0..=IST_STACKS {
        if page == first {
            return Some((cpu, which));
        }
        first += 1 + if which == 0 { MAIN_STACK_PAGES } else { IST_STACK_PAGES };
    }
    None
}

fn symbol(s: &u8) -> u64 {
    s as *const u8 as u64
}

/// The L4 slot of the m2p table: the one slot guest code may read.
const M2P_SLOT: usize = (M2P_VIRT_START >> 39) as usize & 511;
const SUPERVISOR_TABLE: PteFlags = PteFlags::PRESENT.union(PteFlags::WRITABLE);
const USER_TABLE: PteFlags = SUPERVISOR_TABLE.union(PteFlags::USER);

/// Builds the hypervisor's tables and switches to them. `devices` are
/// physical pages of device registers, mapped uncached at their direct-map
/// address.
pub fn init(ram: &[Range<Mfn>], devices: &[u64], frames: &mut FrameAllocator, mem: &mut DirectMap) -> HypervisorTables {
    let mut m = Mapper { l4: Mfn(0), frames, mem, table_flags: SUPERVISOR_TABLE };
    m.l4 = m.new_table();
    for slot in HYPERVISOR_L4_SLOTS {
        let l3 = m.new_table();
        let flags = if slot == M2P_SLOT { USER_TABLE } else { SUPERVISOR_TABLE };
        m.mem.write_u64(m.l4, slot, Pte::new(l3, flags).0);
    }
    let data = PteFlags::PRESENT | PteFlags::WRITABLE | PteFlags::GLOBAL | PteFlags::NO_EXECUTE;
    for r in ram {
        let (start, end) = (r.start.phys(), r.end.phys());
        m.map(phys_to_virt(start), start, end - start, data);
    }
    // SAFETY: the linker script defines these symbols; only their addresses
    // are used.
    let sections = unsafe {
        [
            (symbol(&__text_start), symbol(&__text_end), PteFlags::PRESENT | PteFlags::GLOBAL),
            (symbol(&__rodata_start), symbol(&__rodata_end), PteFlags::PRESENT | PteFlags::GLOBAL | PteFlags::NO_EXECUTE),
            (symbol(&__data_start), symbol(&__data_end), data),
        ]
    };
    for (start, end, flags) in sections {
        m.map(start, start - IMAGE_OFFSET, end - start, flags);
    }
    let device = data | PteFlags::CACHE_DISABLE | PteFlags::WRITE_THROUGH;
    for &page in devices {
        assert!(!ram.iter().any(|r| r.contains(&Mfn::from_phys(page))), "device page {page:#x} is RAM");
        m.map(phys_to_virt(page), page, PAGE_SIZE as u64, device);
    }
    let l4 = m.l4;
    activate(l4);
    HypervisorTables { l4 }
}

impl HypervisorTables {
    /// Maps the m2p table's frames, in order, read-only and user-accessible
    /// at `MEM_M2P_VIRT_START`. Called once, before any guest L4 copies the
    /// slots.
    pub fn map_m2p(&self, m2p: &[Mfn], frames: &mut FrameAllocator, mem: &mut DirectMap) {
        let mut m = Mapper { l4: self.l4, frames, mem, table_flags: USER_TABLE };
        let leaf = PteFlags::PRESENT | PteFlags::USER | PteFlags::NO_EXECUTE;
        for (i, frame) in m2p.iter().enumerate() {
            m.map(M2P_VIRT_START + (i * PAGE_SIZE) as u64, frame.phys(), PAGE_SIZE as u64, leaf);
        }
    }

    /// Maps CPU `cpu`'s stacks in its window of slot 263: each stack's
    /// frames above an unmapped guard page.
    pub fn map_cpu_stacks(&self, cpu: usize, frames: &mut FrameAllocator, mem: &mut DirectMap) -> CpuStacks {
        let mut m = Mapper { l4: self.l4, frames, mem, table_flags: SUPERVISOR_TABLE };
        let data = PteFlags::PRESENT | PteFlags::WRITABLE | PteFlags::GLOBAL | PteFlags::NO_EXECUTE;
        let mut va = STACKS_BASE + cpu as u64 * STACK_WINDOW;
        let mut stack = |pages: u64| {
            // The guard page stays unmapped.
            va += PAGE_SIZE as u64;
            for _ in 0..pages {
                let frame = m.frames.alloc().expect("frames for the hypervisor's stacks");
                m.map(va, frame.phys(), PAGE_SIZE as u64, data);
                va += PAGE_SIZE as u64;
            }
            va
        };
        let main_top = stack(MAIN_STACK_PAGES);
        let ist_tops = [(); IST_STACKS].map(|()| stack(IST_STACK_PAGES));
        CpuStacks { main_top, ist_tops }
    }

    /// The entries every guest L4 carries in the hypervisor's slots.
    pub fn slots(&self, mem: &DirectMap) -> HypervisorSlots {
        core::array::from_fn(|i| Pte(mem.read_u64(self.l4, HYPERVISOR_L4_SLOTS.start + i)))
    }
}

/// Switches to the address space whose top-level table is `l4`.
pub fn activate(l4: Mfn) {
    let frame = PhysFrame::from_start_address(PhysAddr::new(l4.phys())).expect("page-aligned L4");
    // SAFETY: every L4 Veneer loads carries the hypervisor's slots (the
    // builder copies them into guest tables), so the code, stack and data in
    // use stay mapped across the switch.
    unsafe { Cr3::write(frame, Cr3Flags::empty()) };
}

/// PCIDs of the guest address spaces: the hypervisor's own tables use 0.
pub const PCID_GUEST_KERNEL: u64 = 1;
pub const PCID_GUEST_USER: u64 = 2;
/// CR3 bit 63: keep the TLB entries of the PCID being loaded.
const CR3_NO_FLUSH: u64 = 1 << 63;

/// The bits a guest CR3 value carries besides the table address, for the
/// kernel and the user address space: the PCID and "no flush" when PCIDs
/// are on, nothing otherwise (then every switch flushes the TLB).
pub fn guest_cr3_bits(pcid: bool) -> (u64, u64) {
    if pcid {
        (PCID_GUEST_KERNEL | CR3_NO_FLUSH, PCID_GUEST_USER | CR3_NO_FLUSH)
    } else {
        (0, 0)
    }
}

/// Loads a guest address space: `cr3` is the physical address of an L4
/// the guest's base pointers name, with the bits of `guest_cr3_bits`.
pub fn activate_guest(cr3: u64) {
    // SAFETY: every guest L4 carries the hypervisor's slots (the builder
    // copies them, M4 keeps them), so the code, stack and data in use stay
    // mapped; the PCID bits are set only when CR4.PCIDE is on.
    unsafe { core::arch::asm!("mov cr3, {}", in(reg) cr3, options(nostack, preserves_flags)) };
}

/// Loads a vCPU's address spaces as it comes onto this CPU: both PCIDs are
/// loaded once without "no flush", so no translation another vCPU left
/// under them survives; the space of the mode it is in stays loaded.
pub fn activate_guest_fresh(kernel_l4: u64, user_l4: u64, in_user_mode: bool, pcid: bool) {
    let user = if user_l4 != 0 { user_l4 } else { kernel_l4 };
    if pcid {
        if in_user_mode {
            activate_guest(kernel_l4 | PCID_GUEST_KERNEL);
            activate_guest(user | PCID_GUEST_USER);
        } else {
            activate_guest(user | PCID_GUEST_USER);
            activate_guest(kernel_l4 | PCID_GUEST_KERNEL);
        }
    } else {
        activate_guest(if in_user_mode { user } else { kernel_l4 });
    }
}

/// Flushes every non-global translation of this CPU, in every PCID when
/// PCIDs are on (toggling CR4.PGE drops them all; a CR3 load would reach
/// only the current one). Guest mappings are never global (rule M5).
pub fn flush_tlb(pcid: bool) {
    if pcid {
        let cr4 = Cr4::read();
        // SAFETY: clearing and restoring PGE changes no mapping; it only
        // invalidates every TLB entry, which is the point.
        unsafe {
            Cr4::write(cr4 - Cr4Flags::PAGE_GLOBAL);
            Cr4::write(cr4);
        }
    } else {
        x86_64::instructions::tlb::flush_all();
    }
}

/// Carries out the TLB work the frame table asked for. With PCIDs an
/// `invlpg` reaches only the current PCID, so any work is a full flush.
pub fn flush(f: &Flush, pcid: bool) {
    if f.full || (pcid && !f.pages().is_empty()) {
        flush_tlb(pcid);
        return;
    }
    for &va in f.pages() {
        x86_64::instructions::tlb::flush(x86_64::VirtAddr::new_truncate(va));
    }
}

const _: () = assert!(PAGE_SIZE == 4096);
const _: () = assert!(M2P_SLOT == HYPERVISOR_L4_SLOTS.start);
const _: () = assert!((STACKS_BASE >> 39) & 511 == 263);
const _: () = assert!((MAIN_STACK_PAGES + 1 + IST_STACKS as u64 * (IST_STACK_PAGES + 1)) * PAGE_SIZE as u64 <= STACK_WINDOW);
