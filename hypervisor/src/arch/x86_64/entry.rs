//! The entry and exit paths of `entry.S`, and the per-CPU block they use.

use core::cell::UnsafeCell;
use core::mem::{offset_of, size_of};

use veneer_core::vcpu::{Gprs, GuestRegisters};
use x86_64::registers::model_specific::{Efer, EferFlags, GsBase, KernelGsBase, LStar, SFMask};
use x86_64::registers::rflags::RFlags;
use x86_64::VirtAddr;

use super::gdt::Selectors;

/// What entry.S finds through GS.
#[repr(C)]
pub struct PerCpu {
    /// Top of this CPU's hypervisor stack: hypercalls start here.
    stack_top: u64,
    /// The guest's rsp while the entry path has no register to hold it.
    scratch: u64,
}

/// The frame `exception_common` builds: saved GPRs, then what the stub and
/// the CPU pushed.
#[derive(Debug)]
#[repr(C)]
pub struct ExceptionFrame {
    pub gprs: Gprs,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

impl ExceptionFrame {
    pub fn from_ring3(&self) -> bool {
        self.cs & 3 == 3
    }
}

core::arch::global_asm!(
    include_str!("entry.S"),
    GPRS_RAX = const offset_of!(Gprs, rax),
    GPRS_RBX = const offset_of!(Gprs, rbx),
    GPRS_RCX = const offset_of!(Gprs, rcx),
    GPRS_RDX = const offset_of!(Gprs, rdx),
    GPRS_RSI = const offset_of!(Gprs, rsi),
    GPRS_RDI = const offset_of!(Gprs, rdi),
    GPRS_RBP = const offset_of!(Gprs, rbp),
    GPRS_R8 = const offset_of!(Gprs, r8),
    GPRS_R9 = const offset_of!(Gprs, r9),
    GPRS_R10 = const offset_of!(Gprs, r10),
    GPRS_R11 = const offset_of!(Gprs, r11),
    GPRS_R12 = const offset_of!(Gprs, r12),
    GPRS_R13 = const offset_of!(Gprs, r13),
    GPRS_R14 = const offset_of!(Gprs, r14),
    GPRS_R15 = const offset_of!(Gprs, r15),
    REGS_RIP = const offset_of!(GuestRegisters, rip),
    REGS_RFLAGS = const offset_of!(GuestRegisters, rflags),
    REGS_RSP = const offset_of!(GuestRegisters, rsp),
    REGS_SIZE = const size_of::<GuestRegisters>(),
    PERCPU_STACK_TOP = const offset_of!(PerCpu, stack_top),
    PERCPU_SCRATCH = const offset_of!(PerCpu, scratch),
    FRAME_VECTOR = const offset_of!(ExceptionFrame, vector),
    FRAME_CS = const offset_of!(ExceptionFrame, cs),
    USER_CS = const 0x23,
    USER_SS = const 0x1b,
    options(att_syntax),
);
// The frame the CPU pushes must directly follow the saved GPRs, and the
// stack must stay 16-byte aligned at the calls in entry.S.
const _: () = assert!(offset_of!(ExceptionFrame, vector) == size_of::<Gprs>());
const _: () = assert!(size_of::<ExceptionFrame>() % 16 == 0);
const _: () = assert!(size_of::<GuestRegisters>() % 16 == 0);
const _: () = assert!(offset_of!(GuestRegisters, gprs) == 0);

struct PerCpuCell(UnsafeCell<PerCpu>);
// SAFETY: one CPU runs Veneer today; the block is written once in `init`
// before any guest runs, then only by entry.S on that CPU.
unsafe impl Sync for PerCpuCell {}

static BSP: PerCpuCell = PerCpuCell(UnsafeCell::new(PerCpu { stack_top: 0, scratch: 0 }));

extern "C" {
    fn syscall_entry();
    fn enter_guest(regs: *const GuestRegisters) -> !;
}

/// Points GS at the per-CPU block and routes `syscall` to `syscall_entry`.
pub fn init(stack_top: u64, sel: &Selectors) {
    assert_eq!(sel.user_code.0, 0x23, "entry.S's USER_CS");
    assert_eq!(sel.user_data.0, 0x1b, "entry.S's USER_SS");
    // SAFETY: no guest runs yet, so nothing else reads the block.
    unsafe { (*BSP.0.get()).stack_top = stack_top };
    GsBase::write(VirtAddr::new(BSP.0.get() as u64));
    KernelGsBase::write(VirtAddr::new(0));
    LStar::write(VirtAddr::new(syscall_entry as *const () as u64));
    // Enter with interrupts, single-step, direction and alignment checks off.
    SFMask::write(RFlags::INTERRUPT_FLAG | RFlags::TRAP_FLAG | RFlags::DIRECTION_FLAG | RFlags::ALIGNMENT_CHECK | RFlags::NESTED_TASK | RFlags::IOPL_HIGH | RFlags::IOPL_LOW);
    // SAFETY: enabling SYSCALL only makes the instruction available; LSTAR,
    // STAR and SFMASK are set above.
    unsafe { Efer::update(|f| *f |= EferFlags::SYSTEM_CALL_EXTENSIONS) };
}

/// Resumes a vCPU in ring 3 with `regs`.
pub fn resume_guest(regs: &GuestRegisters) -> ! {
    let mut r = *regs;
    r.sanitize_rflags();
    // SAFETY: the flags are sanitized (IOPL 0, IF set), CS/SS are fixed
    // ring-3 selectors, and the caller has loaded the vCPU's address space,
    // so the guest can reach nothing it does not own.
    unsafe { enter_guest(&r) }
}

#[no_mangle]
extern "C" fn hypercall_entry(regs: &mut GuestRegisters) {
    crate::hypervisor::on_hypercall(regs);
}

#[no_mangle]
extern "C" fn exception_entry(frame: &mut ExceptionFrame) -> ! {
    if frame.from_ring3() {
        crate::hypervisor::on_guest_exception(frame)
    }
    crate::fatal::hypervisor_exception(frame)
}
