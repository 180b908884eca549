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
    current: Vec<Option<VcpuRef>>,
    /// Whether a CPU should pick again at its next chance (a vCPU woke
    /// that should run before the current one).
    resched: Vec<bool>,
    pub slice_ns: u64,
}

impl Scheduler {
    pub fn new(pcpus: usize, slice_ns: u64) -> Scheduler {
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

    /// Forgets every vCPU of `domain`; returns the CPUs that ran one.
    pub fn remove_domain(&mut self, domain: u32) -> Vec<usize> {
        self.entities.retain(|v, _| v.domain != domain);
        let mut freed = Vec::new();
        for (p, cur) in self.current.iter_mut().enumerate() {
            if cur.is_some_and(|v| v.domain == domain) {
                *cur = None;
                freed.push(p);
            }
        }
        freed
    }

    pub fn state(&self, v: VcpuRef) -> Option<RunstateState> {
        self.entities.get(&v).map(|e| e.state)
    }

    pub fn pcpu_of(&self, v: VcpuRef) -> Option<usize> {
        self.entities.get(&v).map(|e| e.pcpu)
    }

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
            .filter(|e| e.pcpu == pcpu && matches!(e.state, RunstateState::Running | RunstateState::Runnable))
            .map(|e| Self::effective(e, now))
            .min()
            .unwrap_or_else(|| self.entities.values().filter(|e| e.pcpu == pcpu).map(|e| e.vruntime).max().unwrap_or(0))
    }

    fn set_state(e: &mut Entity, state: RunstateState, now: u64) {
        e.time[e.state as usize] += now.saturating_sub(e.state_entry);
        e.state = state;
        e.state_entry = now;
    }

    /// Makes a blocked or offline vCPU runnable. Returns its CPU if that CPU
    /// should pick again (it idles, or the vCPU is owed time before the one
    /// running).
    pub fn wake(&mut self, v: VcpuRef, now: u64) -> Option<usize> {
        let floor = {
            let pcpu = self.entities.get(&v)?.pcpu;
            self.min_vruntime(pcpu, now).saturating_sub(self.slice_ns / 2)
        };
        let e = self.entities.get_mut(&v)?;
        if !matches!(e.state, RunstateState::Blocked | RunstateState::Offline) {
            return None;
        }
        e.vruntime = e.vruntime.max(floor);
        Self::set_state(e, RunstateState::Runnable, now);
        let (pcpu, vruntime) = (e.pcpu, e.vruntime);
        let preempt = match self.current[pcpu] {
            None => true,
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
    /// good until brought up again (`Offline`).
    pub fn sleep(&mut self, v: VcpuRef, state: RunstateState, now: u64) {
        debug_assert!(matches!(state, RunstateState::Blocked | RunstateState::Offline));
        let Some(e) = self.entities.get_mut(&v) else { return };
        if e.state == RunstateState::Running {
            e.vruntime += now.saturating_sub(e.started);
        }
        Self::set_state(e, state, now);
        let pcpu = e.pcpu;
        if self.current[pcpu] == Some(v) {
            self.current[pcpu] = None;
            self.resched[pcpu] = true;
        }
    }

    /// Whether `pcpu` should pick again now.
    pub fn needs_resched(&self, pcpu: usize) -> bool {
        self.resched[pcpu]
    }

    /// Asks `pcpu` to pick again at its next chance (`sched_yield`).
    pub fn request_resched(&mut self, pcpu: usize) {
        self.resched[pcpu] = true;
    }

    /// Charges the running vCPU for its time and picks the next: the
    /// runnable vCPU with the least `vruntime` (on a tie, another before the
    /// current one, so equals take turns).
    pub fn schedule(&mut self, pcpu: usize, now: u64) -> Decision {
        self.resched[pcpu] = false;
        if let Some(cur) = self.current[pcpu] {
            let e = self.entities.get_mut(&cur).expect("the current vCPU is known");
            e.vruntime += now.saturating_sub(e.started);
            e.started = now;
        }
        let current = self.current[pcpu];
        let next = self
            .entities
            .iter()
            .filter(|(_, e)| e.pcpu == pcpu && matches!(e.state, RunstateState::Running | RunstateState::Runnable))
            .min_by_key(|(v, e)| (e.vruntime, Some(**v) == current, **v))
            .map(|(v, _)| *v);
        if let Some(cur) = current {
            if next != Some(cur) {
                let e = self.entities.get_mut(&cur).expect("known");
                Self::set_state(e, RunstateState::Runnable, now);
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
