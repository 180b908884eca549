//! The one-shot timer (`timer_set`, section 16.11) fires its VIRQ once per
//! deadline, never before the deadline in guest-visible time and within
//! `LATE_BOUND_NS` after it (a bound generous enough for QEMU's TCG; the
//! ABI promises only "not early"); a deadline in the past fires at once;
//! setting replaces the previous deadline; `NO_DEADLINE` cancels. The
//! vCPU waits in `sched_block`, which sleeps until the upcall is due.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};

use veneer_guest::hypercall_abi::event::Virq;
use veneer_guest::trap::{self, TrapContext};
use veneer_guest::{check, event, println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");

/// How late a timer may fire, in guest time, on an otherwise idle machine.
const LATE_BOUND_NS: u64 = 20_000_000;
const MS: u64 = 1_000_000;

static FIRED: AtomicU64 = AtomicU64::new(0);
static FIRED_AT: AtomicU64 = AtomicU64::new(0);
static PORT: AtomicU64 = AtomicU64::new(0);

fn upcall(_: &mut TrapContext) {
    let now = event::now();
    event::take_pending_sel(0);
    let port = PORT.load(Ordering::SeqCst) as u32;
    if event::clear_pending(port) {
        FIRED_AT.store(now, Ordering::SeqCst);
        FIRED.fetch_add(1, Ordering::SeqCst);
    }
}

/// Waits for the next firing; returns when it came.
fn wait_fire(seen: u64) -> u64 {
    event::block_until(0, || FIRED.load(Ordering::SeqCst) != seen);
    FIRED_AT.load(Ordering::SeqCst)
}

fn main(start: &StartInfo) -> ! {
    event::init(start);
    check!(trap::install_event(true, upcall).is_ok(), "event callback");
    let port = event::bind_virq(Virq::Timer as u32, 0).unwrap();
    PORT.store(u64::from(port), Ordering::SeqCst);
    let mut worst = 0;
    for ms in [1u64, 5, 2, 10, 3, 1, 7] {
        let seen = FIRED.load(Ordering::SeqCst);
        let deadline = event::now() + ms * MS;
        check!(event::timer_set(deadline) == Ok(0), "timer_set");
        let at = wait_fire(seen);
        check!(at >= deadline, "fired {} ns early ({} ms timer)", deadline - at, ms);
        check!(at - deadline <= LATE_BOUND_NS, "fired {} ns late ({} ms timer)", at - deadline, ms);
        worst = worst.max(at - deadline);
    }
    println!("worst lateness {} us", worst / 1000);

    // A deadline already passed fires at once: the upcall follows the call.
    event::set_masked(0, false);
    let seen = FIRED.load(Ordering::SeqCst);
    check!(event::timer_set(event::now() - 1) == Ok(0), "past deadline");
    check!(FIRED.load(Ordering::SeqCst) == seen + 1, "a past deadline fires at once");

    // Replacing: only the later setting counts, once.
    let seen = FIRED.load(Ordering::SeqCst);
    event::timer_set(event::now() + 30 * MS).unwrap();
    let deadline = event::now() + 2 * MS;
    event::timer_set(deadline).unwrap();
    let at = wait_fire(seen);
    check!(at >= deadline && at < deadline + LATE_BOUND_NS, "replaced deadline");
    event::set_masked(0, true);
    let until = event::now() + 40 * MS;
    while event::now() < until {
        event::sched_poll(&[port], until).unwrap();
    }
    check!(!event::is_pending(port) && FIRED.load(Ordering::SeqCst) == seen + 1, "the replaced deadline never fired");

    // Cancelling: nothing fires.
    event::timer_set(event::now() + 3 * MS).unwrap();
    event::timer_set(0).unwrap();
    let until = event::now() + 20 * MS;
    while event::now() < until {
        event::sched_poll(&[port], until).unwrap();
    }
    check!(!event::is_pending(port), "a cancelled timer fired");
    veneer_guest::success()
}
