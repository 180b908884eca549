//! The running hypervisor: its domains, the scheduler that shares this CPU
//! among their vCPUs, and what happens on each way in from a guest.
//!
//! Every way in (hypercall, exception, interrupt, user syscall the fast
//! path leaves) hands Rust the interrupted vCPU's frame at the top of the
//! stack. What the frame holds when Rust returns is resumed: the same vCPU
//! with a result or a bounce, or another one the scheduler picked, its state
//! loaded in place of the first's. When nothing is runnable the CPU halts
//! until its timer; when no domain is left the machine stops, with a status
//! that says whether every domain powered off cleanly.

use alloc::collections::BTreeMap;

use hypercall_abi::event::Virq;
use hypercall_abi::vcpu::RunstateState;
use hypercall_abi::version::AbiVersion;
use spin::Mutex;
use veneer_core::addr::{is_canonical, Mfn};
use veneer_core::domain::{Bounced, Domain, GuestFault, KillReason, Outcome};
use veneer_core::event_channel;
use veneer_core::frame_allocator::FrameAllocator;
use veneer_core::frame_table::FrameTable;
use veneer_core::guest_memory::AddressSpace;
use veneer_core::hypercall::{self, Disposition, Services};
use veneer_core::m2p::M2p;
use veneer_core::machine::MachineMemory;
use veneer_core::scheduler::{Scheduler, VcpuRef};
use veneer_core::time::{Clock, GUEST_SKEW_NS};
use veneer_core::trapped_write::{self, Refused};
use veneer_core::vcpu::{vcpu_info_offset, write_wallclock, BounceError, GuestRegisters, Mode, Vcpu};
use x86_64::registers::control::Cr2;
use x86_64::registers::model_specific::{FsBase, KernelGsBase};
use x86_64::VirtAddr;

use crate::arch::x86_64::apic;
use crate::arch::x86_64::clock::rdtsc;
use crate::arch::x86_64::cpu::Features;
use crate::arch::x86_64::direct_map::{phys_to_virt, DirectMap};
use crate::arch::x86_64::entry::{self, resume_guest, MachineGuestCpu};
use crate::arch::x86_64::fpu;
use crate::arch::x86_64::paging::{self, HypervisorTables};
use crate::arch::x86_64::qemu_exit::{exit, RunStatus};
use crate::arch::x86_64::serial;
use crate::events;

/// Feature bits this hypervisor offers.
pub const FEATURES: u64 = hypercall_abi::features::HYPERVISOR_BACKENDS;

/// The time slice: how long a vCPU runs before others waiting get a turn.
pub const SLICE_NS: u64 = 10_000_000;

/// This CPU's index among the physical CPUs.
const PCPU: usize = 0;

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
    pub machine: MachineMemory,
    pub mem: DirectMap,
    pub tables: HypervisorTables,
    pub cpu: Features,
    pub domains: BTreeMap<u32, Domain>,
    pub sched: Scheduler,
    pub clock: Clock,
    /// The wall clock: UTC at system time 0.
    pub wallclock: (u64, u32),
    /// The vCPU whose state is in this CPU (registers in the frame, FPU,
    /// segment bases, address space).
    pub loaded: Option<VcpuRef>,
    /// When the loaded vCPU's slice ends.
    pub slice_end: u64,
    /// False once any domain failed to build or ended other than by a clean
    /// power-off.
    pub all_clean: bool,
    /// Free frames before the first domain was built: where the allocator
    /// must be again once every domain is gone.
    free_before_domains: u64,
    /// Device slots and the backends the hypervisor serves.
    pub io: crate::io::Io,
}

impl Hypervisor {
    /// Takes over machine memory: the m2p table (mapped for guests), the
    /// frame table, the allocator.
    /// `wallclock` is UTC at system time 0.
    pub fn new(mut frames: FrameAllocator, mut mem: DirectMap, tables: HypervisorTables, cpu: Features, clock: Clock, wallclock: (u64, u32)) -> Hypervisor {
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
            domains: BTreeMap::new(),
            sched: Scheduler::new(1, SLICE_NS),
            clock,
            wallclock,
            loaded: None,
            slice_end: 0,
            all_clean: true,
            free_before_domains,
            io: crate::io::Io::default(),
        }
    }
}

