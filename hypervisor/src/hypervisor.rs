//! The running hypervisor: its domains, the scheduler that shares the CPUs
//! among their vCPUs, and what happens on each way in from a guest.
//!
//! Every way in (hypercall, exception, interrupt, user syscall the fast
//! path leaves) hands Rust the interrupted vCPU's frame at the top of the
//! stack. What the frame holds when Rust returns is resumed: the same vCPU
//! with a result or a bounce, or another one the scheduler picked, its state
//! loaded in place of the first's (`pcpus`). When nothing is runnable the
//! CPU halts until its timer or another CPU's IPI; when no domain is left
//! the machine stops, with a status that says whether every domain powered
//! off cleanly.
//!
//! All of this state is behind one lock, which every way in takes (see
//! `arch::x86_64::lock`): the CPUs run guest code in parallel and take
//! turns in the hypervisor. While a CPU waits for the lock another may end
//! the domain of the vCPU it was running; it then finds nothing loaded
//! ([`with_running`]) and runs something else.

use alloc::collections::BTreeMap;
use core::mem::{offset_of, size_of};

use hypercall_abi::event::Virq;
use hypercall_abi::multicall::MulticallEntry;
use hypercall_abi::Error;
use hypercall_abi::vcpu::RunstateState;
use hypercall_abi::version::AbiVersion;
use veneer_core::addr::{is_canonical, Mfn};
use veneer_core::domain::{Bounced, Domain, GuestFault, KillReason, Outcome};
use veneer_core::event_channel;
use veneer_core::frame_allocator::FrameAllocator;
use veneer_core::frame_table::FrameTable;
use veneer_core::guest_memory::AddressSpace;
use veneer_core::hypercall::{self, Call, Disposition, MulticallHost, Services};
use veneer_core::m2p::M2p;
use veneer_core::machine::MachineMemory;
use veneer_core::scheduler::{Scheduler, VcpuRef};
use veneer_core::time::{Clock, GUEST_SKEW_NS};
use veneer_core::trapped_write::{self, Refused};
use veneer_core::vcpu::{vcpu_info_offset, write_wallclock, BounceError, GuestRegisters, Mode, Vcpu};
use x86_64::registers::control::Cr2;

use crate::arch::x86_64::clock::rdtsc;
use crate::arch::x86_64::cpu::Features;
use crate::arch::x86_64::direct_map::{phys_to_virt, DirectMap};
use crate::arch::x86_64::entry::{resume_guest, this_cpu, MachineGuestCpu};
use crate::arch::x86_64::lock::TicketLock;
use crate::arch::x86_64::paging::HypervisorTables;
use crate::arch::x86_64::serial;
use crate::arch::x86_64::smp;
use crate::events;
use crate::pcpus::{run_cpu, run_something, Pcpu};

/// Feature bits this hypervisor offers.
pub const FEATURES: u64 = hypercall_abi::features::HYPERVISOR_BACKENDS;

/// The time slice: how long a vCPU runs before others waiting get a turn.
pub const SLICE_NS: u64 = 10_000_000;

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
    /// Domains that have ended while some CPU still had one of their vCPUs
    /// loaded, with how they ended: torn down once none has (`pcpus`).
    pub dying: BTreeMap<u32, (Domain, Outcome)>,
    pub sched: Scheduler,
    pub clock: Clock,
    /// The wall clock: UTC at system time 0.
    pub wallclock: (u64, u32),
    /// What each physical CPU runs, by index.
    pub pcpus: alloc::vec::Vec<Pcpu>,
    /// False once any domain failed to build or ended other than by a clean
    /// power-off.
    pub all_clean: bool,
    /// Free frames before the first domain was built: where the allocator
    /// must be again once every domain is gone.
    pub free_before_domains: u64,
    /// Device slots and the backends the hypervisor serves.
    pub io: crate::io::Io,
}

