//! The scheduler's choice: which vCPU each physical CPU runs, and for how
//! long.
//!
//! Policy: each vCPU belongs to one physical CPU's run queue. A CPU runs the
//! runnable vCPU of its queue that has received the least CPU time
//! (`vruntime`, in ns), for at most one time slice. So vCPUs that stay
//! runnable share a CPU equally: two spinning vCPUs on one CPU each get
//! half, within one slice of each other at any time. A vCPU that wakes
//! after blocking gets its `vruntime` raised to at least the queue's least
//! minus half a slice: it runs soon (good for event latency) but cannot
//! bank the time it slept to starve the others later.
//!
//! Across CPUs: a new vCPU joins the queue with the fewest vCPUs; a vCPU
//! that wakes while its CPU is busy moves to an idle CPU if there is one;
//! and a CPU that picks pulls a waiting vCPU from the longest queue when
//! that queue holds at least two more runnable vCPUs than its own (which
//! covers an idle CPU taking work from one with a vCPU waiting). So no CPU
//! idles while a vCPU waits for another, and queue lengths stay within one
//! of each other among vCPUs that keep running. A moved vCPU keeps its
//! place relative to its queue: its `vruntime` is shifted by the
//! difference of the two queues' least.
//!
//! A vCPU is *resident* on the CPU whose registers hold its state: from
//! the decision that picks it there until the next decision there. Only a
//! vCPU that is resident nowhere changes queue, so one that went to sleep
//! on another CPU (or was taken offline by another vCPU) is never picked
//! elsewhere before its own CPU has saved it.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use hypercall_abi::vcpu::RunstateState;

/// A vCPU, system-wide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VcpuRef {
    pub domain: u32,
    pub vcpu: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entity {
    state: RunstateState,
    vruntime: u64,
    pcpu: usize,
    /// When it last started running (valid while `Running`).
    started: u64,
    /// Total ns spent in each state, and when the current one began.
    time: [u64; 4],
    state_entry: u64,
}

impl Entity {
    fn is_runnable(&self) -> bool {
        matches!(self.state, RunstateState::Running | RunstateState::Runnable)
    }
}

/// What a CPU does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The vCPU to run, or `None` to idle.
    pub next: Option<VcpuRef>,
    /// When to ask again at the latest (end of the slice), if running.
    pub slice_end: Option<u64>,
}

pub struct Scheduler {
    entities: BTreeMap<VcpuRef, Entity>,
    /// The vCPU resident on each CPU (see the module comment).
    current: Vec<Option<VcpuRef>>,
    /// Whether a CPU should pick again at its next chance (a vCPU woke
    /// that should run before the current one, or the current one slept).
    resched: Vec<bool>,
    pub slice_ns: u64,
}

impl Scheduler {
    pub fn new(pcpus: usize, slice_ns: u64) -> Scheduler {
        assert!(pcpus > 0, "at least one CPU");
        Scheduler { entities: BTreeMap::new(), current: vec![None; pcpus], resched: vec![false; pcpus], slice_ns }
    }

    pub fn pcpus(&self) -> usize {
        self.current.len()
    }

    /// Adds an offline vCPU, on the CPU with the fewest vCPUs.
    pub fn add(&mut self, v: VcpuRef, now: u64) {
        let mut load = vec![0usize; self.pcpus()];
        for e in self.entities.values() {
            load[e.pcpu] += 1;
        }
        let pcpu = (0..self.pcpus()).min_by_key(|&p| (load[p], p)).unwrap_or(0);
        let vruntime = self.min_vruntime(pcpu, now);
        self.entities.insert(v, Entity { state: RunstateState::Offline, vruntime, pcpu, started: now, time: [0; 4], state_entry: now });
    }

    /// Forgets every vCPU of `domain`; returns the CPUs it was resident on
    /// (they must pick again).
    pub fn remove_domain(&mut self, domain: u32) -> Vec<usize> {
        self.entities.retain(|v, _| v.domain != domain);
        let mut freed = Vec::new();
        for (p, cur) in self.current.iter_mut().enumerate() {
            if cur.is_some_and(|v| v.domain == domain) {
                *cur = None;
                self.resched[p] = true;
                freed.push(p);
            }
        }
        freed
    }

