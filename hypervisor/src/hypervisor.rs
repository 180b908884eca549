//! The running hypervisor: its domains, and what happens on each way in
//! from a guest.
//!
//! Until the scheduler arrives, domains run one after another in the order
//! of the configuration: each runs until it shuts down or is stopped, then
//! the next starts. When none is left the machine stops, with a status that
//! says whether every domain powered off cleanly.

use alloc::collections::VecDeque;

use hypercall_abi::version::AbiVersion;
use spin::Mutex;
use veneer_core::addr::is_canonical;
use veneer_core::domain::{Bounced, Domain, GuestFault, KillReason, Outcome};
use veneer_core::frame_allocator::FrameAllocator;
use veneer_core::guest_memory::AddressSpace;
use veneer_core::hypercall::{self, Disposition, Services};
use veneer_core::vcpu::{vcpu_info_offset, BounceError, GuestRegisters, Mode};
use veneer_core::addr::Mfn;
use x86_64::registers::control::Cr2;
use x86_64::registers::model_specific::{FsBase, KernelGsBase};
use x86_64::VirtAddr;

use crate::arch::x86_64::cpu::Features;
use crate::arch::x86_64::fpu;
use crate::arch::x86_64::direct_map::{phys_to_virt, DirectMap};
use crate::arch::x86_64::entry::{self, resume_guest, MachineGuestCpu};
use crate::arch::x86_64::paging::{self, HypervisorTables};
use crate::arch::x86_64::qemu_exit::{exit, RunStatus};
use crate::arch::x86_64::serial;

/// Feature bits this hypervisor offers (none are defined in ABI 1.0 yet).
pub const FEATURES: u64 = 0;

const UD_VECTOR: u8 = 6;
const NP_VECTOR: u8 = 11;
const GP_VECTOR: u8 = 13;
const PF_VECTOR: u8 = 14;
const BP_VECTOR: u8 = 3;
/// Error-code bit of #GP and #NP: the fault names an IDT entry.
const ERROR_IDT: u64 = 1 << 1;
/// `int imm8`.
const INT_OPCODE: u8 = 0xcd;
const INT3_OPCODE: u8 = 0xcc;
/// Length of `syscall` (0f 05).
const SYSCALL_LEN: u64 = 2;

pub struct Hypervisor {
    pub frames: FrameAllocator,
    pub mem: DirectMap,
    pub tables: HypervisorTables,
    pub cpu: Features,
    /// Built domains waiting for their turn.
    pub ready: VecDeque<Domain>,
    pub current: Option<Domain>,
    /// False once any domain failed to build or ended other than by a clean
    /// power-off.
    pub all_clean: bool,
}

static HV: Mutex<Option<Hypervisor>> = Mutex::new(None);

/// Hands the machine to the domains; never returns.
pub fn start(hv: Hypervisor) -> ! {
    *HV.lock() = Some(hv);
    run_next()
}

fn with_hv<R>(f: impl FnOnce(&mut Hypervisor) -> R) -> R {
    f(HV.lock().as_mut().expect("hypervisor started"))
}

/// Starts the next ready domain, or stops the machine if none is left.
fn run_next() -> ! {
    let next = with_hv(|hv| {
        let dom = hv.ready.pop_front()?;
        log::info!("{} \"{}\": starting at {:#x}", dom.id, dom.name, dom.vcpu.regs.rip);
        let pcid = hv.cpu.pcid;
        let features = hv.cpu;
        let dom = hv.current.insert(dom);
        let vcpu = &mut dom.vcpu;
        // Its own vector state (the initial state for a new vCPU), never
        // what the previous one left.
        fpu::restore(&vcpu.fpu, &features);
        vcpu.entry.vcpu_info = phys_to_virt(vcpu.shared_info.phys()) + vcpu_info_offset(vcpu.id) as u64;
        // The vCPU starts in kernel mode with both segment bases 0.
        FsBase::write(VirtAddr::zero());
        KernelGsBase::write(VirtAddr::zero());
        paging::activate_guest_fresh(vcpu.entry.kernel_l4, vcpu.entry.user_l4, pcid);
        // The domain stays in `hv.current`, in place, until it ends.
        entry::set_running(&mut vcpu.entry);
        Some(vcpu.regs)
    });
    match next {
        Some(regs) => resume_guest(&regs),
        None => {
            let clean = with_hv(|hv| hv.all_clean);
            if clean {
                log::info!("all domains ended: every one powered off cleanly");
                exit(RunStatus::Clean)
            }
            log::info!("all domains ended: some did not end cleanly");
            exit(RunStatus::DomainFailed)
        }
    }
}