static HV: Mutex<Option<Hypervisor>> = Mutex::new(None);

fn with_hv<R>(f: impl FnOnce(&mut Hypervisor) -> R) -> R {
    f(HV.lock().as_mut().expect("hypervisor started"))
}

impl Hypervisor {
    /// System time now.
    pub fn now(&self) -> u64 {
        self.clock.ns(rdtsc())
    }

    pub fn vcpu(&self, v: VcpuRef) -> Option<&Vcpu> {
        self.domains.get(&v.domain)?.vcpus.get(v.vcpu as usize).map(|b| &**b)
    }

    pub fn vcpu_mut(&mut self, v: VcpuRef) -> Option<&mut Vcpu> {
        self.domains.get_mut(&v.domain)?.vcpus.get_mut(v.vcpu as usize).map(|b| &mut **b)
    }

    /// The vCPU whose state is in the CPU (a guest entry always has one).
    fn running(&self) -> VcpuRef {
        self.loaded.expect("a vCPU is running")
    }

    /// Makes `v` runnable if it was blocked, and asks its CPU to pick again
    /// if it should run first.
    pub fn wake(&mut self, v: VcpuRef) {
        let now = self.now();
        if self.sched.state(v) == Some(RunstateState::Blocked) {
            if let Some(vcpu) = self.vcpu_mut(v) {
                vcpu.poll = None;
            }
            self.sched.wake(v, now);
            self.write_runstate(v);
        }
    }

    /// Updates `v`'s registered runstate area, if any, from the scheduler.
    pub fn write_runstate(&mut self, v: VcpuRef) {
        let now = self.now();
        let (Some(state), Some((time, entry))) = (self.sched.state(v), self.sched.runstate(v, now)) else { return };
        let Some(d) = self.domains.get_mut(&v.domain) else { return };
        d.vcpus[v.vcpu as usize].write_runstate(&mut self.mem, state as u32, entry, time);
    }

    /// Raises `port` of `domain` (section 8.1) and wakes the vCPU it
    /// notifies, or one polling it.
    pub fn raise(&mut self, domain: u32, port: u32) {
        let Some(d) = self.domains.get(&domain) else { return };
        let target = d.events.get(port).vcpu;
        if !event_channel::raise(&mut self.mem, d.shared_info, port, target) {
            return;
        }
        let d = &self.domains[&domain];
        let woken: alloc::vec::Vec<u32> = d
            .vcpus
            .iter()
            .filter(|v| match &v.poll {
                Some((ports, _)) => ports.contains(&port),
                None => v.id == target && v.upcall_pending(&self.mem),
            })
            .map(|v| v.id)
            .collect();
        for vcpu in woken {
            self.wake(VcpuRef { domain, vcpu });
        }
    }

    /// Fires the timers and poll deadlines that have passed (by
    /// `GUEST_SKEW_NS`, so no guest sees its deadline early); returns the
    /// earliest one still pending.
    pub fn expire_timers(&mut self) -> Option<u64> {
        let now = self.now();
        let mut fired = alloc::vec::Vec::new();
        let mut next: Option<u64> = None;
        for (&domain, d) in self.domains.iter_mut() {
            for v in d.vcpus.iter_mut() {
                let r = VcpuRef { domain, vcpu: v.id };
                for deadline in [v.timer_deadline, v.poll.as_ref().map_or(0, |p| p.1)] {
                    if deadline == 0 {
                        continue;
                    }
                    let due = deadline.saturating_add(GUEST_SKEW_NS);
                    if now >= due {
                        fired.push((r, deadline == v.timer_deadline));
                    } else {
                        next = Some(next.map_or(due, |n| n.min(due)));
                    }
                }
            }
        }
        for (r, is_timer) in fired {
            if is_timer {
                let vcpu = self.vcpu_mut(r).expect("listed above");
                vcpu.timer_deadline = 0;
                if let Some(port) = self.domains[&r.domain].events.virq_port(Virq::Timer, r.vcpu) {
                    self.raise(r.domain, port);
                }
            } else {
                self.wake(r);
            }
        }
        next
    }