impl Hypervisor {
    /// Takes over machine memory: the m2p table (mapped for guests), the
    /// frame table, the allocator.
    /// `wallclock` is UTC at system time 0; `cpus` CPUs are online.
    pub fn new(mut frames: FrameAllocator, mut mem: DirectMap, tables: HypervisorTables, cpu: Features, clock: Clock, wallclock: (u64, u32), cpus: usize) -> Hypervisor {
        let m2p = M2p::allocate(&mut frames, &mut mem).expect("frames for the m2p table");
        tables.map_m2p(m2p.frames(), &mut frames, &mut mem);
        let mut frame_table = FrameTable::new(frames.limit(), tables.slots(&mem), cpu.phys_addr_bits);
        frame_table.set_remote_flush(smp::flush_other_cpus);
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
            dying: BTreeMap::new(),
            sched: Scheduler::new(cpus, SLICE_NS),
            clock,
            wallclock,
            pcpus: alloc::vec![Pcpu::default(); cpus],
            all_clean: true,
            free_before_domains,
            io: crate::io::Io::default(),
        }
    }
}

static HV: TicketLock<Option<Hypervisor>> = TicketLock::new(None);

pub fn with_hv<R>(f: impl FnOnce(&mut Hypervisor) -> R) -> R {
    f(HV.lock().as_mut().expect("hypervisor started"))
}

