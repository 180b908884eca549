//! The entry and exit paths of `entry.S`, the per-CPU block they use, and
//! the guest CPU state (segment bases, address space) outside the saved
//! registers.

use core::cell::UnsafeCell;
use core::mem::{offset_of, size_of};

use hypercall_abi::cpu::TrapFrame;
use hypercall_abi::shared_info::VcpuInfo;
use veneer_core::vcpu::{EntryState, GuestCpu, GuestRegisters, Gprs, Mode, ENTRY_SYSCALL, RFLAGS_IF, USER_CS32, USER_CS64, USER_DS};
use x86_64::registers::model_specific::{Efer, EferFlags, FsBase, GsBase, KernelGsBase, LStar, Msr, SFMask};
use x86_64::registers::rflags::RFlags;
use x86_64::VirtAddr;

use super::gdt::Selectors;
use super::paging;

/// What entry.S finds through GS.
#[repr(C)]
pub struct PerCpu {
    /// Top of this CPU's hypervisor stack: every entry from a guest builds
    /// its frame right below it.
    stack_top: u64,
    /// The guest's rsp while the entry path has no register to hold it.
    scratch: u64,
    /// The running vCPU's `EntryState`.
    vcpu: u64,
    /// 1 when SMAP is on: the fast path brackets its guest writes with
    /// `stac`/`clac` (which fault on CPUs without SMAP).
    smap: u64,
    /// Bits OR-ed into a kernel or user L4 address to make CR3 (PCIDs).
    cr3_kernel_bits: u64,
    cr3_user_bits: u64,
}

const RFLAGS_IOPL: u64 = 3 << 12;

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
    REGS_VECTOR = const offset_of!(GuestRegisters, vector),
    REGS_ERROR = const offset_of!(GuestRegisters, error_code),
    REGS_RIP = const offset_of!(GuestRegisters, rip),
    REGS_CS = const offset_of!(GuestRegisters, cs),
    REGS_RFLAGS = const offset_of!(GuestRegisters, rflags),
    REGS_RSP = const offset_of!(GuestRegisters, rsp),
    REGS_SS = const offset_of!(GuestRegisters, ss),
    REGS_SIZE = const size_of::<GuestRegisters>(),
    REGS_QWORDS = const size_of::<GuestRegisters>() / 8,
    PERCPU_STACK_TOP = const offset_of!(PerCpu, stack_top),
    PERCPU_SCRATCH = const offset_of!(PerCpu, scratch),
    PERCPU_VCPU = const offset_of!(PerCpu, vcpu),
    PERCPU_SMAP = const offset_of!(PerCpu, smap),
    PERCPU_CR3_KERNEL_BITS = const offset_of!(PerCpu, cr3_kernel_bits),
    ES_USER_MODE = const offset_of!(EntryState, user_mode),
    ES_KERNEL_L4 = const offset_of!(EntryState, kernel_l4),
    ES_KERNEL_SP = const offset_of!(EntryState, kernel_sp),
    ES_SYSCALL_ENTRY = const offset_of!(EntryState, syscall_entry),
    ES_SYSCALL_MASKS_EVENTS = const offset_of!(EntryState, syscall_masks_events),
    ES_INACTIVE_GS_BASE = const offset_of!(EntryState, inactive_gs_base),
    ES_VCPU_INFO = const offset_of!(EntryState, vcpu_info),
    VI_UPCALL_PENDING = const offset_of!(VcpuInfo, upcall_pending),
    VI_UPCALL_MASK = const offset_of!(VcpuInfo, upcall_mask),
    TF_RCX = const offset_of!(TrapFrame, rcx),
    TF_R11 = const offset_of!(TrapFrame, r11),
    TF_ERROR = const offset_of!(TrapFrame, error_code),
    TF_RIP = const offset_of!(TrapFrame, rip),
    TF_CS = const offset_of!(TrapFrame, cs),
    TF_RFLAGS = const offset_of!(TrapFrame, rflags),
    TF_RSP = const offset_of!(TrapFrame, rsp),
    TF_SS = const offset_of!(TrapFrame, ss),
    TRAP_FRAME_SIZE = const size_of::<TrapFrame>(),
    RFLAGS_IF_IOPL = const RFLAGS_IF | RFLAGS_IOPL,
    ENTRY_SYSCALL = const ENTRY_SYSCALL,
    USER_CS64 = const USER_CS64,
    USER_CS32 = const USER_CS32,
    USER_DS = const USER_DS,
    TIMER_VECTOR = const super::apic::TIMER_VECTOR,
    SPURIOUS_VECTOR = const super::apic::SPURIOUS_VECTOR,
    options(att_syntax),
);
// The frame the CPU pushes must directly follow the saved GPRs, and the
// stack must stay 16-byte aligned at the calls in entry.S.
const _: () = assert!(offset_of!(GuestRegisters, gprs) == 0);
const _: () = assert!(offset_of!(GuestRegisters, vector) == size_of::<Gprs>());
const _: () = assert!(offset_of!(GuestRegisters, ss) + 8 == size_of::<GuestRegisters>());
const _: () = assert!(size_of::<GuestRegisters>().is_multiple_of(16));
// The fast path builds the frame with the kernel stack 16-byte aligned.
const _: () = assert!(size_of::<TrapFrame>().is_multiple_of(16));

