//! Timer interrupt delivery latency on Veneer: the guest arms its one-shot
//! timer (`timer_set`) `DELAY_NS` ahead and blocks (`sched_block`, the idle
//! loop of a guest kernel); the hypervisor's APIC timer fires, it raises
//! the timer VIRQ, wakes the vCPU and bounces the upcall. Measured from
//! the deadline to the first instruction of the guest's event callback, in
//! TSC cycles. Its native counterpart is the local APIC timer's latency
//! from its deadline to its handler while the CPU halts.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use veneer_guest::hypercall_abi::cpu::{callback_flags, CallbackKind};
use veneer_guest::hypercall_abi::event::Virq;
use veneer_guest::trap::{self, TrapContext};
use veneer_guest::{event, hypercall, println, StartInfo};
use veneer_perf_measure::{sample, tsc, Line};

veneer_guest::entry!(main);

/// The deadline's distance, as the native kernel's (50 us).
const DELAY_NS: u64 = 50_000;

/// TSC at the event callback's first instruction.
#[no_mangle]
static PERF_UPCALL_TSC: AtomicU64 = AtomicU64::new(0);
/// TSC of the latest timer upcall; 0 until it comes.
static FIRED: AtomicU64 = AtomicU64::new(0);
static PORT: AtomicU32 = AtomicU32::new(0);

// The event callback: the TSC first, then the runtime's event stub.
core::arch::global_asm!(
    ".global perf_timer_upcall",
    "perf_timer_upcall:",
    "push rax",
    "push rdx",
    "rdtsc",
    "shl rdx, 32",
    "or rax, rdx",
    "mov [rip + PERF_UPCALL_TSC], rax",
    "pop rdx",
    "pop rax",
    "jmp veneer_event_stub",
);

extern "C" {
    fn perf_timer_upcall();
}

fn upcall(_: &mut TrapContext) {
    event::take_pending_sel(0);
    if event::clear_pending(PORT.load(Ordering::SeqCst)) {
        FIRED.store(PERF_UPCALL_TSC.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

fn main(start: &StartInfo) -> ! {
    println!("bench entered");
    event::init(start);
    trap::install_event(true, upcall).expect("event callback");
    hypercall::set_callback(CallbackKind::Event, perf_timer_upcall as *const () as u64, callback_flags::MASK_EVENTS).expect("timed callback");
    PORT.store(event::bind_virq(Virq::Timer as u32, 0).expect("timer VIRQ"), Ordering::SeqCst);
    // TSC ticks per DELAY_NS, from the time record's conversion.
    let r = event::time_record(0);
    let per_second = r.ns_at(r.tsc_timestamp + 1_000_000_000) - r.system_time;
    let delay = u64::try_from(u128::from(DELAY_NS) * 1_000_000_000 / u128::from(per_second)).unwrap_or(u64::MAX);
    let stats = sample(|| {
        FIRED.store(0, Ordering::SeqCst);
        let due = tsc() + delay;
        let deadline = event::time_record(0).ns_at(due);
        event::timer_set(deadline).expect("timer_set");
        event::block_until(0, || FIRED.load(Ordering::SeqCst) != 0);
        FIRED.load(Ordering::SeqCst).saturating_sub(due)
    });
    println!("{}", Line { name: "timer_latency", stats });
    hypercall::poweroff(0)
}
