//! An SMP guest (two vCPUs): vCPU 0 brings vCPU 1 up with
//! `vcpu_initialise` (its own stack, kernel GS base and the caller's
//! callbacks) and `vcpu_up`; the two bounce IPIs (ports from
//! `evtchn_bind_ipi`, each notifying the other vCPU) back and forth, each
//! sleeping in `sched_block` until the other's IPI wakes it; vCPU 1 then
//! takes itself down with `vcpu_down`, which returns only when vCPU 0 brings
//! it up again, with its state as it was. Its runstate area (registered by
//! vCPU 0) reads `Offline` meanwhile. And the refusals: up before
//! initialise, initialise or up while online, down of the last online vCPU.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use veneer_guest::hypercall_abi::cpu::SegmentBase;
use veneer_guest::hypercall_abi::vcpu::{vcpu_flags, RunstateInfo, RunstateState, VcpuContext};
use veneer_guest::hypercall_abi::Error;
use veneer_guest::trap::{self, TrapContext};
use veneer_guest::{check, event, hypercall, println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::vcpus!(b"2");

const ROUNDS: u64 = 20;

/// Per-vCPU data, found through the kernel GS base: its id first.
#[repr(C)]
struct PerVcpu {
    id: u64,
    received: AtomicU64,
    /// The port whose events this vCPU receives.
    port: AtomicU32,
}

static PER: [PerVcpu; 2] = [
    PerVcpu { id: 0, received: AtomicU64::new(0), port: AtomicU32::new(0) },
    PerVcpu { id: 1, received: AtomicU64::new(0), port: AtomicU32::new(0) },
];
static RESUMED: AtomicU64 = AtomicU64::new(0);

#[repr(C, align(16))]
struct Stack([u8; 16384]);
static mut STACK1: Stack = Stack([0; 16384]);
static mut RUNSTATE1: RunstateInfo = RunstateInfo { state: 0, version: 0, state_entry_time: 0, time: [0; 4] };

fn me() -> usize {
    trap::gs_word() as usize
}

fn upcall(_: &mut TrapContext) {
    let id = me();
    event::take_pending_sel(id);
    if event::clear_pending(PER[id].port.load(Ordering::SeqCst)) {
        PER[id].received.fetch_add(1, Ordering::SeqCst);
    }
}

fn wait_for(id: usize, count: u64) {
    event::block_until(id, || PER[id].received.load(Ordering::SeqCst) >= count);
}

core::arch::global_asm!(
    ".global secondary_entry",
    "secondary_entry:",
    "and rsp, -16",
    "call {main}",
    "ud2",
    main = sym secondary_main,
);

extern "C" {
    fn secondary_entry();
}

/// vCPU 1: answers each IPI, then takes itself down and, once back up,
/// says so.
extern "C" fn secondary_main(id: u64) -> ! {
    if id != 1 || me() != 1 {
        veneer_guest::failure(format_args!("vCPU 1 started with rdi {} and GS id {}", id, me()));
    }
    let to_0 = PER[0].port.load(Ordering::SeqCst);
    for round in 1..=ROUNDS {
        wait_for(1, round);
        event::send(to_0).unwrap();
    }
    let r = hypercall::vcpu_down(1);
    // Here only after vCPU 0 brought this one up again.
    check!(r == Ok(0) && me() == 1, "vcpu_down returned {:?}", r);
    RESUMED.store(1, Ordering::SeqCst);
    event::send(to_0).unwrap();
    loop {
        event::sched_block().unwrap();
    }
}

fn main(start: &StartInfo) -> ! {
    event::init(start);
    check!(veneer_guest::start_info_ext(start).nr_vcpus == 2, "two vCPUs");
    check!(hypercall::set_segment_base(SegmentBase::GsKernel, core::ptr::addr_of!(PER[0]) as u64).is_ok(), "GS");
    check!(trap::install_event(true, upcall).is_ok(), "event callback");
    let to_1 = event::bind_ipi(1).unwrap();
    let to_0 = event::bind_ipi(0).unwrap();
    PER[1].port.store(to_1, Ordering::SeqCst);
    PER[0].port.store(to_0, Ordering::SeqCst);
    check!(event::status(to_1).map(|s| s.vcpu) == Ok(1), "the IPI port notifies vCPU 1");

    check!(hypercall::vcpu_is_up(1) == Ok(0), "vCPU 1 starts offline");
    check!(hypercall::vcpu_up(1) == Err(Error::Invalid), "up before initialise");
    check!(hypercall::vcpu_down(0) == Err(Error::Busy), "down of the last online vCPU");
    let ctx = VcpuContext {
        rip: secondary_entry as *const () as u64,
        rsp: core::ptr::addr_of!(STACK1) as u64 + 16384,
        rdi: 1,
        kernel_l4_mfn: trap::bootstrap_l4_mfn(start),
        gs_base_kernel: core::ptr::addr_of!(PER[1]) as u64,
        flags: vcpu_flags::EVENTS_ENABLED,
        ..VcpuContext::default()
    };
    check!(hypercall::vcpu_initialise(1, &ctx) == Ok(0), "initialise");
    check!(hypercall::vcpu_register_runstate(1, core::ptr::addr_of_mut!(RUNSTATE1)) == Ok(0), "runstate area");
    check!(hypercall::vcpu_up(1) == Ok(0), "up");
    check!(hypercall::vcpu_is_up(1) == Ok(1), "vCPU 1 online");
    check!(hypercall::vcpu_up(1) == Err(Error::Exists), "up twice");
    check!(hypercall::vcpu_initialise(1, &ctx) == Err(Error::Busy), "initialise while online");

    event::set_masked(0, false);
    for round in 1..=ROUNDS {
        event::send(to_1).unwrap();
        wait_for(0, round);
    }
    println!("{} IPI round trips between two vCPUs", ROUNDS);
    while hypercall::vcpu_is_up(1) != Ok(0) {
        event::sched_yield().unwrap();
    }
    // SAFETY: the hypervisor writes the area only at vCPU 1's state
    // changes; it is offline, so the read is stable.
    let rs = unsafe { core::ptr::read_volatile(core::ptr::addr_of!(RUNSTATE1)) };
    check!(rs.state == RunstateState::Offline as u32 && rs.version % 2 == 0, "runstate {:?}", rs);
    check!(rs.time[RunstateState::Running as usize] > 0 && rs.time[RunstateState::Blocked as usize] > 0, "runstate times {:?}", rs.time);
    check!(RESUMED.load(Ordering::SeqCst) == 0, "resumed while down");
    check!(hypercall::vcpu_up(1) == Ok(0), "up again");
    wait_for(0, ROUNDS + 1);
    check!(RESUMED.load(Ordering::SeqCst) == 1, "vCPU 1 resumed after vcpu_down");
    veneer_guest::success()
}