    pub fn state(&self, v: VcpuRef) -> Option<RunstateState> {
        self.entities.get(&v).map(|e| e.state)
    }

    /// The CPU whose queue `v` is in.
    pub fn pcpu_of(&self, v: VcpuRef) -> Option<usize> {
        self.entities.get(&v).map(|e| e.pcpu)
    }

    /// The vCPU resident on `pcpu`.
    pub fn current(&self, pcpu: usize) -> Option<VcpuRef> {
        self.current[pcpu]
    }

    /// Total ns `v` spent in each state up to `now`, and the current state's
    /// start (the runstate record).
    pub fn runstate(&self, v: VcpuRef, now: u64) -> Option<([u64; 4], u64)> {
        self.entities.get(&v).map(|e| {
            let mut t = e.time;
            t[e.state as usize] += now.saturating_sub(e.state_entry);
            (t, e.state_entry)
        })
    }

    /// `vruntime` with the running vCPU's current stint counted.
    fn effective(e: &Entity, now: u64) -> u64 {
        if e.state == RunstateState::Running {
            e.vruntime + now.saturating_sub(e.started)
        } else {
            e.vruntime
        }
    }

    fn min_vruntime(&self, pcpu: usize, now: u64) -> u64 {
        self.entities
            .values()
            .filter(|e| e.pcpu == pcpu && e.is_runnable())
            .map(|e| Self::effective(e, now))
            .min()
            .unwrap_or_else(|| self.entities.values().filter(|e| e.pcpu == pcpu).map(|e| e.vruntime).max().unwrap_or(0))
    }

    /// Runnable (or running) vCPUs in `pcpu`'s queue.
    fn load(&self, pcpu: usize) -> usize {
        self.entities.values().filter(|e| e.pcpu == pcpu && e.is_runnable()).count()
    }

    /// Whether `pcpu` runs nothing and has nothing waiting.
    fn is_idle(&self, pcpu: usize) -> bool {
        self.current[pcpu].is_none() && self.load(pcpu) == 0
    }

    fn set_state(e: &mut Entity, state: RunstateState, now: u64) {
        e.time[e.state as usize] += now.saturating_sub(e.state_entry);
        e.state = state;
        e.state_entry = now;
    }

    /// Moves `v`, resident nowhere, to `to`'s queue, keeping its place
    /// relative to the least `vruntime` of each queue.
    fn migrate(&mut self, v: VcpuRef, to: usize, now: u64) {
        let from = self.entities[&v].pcpu;
        debug_assert!(self.current.iter().all(|c| *c != Some(v)), "{v:?} moves while resident");
        let (from_min, to_min) = (self.min_vruntime(from, now), self.min_vruntime(to, now));
        let e = self.entities.get_mut(&v).expect("a known vCPU");
        e.vruntime = e.vruntime.saturating_sub(from_min).saturating_add(to_min);
        e.pcpu = to;
    }

    /// Makes a blocked or offline vCPU runnable. Returns the CPU that
    /// should pick again (it idles, or the vCPU is owed time before the
    /// one running there), if any. A vCPU whose CPU is busy moves to an
    /// idle CPU if there is one.
    pub fn wake(&mut self, v: VcpuRef, now: u64) -> Option<usize> {
        let e = self.entities.get(&v)?;
        if !matches!(e.state, RunstateState::Blocked | RunstateState::Offline) {
            return None;
        }
        let home = e.pcpu;
        let resident = self.current[home] == Some(v);
        if !resident && self.current[home].is_some() {
            if let Some(idle) = (0..self.pcpus()).find(|&p| self.is_idle(p)) {
                self.migrate(v, idle, now);
            }
        }
        let pcpu = self.entities[&v].pcpu;
        let floor = self.min_vruntime(pcpu, now).saturating_sub(self.slice_ns / 2);
        let e = self.entities.get_mut(&v).expect("checked above");
        e.vruntime = e.vruntime.max(floor);
        Self::set_state(e, RunstateState::Runnable, now);
        let vruntime = e.vruntime;
        let preempt = match self.current[pcpu] {
            None => true,
            Some(cur) if cur == v => true,
            Some(cur) => vruntime < Self::effective(&self.entities[&cur], now),
        };
        if preempt {
            self.resched[pcpu] = true;
            Some(pcpu)
        } else {
            None
        }
    }

