//! What happens when the hypervisor itself fails: one clear report on the
//! serial port, then QEMU stops with `RunStatus::HypervisorFailed`.

use core::fmt::Write;

use veneer_core::domain::exception_name;
use x86_64::registers::control::Cr2;

use veneer_core::vcpu::GuestRegisters;
use crate::arch::x86_64::qemu_exit::{exit, RunStatus};
use crate::arch::x86_64::serial::{take_over, Serial};

pub fn hypervisor_exception(f: &GuestRegisters) -> ! {
    take_over();
    let g = &f.gprs;
    let cr2 = Cr2::read_raw();
    let _ = writeln!(
        Serial,
        "\n(veneer) FATAL: {} (vector {}) in hypervisor, error code {:#x}\n\
         (veneer)   rip {:#018x}  cs {:#x}  rflags {:#x}  rsp {:#018x}  ss {:#x}  cr2 {:#018x}\n\
         (veneer)   rax {:#018x}  rbx {:#018x}  rcx {:#018x}  rdx {:#018x}\n\
         (veneer)   rsi {:#018x}  rdi {:#018x}  rbp {:#018x}  r8  {:#018x}\n\
         (veneer)   r9  {:#018x}  r10 {:#018x}  r11 {:#018x}  r12 {:#018x}\n\
         (veneer)   r13 {:#018x}  r14 {:#018x}  r15 {:#018x}",
        exception_name(f.vector as u8), f.vector, f.error_code,
        f.rip, f.cs, f.rflags, f.rsp, f.ss, cr2,
        g.rax, g.rbx, g.rcx, g.rdx, g.rsi, g.rdi, g.rbp, g.r8,
        g.r9, g.r10, g.r11, g.r12, g.r13, g.r14, g.r15,
    );
    // A fault on a guard page (a #PF, or the #DF it becomes when the
    // overflowing stack cannot take the #PF's frame) is a stack overflow.
    if let Some((cpu, which)) = crate::arch::x86_64::paging::stack_guard(cr2) {
        let stack = ["main", "double-fault IST", "NMI IST", "machine-check IST"][which];
        let _ = writeln!(Serial, "(veneer)   stack overflow: CPU {cpu}'s {stack} stack");
    }
    exit(RunStatus::HypervisorFailed)
}

/// An unmapped address inside the hypervisor's own range (slot 264).
const UNMAPPED_HYPERVISOR_ADDRESS: u64 = 0xffff_8400_0000_0000;

/// `veneer.selftest=page-fault` on the command line: fault on purpose in
/// hypervisor context, so the conformance suite can check the report above.
pub fn self_test_page_fault() -> ! {
    log::info!("self-test: reading {UNMAPPED_HYPERVISOR_ADDRESS:#x} in hypervisor context");
    // SAFETY: the address lies in a slot the hypervisor never maps, so the
    // read raises #PF, whose handler reports it and stops the machine; the
    // read never completes.
    unsafe { core::ptr::read_volatile(UNMAPPED_HYPERVISOR_ADDRESS as *const u64) };
    unreachable!("the read of an unmapped address faults")
}

/// `veneer.selftest=stack-overflow` on the command line: a CPU (the first
/// AP) recurses until its stack runs into the guard page below it, so the
/// conformance suite can check the overflow is caught and reported (as the
/// double fault it turns into, on the CPU's own IST stack).
pub fn self_test_stack_overflow(cpu: usize) -> ! {
    log::info!("self-test: overflowing CPU {cpu}'s stack");
    #[inline(never)]
    fn recurse(depth: u64) -> u64 {
        // Half a KiB of stack per call, kept by black_box.
        let frame = core::hint::black_box([depth; 64]);
        if core::hint::black_box(true) {
            recurse(depth + 1).wrapping_add(frame[usize::from(depth.to_le_bytes()[0] % 64)])
        } else {
            frame[0]
        }
    }
    recurse(0);
    unreachable!("the recursion runs into the guard page")
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    take_over();
    let _ = writeln!(Serial, "\n(veneer) FATAL: panic: {info}");
    exit(RunStatus::HypervisorFailed)
}
