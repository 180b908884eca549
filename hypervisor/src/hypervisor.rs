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
use veneer_core::frame_table::FrameTable;
use veneer_core::hypercall::{self, Disposition, Services};
use veneer_core::m2p::M2p;
use veneer_core::machine::MachineMemory;
use veneer_core::trapped_write::{self, Refused};
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
    pub machine: MachineMemory,
    pub mem: DirectMap,
    pub tables: HypervisorTables,
    pub cpu: Features,
    /// Built domains waiting for their turn.
    pub ready: VecDeque<Domain>,
    pub current: Option<Domain>,
    /// False once any domain failed to build or ended other than by a clean
    /// power-off.
    pub all_clean: bool,
    /// Free frames before the first domain was built: where the allocator
    /// must be again once every domain is gone.
    free_before_domains: u64,
}

impl Hypervisor {
    /// Takes over machine memory: the m2p table (mapped for guests), the
    /// frame table, the allocator.
    pub fn new(mut frames: FrameAllocator, mut mem: DirectMap, tables: HypervisorTables, cpu: Features) -> Hypervisor {
        let m2p = M2p::allocate(&mut frames, &mut mem).expect("frames for the m2p table");
        tables.map_m2p(m2p.frames(), &mut frames, &mut mem);
        let frame_table = FrameTable::new(frames.limit(), tables.slots(&mem), cpu.phys_addr_bits);
        log::info!(
            "m2p: {} entries in {} frames; frame table of {} frames; {}-bit physical addresses",
            m2p.entries(),
            m2p.frames().len(),
            frame_table.limit(),
            cpu.phys_addr_bits
        );
        let free_before_domains = frames.free_count();
        Hypervisor {
            machine: MachineMemory { allocator: frames, frames: frame_table, m2p },
            mem,
            tables,
            cpu,
            ready: VecDeque::new(),
            current: None,
            all_clean: true,
            free_before_domains,
        }
    }
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
        // Loading CR3 flushes whatever TLB work is owed.
        hv.machine.frames.take_flush();
        paging::activate(dom.vcpu.kernel_base);
        let regs = dom.vcpu.regs;
        log::info!("{} \"{}\": starting at {:#x}", dom.id, dom.name, regs.rip);
        hv.current = Some(dom);
        Some(regs)
    });
    match next {
        Some(regs) => resume_guest(&regs),
        None => {
            let clean = with_hv(|hv| {
                let free = hv.machine.allocator.free_count();
                if free != hv.free_before_domains {
                    panic!("frames leaked: {free} free after every domain ended, {} before the first was built", hv.free_before_domains);
                }
                log::info!("frames: all {free} free again, as before the first domain was built");
                hv.all_clean
            });
            if clean {
                log::info!("all domains ended: every one powered off cleanly");
                exit(RunStatus::Clean)
            }
            log::info!("all domains ended: some did not end cleanly");
            exit(RunStatus::DomainFailed)
        }
    }
}

/// Ends the running domain: reports how, releases everything it held,
/// runs the next.
fn end_current(outcome: Outcome) -> ! {
    with_hv(|hv| {
        let dom = hv.current.take().expect("a domain was running");
        let (id, name) = (dom.id, dom.name.clone());
        // Leave the domain's tables before they are torn down; the load
        // also flushes every translation of them.
        paging::activate(hv.tables.l4);
        hv.all_clean &= outcome.is_clean();
        match dom.teardown(&mut hv.machine, &mut hv.mem) {
            Ok(freed) => log::info!("frames: {id} returned {freed}, {} free", hv.machine.allocator.free_count()),
            Err(leak) => panic!("{id} teardown: {} frames still referenced, the first {}", leak.frames, leak.first),
        }
        hv.machine.frames.take_flush();
        log::info!("{} \"{}\": {}", id, name, outcome);
    });
    run_next()
}

/// A `syscall` from the running guest kernel.
pub fn on_hypercall(regs: &mut GuestRegisters) {
    let disposition = with_hv(|hv| {
        let dom = hv.current.as_mut().expect("a domain is running");
        let base = dom.vcpu.kernel_base;
        let mut console = |bytes: &[u8]| serial::write_bytes(bytes);
        let mut services = Services {
            abi: AbiVersion::CURRENT,
            features: FEATURES,
            mem: &mut hv.mem,
            machine: &mut hv.machine,
            console: &mut console,
        };
        let disposition = hypercall::handle(regs, dom, &mut services);
        let flush = hv.machine.frames.take_flush();
        if dom.vcpu.kernel_base != base {
            // A new base pointer: loading it flushes everything owed.
            paging::activate(dom.vcpu.kernel_base);
        } else {
            paging::flush(&flush);
        }
        disposition
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

/// An exception raised by guest code. A write to one of the guest's own
/// L1 tables is emulated as a validated update (SPEC §12.8) and the guest
/// goes on; anything else, with no trap table yet, stops the domain and
/// the hypervisor goes on with the next one.
pub fn on_guest_exception(frame: &ExceptionFrame) -> ! {
    let cr2 = (frame.vector == PF_VECTOR).then(Cr2::read_raw);
    if let Some(address) = cr2 {
        let mut regs = GuestRegisters { gprs: frame.gprs, rip: frame.rip, rflags: frame.rflags, rsp: frame.rsp };
        let emulated = with_hv(|hv| {
            let dom = hv.current.as_ref().expect("a domain is running");
            let result = trapped_write::emulate(&mut regs, address, frame.error_code, dom, &mut hv.machine, &mut hv.mem);
            paging::flush(&hv.machine.frames.take_flush());
            if let Err(why @ (Refused::Unrecognised | Refused::Rejected(_))) = result {
                log::info!("{}: write to its page table at {:#x} not applied: {:?}", dom.id, address, why);
            }
            result.is_ok()
        });
        if emulated {
            resume_guest(&regs)
        }
    }
    end_current(Outcome::Fault(GuestFault {
        vector: frame.vector as u8,
        error_code: frame.error_code,
        rip: frame.rip,
        cr2,
    }))
}
