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

use alloc::boxed::Box;

use hypercall_abi::cpu::selectors;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::{lgdt, load_tss};
use x86_64::registers::model_specific::Star;
use x86_64::structures::gdt::{Descriptor, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::structures::DescriptorTablePointer;
use x86_64::{PrivilegeLevel, VirtAddr};

use super::paging::CpuStacks;

/// IST slots (1-based in the IDT, 0-based in the TSS).
pub const IST_DOUBLE_FAULT: u16 = 0;
pub const IST_NMI: u16 = 1;
pub const IST_MACHINE_CHECK: u16 = 2;

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

/// A CPU's GDT: each CPU has its own, for its own TSS (whose descriptor
/// the CPU marks busy when it loads it).
#[repr(C, align(16))]
struct Gdt([u64; ENTRIES]);

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

/// Builds this CPU's GDT and TSS and loads them: `stacks.main_top` is
/// where the CPU lands on an exception from ring 3 (the stack hypercalls
/// use too), and the IST stacks take the double fault, NMI and machine
/// check. Called once per CPU.
pub fn init(stacks: &CpuStacks) -> Selectors {
    let mut tss = TaskStateSegment::new();
    tss.privilege_stack_table[0] = VirtAddr::new(stacks.main_top);
    for (slot, top) in stacks.ist_tops.iter().enumerate() {
        tss.interrupt_stack_table[slot] = VirtAddr::new(*top);
    }
    // Both live as long as the CPU runs: for the rest of the run.
    let tss: &'static TaskStateSegment = Box::leak(Box::new(tss));
    let gdt = &mut Box::leak(Box::new(Gdt([0; ENTRIES]))).0;
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
    // SAFETY: the table lives for the rest of the run, is complete, and
    // its flat segments match those in use since boot; the selectors index
    // it, and the TSS entry describes this CPU's TSS, which lives as long.
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