struct PerCpuCell(UnsafeCell<PerCpu>);
// SAFETY: one CPU runs Veneer today; the block is written by `init` before
// any guest runs, by `set_running` between guest runs (with no entry path
// active), and otherwise only read by entry.S on that CPU.
unsafe impl Sync for PerCpuCell {}

static BSP: PerCpuCell =
    PerCpuCell(UnsafeCell::new(PerCpu { stack_top: 0, scratch: 0, vcpu: 0, smap: 0, cr3_kernel_bits: 0, cr3_user_bits: 0 }));

extern "C" {
    fn syscall_entry();
    fn syscall_compat_entry();
    fn enter_guest(regs: *const GuestRegisters) -> !;
    static bounce_frame_write: u8;
    static bounce_frame_written: u8;
}

/// Points GS at the per-CPU block and routes `syscall` to `syscall_entry`.
pub fn init(stack_top: u64, sel: Selectors, smap: bool, pcid: bool) {
    assert_eq!(u64::from(sel.user_code.0), USER_CS64, "entry.S's USER_CS64");
    assert_eq!(u64::from(sel.user_data.0), USER_DS, "entry.S's USER_DS");
    let (cr3_kernel_bits, cr3_user_bits) = paging::guest_cr3_bits(pcid);
    // SAFETY: no guest runs yet, so nothing else reads the block.
    unsafe {
        *BSP.0.get() = PerCpu { stack_top, scratch: 0, vcpu: 0, smap: u64::from(smap), cr3_kernel_bits, cr3_user_bits };
    }
    GsBase::write(VirtAddr::new(BSP.0.get() as u64));
    KernelGsBase::write(VirtAddr::new(0));
    LStar::write(VirtAddr::new(syscall_entry as *const () as u64));
    const CSTAR: u32 = 0xc000_0083;
    // SAFETY: CSTAR is the compatibility-mode syscall target; the stub it
    // names saves the guest's state like `syscall_entry`.
    unsafe { Msr::new(CSTAR).write(syscall_compat_entry as *const () as u64) };
    // Enter with interrupts, single-step, direction and alignment checks off.
    SFMask::write(RFlags::INTERRUPT_FLAG | RFlags::TRAP_FLAG | RFlags::DIRECTION_FLAG | RFlags::ALIGNMENT_CHECK | RFlags::NESTED_TASK | RFlags::IOPL_HIGH | RFlags::IOPL_LOW);
    // SAFETY: enabling SYSCALL only makes the instruction available; LSTAR,
    // CSTAR, STAR and SFMASK are set above.
    unsafe { Efer::update(|f| *f |= EferFlags::SYSTEM_CALL_EXTENSIONS) };
}

fn per_cpu() -> &'static PerCpu {
    // SAFETY: the block is static and only written while no reference from
    // here is alive (`init`, `set_running`).
    unsafe { &*BSP.0.get() }
}

/// Makes `entry` the running vCPU's state for entry.S. The caller keeps it
/// alive and in place until another is set.
pub fn set_running(entry: *mut EntryState) {
    // SAFETY: called between guest runs on this CPU: no entry path reads
    // the block meanwhile.
    unsafe { (*BSP.0.get()).vcpu = entry as u64 };
}