    /// Programs this CPU's timer for the next thing due: a vCPU timer, a
    /// poll deadline or the end of the running vCPU's slice.
    pub fn arm_timer(&self, next_timer: Option<u64>) {
        let slice = self.loaded.map(|_| self.slice_end);
        let next = match (next_timer, slice) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(ns) = next {
            apic::local().arm(self.clock.tsc_after(ns));
        }
    }

    /// Sets the wall clock of every domain (UTC at system time 0).
    pub fn set_wallclock(&mut self, sec: u64, nsec: u32) {
        self.wallclock = (sec, nsec);
        for d in self.domains.values() {
            write_wallclock(&mut self.mem, d.shared_info, sec, nsec);
        }
    }

    /// Writes `v`'s time record, as it is about to run.
    fn update_time(&mut self, v: VcpuRef) {
        let record = self.clock.record(rdtsc());
        if let Some(d) = self.domains.get(&v.domain) {
            d.vcpus[v.vcpu as usize].write_time(&mut self.mem, &record);
        }
    }

    /// Saves the CPU's state of the loaded vCPU into it.
    fn save_loaded(&mut self, frame: &GuestRegisters) {
        let Some(v) = self.loaded.take() else { return };
        let features = self.cpu;
        let Some(vcpu) = self.vcpu_mut(v) else { return };
        vcpu.regs = *frame;
        fpu::save(&mut vcpu.fpu, &features);
        vcpu.fs_base = FsBase::read().as_u64();
        vcpu.active_gs_base = KernelGsBase::read().as_u64();
        self.write_runstate(v);
    }

    /// Loads `v`'s state into the CPU and `frame`.
    fn load(&mut self, v: VcpuRef, frame: &mut GuestRegisters) {
        let (features, pcid) = (self.cpu, self.cpu.pcid);
        // Loading the address spaces afresh below flushes whatever TLB work
        // is owed.
        self.machine.frames.take_flush();
        let vcpu = self.vcpu_mut(v).expect("the scheduler picks existing vCPUs");
        *frame = vcpu.regs;
        fpu::restore(&vcpu.fpu, &features);
        FsBase::write(VirtAddr::new_truncate(vcpu.fs_base));
        KernelGsBase::write(VirtAddr::new_truncate(vcpu.active_gs_base));
        paging::activate_guest_fresh(vcpu.entry.kernel_l4, vcpu.entry.user_l4, vcpu.mode() == Mode::User, pcid);
        // The vCPU stays in place (boxed) until its domain is removed, which
        // unloads it first.
        entry::set_running(&mut vcpu.entry);
        self.loaded = Some(v);
        self.update_time(v);
        self.write_runstate(v);
    }

    /// Lets the scheduler pick for this CPU and switches `frame` to the
    /// pick. Returns false if nothing is runnable (then nothing is loaded).
    fn reschedule(&mut self, frame: &mut GuestRegisters) -> bool {
        let now = self.now();
        let d = self.sched.schedule(PCPU, now);
        if d.next != self.loaded {
            self.save_loaded(frame);
            if let Some(next) = d.next {
                self.load(next, frame);
            }
        } else if let Some(same) = d.next {
            // The vCPU goes on: its record is refreshed at every slice, so
            // at least every `SLICE_NS` it runs.
            self.update_time(same);
        }
        if let Some(end) = d.slice_end {
            self.slice_end = end;
        }
        d.next.is_some()
    }

