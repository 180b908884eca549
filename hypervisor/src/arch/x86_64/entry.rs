//! The entry and exit paths of `entry.S`, the per-CPU block they use, and
//! the guest CPU state (segment bases, address space) outside the saved
//! registers.

use core::arch::x86_64::__cpuid_count;
use core::cell::UnsafeCell;
use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicU64, Ordering};

use hypercall_abi::cpu::TrapFrame;
use hypercall_abi::shared_info::VcpuInfo;
use veneer_core::vcpu::{EntryState, GuestCpu, GuestRegisters, Gprs, HostMsr, Mode, ENTRY_SYSCALL, RFLAGS_IF, USER_CS32, USER_CS64, USER_DS};
use x86_64::registers::model_specific::{Efer, EferFlags, FsBase, GsBase, KernelGsBase, LStar, Msr, SFMask};
use x86_64::registers::rflags::RFlags;
use x86_64::VirtAddr;

use super::cpu;
use super::gdt::Selectors;
use super::paging;
use super::smp::MAX_CPUS;

/// What entry.S finds through GS: one block per CPU.
#[repr(C)]
pub struct PerCpu {
    /// Top of this CPU's hypervisor stack: every entry from a guest builds
    /// its frame right below it.
    stack_top: u64,
    /// The guest's rsp while the entry path has no register to hold it.
    scratch: u64,
    /// The loaded vCPU's `EntryState`; 0 while none is (the CPU is in the
    /// hypervisor's own address space then). Written by this CPU only,
    /// read by others deciding whose TLB to flush.
    vcpu: AtomicU64,
    /// 1 when SMAP is on: the fast path brackets its guest writes with
    /// `stac`/`clac` (which fault on CPUs without SMAP).
    smap: u64,
    /// Bits OR-ed into a kernel or user L4 address to make CR3 (PCIDs).
    cr3_kernel_bits: u64,
    cr3_user_bits: u64,
    /// This CPU's index (0: the boot CPU).
    index: usize,
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
    RESCHED_VECTOR = const super::apic::RESCHED_VECTOR,
    WORK_VECTOR = const super::apic::WORK_VECTOR,
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
// SAFETY: each block belongs to one CPU: written by `init` on that CPU
// before it handles any entry, `scratch` then only by entry.S on that CPU;
// `vcpu` is atomic, the one field other CPUs read.
unsafe impl Sync for PerCpuCell {}

static PER_CPU: [PerCpuCell; MAX_CPUS] = [const {
    PerCpuCell(UnsafeCell::new(PerCpu {
        stack_top: 0,
        scratch: 0,
        vcpu: AtomicU64::new(0),
        smap: 0,
        cr3_kernel_bits: 0,
        cr3_user_bits: 0,
        index: 0,
    }))
}; MAX_CPUS];

extern "C" {
    fn syscall_entry();
    fn syscall_compat_entry();
    fn enter_guest(regs: *const GuestRegisters) -> !;
    static bounce_frame_write: u8;
    static bounce_frame_written: u8;
}

/// Points GS at CPU `index`'s block and routes `syscall` to
/// `syscall_entry`. Called once on each CPU, before it runs guests.
pub fn init(index: usize, stack_top: u64, sel: Selectors, smap: bool, pcid: bool) {
    assert_eq!(u64::from(sel.user_code.0), USER_CS64, "entry.S's USER_CS64");
    assert_eq!(u64::from(sel.user_data.0), USER_DS, "entry.S's USER_DS");
    let (cr3_kernel_bits, cr3_user_bits) = paging::guest_cr3_bits(pcid);
    let block = PER_CPU[index].0.get();
    // SAFETY: the block is this CPU's, which handles no entry yet, and no
    // other CPU reads it but for the atomic `vcpu`, written here as zero.
    unsafe {
        *block = PerCpu {
            stack_top,
            scratch: 0,
            vcpu: AtomicU64::new(0),
            smap: u64::from(smap),
            cr3_kernel_bits,
            cr3_user_bits,
            index,
        };
    }
    GsBase::write(VirtAddr::new(block as u64));
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

/// This CPU's index: 0 for the boot CPU, then in the order the others
/// came up.
pub fn this_cpu() -> usize {
    let index: usize;
    // SAFETY: GS base is this CPU's block whenever Rust runs (entry.S's
    // invariant, set up by `init`); the load reads its `index`.
    unsafe { core::arch::asm!("mov {}, gs:[{off}]", out(reg) index, off = const offset_of!(PerCpu, index), options(nostack, readonly, preserves_flags)) };
    index
}

fn block(cpu: usize) -> &'static PerCpu {
    // SAFETY: after `init` only `scratch` (by entry.S on its own CPU) and
    // the atomic `vcpu` change; no `&mut` to a block exists past `init`.
    unsafe { &*PER_CPU[cpu].0.get() }
}

fn per_cpu() -> &'static PerCpu {
    block(this_cpu())
}

