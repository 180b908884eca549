//! Wake-ups between two domains on two CPUs: they take turns `ROUNDS`
//! times with the waiting side asleep in `sched_poll` (events masked), then
//! `ROUNDS` times asleep in `sched_block` until the upcall. Between its
//! send and its wait a side spins a random 0–`JITTER_NS`, so the answer
//! lands anywhere on its way to sleep: before it looks, while it clears
//! the pending bit, in the hypercall, while its CPU switches away or
//! halts, or once it sleeps. A wake-up lost on any of those paths leaves
//! a side asleep until its wait's bound, `TURN_NS` (in `sched_block` the
//! one-shot timer ends it), and a side woken only by the bound fails.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use veneer_guest::hypercall_abi::event::Virq;
use veneer_guest::rand::Rng;
use veneer_guest::trap::{self, TrapContext};
use veneer_guest::{check, event, StartInfo};

use crate::pair;

/// Turns taken each way.
pub const ROUNDS: u64 = 3000;
/// The longest spin before a wait: longer than the peer takes to wake and
/// answer under TCG, so the answer comes at every point of the wait.
const JITTER_NS: u64 = 300_000;
/// How long a side waits for its turn before it fails: a liveness bound,
/// not a latency one.
const TURN_NS: u64 = 60_000_000_000;

static PORT: AtomicU32 = AtomicU32::new(0);
static TIMER: AtomicU32 = AtomicU32::new(0);
static RECEIVED: AtomicU64 = AtomicU64::new(0);

fn upcall(_: &mut TrapContext) {
    event::take_pending_sel(0);
    event::clear_pending(TIMER.load(Ordering::SeqCst));
    // One send at a time is outstanding, so none is lost to coalescing.
    if event::clear_pending(PORT.load(Ordering::SeqCst)) {
        RECEIVED.fetch_add(1, Ordering::SeqCst);
    }
}

fn spin(rng: &mut Rng) {
    let until = event::now() + rng.range(0, JITTER_NS);
    while event::now() < until {
        core::hint::spin_loop();
    }
}

/// Sleeps in `sched_poll` until the peer's event on `port`. Woken only
/// by the deadline, the turn failed even if the event is pending by then.
fn poll_for(port: u32, turn: u64) {
    let deadline = event::now() + TURN_NS;
    let woken = event::wait_any(&[port], deadline);
    check!(woken && event::now() < deadline, "sched_poll turn {}: not woken within {} s", turn, TURN_NS / 1_000_000_000);
}

/// Sleeps in `sched_block` until the peer's `n`-th event of this phase,
/// with the timer at the deadline (then the turn failed, as above).
fn block_for(n: u64) {
    let deadline = event::now() + TURN_NS;
    check!(event::timer_set(deadline).is_ok(), "timer_set");
    event::block_until(0, || RECEIVED.load(Ordering::SeqCst) >= n || event::now() >= deadline);
    check!(event::now() < deadline, "sched_block turn {}: not woken within {} s", n, TURN_NS / 1_000_000_000);
}

/// Runs one side against domain `peer`: the side that `offers` the port
/// (domain 2) answers, the other (domain 1) binds it and starts each turn.
pub fn run(start: &StartInfo, peer: u32, offers: bool) {
    event::init(start);
    let port = if offers { pair::offer(peer) } else { pair::bind(peer) };
    let mut rng = Rng::new(0x5eed_0000 + u64::from(start.domain_id));
    for turn in 1..=ROUNDS {
        if !offers {
            pair::signal(port);
            spin(&mut rng);
        }
        poll_for(port, turn);
        if offers {
            pair::signal(port);
            spin(&mut rng);
        }
    }
    PORT.store(port, Ordering::SeqCst);
    TIMER.store(event::bind_virq(Virq::Timer as u32, 0).expect("the timer VIRQ"), Ordering::SeqCst);
    check!(trap::install_event(true, upcall).is_ok(), "event callback");
    for n in 1..=ROUNDS {
        if !offers {
            pair::signal(port);
            spin(&mut rng);
        }
        block_for(n);
        if offers {
            pair::signal(port);
            spin(&mut rng);
        }
    }
    check!(event::timer_set(0).is_ok(), "cancelling the timer");
}