    /// Ends domain `id`: reports how, stops its vCPUs, returns its frames.
    pub fn end_domain(&mut self, id: u32, outcome: Outcome) {
        if !self.domains.contains_key(&id) {
            return;
        }
        // Grant mappings and device slots reach other domains: settled
        // while the domain is still known.
        crate::io::domain_ending(self, id);
        let Some(dom) = self.domains.remove(&id) else { return };
        if self.loaded.is_some_and(|v| v.domain == id) {
            self.loaded = None;
            entry::set_running(core::ptr::null_mut());
            // Leave the domain's tables before they are freed.
            paging::activate(self.tables.l4);
        }
        self.sched.remove_domain(id);
        self.all_clean &= outcome.is_clean();
        let name = dom.name.clone();
        match dom.teardown(&mut self.machine, &mut self.mem) {
            Ok(r) if r.orphaned == 0 => log::info!("frames: d{id} returned {}, {} free", r.freed, self.machine.allocator.free_count()),
            Ok(r) => log::info!(
                "frames: d{id} returned {}, {} free; {} still granted to others, freed when they let go",
                r.freed,
                self.machine.allocator.free_count(),
                r.orphaned
            ),
            Err(leak) => panic!("d{id} teardown: {} frames still referenced, the first {}", leak.frames, leak.first),
        }
        // The hypervisor's tables are loaded, and loading them flushed
        // every translation of the domain's.
        self.machine.frames.take_flush();
        log::info!("d{id} \"{name}\": {outcome}");
    }

    /// Bounces an upcall to the loaded vCPU if one is due (section 8.1
    /// step 3). Returns whether `frame` changed; a bounce that cannot be
    /// delivered crashes the domain.
    fn deliver_upcall(&mut self, frame: &mut GuestRegisters) -> Result<bool, Outcome> {
        let Some(v) = self.loaded else { return Ok(false) };
        let Some(d) = self.domains.get_mut(&v.domain) else { return Ok(false) };
        let vcpu = &mut d.vcpus[v.vcpu as usize];
        if !vcpu.upcall_due(&self.mem) {
            return Ok(false);
        }
        let cb = vcpu.event_callback;
        vcpu.bounce(frame, cb.address, 0, cb.masks_events, &mut self.mem, &mut MachineGuestCpu)
            .map(|()| true)
            .map_err(|why| Outcome::Killed(KillReason::DoubleFault { what: Bounced::Event, why }))
    }
}

/// Hands the machine to the domains; never returns.
pub fn start(mut hv: Hypervisor) -> ! {
    let now = hv.now();
    let ids: alloc::vec::Vec<u32> = hv.domains.keys().copied().collect();
    for id in ids {
        let d = &mut hv.domains.get_mut(&id).expect("listed");
        for v in d.vcpus.iter_mut() {
            v.entry.vcpu_info = phys_to_virt(v.shared_info.phys()) + vcpu_info_offset(v.id) as u64;
        }
        write_wallclock(&mut hv.mem, d.shared_info, hv.wallclock.0, hv.wallclock.1);
        log::info!("{} \"{}\": starting at {:#x}", d.id, d.name, d.vcpus[0].regs.rip);
        // Every vCPU is known to the scheduler; only vCPU 0 starts online.
        for vcpu in 0..d.vcpus.len() as u32 {
            hv.sched.add(VcpuRef { domain: id, vcpu }, now);
        }
        hv.sched.wake(VcpuRef { domain: id, vcpu: 0 }, now);
    }
    *HV.lock() = Some(hv);
    let mut frame = GuestRegisters::default();
    run_something(&mut frame);
    resume_guest(&frame)
}

/// Fills `frame` with a vCPU to run, idling until there is one; stops the
/// machine when no domain is left.
fn run_something(frame: &mut GuestRegisters) {
    loop {
        let picked = with_hv(|hv| {
            crate::io::continue_deferred(hv);
            let next_timer = hv.expire_timers();
            if hv.domains.is_empty() {
                let free = hv.machine.allocator.free_count();
                if free != hv.free_before_domains {
                    panic!("frames leaked: {free} free after every domain ended, {} before the first was built", hv.free_before_domains);
                }
                log::info!("frames: all {free} free again, as before the first domain was built");
                let clean = hv.all_clean;
                if clean {
                    log::info!("all domains ended: every one powered off cleanly");
                    exit(RunStatus::Clean)
                }
                log::info!("all domains ended: some did not end cleanly");
                exit(RunStatus::DomainFailed)
            }
            let picked = hv.reschedule(frame);
            if picked {
                if let Err(outcome) = hv.deliver_upcall(frame) {
                    let v = hv.running();
                    hv.end_domain(v.domain, outcome);
                    return false;
                }
            }
            hv.arm_timer(next_timer);
            picked
        });
        if picked {
            return;
        }
        // Nothing runnable: halt, unless a backend has requests waiting.
        if !with_hv(|hv| hv.io.has_deferred()) {
            entry::idle_until_interrupt();
        }
    }
}

