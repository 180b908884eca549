//! An SMP guest's vCPUs run at the same time on different physical CPUs:
//! on a machine with four CPUs, vCPUs 1-3 spin without ever blocking or
//! yielding, and vCPU 0 sees each of them `Running` in its runstate area
//! while it runs itself, which one CPU could never show. vCPU 0 then
//! powers the domain off with the others still spinning on their CPUs.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};

use veneer_guest::hypercall_abi::vcpu::{RunstateInfo, RunstateState};
use veneer_guest::{check, event, hypercall, println, smp, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::vcpus!(b"4");
veneer_guest::host_cpus!(b"4");

const VCPUS: usize = 4;
/// Generous: four QEMU CPU threads may share a busy host's two cores.
const SEE_RUNNING_NS: u64 = 20_000_000_000;

static SPINS: [AtomicU64; VCPUS] = [const { AtomicU64::new(0) }; VCPUS];
static mut RUNSTATE: [RunstateInfo; VCPUS] = [RunstateInfo { state: 0, version: 0, state_entry_time: 0, time: [0; 4] }; VCPUS];

/// vCPUs 1-3: spin, never entering the hypervisor of their own accord.
extern "C" fn spin(id: u64) -> ! {
    let id = id as usize;
    loop {
        SPINS[id].fetch_add(1, Ordering::Relaxed);
        core::hint::spin_loop();
    }
}

fn runstate(id: usize) -> RunstateInfo {
    loop {
        // SAFETY: the hypervisor writes the area with the version protocol;
        // a torn read shows as an odd or changed version.
        let (a, r, b) = unsafe {
            let p = core::ptr::addr_of!(RUNSTATE[id]);
            (core::ptr::read_volatile(core::ptr::addr_of!((*p).version)), core::ptr::read_volatile(p), core::ptr::read_volatile(core::ptr::addr_of!((*p).version)))
        };
        if a % 2 == 0 && a == b {
            return r;
        }
    }
}

fn main(start: &StartInfo) -> ! {
    event::init(start);
    smp::init();
    for id in 1..VCPUS {
        // SAFETY: only the address is taken; the hypervisor writes there.
        let area = unsafe { core::ptr::addr_of_mut!(RUNSTATE[id]) };
        check!(hypercall::vcpu_register_runstate(id as u32, area) == Ok(0), "runstate area");
        check!(smp::start_vcpu(start, id, spin).is_ok(), "start vCPU {}", id);
    }
    for id in 1..VCPUS {
        let deadline = event::now() + SEE_RUNNING_NS;
        while runstate(id).state != RunstateState::Running as u32 {
            check!(event::now() < deadline, "vCPU {} never seen running beside vCPU 0: {:?}", id, runstate(id));
        }
    }
    println!("vCPUs 1-{} seen running while vCPU 0 runs", VCPUS - 1);
    for id in 1..VCPUS {
        check!(SPINS[id].load(Ordering::Relaxed) > 0, "vCPU {} spun", id);
    }
    // The others are still spinning on their CPUs: the hypervisor stops
    // them to end the domain.
    veneer_guest::success()
}
