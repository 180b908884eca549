//! The generic shared ring: one page shared by a frontend and a backend,
//! holding a [`RingHeader`] and a power-of-two number of fixed-size slots.
//!
//! The frontend produces requests and consumes responses; the backend
//! consumes requests and produces responses, writing each response into a
//! slot whose request it has consumed. Indices are free-running `u32`
//! counters that wrap; a slot is `index & (nr_slots - 1)`. Differences
//! are computed with wrapping subtraction, so wrap-around is invisible as
//! long as no side runs more than `nr_slots` ahead of the other, which the
//! protocol guarantees.
//!
//! Notification suppression: a consumer that is about to sleep stores in
//! its event index the producer index that should wake it (usually its
//! consumer index + 1). A producer that moved its index from `old` to
//! `new` sends an event only if the event index lies in `(old, new]`
//! ([`needs_notify`]). After storing the event index the consumer must
//! look at the producer index once more (with a full barrier between), and
//! keep consuming if it moved: that final check closes the race with a
//! producer that published just before the store.

crate::abi_consts! {
    /// Ring geometry.
    pub mod ring_consts: u64, c_prefix = "RING" {
        /// Bytes of a ring: one page in v1.
        SIZE = 4096;
        /// Bytes of the header before the first slot.
        HEADER_SIZE = 128;
    }
}

crate::abi_struct! {
    /// The ring header. Each side writes only its own cache line: the
    /// frontend the first 64 bytes, the backend the second.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct RingHeader(size = 128) {
        /// Frontend: requests produced (free-running).
        @0 req_prod: u32,
        /// Frontend: notify me when `rsp_prod` passes this.
        @4 rsp_event: u32,
        /// Must be zero.
        @8 reserved0: [u32; 14],
        /// Backend: responses produced (free-running).
        @64 rsp_prod: u32,
        /// Backend: notify me when `req_prod` passes this.
        @68 req_event: u32,
        /// Must be zero.
        @72 reserved1: [u32; 14],
    }
}

/// The number of `slot_size`-byte slots a ring of `ring_bytes` holds: the
/// largest power of two that fits after the header, or 0.
pub const fn slots_for(ring_bytes: usize, slot_size: usize) -> u32 {
    let header = crate::layout::usize_of(ring_consts::HEADER_SIZE);
    if slot_size == 0 || ring_bytes <= header {
        return 0;
    }
    let fit = (ring_bytes - header) / slot_size;
    if fit == 0 {
        return 0;
    }
    // Ring indices are u32, so a ring never has more than 2^31 slots.
    let log = usize::BITS - 1 - fit.leading_zeros();
    1u32 << if log > 31 { 31 } else { log }
}

/// Byte offset in the ring of slot `index` (a free-running index).
pub const fn slot_offset(index: u32, nr_slots: u32, slot_size: usize) -> usize {
    crate::layout::usize_of(ring_consts::HEADER_SIZE) + (index & (nr_slots - 1)) as usize * slot_size
}

/// Whether a producer that moved its index from `old` to `new` must notify
/// a consumer whose event index is `event`: `event` lies in `(old, new]`.
pub const fn needs_notify(old: u32, new: u32, event: u32) -> bool {
    new.wrapping_sub(event) < new.wrapping_sub(old)
}

/// Frontend: request slots free to fill, given the requests it has produced
/// privately (`req_prod_pvt`, published or not) and the responses it has
/// consumed.
pub const fn requests_free(req_prod_pvt: u32, rsp_cons: u32, nr_slots: u32) -> u32 {
    nr_slots - req_prod_pvt.wrapping_sub(rsp_cons)
}

/// Backend: requests waiting to be consumed. Bounded by the slots the
/// backend has not answered yet, so a frontend that publishes a bogus
/// `req_prod` cannot make the backend overrun its own responses.
pub const fn requests_unconsumed(req_prod: u32, req_cons: u32, rsp_prod_pvt: u32, nr_slots: u32) -> u32 {
    let published = req_prod.wrapping_sub(req_cons);
    let room = nr_slots - req_cons.wrapping_sub(rsp_prod_pvt);
    if published < room { published } else { room }
}