/// The last step of every way back to a guest: runs whoever should run
/// now, with any upcall due. Returns whether `frame` changed beyond what
/// `sysret` restores.
fn finish(frame: &mut GuestRegisters) -> bool {
    let outcome = with_hv(|hv| {
        if hv.loaded.is_some() && !hv.sched.needs_resched(PCPU) && hv.now() < hv.slice_end {
            return hv.deliver_upcall(frame).map(Some);
        }
        Ok(None)
    });
    match outcome {
        Ok(Some(changed)) => changed,
        Ok(None) => {
            run_something(frame);
            true
        }
        Err(outcome) => {
            with_hv(|hv| {
                let v = hv.running();
                hv.end_domain(v.domain, outcome)
            });
            run_something(frame);
            true
        }
    }
}

/// Ends the running vCPU's domain and runs something else in `frame`.
fn end_running(frame: &mut GuestRegisters, outcome: Outcome) {
    with_hv(|hv| {
        let v = hv.running();
        hv.end_domain(v.domain, outcome);
    });
    run_something(frame);
}

/// A `syscall` from the running guest kernel. Returns whether the vCPU must
/// be resumed with every register (`iret`) rather than with `sysret`.
pub fn on_hypercall(regs: &mut GuestRegisters) -> bool {
    let disposition = with_hv(|hv| {
        let v = hv.running();
        let dom = hv.domains.get_mut(&v.domain).expect("the running vCPU's domain exists");
        let mut console = |bytes: &[u8]| serial::write_bytes(bytes);
        let mut services = Services {
            abi: AbiVersion::CURRENT,
            features: FEATURES,
            mem: &mut hv.mem,
            machine: &mut hv.machine,
            console: &mut console,
            cpu: &mut MachineGuestCpu,
        };
        let disposition = match hypercall::handle(regs, dom, v.vcpu as usize, &mut services) {
            Disposition::Defer(call) => events::carry_out(hv, call),
            d => d,
        };
        // TLB work a memory call left (a new base pointer is loaded already).
        paging::flush(&hv.machine.frames.take_flush(), hv.cpu.pcid);
        disposition
    });
    let full = match disposition {
        Disposition::Return(value) => {
            regs.gprs.rax = value;
            // SYSRET to a non-canonical address faults in ring 0; the
            // guest asked for it by placing `syscall` at the very end of the
            // lower half, so it gets the #GP the hardware would give.
            if !is_canonical(regs.rip) {
                end_running(regs, Outcome::Fault(GuestFault { vector: GP_VECTOR, error_code: 0, rip: regs.rip, cr2: None }));
                return true;
            }
            false
        }
        Disposition::Resume => true,
        Disposition::End(outcome) => {
            end_running(regs, outcome);
            return true;
        }
        Disposition::Defer(call) => unreachable!("{call:?} was carried out"),
    };
    finish(regs) || full
}

/// An interrupt while a guest ran (the APIC timer): fires what is due and
/// lets the scheduler preempt the vCPU at the end of its slice.
pub fn on_interrupt(frame: &mut GuestRegisters) {
    with_hv(|hv| {
        let next = hv.expire_timers();
        hv.arm_timer(next);
    });
    finish(frame);
}