/// The running guest's CPU state: the active GS base is parked in
/// KERNEL_GS_BASE while Rust runs (GS is the PerCpu block), FS is the
/// guest's own, CR3 is switched by `paging`.
pub struct MachineGuestCpu;

impl GuestCpu for MachineGuestCpu {
    fn active_gs_base(&self) -> u64 {
        KernelGsBase::read().as_u64()
    }
    fn set_active_gs_base(&mut self, value: u64) {
        KernelGsBase::write(VirtAddr::new_truncate(value));
    }
    fn set_fs_base(&mut self, value: u64) {
        FsBase::write(VirtAddr::new_truncate(value));
    }
    fn load_address_space(&mut self, l4: u64, mode: Mode) {
        let pc = per_cpu();
        let bits = match mode {
            Mode::Kernel => pc.cr3_kernel_bits,
            Mode::User => pc.cr3_user_bits,
        };
        paging::activate_guest(l4 | bits);
    }
}

/// Resumes a vCPU in ring 3 with `regs`.
pub fn resume_guest(regs: &GuestRegisters) -> ! {
    let mut r = *regs;
    r.sanitize_rflags();
    r.cs = if r.cs == USER_CS32 { USER_CS32 } else { USER_CS64 };
    r.ss = USER_DS;
    // SAFETY: the flags are sanitized (IOPL 0, IF set), CS/SS are the
    // hypervisor's DPL-3 selectors, and the caller has loaded the vCPU's
    // address space, so the guest can reach nothing it does not own.
    unsafe { enter_guest(&r) }
}

/// How `syscall_entry` leaves after a hypercall: 0 with `sysret`, else
/// with `iretq` (every register restored).
#[no_mangle]
extern "C" fn hypercall_entry(regs: &mut GuestRegisters) -> u64 {
    u64::from(crate::hypervisor::on_hypercall(regs))
}

#[no_mangle]
extern "C" fn user_syscall_entry(regs: &mut GuestRegisters) {
    crate::hypervisor::on_user_syscall(regs);
}

#[no_mangle]
extern "C" fn compat_syscall_entry(regs: &mut GuestRegisters) {
    crate::hypervisor::on_compat_syscall(regs);
}

/// Whether `rip` is where the syscall fast path writes the guest's frame.
fn in_bounce_frame_write(rip: u64) -> bool {
    // SAFETY: entry.S symbols; only their addresses are used.
    let (start, end) = unsafe { (&bounce_frame_write as *const u8 as u64, &bounce_frame_written as *const u8 as u64) };
    (start..end).contains(&rip)
}

/// An interrupt while a guest ran: `frame` is the interrupted vCPU's, and
/// what it holds on return is resumed.
#[no_mangle]
extern "C" fn interrupt_entry(frame: &mut GuestRegisters) {
    super::apic::local().eoi();
    crate::hypervisor::on_interrupt(frame);
}

/// An interrupt while the hypervisor idled: acknowledged; the idle loop
/// looks at what is due when it wakes.
#[no_mangle]
extern "C" fn idle_interrupt_entry(_vector: u64) {
    super::apic::local().eoi();
}

/// Waits, interrupts on, for the next interrupt (the timer armed by the
/// caller, or another CPU's IPI).
pub fn idle_until_interrupt() {
    // SAFETY: `sti; hlt` enables interrupts only for the halt (sti's shadow
    // covers hlt, so no wake-up is lost); the handlers for every vector the
    // APIC can deliver are installed and only acknowledge (see
    // `idle_interrupt_entry`); `cli` restores the hypervisor's rule.
    unsafe { core::arch::asm!("sti", "hlt", "cli", options(nomem, nostack)) };
}

#[no_mangle]
extern "C" fn exception_entry(frame: &mut GuestRegisters) {
    if frame.cs & 3 == 3 {
        return crate::hypervisor::on_guest_exception(frame);
    }
    if in_bounce_frame_write(frame.rip) {
        if per_cpu().smap != 0 {
            // SAFETY: SMAP is on (so `clac` exists); the fast path's `stac`
            // is undone before any other Rust runs.
            unsafe { core::arch::asm!("clac", options(nomem, nostack)) };
        }
        crate::hypervisor::on_syscall_bounce_unwritable(frame)
    }
    crate::fatal::hypervisor_exception(frame)
}
