//! The physical CPUs: which vCPU each one has loaded, switching vCPUs on
//! and off them, idling, reaching the others (reschedule IPIs, TLB
//! shootdowns), and ending a domain whose vCPUs run on other CPUs.
//!
//! A vCPU is *loaded* on a CPU while its state is in that CPU: registers
//! in the entry frame, vector registers, segment registers and bases,
//! address space, and the CPU's `PerCpu` pointing at its `EntryState`.
//! Only the CPU itself loads and unloads (under the hypervisor lock). A
//! domain that ends is taken out of `domains` at once but stays in
//! `dying`, its vCPUs' memory intact, until no CPU has one of them loaded:
//! each CPU that had one is prodded, unloads it at its next chance, and
//! the last one tears the domain down, off its page tables.

use veneer_core::domain::Outcome;
use veneer_core::scheduler::VcpuRef;
use veneer_core::vcpu::GuestRegisters;
use x86_64::registers::model_specific::{FsBase, KernelGsBase};
use x86_64::VirtAddr;

use crate::arch::x86_64::entry::{self, resume_guest, this_cpu};
use crate::arch::x86_64::qemu_exit::{exit, RunStatus};
use crate::arch::x86_64::{apic, cpu, fpu, paging, serial, smp};
use crate::hypervisor::{with_hv, Hypervisor};

/// What one physical CPU runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pcpu {
    /// The vCPU loaded on it.
    pub loaded: Option<VcpuRef>,
    /// The loaded vCPU's domain has ended (it is in `dying`).
    pub ended: bool,
    /// When the loaded vCPU's slice ends.
    pub slice_end: u64,
}

impl Hypervisor {
    /// The vCPU loaded on this CPU, unless its domain has ended.
    pub fn loaded_here(&self) -> Option<VcpuRef> {
        let here = &self.pcpus[this_cpu()];
        here.loaded.filter(|_| !here.ended)
    }

    /// Makes CPU `cpu` pick again: this one does on its way back to the
    /// guest (the scheduler's flag says so); another gets an IPI.
    pub fn prod(&self, cpu: usize) {
        if cpu != this_cpu() {
            smp::send_resched(cpu);
        }
    }

    /// If `v` runs on another CPU with an upcall due, interrupts that CPU:
    /// its way back to the guest delivers the upcall (a vCPU running on
    /// this CPU gets it on the way back from the current entry).
    pub fn kick(&self, v: VcpuRef) {
        let Some(cpu) = self.pcpus.iter().position(|p| p.loaded == Some(v)) else { return };
        if cpu != this_cpu() && self.vcpu(v).is_some_and(|vcpu| vcpu.upcall_due(&self.mem)) {
            smp::send_resched(cpu);
        }
    }

    /// Saves the CPU's state of `v` (loaded here, `frame` its registers)
    /// into it.
    fn save(&mut self, v: VcpuRef, frame: &GuestRegisters) {
        let features = self.cpu;
        let Some(vcpu) = self.vcpu_mut(v) else { return };
        vcpu.regs = *frame;
        fpu::save(&mut vcpu.fpu, &features);
        vcpu.fs_base = FsBase::read().as_u64();
        vcpu.active_gs_base = KernelGsBase::read().as_u64();
        vcpu.selectors = entry::read_data_selectors();
        self.write_runstate(v);
    }

    /// Takes this CPU's vCPU off it, saving its state from `frame` if its
    /// domain still runs; if the domain has ended, leaves its address space
    /// and tears it down if no other CPU has one of its vCPUs loaded.
    fn unload(&mut self, frame: Option<&GuestRegisters>) {
        let cpu = this_cpu();
        let Some(v) = self.pcpus[cpu].loaded.take() else { return };
        let ended = core::mem::take(&mut self.pcpus[cpu].ended);
        if let Some(frame) = frame.filter(|_| !ended) {
            self.save(v, frame);
        }
        entry::set_running(core::ptr::null_mut());
        if ended {
            // Off the domain's tables before they are freed.
            paging::activate(self.tables.l4);
            self.reap(v.domain);
        }
    }

