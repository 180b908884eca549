//! The IDT: every exception vector goes to its stub in `entry.S`.

use spin::Once;
use x86_64::structures::idt::InterruptDescriptorTable;
use x86_64::VirtAddr;

use super::gdt::{IST_DOUBLE_FAULT, IST_MACHINE_CHECK, IST_NMI};

extern "C" {
    /// Addresses of the 32 exception stubs, by vector.
    static exception_stubs: [u64; 32];
    fn interrupt_stub_240();
    fn interrupt_stub_241();
    fn interrupt_stub_242();
    fn interrupt_stub_255();
}

const _: () = assert!(super::apic::TIMER_VECTOR == 240 && super::apic::SPURIOUS_VECTOR == 255);
const _: () = assert!(super::apic::RESCHED_VECTOR == 241 && super::apic::WORK_VECTOR == 242);

/// One IDT for every CPU: the handlers are the same everywhere, and the IST
/// indices name each CPU's own stacks through its own TSS.
static IDT: Once<InterruptDescriptorTable> = Once::new();

/// Builds the IDT and loads it on the boot CPU.
pub fn init() {
    IDT.call_once(|| {
        // SAFETY: `exception_stubs` is a read-only table emitted by entry.S.
        let stubs = unsafe { &exception_stubs };
        let at = |v: usize| VirtAddr::new(stubs[v]);
        let mut idt = InterruptDescriptorTable::new();
        // SAFETY: (every call below) each stub saves the full register state
        // into a GuestRegisters frame and calls `exception_entry`, which
        // returns only for faults of guest code (after bouncing them); the
        // IST indices name stacks set up by `gdt::init`.
        unsafe {
            idt.divide_error.set_handler_addr(at(0));
            idt.debug.set_handler_addr(at(1));
            idt.non_maskable_interrupt.set_handler_addr(at(2)).set_stack_index(IST_NMI);
            // `int3` from ring 3 reaches the guest's trap table, which
            // decides whether its virtual level may raise it.
            idt.breakpoint.set_handler_addr(at(3)).set_privilege_level(x86_64::PrivilegeLevel::Ring3);
            idt.overflow.set_handler_addr(at(4));
            idt.bound_range_exceeded.set_handler_addr(at(5));
            idt.invalid_opcode.set_handler_addr(at(6));
            idt.device_not_available.set_handler_addr(at(7));
            idt.double_fault.set_handler_addr(at(8)).set_stack_index(IST_DOUBLE_FAULT);
            idt.invalid_tss.set_handler_addr(at(10));
            idt.segment_not_present.set_handler_addr(at(11));
            idt.stack_segment_fault.set_handler_addr(at(12));
            idt.general_protection_fault.set_handler_addr(at(13));
            idt.page_fault.set_handler_addr(at(14));
            idt.x87_floating_point.set_handler_addr(at(16));
            idt.alignment_check.set_handler_addr(at(17));
            idt.machine_check.set_handler_addr(at(18)).set_stack_index(IST_MACHINE_CHECK);
            idt.simd_floating_point.set_handler_addr(at(19));
            idt.virtualization.set_handler_addr(at(20));
            idt.cp_protection_exception.set_handler_addr(at(21));
            idt.hv_injection_exception.set_handler_addr(at(28));
            idt.vmm_communication_exception.set_handler_addr(at(29));
            idt.security_exception.set_handler_addr(at(30));
            // The APIC's vectors: interrupt gates (IF off in the handler),
            // DPL 0, so a guest's `int n` to them is a #GP it gets bounced.
            idt[super::apic::TIMER_VECTOR].set_handler_addr(VirtAddr::new(interrupt_stub_240 as *const () as u64));
            idt[super::apic::RESCHED_VECTOR].set_handler_addr(VirtAddr::new(interrupt_stub_241 as *const () as u64));
            idt[super::apic::WORK_VECTOR].set_handler_addr(VirtAddr::new(interrupt_stub_242 as *const () as u64));
            idt[super::apic::SPURIOUS_VECTOR].set_handler_addr(VirtAddr::new(interrupt_stub_255 as *const () as u64));
        }
        idt
    });
    load();
}

/// Loads the IDT `init` built on this CPU.
pub fn load() {
    IDT.get().expect("the boot CPU builds the IDT first").load();
}
