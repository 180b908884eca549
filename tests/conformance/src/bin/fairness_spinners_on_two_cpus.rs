//! Fair share on an SMP host (section 15): four domains that never block,
//! this one and three `spinner` peers, on a machine with two CPUs. The
//! scheduler keeps two on each CPU's queue (new vCPUs go to the shortest
//! queue; a queue two longer than another gives one up), and shares each
//! CPU between its two by the time they have run: so over `WINDOW_NS` this
//! domain runs about as long as it waits (the other vCPU of its queue runs
//! meanwhile), never more than the longest single period plus
//! `SLACK_NS` apart, and gets between `MIN_SHARE` and `MAX_SHARE` percent:
//! no spinner starves it.
//!
//! Measured from this vCPU's runstate area, the hypervisor's own account of
//! the time it spent running and runnable-but-waiting, over whole periods
//! after a warm-up. With two QEMU CPU threads on a busy host the guest's
//! own reading of system time shows the host descheduling those threads as
//! time off the CPU (runs here measured 2-20% that way while the hypervisor
//! had given the domain half), and a slice ends only when its CPU's thread
//! takes the timer interrupt (periods of 10 ms on a quiet host, up to a
//! few hundred on a loaded one): so the bound is on the difference the
//! scheduler lets build up, relative to the periods the host allowed.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::vcpu::{RunstateInfo, RunstateState};
use veneer_guest::{check, event, hypercall, println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"spinner spinner spinner");
veneer_guest::host_cpus!(b"2");

const WINDOW_NS: u64 = 2_000_000_000;
const WARMUP_NS: u64 = 200_000_000;
const MIN_SHARE: u64 = 25;
const MAX_SHARE: u64 = 75;
/// Two slices.
const SLACK_NS: u64 = 20_000_000;
/// The spinners: domains 2-4, each with port 1 allocated for this one.
const SPINNERS: [u32; 3] = [2, 3, 4];

static mut RUNSTATE: RunstateInfo = RunstateInfo { state: 0, version: 0, state_entry_time: 0, time: [0; 4] };

/// The runstate: when the current state began, and the time spent
/// running and waiting in whole periods before it.
fn account() -> (u64, u64, u64) {
    loop {
        // SAFETY: the hypervisor writes the area with the version protocol;
        // a torn read shows as an odd or changed version.
        let (a, r, b) = unsafe {
            let p = core::ptr::addr_of!(RUNSTATE);
            (core::ptr::read_volatile(core::ptr::addr_of!((*p).version)), core::ptr::read_volatile(p), core::ptr::read_volatile(core::ptr::addr_of!((*p).version)))
        };
        if a % 2 == 0 && a == b {
            check!(r.state == RunstateState::Running as u32, "reading the runstate while not running: {:?}", r);
            return (r.state_entry_time, r.time[RunstateState::Running as usize], r.time[RunstateState::Runnable as usize]);
        }
    }
}

/// Spins until this vCPU has been off the CPU and back: the runstate's
/// totals then end with a whole period of waiting.
fn next_period(after: u64) -> (u64, u64, u64) {
    loop {
        let a = account();
        if a.0 != after {
            return a;
        }
    }
}

fn main(start: &StartInfo) -> ! {
    event::init(start);
    check!(hypercall::vcpu_register_runstate(0, core::ptr::addr_of_mut!(RUNSTATE)) == Ok(0), "runstate area");
    let mut ports = [0u32; 3];
    for (port, &spinner) in ports.iter_mut().zip(&SPINNERS) {
        *port = event::connect(spinner, 1);
    }
    let warm = event::now() + WARMUP_NS;
    while event::now() < warm {
        core::hint::spin_loop();
    }
    let (mut entry, run0, wait0) = next_period(account().0);
    let (mut run, mut wait, mut longest) = (run0, wait0, 0);
    while (run - run0) + (wait - wait0) < WINDOW_NS {
        let (e, r, w) = next_period(entry);
        longest = longest.max(r - run).max(w - wait);
        (entry, run, wait) = (e, r, w);
    }
    for port in ports {
        event::close(port).unwrap();
    }
    let (ran, waited) = (run - run0, wait - wait0);
    let share = ran * 100 / (ran + waited);
    println!(
        "beside three spinners on two CPUs: ran {} ms, waited {} ms (share {}%), longest period {} ms",
        ran / 1_000_000, waited / 1_000_000, share, longest / 1_000_000
    );
    check!(ran.abs_diff(waited) <= longest + SLACK_NS, "ran {} ns and waited {} ns: more apart than a period", ran, waited);
    check!((MIN_SHARE..=MAX_SHARE).contains(&share), "share {}% outside {}..{}%", share, MIN_SHARE, MAX_SHARE);
    veneer_guest::success()
}