    /// Takes a vCPU out of the run queue until `wake` (`Blocked`) or for
    /// good until brought up again (`Offline`). Returns the CPU it is
    /// resident on, which must pick again.
    pub fn sleep(&mut self, v: VcpuRef, state: RunstateState, now: u64) -> Option<usize> {
        debug_assert!(matches!(state, RunstateState::Blocked | RunstateState::Offline));
        let e = self.entities.get_mut(&v)?;
        if e.state == RunstateState::Running {
            e.vruntime += now.saturating_sub(e.started);
        }
        Self::set_state(e, state, now);
        let pcpu = e.pcpu;
        if self.current[pcpu] == Some(v) {
            self.resched[pcpu] = true;
            return Some(pcpu);
        }
        None
    }

    /// Whether `pcpu` should pick again now.
    pub fn needs_resched(&self, pcpu: usize) -> bool {
        self.resched[pcpu]
    }

    /// `sched_yield` of `v`, running: it goes behind every other runnable
    /// vCPU of its queue (its `vruntime` raised to theirs, so the next pick
    /// is another), and its CPU picks again.
    pub fn yield_now(&mut self, v: VcpuRef, now: u64) {
        let Some(e) = self.entities.get(&v) else { return };
        let pcpu = e.pcpu;
        let others = self
            .entities
            .iter()
            .filter(|(u, e)| **u != v && e.pcpu == pcpu && e.is_runnable())
            .map(|(_, e)| Self::effective(e, now))
            .max();
        let e = self.entities.get_mut(&v).expect("checked above");
        if let Some(last) = others {
            e.vruntime = e.vruntime.max(last.saturating_sub(now.saturating_sub(e.started)));
        }
        self.resched[pcpu] = true;
    }

    /// Pulls one waiting vCPU into `pcpu`'s queue from the longest queue,
    /// if that one holds at least two more runnable vCPUs.
    fn balance(&mut self, pcpu: usize, now: u64) {
        let mine = self.load(pcpu);
        let Some(busiest) = (0..self.pcpus()).filter(|&p| p != pcpu).max_by_key(|&p| (self.load(p), core::cmp::Reverse(p))) else {
            return;
        };
        if self.load(busiest) < mine + 2 {
            return;
        }
        let resident = self.current[busiest];
        let waiting = self
            .entities
            .iter()
            .filter(|(v, e)| e.pcpu == busiest && e.state == RunstateState::Runnable && Some(**v) != resident)
            .min_by_key(|(v, e)| (e.vruntime, **v))
            .map(|(v, _)| *v);
        if let Some(v) = waiting {
            self.migrate(v, pcpu, now);
        }
    }