    /// Loads `v`'s state into this CPU and `frame`.
    fn load(&mut self, v: VcpuRef, frame: &mut GuestRegisters) {
        let (features, pcid) = (self.cpu, self.cpu.pcid);
        let vcpu = self.vcpu_mut(v).expect("the scheduler picks existing vCPUs");
        *frame = vcpu.regs;
        fpu::restore(&vcpu.fpu, &features);
        entry::load_data_selectors(vcpu.selectors);
        FsBase::write(VirtAddr::new_truncate(vcpu.fs_base));
        KernelGsBase::write(VirtAddr::new_truncate(vcpu.active_gs_base));
        if features.tsc_aux {
            cpu::write_tsc_aux(vcpu.tsc_aux);
        }
        // Both PCIDs afresh: nothing another vCPU left in this TLB, and no
        // flush owed to this one from before, survives.
        paging::activate_guest_fresh(vcpu.entry.kernel_l4, vcpu.entry.user_l4, vcpu.mode() == veneer_core::vcpu::Mode::User, pcid);
        // The vCPU stays in place (boxed) until its domain is torn down,
        // which waits until no CPU has it loaded.
        entry::set_running(&mut vcpu.entry);
        self.pcpus[this_cpu()].loaded = Some(v);
        self.update_time(v);
        self.write_runstate(v);
    }

    /// Writes `v`'s time record, as it is about to run on this CPU.
    pub fn update_time(&mut self, v: VcpuRef) {
        let record = self.clock.record(crate::arch::x86_64::clock::rdtsc());
        if let Some(d) = self.domains.get(&v.domain) {
            d.vcpus[v.vcpu as usize].write_time(&mut self.mem, &record);
        }
    }

    /// Lets the scheduler pick for this CPU and switches `frame` to the
    /// pick. Returns false if nothing is runnable (then nothing is loaded
    /// and the CPU is in the hypervisor's own address space).
    pub fn reschedule(&mut self, frame: &mut GuestRegisters) -> bool {
        let cpu = this_cpu();
        let now = self.now();
        let d = self.sched.schedule(cpu, now);
        if d.next != self.pcpus[cpu].loaded {
            self.unload(Some(frame));
            match d.next {
                Some(next) => self.load(next, frame),
                None => paging::activate(self.tables.l4),
            }
        } else if let Some(same) = d.next {
            // The vCPU goes on: its record is refreshed at every slice, so
            // at least every `SLICE_NS` it runs.
            self.update_time(same);
        }
        if let Some(end) = d.slice_end {
            self.pcpus[cpu].slice_end = end;
        }
        d.next.is_some()
    }

    /// Ends domain `id`: stops its vCPUs, everywhere; it is torn down (and
    /// its end reported) once no CPU has one loaded.
    pub fn end_domain(&mut self, id: u32, outcome: Outcome) {
        if !self.domains.contains_key(&id) {
            return;
        }
        // Grant mappings and device slots reach other domains: settled
        // while the domain is still known.
        crate::io::domain_ending(self, id);
        let Some(dom) = self.domains.remove(&id) else { return };
        self.all_clean &= outcome.is_clean();
        self.dying.insert(id, (dom, outcome));
        for p in &mut self.pcpus {
            p.ended |= p.loaded.is_some_and(|v| v.domain == id);
        }
        for cpu in self.sched.remove_domain(id) {
            self.prod(cpu);
        }
        if self.pcpus[this_cpu()].loaded.is_some_and(|v| v.domain == id) {
            self.unload(None);
        } else {
            self.reap(id);
        }
    }

    /// Tears down ended domain `id` if no CPU has one of its vCPUs loaded.
    fn reap(&mut self, id: u32) {
        if self.pcpus.iter().any(|p| p.loaded.is_some_and(|v| v.domain == id)) {
            return;
        }
        let Some((mut dom, outcome)) = self.dying.remove(&id) else { return };
        dom.console.flush(&mut |line| serial::write_bytes(line));
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
        // The other CPUs were flushed as frames left; this one must be too
        // before its guest, if any, runs again.
        let flush = self.machine.frames.take_flush();
        if self.pcpus[this_cpu()].loaded.is_some() {
            paging::flush(&flush, self.cpu.pcid);
        }
        log::info!("d{id} \"{name}\": {outcome}");
    }