/// Makes `entry` the loaded vCPU's state for entry.S (null: none is
/// loaded). The caller keeps it alive and in place until another is set.
pub fn set_running(entry: *mut EntryState) {
    per_cpu().vcpu.store(entry as u64, Ordering::SeqCst);
}

/// Whether CPU `cpu` has a vCPU loaded (so its TLB may hold guest
/// translations).
pub fn has_guest_loaded(cpu: usize) -> bool {
    block(cpu).vcpu.load(Ordering::SeqCst) != 0
}

/// The data segment selectors (DS, ES, FS, GS) guest code left in the CPU:
/// the hypervisor never changes them, so they are the loaded vCPU's.
pub fn read_data_selectors() -> [u16; 4] {
    let (ds, es, fs, gs): (u16, u16, u16, u16);
    // SAFETY: reading segment registers has no side effect.
    unsafe {
        core::arch::asm!(
            "mov {0:x}, ds", "mov {1:x}, es", "mov {2:x}, fs", "mov {3:x}, gs",
            out(reg) ds, out(reg) es, out(reg) fs, out(reg) gs,
            options(nomem, nostack, preserves_flags),
        )
    };
    [ds, es, fs, gs]
}

/// Loads a vCPU's data segment selectors (DS, ES, FS, GS). Loading FS and
/// GS also loads their bases from the descriptors: the caller sets the
/// guest's FS base afterwards, and the hypervisor's GS base (this CPU's
/// block) is put back here.
pub fn load_data_selectors(sel: [u16; 4]) {
    let block = per_cpu() as *const PerCpu as u64;
    // SAFETY: each selector was read from the CPU while guest code ran
    // with it (`read_data_selectors`), or is null; guests own no
    // descriptors, so every one they can load stays loadable (SPEC 13.5),
    // and ring 0 may load what ring 3 could.
    unsafe {
        core::arch::asm!(
            "mov ds, {0:x}", "mov es, {1:x}", "mov fs, {2:x}", "mov gs, {3:x}",
            in(reg) sel[0], in(reg) sel[1], in(reg) sel[2], in(reg) sel[3],
            options(nostack, preserves_flags),
        )
    };
    GsBase::write(VirtAddr::new(block));
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
    fn fs_base(&self) -> u64 {
        FsBase::read().as_u64()
    }
    fn set_tsc_aux(&mut self, value: u32) {
        if cpu::has_tsc_aux() {
            cpu::write_tsc_aux(value);
        }
    }
    fn host_cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        let r = __cpuid_count(leaf, subleaf);
        [r.eax, r.ebx, r.ecx, r.edx]
    }
    fn guest_xcr0(&self) -> u64 {
        cpu::guest_xcr0()
    }
    fn host_msr(&self, msr: HostMsr) -> u64 {
        cpu::host_msr(msr)
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

/// Acknowledges interrupt `vector` and serves what needs no lock; returns
/// whether the hypervisor must look at what is due (the timer, a
/// reschedule request).
fn acknowledge(vector: u64) -> bool {
    use super::apic::{SPURIOUS_VECTOR, WORK_VECTOR};
    // A spurious interrupt is not in service: no EOI.
    if vector == u64::from(SPURIOUS_VECTOR) {
        return false;
    }
    super::apic::local().eoi();
    if vector == u64::from(WORK_VECTOR) {
        super::smp::serve_requests();
        return false;
    }
    true
}

/// An interrupt while a guest ran: `frame` is the interrupted vCPU's, and
/// what it holds on return is resumed.
#[no_mangle]
extern "C" fn interrupt_entry(frame: &mut GuestRegisters) {
    if acknowledge(frame.vector) {
        crate::hypervisor::on_interrupt(frame);
    }
}

/// An interrupt while the hypervisor idled: acknowledged (a TLB flush
/// request served); the idle loop looks at what is due when it wakes.
#[no_mangle]
extern "C" fn idle_interrupt_entry(vector: u64) {
    acknowledge(vector);
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