/// Frontend: responses waiting to be consumed. Bounded by the requests it
/// has outstanding, so a backend that publishes a bogus `rsp_prod` cannot
/// make the frontend read slots it has not filled.
pub const fn responses_unconsumed(rsp_prod: u32, rsp_cons: u32, req_prod_pvt: u32) -> u32 {
    let published = rsp_prod.wrapping_sub(rsp_cons);
    let outstanding = req_prod_pvt.wrapping_sub(rsp_cons);
    if published < outstanding { published } else { outstanding }
}

/// The event index a consumer stores before it sleeps, having consumed up
/// to `cons`: wake me at the next item.
pub const fn rearm(cons: u32) -> u32 {
    cons.wrapping_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    #[test]
    fn slot_counts_are_powers_of_two_that_fit() {
        assert_eq!(slots_for(4096, 64), 32); // console: 62 fit
        assert_eq!(slots_for(4096, 96), 32); // block: 41 fit
        assert_eq!(slots_for(4096, 16), 128); // net tx: 248 fit
        assert_eq!(slots_for(4096, 8), 256); // net rx: 496 fit
        assert_eq!(slots_for(4096, 3968), 1);
        assert_eq!(slots_for(4096, 3969), 0);
        assert_eq!(slots_for(128, 8), 0);
        assert_eq!(slots_for(4096, 0), 0);
        for size in 1..4000 {
            let n = slots_for(4096, size) as usize;
            if n > 0 {
                assert!(n.is_power_of_two());
                assert!(128 + n * size <= 4096);
                assert!(128 + 2 * n * size > 4096, "not the largest power of two");
            }
        }
    }

    #[test]
    fn slot_offsets_wrap() {
        assert_eq!(slot_offset(0, 32, 96), 128);
        assert_eq!(slot_offset(33, 32, 96), 128 + 96);
        assert_eq!(slot_offset(u32::MAX, 32, 96), 128 + 31 * 96);
    }

    #[test]
    fn notify_only_when_event_is_crossed() {
        assert!(needs_notify(0, 1, 1));
        assert!(!needs_notify(1, 2, 1), "event already behind old");
        assert!(needs_notify(0, 5, 3));
        assert!(!needs_notify(0, 5, 6), "event ahead of new");
        assert!(!needs_notify(4, 4, 4), "nothing produced");
        // Across the wrap.
        assert!(needs_notify(u32::MAX - 1, 2, 0));
        assert!(needs_notify(u32::MAX - 1, 2, u32::MAX));
        assert!(!needs_notify(u32::MAX - 1, 2, 3));
    }

    #[test]
    fn counts_across_the_wrap() {
        let n = 32;
        assert_eq!(requests_free(5, u32::MAX - 2, n), n - 8);
        assert_eq!(requests_unconsumed(3, u32::MAX - 1, u32::MAX - 1, n), 5);
        // A bogus producer index is clamped to the backend's room.
        assert_eq!(requests_unconsumed(1000, 0, 0, n), n);
        assert_eq!(responses_unconsumed(1000, 0, 4), 4);
        assert_eq!(responses_unconsumed(2, u32::MAX, 3), 3);
    }

    /// One side of the simulated ring: the steps of the protocol, executed
    /// one at a time in an order the test chooses.
    #[derive(Debug)]
    struct Sim {
        nr: u32,
        // Shared.
        req_prod: u32,
        req_event: u32,
        // Frontend private.
        req_prod_pvt: u32,
        to_send: u32,
        // Backend private.
        req_cons: u32,
        asleep: bool,
        notified: bool,
        consumed: u32,
        // Backend sub-step: 0 consume, 1 rearm, 2 recheck.
        phase: u8,
    }

    impl Sim {
        fn new(start: u32, nr: u32, to_send: u32) -> Sim {
            Sim {
                nr,
                req_prod: start,
                req_event: rearm(start),
                req_prod_pvt: start,
                to_send,
                req_cons: start,
                asleep: true,
                notified: false,
                consumed: 0,
                phase: 0,
            }
        }

        /// Frontend: fill up to `k` slots and publish; notify if needed.
        fn produce(&mut self, k: u32) {
            // Backend answers immediately in this model: free = unconsumed room.
            let free = requests_free(self.req_prod_pvt, self.req_cons, self.nr);
            let k = k.min(free).min(self.to_send);
            if k == 0 {
                return;
            }
            let old = self.req_prod;
            self.req_prod_pvt = self.req_prod_pvt.wrapping_add(k);
            self.to_send -= k;
            self.req_prod = self.req_prod_pvt;
            if needs_notify(old, self.req_prod, self.req_event) {
                self.notified = true;
            }
        }

        /// Backend: one step of its loop.
        fn backend_step(&mut self) {
            if self.asleep {
                if self.notified {
                    self.notified = false;
                    self.asleep = false;
                    self.phase = 0;
                }
                return;
            }
            match self.phase {
                0 => {
                    let n = requests_unconsumed(self.req_prod, self.req_cons, self.req_cons, self.nr);
                    self.req_cons = self.req_cons.wrapping_add(n);
                    self.consumed += n;
                    self.phase = 1;
                }
                1 => {
                    self.req_event = rearm(self.req_cons);
                    self.phase = 2;
                }
                _ => {
                    // The final check.
                    if self.req_prod != self.req_cons {
                        self.phase = 0;
                    } else {
                        self.asleep = true;
                    }
                }
            }
        }
    }

    proptest! {
        /// However the two sides interleave, and wherever the indices start
        /// (the wrap included), a consumer that follows the rearm-then-recheck
        /// rule is never left asleep with requests waiting.
        #[test]
        fn no_lost_wakeups(
            start in prop_oneof![Just(0u32), Just(u32::MAX - 40), any::<u32>()],
            nr_log in 0u32..6,
            schedule in proptest::collection::vec((any::<bool>(), 1u32..10), 1..200),
            total in 1u32..500,
        ) {
            let mut s = Sim::new(start, 1 << nr_log, total);
            for (frontend, k) in schedule {
                if frontend { s.produce(k) } else { s.backend_step() }
                prop_assert!(s.req_prod.wrapping_sub(s.req_cons) <= s.nr);
            }
            // Let both run to completion: the frontend keeps producing while
            // it can, the backend steps while it is awake or has a pending
            // notification to act on.
            let mut guard = 0;
            while s.to_send > 0 || !s.asleep || s.notified {
                s.produce(u32::MAX);
                s.backend_step();
                guard += 1;
                prop_assert!(guard < 100_000, "livelock");
                if s.asleep && !s.notified && s.to_send > 0
                    && requests_free(s.req_prod_pvt, s.req_cons, s.nr) == 0 {
                    prop_assert!(false, "ring full, consumer asleep, no event: lost wakeup");
                }
            }
            prop_assert_eq!(s.consumed, total, "every request consumed");
            prop_assert_eq!(s.req_cons, start.wrapping_add(total));
        }

        /// Free and unconsumed counts add up to the ring size at every step.
        #[test]
        fn counts_add_up(start in any::<u32>(), steps in proptest::collection::vec(0u32..40, 1..50)) {
            let nr = 32u32;
            let (mut prod, mut cons) = (start, start);
            let mut log = Vec::new();
            for (i, k) in steps.into_iter().enumerate() {
                if i % 2 == 0 {
                    let k = k.min(requests_free(prod, cons, nr));
                    prod = prod.wrapping_add(k);
                } else {
                    let k = k.min(requests_unconsumed(prod, cons, cons, nr));
                    cons = cons.wrapping_add(k);
                }
                let used = requests_unconsumed(prod, cons, cons, nr);
                prop_assert_eq!(used + requests_free(prod, cons, nr), nr);
                log.push(used);
            }
            prop_assert!(log.iter().all(|u| *u <= nr));
        }
    }
}
