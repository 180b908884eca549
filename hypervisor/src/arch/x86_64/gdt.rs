//! The GDT and TSS: flat ring-0 and ring-3 segments and the stacks the CPU
//! switches to when an exception arrives.
//!
//! The first `SEL_GDT_GUEST_ENTRIES` (512) entries belong to the guest
//! (section 13.1 of the ABI; all null until guests may install their own);
//! the hypervisor's follow, at the selectors the ABI names, in the order
//! SYSCALL and SYSRET require:
//!
//! | selector | segment |
//! |---|---|
//! | `0x1000` | hypervisor code (64-bit) |
//! | `0x1008` | hypervisor data |
//! | `0x1018` | `FLAT_USER_CS32` (RPL 3: `0x101b`) |
//! | `0x1020` | `FLAT_USER_DS` (`0x1023`) |
//! | `0x1028` | `FLAT_USER_CS64` (`0x102b`) |
//! | `0x1030` | the TSS (two entries) |

use core::cell::UnsafeCell;

use hypercall_abi::cpu::selectors;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::{lgdt, load_tss};
use x86_64::registers::model_specific::Star;
use x86_64::structures::gdt::{Descriptor, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::structures::DescriptorTablePointer;
use x86_64::{PrivilegeLevel, VirtAddr};

/// IST slots (1-based in the IDT, 0-based in the TSS).
pub const IST_DOUBLE_FAULT: u16 = 0;
pub const IST_NMI: u16 = 1;
pub const IST_MACHINE_CHECK: u16 = 2;

const IST_STACK_SIZE: usize = 16 * 1024;

#[repr(C, align(16))]
struct Stack(UnsafeCell<[u8; IST_STACK_SIZE]>);
// SAFETY: only the CPU writes these stacks, when it delivers an exception
// through the IST; Rust code takes nothing but their addresses.
unsafe impl Sync for Stack {}

static IST_STACKS: [Stack; 3] = [const { Stack(UnsafeCell::new([0; IST_STACK_SIZE])) }; 3];

const GUEST_ENTRIES: usize = selectors::GDT_GUEST_ENTRIES as usize;
const HYPERVISOR_CODE: usize = GUEST_ENTRIES;
const HYPERVISOR_DATA: usize = GUEST_ENTRIES + 1;
const USER_CS32: usize = (selectors::FLAT_USER_CS32 >> 3) as usize;
const USER_DS: usize = (selectors::FLAT_USER_DS >> 3) as usize;
const USER_CS64: usize = (selectors::FLAT_USER_CS64 >> 3) as usize;
const TSS: usize = USER_CS64 + 1;
const ENTRIES: usize = TSS + 2;

// SYSRET loads CS32, SS = CS32 + 8 and CS64 = CS32 + 16.
const _: () = assert!(USER_DS == USER_CS32 + 1 && USER_CS64 == USER_CS32 + 2);
const _: () = assert!(HYPERVISOR_DATA == HYPERVISOR_CODE + 1 && USER_CS32 > HYPERVISOR_DATA);

/// Flat descriptors: 64-bit code, data, 32-bit code; DPL 0 or 3.
const CODE64_DPL0: u64 = 0x00af_9a00_0000_ffff;
const DATA_DPL0: u64 = 0x00cf_9200_0000_ffff;
const CODE32_DPL3: u64 = 0x00cf_fa00_0000_ffff;
const DATA_DPL3: u64 = 0x00cf_f200_0000_ffff;
const CODE64_DPL3: u64 = 0x00af_fa00_0000_ffff;

#[repr(C, align(16))]
struct Gdt(UnsafeCell<[u64; ENTRIES]>);
// SAFETY: written once by `init` on the boot CPU before it is loaded; the
// CPU alone writes it afterwards (the TSS busy bit).
unsafe impl Sync for Gdt {}

static GDT: Gdt = Gdt(UnsafeCell::new([0; ENTRIES]));

struct TssCell(UnsafeCell<TaskStateSegment>);
// SAFETY: as for the GDT: written by `init` before it is loaded.
unsafe impl Sync for TssCell {}

static TSS_CELL: TssCell = TssCell(UnsafeCell::new(TaskStateSegment::new()));

pub struct Selectors {
    pub kernel_code: SegmentSelector,
    pub kernel_data: SegmentSelector,
    pub user_data: SegmentSelector,
    pub user_code: SegmentSelector,
    pub tss: SegmentSelector,
}

fn selector(index: usize, rpl: PrivilegeLevel) -> SegmentSelector {
    SegmentSelector::new(index as u16, rpl)
}

/// Loads the GDT and TSS; `stack_top` is where the CPU lands on an exception
/// from ring 3 (the same stack hypercalls use).
pub fn init(stack_top: u64) -> Selectors {
    // SAFETY: boot runs this once on the only CPU, before the GDT or TSS is
    // loaded, so nothing else reads or writes them.
    let (gdt, tss) = unsafe { (&mut *GDT.0.get(), &mut *TSS_CELL.0.get()) };
    tss.privilege_stack_table[0] = VirtAddr::new(stack_top);
    for (slot, stack) in IST_STACKS.iter().enumerate() {
        tss.interrupt_stack_table[slot] = VirtAddr::new(stack.0.get() as u64 + IST_STACK_SIZE as u64);
    }
    gdt[HYPERVISOR_CODE] = CODE64_DPL0;
    gdt[HYPERVISOR_DATA] = DATA_DPL0;
    gdt[USER_CS32] = CODE32_DPL3;
    gdt[USER_DS] = DATA_DPL3;
    gdt[USER_CS64] = CODE64_DPL3;
    let Descriptor::SystemSegment(low, high) = Descriptor::tss_segment(tss) else {
        unreachable!("a TSS descriptor is a system segment")
    };
    gdt[TSS] = low;
    gdt[TSS + 1] = high;
    let sel = Selectors {
        kernel_code: selector(HYPERVISOR_CODE, PrivilegeLevel::Ring0),
        kernel_data: selector(HYPERVISOR_DATA, PrivilegeLevel::Ring0),
        user_data: selector(USER_DS, PrivilegeLevel::Ring3),
        user_code: selector(USER_CS64, PrivilegeLevel::Ring3),
        tss: selector(TSS, PrivilegeLevel::Ring0),
    };
    let pointer = DescriptorTablePointer { limit: (ENTRIES * 8 - 1) as u16, base: VirtAddr::new(gdt.as_ptr() as u64) };
    // SAFETY: the table is static, complete, and its flat segments match
    // those in use since boot; the selectors index it, and the TSS entry
    // describes the static TSS.
    unsafe {
        lgdt(&pointer);
        CS::set_reg(sel.kernel_code);
        SS::set_reg(sel.kernel_data);
        DS::set_reg(SegmentSelector(0));
        ES::set_reg(SegmentSelector(0));
        load_tss(sel.tss);
    }
    // SYSRET's base is the CS32 selector (it adds 8 for SS and 16 for CS64);
    // SYSCALL's is the hypervisor's code selector.
    let sysret = selectors::FLAT_USER_CS32 as u16;
    // SAFETY: both selectors index the GDT just loaded, with the data
    // segment right after each code segment and CS64 after the user data
    // segment, as SYSCALL and SYSRET require (asserted above).
    unsafe { Star::write_raw(sysret, sel.kernel_code.0) };
    sel
}
