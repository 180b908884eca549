//! `vcpu_down` of a vCPU that runs on another physical CPU takes it off
//! that CPU: vCPU 1 spins on the machine's other CPU; vCPU 0 takes it
//! down, after which it stops counting, reads `Offline` in its runstate
//! area and `vcpu_is_up` says 0. Until its CPU has switched away its state
//! is still there, so `vcpu_initialise` may answer `Again` for a moment
//! (never `Busy`: the vCPU is offline); once it succeeds, `vcpu_up` starts
//! vCPU 1 afresh at the new entry point.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};

use veneer_guest::hypercall_abi::vcpu::{RunstateInfo, RunstateState};
use veneer_guest::hypercall_abi::Error;
use veneer_guest::{check, event, hypercall, println, smp, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::vcpus!(b"2");

const WAIT_NS: u64 = 10_000_000_000;
const STILL_NS: u64 = 20_000_000;

static SPINS: AtomicU64 = AtomicU64::new(0);
static RESTARTED: AtomicU64 = AtomicU64::new(0);
static mut RUNSTATE: RunstateInfo = RunstateInfo { state: 0, version: 0, state_entry_time: 0, time: [0; 4] };

extern "C" fn spin(_: u64) -> ! {
    loop {
        SPINS.fetch_add(1, Ordering::SeqCst);
    }
}

extern "C" fn restarted(id: u64) -> ! {
    RESTARTED.store(id, Ordering::SeqCst);
    loop {
        event::sched_block().unwrap();
    }
}

fn runstate() -> RunstateInfo {
    loop {
        // SAFETY: the hypervisor writes the area with the version protocol.
        let (a, r, b) = unsafe {
            let p = core::ptr::addr_of!(RUNSTATE);
            (core::ptr::read_volatile(core::ptr::addr_of!((*p).version)), core::ptr::read_volatile(p), core::ptr::read_volatile(core::ptr::addr_of!((*p).version)))
        };
        if a % 2 == 0 && a == b {
            return r;
        }
    }
}

fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = event::now() + WAIT_NS;
    while !cond() {
        check!(event::now() < deadline, "timed out waiting: {}", what);
    }
}

fn main(start: &StartInfo) -> ! {
    event::init(start);
    smp::init();
    let area = core::ptr::addr_of_mut!(RUNSTATE);
    check!(hypercall::vcpu_register_runstate(1, area) == Ok(0), "runstate area");
    check!(smp::start_vcpu(start, 1, spin).is_ok(), "start vCPU 1");
    wait_until("vCPU 1 spinning", || SPINS.load(Ordering::SeqCst) > 1000);
    check!(hypercall::vcpu_down(1) == Ok(0), "down");
    check!(hypercall::vcpu_is_up(1) == Ok(0), "vCPU 1 offline");
    check!(runstate().state == RunstateState::Offline as u32, "runstate {:?}", runstate());
    // At once, while vCPU 1's CPU may still be switching away.
    let mut again = 0;
    loop {
        match smp::initialise_vcpu(start, 1, restarted) {
            Ok(()) => break,
            Err(Error::Again) => again += 1,
            Err(e) => veneer_guest::failure(format_args!("initialise after down: {:?}", e)),
        }
    }
    let stopped = SPINS.load(Ordering::SeqCst);
    let still = event::now() + STILL_NS;
    while event::now() < still {
        check!(SPINS.load(Ordering::SeqCst) == stopped, "vCPU 1 still runs after vcpu_down");
    }
    check!(hypercall::vcpu_up(1) == Ok(0), "up again");
    wait_until("vCPU 1 restarted", || RESTARTED.load(Ordering::SeqCst) == 1);
    println!("vCPU 1 taken down from vCPU 0; initialised again after {} Again answers", again);
    veneer_guest::success()
}
