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
use veneer_core::domain::{Domain, GuestFault, Outcome};
use veneer_core::frame_allocator::FrameAllocator;
use veneer_core::hypercall::{self, Disposition, Services};
use veneer_core::vcpu::GuestRegisters;
use x86_64::registers::control::Cr2;

use crate::arch::x86_64::cpu::{self, Features};
use crate::arch::x86_64::direct_map::DirectMap;
use crate::arch::x86_64::entry::{resume_guest, ExceptionFrame};
use crate::arch::x86_64::paging::{self, HypervisorTables};
use crate::arch::x86_64::qemu_exit::{exit, RunStatus};
use crate::arch::x86_64::serial;

/// Feature bits this hypervisor offers (none are defined in ABI 1.0 yet).
pub const FEATURES: u64 = 0;

const GP_VECTOR: u8 = 13;
const PF_VECTOR: u64 = 14;

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
        // A domain must not see what the previous one left in the FPU.
        cpu::reset_fpu(&hv.cpu);
        paging::activate(dom.space.l4);
        let regs = dom.vcpu;
        log::info!("{} \"{}\": starting at {:#x}", dom.id, dom.name, regs.rip);
        hv.current = Some(dom);
        Some(regs)
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

/// A `syscall` from the running guest kernel.
pub fn on_hypercall(regs: &mut GuestRegisters) {
    let disposition = with_hv(|hv| {
        let space = hv.current.as_ref().expect("a domain is running").space;
        let mut console = |bytes: &[u8]| serial::write_bytes(bytes);
        let mut services = Services {
            abi: AbiVersion::CURRENT,
            features: FEATURES,
            mem: &mut hv.mem,
            console: &mut console,
        };
        hypercall::handle(regs, space, &mut services)
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
        }
        Disposition::End(outcome) => end_current(outcome),
    }
}

/// An exception raised by guest code. The guest has no trap table yet, so
/// the domain is stopped; the hypervisor goes on with the next one.
pub fn on_guest_exception(frame: &ExceptionFrame) -> ! {
    let cr2 = (frame.vector == PF_VECTOR).then(Cr2::read_raw);
    end_current(Outcome::Fault(GuestFault {
        vector: frame.vector as u8,
        error_code: frame.error_code,
        rip: frame.rip,
        cr2,
    }))
}