/// Bounces exception `vector` to the guest kernel's handler, or ends the
/// domain if it has none or the frame cannot be written.
fn bounce_exception(hv: &mut Hypervisor, regs: &mut GuestRegisters, vector: u8, error_code: u64, cr2: Option<u64>) -> Result<(), Outcome> {
    let v = hv.running();
    let vcpu = &mut hv.domains.get_mut(&v.domain).expect("the running vCPU's domain exists").vcpus[v.vcpu as usize];
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
    let v = hv.loaded.expect("a vCPU is running");
    let vcpu = hv.vcpu(v).expect("the running vCPU exists");
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
    let vcpu = hv.vcpu(hv.loaded.expect("a vCPU is running")).expect("the running vCPU exists");
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

/// An exception raised by guest code. A guest kernel's write to one of
/// its own L1 tables is emulated as a validated update (SPEC §12.8) and the
/// guest goes on; anything else is bounced to the guest kernel when it has
/// a handler, else the domain is stopped.
pub fn on_guest_exception(regs: &mut GuestRegisters) {
    let result = with_hv(|hv| {
        if regs.vector == u64::from(PF_VECTOR) && emulate_trapped_write(hv, regs) {
            return Ok(());
        }
        let (vector, error_code) = classify(hv, regs);
        let cr2 = (vector == PF_VECTOR && regs.vector == u64::from(PF_VECTOR)).then(Cr2::read_raw);
        bounce_exception(hv, regs, vector, error_code, cr2)
    });
    match result {
        Ok(()) => {
            finish(regs);
        }
        Err(outcome) => end_running(regs, outcome),
    }
}

/// Tries the page fault in `regs` as a trapped page-table write; true if
/// it was applied (and `regs` moved past the instruction).
fn emulate_trapped_write(hv: &mut Hypervisor, regs: &mut GuestRegisters) -> bool {
    let v = hv.running();
    let dom = hv.domains.get(&v.domain).expect("the running vCPU's domain exists");
    let address = Cr2::read_raw();
    let result = trapped_write::emulate(regs, address, regs.error_code, dom, v.vcpu as usize, &mut hv.machine, &mut hv.mem);
    paging::flush(&hv.machine.frames.take_flush(), hv.cpu.pcid);
    if let Err(why @ (Refused::Unrecognised | Refused::Rejected(_))) = result {
        log::info!("{}: write to its page table at {address:#x} not applied: {why:?}", dom.id);
    }
    result.is_ok()
}

/// A `syscall` from guest user mode the fast path left to Rust: there is no
/// syscall callback (the guest gets the #UD of a CPU without `syscall`), or
/// an event may be due.
pub fn on_user_syscall(regs: &mut GuestRegisters) {
    let result = with_hv(|hv| {
        let v = hv.running();
        let vcpu = &mut hv.domains.get_mut(&v.domain).expect("the running vCPU's domain exists").vcpus[v.vcpu as usize];
        let (callback, masks) = (vcpu.entry.syscall_entry, vcpu.entry.syscall_masks_events != 0);
        if callback == 0 {
            regs.rip = regs.rip.wrapping_sub(SYSCALL_LEN);
            return bounce_exception(hv, regs, UD_VECTOR, 0, None);
        }
        vcpu.bounce(regs, callback, 0, masks, &mut hv.mem, &mut MachineGuestCpu)
            .map_err(|why| Outcome::Killed(KillReason::DoubleFault { what: Bounced::Syscall, why }))
    });
    match result {
        Ok(()) => {
            finish(regs);
        }
        Err(outcome) => end_running(regs, outcome),
    }
}

/// A `syscall` from 32-bit code: Veneer has no compatibility-mode calls, so
/// the guest gets #UD at the instruction.
pub fn on_compat_syscall(regs: &mut GuestRegisters) {
    regs.rip = regs.rip.wrapping_sub(SYSCALL_LEN);
    match with_hv(|hv| bounce_exception(hv, regs, UD_VECTOR, 0, None)) {
        Ok(()) => {
            finish(regs);
        }
        Err(outcome) => end_running(regs, outcome),
    }
}

/// The syscall fast path faulted writing the frame on the guest kernel
/// stack: the guest's double fault. The fault's frame is not a guest's, so
/// the next vCPU is entered afresh.
pub fn on_syscall_bounce_unwritable(frame: &GuestRegisters) -> ! {
    let at = Cr2::read_raw() & !63;
    log::info!("syscall bounce: fault {:#x} writing the guest frame at {at:#x}", frame.error_code);
    let mut next = GuestRegisters::default();
    end_running(&mut next, Outcome::Killed(KillReason::DoubleFault { what: Bounced::Syscall, why: BounceError::FrameUnwritable { at } }));
    resume_guest(&next)
}