/// Ends the running domain: reports how, returns its frames, runs the next.
fn end_current(outcome: Outcome) -> ! {
    with_hv(|hv| {
        let dom = hv.current.take().expect("a domain was running");
        entry::set_running(core::ptr::null_mut());
        log::info!("{} \"{}\": {}", dom.id, dom.name, outcome);
        // Leave the domain's tables before they are freed.
        paging::activate(hv.tables.l4);
        hv.all_clean &= outcome.is_clean();
        if let Err(e) = dom.release(&mut hv.frames) {
            panic!("domain teardown: {e:?}");
        }
    });
    run_next()
}

/// A `syscall` from the running guest kernel. Returns whether the vCPU must
/// be resumed with every register (`iret`) rather than with `sysret`.
pub fn on_hypercall(regs: &mut GuestRegisters) -> bool {
    let disposition = with_hv(|hv| {
        let dom = hv.current.as_mut().expect("a domain is running");
        let bootstrap_l4 = dom.space.l4;
        let is_l4 = move |mfn: Mfn| mfn == bootstrap_l4;
        let mut console = |bytes: &[u8]| serial::write_bytes(bytes);
        let mut services = Services {
            abi: AbiVersion::CURRENT,
            features: FEATURES,
            mem: &mut hv.mem,
            console: &mut console,
            cpu: &mut MachineGuestCpu,
            is_l4: &is_l4,
        };
        hypercall::handle(regs, &mut dom.vcpu, &mut services)
    });
    match disposition {
        Disposition::Return(value) => {
            regs.gprs.rax = value;
            // SYSRET to a non-canonical address faults in ring 0; the
            // guest asked for it by placing `syscall` at the very end of the
            // lower half, so it gets the #GP the hardware would give.
            if !is_canonical(regs.rip) {
                end_current(Outcome::Fault(GuestFault { vector: GP_VECTOR, error_code: 0, rip: regs.rip, cr2: None }))
            }
            false
        }
        Disposition::Resume => true,
        Disposition::End(outcome) => end_current(outcome),
    }
}

/// Bounces exception `vector` to the guest kernel's handler, or ends the
/// domain if it has none or the frame cannot be written.
fn bounce_exception(hv: &mut Hypervisor, regs: &mut GuestRegisters, vector: u8, error_code: u64, cr2: Option<u64>) -> Result<(), Outcome> {
    let vcpu = &mut hv.current.as_mut().expect("a domain is running").vcpu;
    let handler = vcpu.traps[usize::from(vector)];
    if handler.address == 0 {
        return Err(Outcome::Fault(GuestFault { vector, error_code, rip: regs.rip, cr2 }));
    }
    if let Some(address) = cr2 {
        vcpu.set_cr2(&mut hv.mem, address);
    }
    vcpu.bounce(regs, handler.address, error_code, handler.masks_events(), &mut hv.mem, &mut MachineGuestCpu)
        .map_err(|why| Outcome::Killed(KillReason::DoubleFault { what: Bounced::Exception(vector), why }))
}

/// The address space the vCPU runs in now.
fn current_space(hv: &Hypervisor) -> AddressSpace {
    let vcpu = &hv.current.as_ref().expect("a domain is running").vcpu;
    match vcpu.mode() {
        Mode::Kernel => vcpu.kernel_space(),
        Mode::User => AddressSpace { l4: Mfn::from_phys(vcpu.entry.user_l4) },
    }
}