    /// Carries out the TLB work a call of `v` (loaded here) left: here, and
    /// on the CPUs where the vCPUs it names are loaded, waiting for them.
    pub fn carry_out_flush(&mut self, v: VcpuRef) {
        let flush = self.machine.frames.take_flush();
        if flush.is_empty() {
            return;
        }
        if flush.reaches(v.vcpu) {
            paging::flush(&flush, self.cpu.pcid);
        }
        let me = this_cpu();
        let elsewhere: alloc::vec::Vec<usize> = (0..self.pcpus.len())
            .filter(|&c| c != me && self.pcpus[c].loaded.is_some_and(|u| u.domain == v.domain && flush.vcpus & 1u64.checked_shl(u.vcpu).unwrap_or(0) != 0))
            .collect();
        if !elsewhere.is_empty() {
            smp::flush_tlbs(elsewhere.into_iter());
        }
    }

    /// Programs this CPU's timer for the next thing due: a timer or poll
    /// deadline of a vCPU in its queue, or the end of the loaded vCPU's
    /// slice.
    pub fn arm_timer(&self) {
        let cpu = this_cpu();
        let here = &self.pcpus[cpu];
        let slice = here.loaded.map(|_| here.slice_end);
        let next = match (self.next_deadline(cpu), slice) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(ns) = next {
            apic::local().arm(self.clock.tsc_after(ns));
        }
    }

    /// Whether `v` is loaded on some CPU: its state is there, not in the
    /// vCPU (for a moment after `vcpu_down` from another vCPU, until that
    /// CPU has switched away).
    pub fn is_resident(&self, v: VcpuRef) -> bool {
        self.pcpus.iter().any(|p| p.loaded == Some(v))
    }
}

/// Fills `frame` with a vCPU to run, idling until there is one; stops the
/// machine when no domain is left.
pub fn run_something(frame: &mut GuestRegisters) {
    enum Next {
        Run,
        Idle,
        PickAgain,
    }
    loop {
        let next = with_hv(|hv| {
            crate::io::continue_deferred(hv);
            hv.expire_timers();
            if hv.domains.is_empty() && hv.dying.is_empty() {
                stop(hv);
            }
            let picked = hv.reschedule(frame);
            // Armed after the pick: it may have pulled a vCPU, and its
            // timer, into this CPU's queue.
            hv.arm_timer();
            if !picked {
                // Nothing runnable: halt, unless a backend has requests
                // waiting.
                return if hv.io.has_deferred() { Next::PickAgain } else { Next::Idle };
            }
            let v = hv.loaded_here().expect("just loaded");
            if let Err(outcome) = hv.deliver_upcall(v, frame) {
                hv.end_domain(v.domain, outcome);
                return Next::PickAgain;
            }
            Next::Run
        });
        match next {
            Next::Run => return,
            Next::Idle => entry::idle_until_interrupt(),
            Next::PickAgain => {}
        }
    }
}

/// Every domain has ended: checks every frame came back, and stops the
/// machine with how they ended.
fn stop(hv: &Hypervisor) -> ! {
    let free = hv.machine.allocator.free_count();
    if free != hv.free_before_domains {
        panic!("frames leaked: {free} free after every domain ended, {} before the first was built", hv.free_before_domains);
    }
    log::info!("frames: all {free} free again, as before the first domain was built");
    log::info!("smp: {} CPUs, {} TLB shootdowns", hv.pcpus.len(), smp::shootdowns());
    if hv.all_clean {
        log::info!("all domains ended: every one powered off cleanly");
        exit(RunStatus::Clean)
    }
    log::info!("all domains ended: some did not end cleanly");
    exit(RunStatus::DomainFailed)
}

/// This CPU's scheduling loop, entered once: runs whatever it picks.
pub fn run_cpu() -> ! {
    let mut frame = GuestRegisters::default();
    run_something(&mut frame);
    resume_guest(&frame)
}
