//! A domain ends while its other vCPUs run on other physical CPUs: one in
//! guest code that never enters the hypervisor, two making long
//! `mmu_update` batches one after another (so one is likely waiting for
//! the hypervisor lock, held by the other's batch or by the power-off, when
//! the domain ends, and must find its vCPU gone rather than go on with
//! it). vCPU 0 powers off once all three have been seen running; the
//! hypervisor must take them off their CPUs and only then tear the domain
//! down, every frame returned (the runner checks the frame count), with no
//! hypervisor failure. The race with a waiting vCPU is likely in a run,
//! not certain; the rest holds whatever the timing.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};

use veneer_guest::hypercall_abi::memory::MmuUpdate;
use veneer_guest::mmu::{self, Memory, RW};
use veneer_guest::{check, event, smp, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::vcpus!(b"4");
veneer_guest::host_cpus!(b"4");

/// Rounds of each vCPU seen before vCPU 0 powers off.
const SEEN: [u64; 4] = [0, 1000, 2, 2];
/// Generous: four QEMU CPU threads may share a busy host's two cores.
const WAIT_NS: u64 = 20_000_000_000;

static COUNT: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

extern "C" fn spin_in_guest(id: u64) -> ! {
    loop {
        COUNT[id as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// A batch that rewrites one page-table entry with the value it holds.
static mut BATCH: [MmuUpdate; BATCH_LEN] = [MmuUpdate { ptr: 0, val: 0 }; BATCH_LEN];
const BATCH_LEN: usize = 256;

extern "C" fn spin_in_hypercalls(id: u64) -> ! {
    loop {
        // SAFETY: vCPU 0 filled the batch before starting this vCPU; it is
        // only read.
        let batch = unsafe { &*core::ptr::addr_of!(BATCH) };
        let (done, r) = mmu::mmu_update(batch);
        check!(done as usize == BATCH_LEN && r == Ok(0), "batch: {} done, {:?}", done, r);
        COUNT[id as usize].fetch_add(1, Ordering::Relaxed);
    }
}

fn main(start: &StartInfo) -> ! {
    event::init(start);
    smp::init();
    let mut mem = Memory::new(start);
    let page = mem.alloc();
    check!(mem.map(page, RW) == Ok(0), "map a page");
    let entry = mem.entry_maddr(Memory::va(page), 1);
    let update = MmuUpdate::pt_update(entry, mem.read_entry(entry));
    // SAFETY: no other vCPU runs yet.
    unsafe { *core::ptr::addr_of_mut!(BATCH) = [update; BATCH_LEN] };
    check!(smp::start_vcpu(start, 1, spin_in_guest).is_ok(), "start vCPU 1");
    for id in 2..4 {
        check!(smp::start_vcpu(start, id, spin_in_hypercalls).is_ok(), "start vCPU {}", id);
    }
    let deadline = event::now() + WAIT_NS;
    for id in 1..4 {
        while COUNT[id].load(Ordering::Relaxed) < SEEN[id] {
            check!(event::now() < deadline, "vCPU {} counted {}", id, COUNT[id].load(Ordering::Relaxed));
        }
    }
    veneer_guest::success()
}