/// What an exception from guest code turns into: the same exception, or,
/// for `int n` and `int3` (whose IDT gates the guest cannot pass), the
/// software interrupt the guest's trap table allows, or the #GP it refuses.
fn classify(hv: &Hypervisor, regs: &mut GuestRegisters) -> (u8, u64) {
    let vector = regs.vector as u8;
    let vcpu = &hv.current.as_ref().expect("a domain is running").vcpu;
    let level = if vcpu.mode() == Mode::User { 3 } else { 0 };
    let allows = |n: u8| vcpu.traps[usize::from(n)].dpl() >= level;
    let software = (vector == GP_VECTOR || vector == NP_VECTOR) && regs.error_code & ERROR_IDT != 0;
    if software {
        // The vector comes from the instruction: the error code's index
        // field is not reliable (QEMU's TCG scales it by the 16-byte gate
        // size in long mode).
        let mut insn = [0u8; 2];
        if current_space(hv).copy_from(&hv.mem, regs.rip, &mut insn).is_ok() && insn[0] == INT_OPCODE {
            let n = insn[1];
            if allows(n) {
                // Delivered as the interrupt, returning after the instruction.
                regs.rip += 2;
                return (n, 0);
            }
            return (GP_VECTOR, u64::from(n) << 3 | ERROR_IDT);
        }
    }
    if vector == BP_VECTOR && !allows(BP_VECTOR) {
        // The hardware gate lets every ring-3 `int3` through; the guest's
        // table may not. Then it is the #GP a DPL-0 gate would raise, at
        // the instruction.
        let mut insn = [0u8; 1];
        let len = if current_space(hv).copy_from(&hv.mem, regs.rip.wrapping_sub(1), &mut insn).is_ok() && insn[0] == INT3_OPCODE { 1 } else { 2 };
        regs.rip = regs.rip.wrapping_sub(len);
        return (GP_VECTOR, u64::from(BP_VECTOR) << 3 | ERROR_IDT);
    }
    (vector, regs.error_code)
}

/// An exception raised by guest code: bounced to the guest kernel when it
/// has a handler, else the domain is stopped.
pub fn on_guest_exception(regs: &mut GuestRegisters) {
    let result = with_hv(|hv| {
        let (vector, error_code) = classify(hv, regs);
        let cr2 = (vector == PF_VECTOR && regs.vector == u64::from(PF_VECTOR)).then(Cr2::read_raw);
        bounce_exception(hv, regs, vector, error_code, cr2)
    });
    if let Err(outcome) = result {
        end_current(outcome)
    }
}

/// A `syscall` from guest user mode the fast path left to Rust: there is no
/// syscall callback (the guest gets the #UD of a CPU without `syscall`), or
/// an event may be due.
pub fn on_user_syscall(regs: &mut GuestRegisters) {
    let result = with_hv(|hv| {
        let vcpu = &mut hv.current.as_mut().expect("a domain is running").vcpu;
        let (callback, masks) = (vcpu.entry.syscall_entry, vcpu.entry.syscall_masks_events != 0);
        if callback == 0 {
            regs.rip = regs.rip.wrapping_sub(SYSCALL_LEN);
            return bounce_exception(hv, regs, UD_VECTOR, 0, None);
        }
        vcpu.bounce(regs, callback, 0, masks, &mut hv.mem, &mut MachineGuestCpu)
            .map_err(|why| Outcome::Killed(KillReason::DoubleFault { what: Bounced::Syscall, why }))
    });
    if let Err(outcome) = result {
        end_current(outcome)
    }
}

/// A `syscall` from 32-bit code: Veneer has no compatibility-mode calls, so
/// the guest gets #UD at the instruction.
pub fn on_compat_syscall(regs: &mut GuestRegisters) {
    regs.rip = regs.rip.wrapping_sub(SYSCALL_LEN);
    let result = with_hv(|hv| bounce_exception(hv, regs, UD_VECTOR, 0, None));
    if let Err(outcome) = result {
        end_current(outcome)
    }
}

/// The syscall fast path faulted writing the frame on the guest kernel
/// stack: the guest's double fault.
pub fn on_syscall_bounce_unwritable(frame: &GuestRegisters) -> ! {
    log::info!("syscall bounce: fault {:#x} writing the guest frame at {:#x}", frame.error_code, Cr2::read_raw());
    let at = Cr2::read_raw() & !63;
    end_current(Outcome::Killed(KillReason::DoubleFault { what: Bounced::Syscall, why: BounceError::FrameUnwritable { at } }))
}
