//! An event for a vCPU that is running guest code on another physical CPU
//! reaches it at once. vCPU 1 spins on the machine's other CPU without
//! ever entering the hypervisor of its own accord; vCPU 0 sends it IPI
//! events, one at a time, and the hypervisor must interrupt the CPU
//! running it rather than wait for its time slice to end (the only other
//! time such a vCPU enters the hypervisor). Wall-clock latency depends on
//! how the host schedules QEMU's CPU threads, so the test tells the two
//! apart by vCPU 1's time record instead: the hypervisor rewrites it
//! (bumping its version) whenever a slice ends, so an upcall that waited
//! for the slice sees a newer version than the sender did. At least
//! `MIN_BETWEEN_SLICES` percent of the upcalls must come between two slice
//! ends (waiting for the slice, none would).
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use veneer_guest::trap::{self, TrapContext};
use veneer_guest::{check, event, println, smp, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::vcpus!(b"2");
veneer_guest::host_cpus!(b"2");

const VCPUS: usize = 2;
const ROUNDS: usize = 20;
const MIN_BETWEEN_SLICES: usize = 50;

static PORTS: [AtomicU32; VCPUS] = [const { AtomicU32::new(0) }; VCPUS];
static RECEIVED: [AtomicU64; VCPUS] = [const { AtomicU64::new(0) }; VCPUS];
/// The version of its time record each vCPU saw in its last upcall.
static VERSION_SEEN: [AtomicU32; VCPUS] = [const { AtomicU32::new(0) }; VCPUS];

fn upcall(_: &mut TrapContext) {
    let id = smp::this_vcpu();
    event::take_pending_sel(id);
    if event::clear_pending(PORTS[id].load(Ordering::SeqCst)) {
        VERSION_SEEN[id].store(event::time_record(id).version, Ordering::SeqCst);
        RECEIVED[id].fetch_add(1, Ordering::SeqCst);
    }
}

/// vCPU 1: spins, never entering the hypervisor of their own accord.
extern "C" fn spin(id: u64) -> ! {
    let id = id as usize;
    let _ = id;
    loop {
        core::hint::spin_loop();
    }
}

fn main(start: &StartInfo) -> ! {
    event::init(start);
    smp::init();
    check!(trap::install_event(true, upcall).is_ok(), "event callback");
    for id in 1..VCPUS {
        PORTS[id].store(event::bind_ipi(id as u32).unwrap(), Ordering::SeqCst);
        check!(smp::start_vcpu(start, id, spin).is_ok(), "start vCPU {}", id);
    }
    event::set_masked(0, false);
    let mut latency = [0u64; ROUNDS * (VCPUS - 1)];
    let mut between_slices = 0;
    for (i, l) in latency.iter_mut().enumerate() {
        let id = 1 + i % (VCPUS - 1);
        let before = RECEIVED[id].load(Ordering::SeqCst);
        let version = event::time_record(id).version;
        let t0 = event::now();
        check!(event::send(PORTS[id].load(Ordering::SeqCst)) == Ok(0), "send");
        while RECEIVED[id].load(Ordering::SeqCst) == before {
            core::hint::spin_loop();
        }
        *l = event::now() - t0;
        if VERSION_SEEN[id].load(Ordering::SeqCst) == version {
            between_slices += 1;
        }
    }
    latency.sort_unstable();
    let (n, median) = (latency.len(), latency[latency.len() / 2]);
    println!(
        "upcalls on vCPUs running elsewhere: {} of {} between slice ends; latency median {} us, worst {} us",
        between_slices, n, median / 1000, latency[n - 1] / 1000
    );
    check!(between_slices * 100 >= n * MIN_BETWEEN_SLICES, "only {} of {} upcalls came before the slice ended", between_slices, n);
    veneer_guest::success()
}