/// Runs `f` with the vCPU this CPU runs; `None` if it runs none any more:
/// its domain ended (on another CPU) while this one waited for the lock.
/// The caller then abandons the vCPU's frame and runs something else.
fn with_running<R>(f: impl FnOnce(&mut Hypervisor, VcpuRef) -> R) -> Option<R> {
    with_hv(|hv| {
        let v = hv.loaded_here()?;
        Some(f(hv, v))
    })
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

    /// Makes `v` runnable if it was blocked, and asks its CPU to pick again
    /// if it should run first.
    pub fn wake(&mut self, v: VcpuRef) {
        if self.sched.state(v) == Some(RunstateState::Blocked) {
            if let Some(vcpu) = self.vcpu_mut(v) {
                vcpu.poll = None;
            }
            self.make_runnable(v);
        }
    }

    /// Makes a blocked or offline `v` runnable, asking the CPU that should
    /// run it to pick again.
    pub fn make_runnable(&mut self, v: VcpuRef) {
        let now = self.now();
        if let Some(cpu) = self.sched.wake(v, now) {
            self.prod(cpu);
        }
        self.write_runstate(v);
    }

    /// Takes `v` off the run queue (`Blocked` or `Offline`); the CPU it is
    /// on, if any, picks again.
    pub fn sleep(&mut self, v: VcpuRef, state: RunstateState) {
        let now = self.now();
        if let Some(cpu) = self.sched.sleep(v, state, now) {
            self.prod(cpu);
        }
        self.write_runstate(v);
    }

    /// Updates `v`'s registered runstate area, if any, from the scheduler.
    pub fn write_runstate(&mut self, v: VcpuRef) {
        let now = self.now();
        let (Some(state), Some((time, entry))) = (self.sched.state(v), self.sched.runstate(v, now)) else { return };
        let Some(d) = self.domains.get_mut(&v.domain) else { return };
        d.vcpus[v.vcpu as usize].write_runstate(&mut self.mem, state as u32, entry, time);
    }

    /// Raises `port` of `domain` (section 8.1) and wakes the vCPU it
    /// notifies, or one polling it; if the vCPU it notifies runs on another
    /// CPU, that CPU is interrupted so the upcall comes at once.
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
        self.kick(VcpuRef { domain, vcpu: target });
    }

    /// Fires the timers and poll deadlines of every vCPU that have passed
    /// (by `GUEST_SKEW_NS`, so no guest sees its deadline early).
    pub fn expire_timers(&mut self) {
        let now = self.now();
        let mut fired = alloc::vec::Vec::new();
        for (&domain, d) in self.domains.iter() {
            for v in d.vcpus.iter() {
                for deadline in [v.timer_deadline, v.poll.as_ref().map_or(0, |p| p.1)] {
                    if deadline != 0 && now >= deadline.saturating_add(GUEST_SKEW_NS) {
                        fired.push((VcpuRef { domain, vcpu: v.id }, deadline == v.timer_deadline));
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
    }

    /// The earliest timer or poll deadline, with its skew, of the vCPUs
    /// queued on CPU `cpu` (each CPU arms its timer for its own).
    pub fn next_deadline(&self, cpu: usize) -> Option<u64> {
        self.domains
            .iter()
            .flat_map(|(&domain, d)| d.vcpus.iter().map(move |v| (VcpuRef { domain, vcpu: v.id }, v)))
            .filter(|(r, _)| self.sched.pcpu_of(*r) == Some(cpu))
            .flat_map(|(_, v)| [v.timer_deadline, v.poll.as_ref().map_or(0, |p| p.1)])
            .filter(|&deadline| deadline != 0)
            .map(|deadline| deadline.saturating_add(GUEST_SKEW_NS))
            .min()
    }

    /// Sets the wall clock of every domain (UTC at system time 0).
    pub fn set_wallclock(&mut self, sec: u64, nsec: u32) {
        self.wallclock = (sec, nsec);
        for d in self.domains.values() {
            write_wallclock(&mut self.mem, d.shared_info, sec, nsec);
        }
    }

    /// Bounces an upcall to `v`, loaded on this CPU, if one is due (section
    /// 8.1 step 3). Returns whether `frame` changed; a bounce that cannot be
    /// delivered crashes the domain.
    pub fn deliver_upcall(&mut self, v: VcpuRef, frame: &mut GuestRegisters) -> Result<bool, Outcome> {
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

/// Hands the machine to the domains (this is the boot CPU; the others
/// join); never returns.
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
    smp::release();
    run_cpu()
}

/// The last step of every way back to a guest: runs whoever should run
/// now, with any upcall due. Returns whether `frame` changed beyond what
/// `sysret` restores.
fn finish(frame: &mut GuestRegisters) -> bool {
    let outcome = with_hv(|hv| {
        let cpu = this_cpu();
        match hv.loaded_here() {
            Some(v) if !hv.sched.needs_resched(cpu) && hv.now() < hv.pcpus[cpu].slice_end => hv.deliver_upcall(v, frame).map(Some),
            _ => Ok(None),
        }
    });
    match outcome {
        Ok(Some(changed)) => changed,
        Ok(None) => {
            run_something(frame);
            true
        }
        Err(outcome) => {
            end_running(frame, outcome);
            true
        }
    }
}

/// Ends the domain of this CPU's vCPU (unless another CPU ended it
/// meanwhile) and runs something else in `frame`.
fn end_running(frame: &mut GuestRegisters, outcome: Outcome) {
    with_hv(|hv| {
        if let Some(v) = hv.loaded_here() {
            hv.end_domain(v.domain, outcome);
        }
    });
    run_something(frame);
}

/// A `syscall` from the running guest kernel. Returns whether the vCPU must
/// be resumed with every register (`iret`) rather than with `sysret`.
pub fn on_hypercall(regs: &mut GuestRegisters) -> bool {
    let disposition = with_running(|hv, v| one_call(hv, v, regs));
    let Some(disposition) = disposition else {
        run_something(regs);
        return true;
    };
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

/// Carries out the call in `regs` for `v`, the vCPU running here.
fn one_call(hv: &mut Hypervisor, v: VcpuRef, regs: &mut GuestRegisters) -> Disposition {
    let dom = hv.domains.get_mut(&v.domain).expect("the running vCPU's domain exists");
    let mut console = |bytes: &[u8]| serial::write_bytes(bytes);
    let mut services = Services {
        abi: AbiVersion::CURRENT,
        features: FEATURES,
        mem: &mut hv.mem,
        machine: &mut hv.machine,
        console: &mut console,
        console_input: &mut serial::read_available,
        cpu: &mut MachineGuestCpu,
    };
    match hypercall::handle(regs, dom, v.vcpu as usize, &mut services) {
        Disposition::Defer(Call::Multicall { entries, count }) => {
            // Each entry flushes what it leaves, as a call of its own would.
            hypercall::multicall(&mut Batch { hv, v, entries, regs: *regs }, count)
        }
        Disposition::Defer(call) => {
            let d = events::carry_out(hv, v, call);
            // TLB work a memory call left (a new base pointer is loaded already).
            hv.carry_out_flush(v);
            d
        }
        d => {
            hv.carry_out_flush(v);
            d
        }
    }
}

/// A `multicall` of `v`, the vCPU running here: `entries` in its kernel
/// address space, each made from a copy of the caller's registers.
struct Batch<'a> {
    hv: &'a mut Hypervisor,
    v: VcpuRef,
    entries: u64,
    regs: GuestRegisters,
}

impl Batch<'_> {
    /// Where field `offset` of entry `i` is; an address that wraps is bad.
    fn at(&self, i: usize, offset: usize) -> Result<u64, Error> {
        let from = (i * size_of::<MulticallEntry>() + offset) as u64;
        self.entries.checked_add(from).ok_or(Error::BadAddress)
    }
}

impl MulticallHost for Batch<'_> {
    fn read_entry(&mut self, i: usize) -> Result<(u64, [u64; 6]), Error> {
        let mut b = [0u8; size_of::<MulticallEntry>()];
        let at = self.at(i, 0)?;
        self.hv.vcpu(self.v).expect("running").kernel_space().copy_from(&self.hv.mem, at, &mut b)?;
        let word = |k: usize| u64::from_le_bytes(b[k..k + 8].try_into().expect("8 bytes"));
        let args = offset_of!(MulticallEntry, args);
        Ok((word(offset_of!(MulticallEntry, op)), core::array::from_fn(|k| word(args + 8 * k))))
    }
    fn write_result(&mut self, i: usize, result: u64) -> Result<(), Error> {
        let at = self.at(i, offset_of!(MulticallEntry, result))?;
        let space = self.hv.vcpu(self.v).expect("running").kernel_space();
        space.copy_to(&mut self.hv.mem, at, &result.to_le_bytes())
    }
    fn call(&mut self, op: u64, args: [u64; 6]) -> Disposition {
        let mut r = self.regs;
        let g = &mut r.gprs;
        (g.rax, g.rdi, g.rsi, g.rdx, g.r10, g.r8, g.r9) = (op, args[0], args[1], args[2], args[3], args[4], args[5]);
        one_call(self.hv, self.v, &mut r)
    }
}

/// An interrupt while a guest ran (the APIC timer): fires what is due and
/// lets the scheduler preempt the vCPU at the end of its slice.
pub fn on_interrupt(frame: &mut GuestRegisters) {
    with_hv(|hv| {
        hv.expire_timers();
        hv.arm_timer();
    });
    finish(frame);
}

/// Bounces exception `vector` to the guest kernel's handler, or ends the
/// domain if it has none or the frame cannot be written.
fn bounce_exception(hv: &mut Hypervisor, v: VcpuRef, regs: &mut GuestRegisters, vector: u8, error_code: u64, cr2: Option<u64>) -> Result<(), Outcome> {
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

/// The address space vCPU `v` runs in now.
fn current_space(hv: &Hypervisor, v: VcpuRef) -> AddressSpace {
    let vcpu = hv.vcpu(v).expect("the running vCPU exists");
    match vcpu.mode() {
        Mode::Kernel => vcpu.kernel_space(),
        Mode::User => AddressSpace { l4: Mfn::from_phys(vcpu.entry.user_l4) },
    }
}

/// What an exception from guest code turns into: the same exception, or,
/// for `int n` and `int3` (whose IDT gates the guest cannot pass), the
/// software interrupt the guest's trap table allows, or the #GP it refuses.
fn classify(hv: &Hypervisor, v: VcpuRef, regs: &mut GuestRegisters) -> (u8, u64) {
    let vector = regs.vector as u8;
    let vcpu = hv.vcpu(v).expect("the running vCPU exists");
    let level = if vcpu.mode() == Mode::User { 3 } else { 0 };
    let allows = |n: u8| vcpu.traps[usize::from(n)].dpl() >= level;
    let software = (vector == GP_VECTOR || vector == NP_VECTOR) && regs.error_code & ERROR_IDT != 0;
    if software {
        // The vector comes from the instruction: the error code's index
        // field is not reliable (QEMU's TCG scales it by the 16-byte gate
        // size in long mode).
        let mut insn = [0u8; 2];
        if current_space(hv, v).copy_from(&hv.mem, regs.rip, &mut insn).is_ok() && insn[0] == INT_OPCODE {
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
        let len = if current_space(hv, v).copy_from(&hv.mem, regs.rip.wrapping_sub(1), &mut insn).is_ok() && insn[0] == INT3_OPCODE { 1 } else { 2 };
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
    // Before anything else can fault on this CPU.
    let fault_address = Cr2::read_raw();
    let result = with_running(|hv, v| {
        if regs.vector == u64::from(PF_VECTOR) && emulate_trapped_write(hv, v, regs, fault_address) {
            return Ok(());
        }
        let (vector, error_code) = classify(hv, v, regs);
        let cr2 = (vector == PF_VECTOR && regs.vector == u64::from(PF_VECTOR)).then_some(fault_address);
        bounce_exception(hv, v, regs, vector, error_code, cr2)
    });
    match result {
        Some(Ok(())) => {
            finish(regs);
        }
        Some(Err(outcome)) => end_running(regs, outcome),
        None => run_something(regs),
    }
}

/// Tries the page fault at `address` in `regs` as a trapped page-table
/// write; true if it was applied (and `regs` moved past the instruction).
fn emulate_trapped_write(hv: &mut Hypervisor, v: VcpuRef, regs: &mut GuestRegisters, address: u64) -> bool {
    let dom = hv.domains.get(&v.domain).expect("the running vCPU's domain exists");
    let result = trapped_write::emulate(regs, address, regs.error_code, dom, v.vcpu as usize, &mut hv.machine, &mut hv.mem);
    hv.carry_out_flush(v);
    let dom = hv.domains.get(&v.domain).expect("the running vCPU's domain exists");
    if let Err(why @ (Refused::Unrecognised | Refused::Rejected(_))) = result {
        log::info!("{}: write to its page table at {address:#x} not applied: {why:?}", dom.id);
    }
    result.is_ok()
}

/// A `syscall` from guest user mode the fast path left to Rust: there is no
/// syscall callback (the guest gets the #UD of a CPU without `syscall`), or
/// an event may be due.
pub fn on_user_syscall(regs: &mut GuestRegisters) {
    let result = with_running(|hv, v| {
        let vcpu = &mut hv.domains.get_mut(&v.domain).expect("the running vCPU's domain exists").vcpus[v.vcpu as usize];
        let (callback, masks) = (vcpu.entry.syscall_entry, vcpu.entry.syscall_masks_events != 0);
        if callback == 0 {
            regs.rip = regs.rip.wrapping_sub(SYSCALL_LEN);
            return bounce_exception(hv, v, regs, UD_VECTOR, 0, None);
        }
        vcpu.bounce(regs, callback, 0, masks, &mut hv.mem, &mut MachineGuestCpu)
            .map_err(|why| Outcome::Killed(KillReason::DoubleFault { what: Bounced::Syscall, why }))
    });
    match result {
        Some(Ok(())) => {
            finish(regs);
        }
        Some(Err(outcome)) => end_running(regs, outcome),
        None => run_something(regs),
    }
}

/// A `syscall` from 32-bit code: Veneer has no compatibility-mode calls, so
/// the guest gets #UD at the instruction.
pub fn on_compat_syscall(regs: &mut GuestRegisters) {
    regs.rip = regs.rip.wrapping_sub(SYSCALL_LEN);
    match with_running(|hv, v| bounce_exception(hv, v, regs, UD_VECTOR, 0, None)) {
        Some(Ok(())) => {
            finish(regs);
        }
        Some(Err(outcome)) => end_running(regs, outcome),
        None => run_something(regs),
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