    /// Charges the resident vCPU for its time and picks the next: the
    /// runnable vCPU of the queue (after balancing) with the least
    /// `vruntime` (on a tie, another before the current one, so equals
    /// take turns).
    pub fn schedule(&mut self, pcpu: usize, now: u64) -> Decision {
        self.resched[pcpu] = false;
        let current = self.current[pcpu];
        if let Some(cur) = current {
            let e = self.entities.get_mut(&cur).expect("the resident vCPU is known");
            if e.state == RunstateState::Running {
                e.vruntime += now.saturating_sub(e.started);
                e.started = now;
            }
        }
        self.balance(pcpu, now);
        let next = self
            .entities
            .iter()
            .filter(|(_, e)| e.pcpu == pcpu && e.is_runnable())
            .min_by_key(|(v, e)| (e.vruntime, Some(**v) == current, **v))
            .map(|(v, _)| *v);
        if let Some(cur) = current {
            if next != Some(cur) {
                let e = self.entities.get_mut(&cur).expect("known");
                if e.state == RunstateState::Running {
                    Self::set_state(e, RunstateState::Runnable, now);
                }
            }
        }
        self.current[pcpu] = next;
        if let Some(n) = next {
            let e = self.entities.get_mut(&n).expect("picked from the map");
            if e.state != RunstateState::Running {
                Self::set_state(e, RunstateState::Running, now);
                e.started = now;
            }
        }
        Decision { next, slice_end: next.map(|_| now + self.slice_ns) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SLICE: u64 = 10_000_000;

    fn v(domain: u32) -> VcpuRef {
        VcpuRef { domain, vcpu: 0 }
    }

    fn runnable(n: u32) -> Scheduler {
        let mut s = Scheduler::new(1, SLICE);
        for d in 1..=n {
            s.add(v(d), 0);
            s.wake(v(d), 0);
        }
        s
    }

    #[test]
    fn idles_with_nothing_runnable() {
        let mut s = Scheduler::new(1, SLICE);
        assert_eq!(s.schedule(0, 0), Decision { next: None, slice_end: None });
        s.add(v(1), 0);
        assert_eq!(s.schedule(0, 5).next, None, "offline vCPUs do not run");
        assert_eq!(s.wake(v(1), 10), Some(0), "an idle CPU picks again");
        assert_eq!(s.schedule(0, 10), Decision { next: Some(v(1)), slice_end: Some(10 + SLICE) });
    }

    #[test]
    fn spinners_alternate_by_slice() {
        let mut s = runnable(2);
        let mut ran = [0u64; 3];
        let mut now = 0;
        let mut d = s.schedule(0, now);
        for _ in 0..100 {
            let cur = d.next.unwrap();
            now = d.slice_end.unwrap();
            ran[cur.domain as usize] += SLICE;
            d = s.schedule(0, now);
            assert_ne!(d.next, Some(cur), "a spinner gives way at the end of its slice");
        }
        assert_eq!(ran[1], ran[2]);
    }

    #[test]
    fn blocking_and_waking() {
        let mut s = runnable(2);
        let first = s.schedule(0, 0).next.unwrap();
        s.sleep(first, RunstateState::Blocked, 500);
        assert!(s.needs_resched(0));
        let second = s.schedule(0, 500).next.unwrap();
        assert_ne!(first, second);
        assert_eq!(s.state(first), Some(RunstateState::Blocked));
        // The sleeper has used less: waking it preempts the spinner.
        assert_eq!(s.wake(first, 2000), Some(0));
        assert_eq!(s.schedule(0, 2000).next, Some(first));
        assert_eq!(s.wake(first, 2500), None, "waking a runnable vCPU does nothing");
        let (t, entry) = s.runstate(first, 3000).unwrap();
        assert_eq!((t[RunstateState::Running as usize], t[RunstateState::Blocked as usize], entry), (1500, 1500, 2000));
    }

    #[test]
    fn a_yield_lets_every_other_runnable_vcpu_go_first() {
        let mut s = runnable(3);
        let first = s.schedule(0, 0).next.unwrap();
        // The others have run longer, but a yield still puts them first.
        let mut now = 0;
        for _ in 0..2 {
            let d = s.schedule(0, now);
            now += SLICE;
            if d.next == Some(first) {
                now += SLICE;
            }
        }
        let cur = s.schedule(0, now).next.unwrap();
        s.yield_now(cur, now + 10);
        assert!(s.needs_resched(0));
        let next = s.schedule(0, now + 10).next.unwrap();
        assert_ne!(next, cur, "a yield gives the CPU away when another vCPU is runnable");
        s.yield_now(next, now + 20);
        let third = s.schedule(0, now + 20).next.unwrap();
        assert!(third != next && third != cur, "then the third runs: {third:?}");
        let mut alone = runnable(1);
        let only = alone.schedule(0, 0).next.unwrap();
        alone.yield_now(only, 5);
        assert_eq!(alone.schedule(0, 5).next, Some(only), "alone, it goes on");
    }

    #[test]
    fn a_long_sleeper_cannot_bank_its_sleep() {
        let mut s = runnable(2);
        s.schedule(0, 0);
        s.sleep(v(1), RunstateState::Blocked, 0);
        // v(2) spins alone for 100 slices.
        let mut now = 0;
        for _ in 0..100 {
            now += SLICE;
            assert_eq!(s.schedule(0, now).next, Some(v(2)));
        }
        s.wake(v(1), now);
        // Now they share: v(1) is not owed 100 slices.
        let mut ran = [0u64; 3];
        for _ in 0..20 {
            let d = s.schedule(0, now);
            ran[d.next.unwrap().domain as usize] += 1;
            now += SLICE;
        }
        assert!(ran[1] <= 11 && ran[2] >= 9, "{ran:?}");
    }

    #[test]
    fn removing_a_domain_frees_its_cpu() {
        let mut s = runnable(2);
        let cur = s.schedule(0, 0).next.unwrap();
        assert_eq!(s.remove_domain(cur.domain), vec![0]);
        assert_eq!(s.state(cur), None);
        assert_ne!(s.schedule(0, 10).next, Some(cur));
    }

    #[test]
    fn vcpus_spread_over_cpus() {
        let mut s = Scheduler::new(2, SLICE);
        for d in 1..=4 {
            s.add(v(d), 0);
        }
        let on = |p| (1..=4).filter(|&d| s.pcpu_of(v(d)) == Some(p)).count();
        assert_eq!((on(0), on(1)), (2, 2));
    }

    #[test]
    fn a_cpu_with_nothing_to_run_takes_a_waiting_vcpu() {
        let mut s = Scheduler::new(2, SLICE);
        for d in 1..=3 {
            s.add(v(d), 0);
            s.wake(v(d), 0);
        }
        // d1 and d3 queue on CPU 0, d2 on CPU 1.
        assert_eq!((s.pcpu_of(v(1)), s.pcpu_of(v(2)), s.pcpu_of(v(3))), (Some(0), Some(1), Some(0)));
        assert_eq!(s.schedule(0, 0).next, Some(v(1)));
        assert_eq!(s.schedule(1, 0).next, Some(v(2)));
        assert_eq!(s.sleep(v(2), RunstateState::Blocked, 100), Some(1), "its CPU must pick again");
        assert_eq!(s.schedule(1, 100).next, Some(v(3)), "CPU 1 pulls the vCPU waiting on CPU 0");
        assert_eq!(s.pcpu_of(v(3)), Some(1));
        assert_eq!(s.schedule(0, 200).next, Some(v(1)));
    }

    #[test]
    fn a_vcpu_woken_while_its_cpu_is_busy_moves_to_an_idle_one() {
        let mut s = Scheduler::new(2, SLICE);
        for d in 1..=3 {
            s.add(v(d), 0);
        }
        s.wake(v(1), 0);
        assert_eq!(s.schedule(0, 0).next, Some(v(1)));
        assert_eq!(s.schedule(1, 0).next, None);
        assert_eq!(s.wake(v(3), 50), Some(1), "CPU 0 is busy, CPU 1 idles");
        assert_eq!(s.pcpu_of(v(3)), Some(1));
        assert_eq!(s.schedule(1, 50).next, Some(v(3)));
    }

    #[test]
    fn a_vcpu_asleep_but_resident_is_not_picked_elsewhere() {
        let mut s = Scheduler::new(2, SLICE);
        for d in 1..=2 {
            s.add(v(d), 0);
        }
        // d1 on CPU 0 runs, then goes offline from another vCPU's call; CPU
        // 0 has not yet saved it when it is woken again.
        s.wake(v(1), 0);
        assert_eq!(s.schedule(0, 0).next, Some(v(1)));
        assert_eq!(s.sleep(v(1), RunstateState::Offline, 10), Some(0));
        assert_eq!(s.current(0), Some(v(1)), "still resident until CPU 0 picks");
        assert_eq!(s.schedule(1, 10).next, None, "CPU 1 cannot take it");
        assert_eq!(s.wake(v(1), 20), Some(0), "it stays where its state is");
        assert_eq!(s.pcpu_of(v(1)), Some(0));
        assert_eq!(s.schedule(0, 20).next, Some(v(1)));
    }

    /// Every CPU picks once, in order.
    fn round(s: &mut Scheduler, now: u64) -> Vec<Option<VcpuRef>> {
        (0..s.pcpus()).map(|p| s.schedule(p, now).next).collect()
    }

    fn check_residency(s: &Scheduler) -> Result<(), TestCaseError> {
        for p in 0..s.pcpus() {
            if let Some(cur) = s.current(p) {
                prop_assert_eq!(s.pcpu_of(cur), Some(p), "{:?} resident on CPU {} but queued elsewhere", cur, p);
            }
        }
        Ok(())
    }

    proptest! {
        /// Under any mix of wakes, sleeps and picks on any CPU, a vCPU is
        /// resident on at most one CPU, the one whose queue it is in; and
        /// after every CPU has picked, no CPU idles while a runnable vCPU
        /// waits.
        #[test]
        fn no_cpu_idles_while_a_vcpu_waits(
            cpus in 1usize..5,
            n in 1u32..9,
            ops in proptest::collection::vec((0u8..3, 0u32..9, 0usize..5), 1..200),
        ) {
            let mut s = Scheduler::new(cpus, SLICE);
            for d in 1..=n {
                s.add(v(d), 0);
            }
            let mut now = 0;
            for (op, d, p) in ops {
                now += 1000;
                let target = v(d % n + 1);
                match op {
                    0 => { s.wake(target, now); }
                    1 => { s.sleep(target, RunstateState::Blocked, now); }
                    _ => { s.schedule(p % cpus, now); }
                }
                check_residency(&s)?;
            }
            let picks = round(&mut s, now + 1);
            check_residency(&s)?;
            if picks.iter().any(Option::is_none) {
                let runnable = (1..=n).filter(|&d| matches!(s.state(v(d)), Some(RunstateState::Running | RunstateState::Runnable))).count();
                let resident = picks.iter().flatten().count();
                prop_assert_eq!(runnable, resident, "a CPU idles while a vCPU waits: {:?}", picks);
            }
        }

        /// Spinners on several CPUs end up in queues whose lengths differ by
        /// at most one, and when they divide evenly each gets the same share
        /// of the machine, within two slices.
        #[test]
        fn spinners_spread_and_share_the_machine(
            cpus in 2usize..5,
            per_cpu in 1u32..4,
            extra in 0u32..4,
            steps in proptest::collection::vec(1u64..=SLICE, 50..150),
        ) {
            let cpus_u32 = u32::try_from(cpus).unwrap();
            let n = cpus_u32 * per_cpu + extra % cpus_u32;
            let mut s = Scheduler::new(cpus, SLICE);
            // All on CPU 0's queue at first: the worst start.
            for d in 1..=n {
                s.add(v(d), 0);
                let home = s.pcpu_of(v(d)).unwrap();
                if home != 0 {
                    s.migrate(v(d), 0, 0);
                }
                s.wake(v(d), 0);
            }
            let mut now = 0;
            for _ in 0..n {
                round(&mut s, now);
                now += SLICE;
            }
            let loads: Vec<usize> = (0..cpus).map(|p| s.load(p)).collect();
            let (max, min) = (*loads.iter().max().unwrap(), *loads.iter().min().unwrap());
            prop_assert!(max - min <= 1, "queue lengths {:?}", loads);
            if extra % cpus_u32 == 0 {
                let mut ran = vec![0u64; n as usize + 1];
                for step in steps {
                    let picks = round(&mut s, now);
                    for cur in picks.into_iter().flatten() {
                        ran[cur.domain as usize] += step;
                    }
                    now += step;
                }
                let max = ran[1..].iter().max().unwrap();
                let min = ran[1..].iter().min().unwrap();
                prop_assert!(max - min <= 2 * SLICE, "{:?}", ran);
            }
        }
    }

    proptest! {
        /// With any number of spinners and any mix of early reschedules
        /// (yields, wakes elsewhere), no spinner's CPU time leads another's
        /// by more than a slice.
        #[test]
        fn spinners_share_within_a_slice(n in 2u32..6, steps in proptest::collection::vec(1u64..=SLICE, 10..200)) {
            let mut s = runnable(n);
            let mut now = 0;
            let mut ran = vec![0u64; n as usize + 1];
            let mut d = s.schedule(0, now);
            for step in steps {
                let cur = d.next.unwrap();
                now += step;
                ran[cur.domain as usize] += step;
                d = s.schedule(0, now);
            }
            let max = ran[1..].iter().max().unwrap();
            let min = ran[1..].iter().min().unwrap();
            prop_assert!(max - min <= SLICE, "{:?}", ran);
        }
    }
}
