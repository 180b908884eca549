//! The hypervisor lock: one lock over all of the hypervisor's state (its
//! domains, the scheduler, the frame table), taken on every way in from a
//! guest. A ticket lock, so CPUs get it in the order they asked and none
//! starves. While a CPU waits for it (interrupts off, as always in the
//! hypervisor) it keeps serving TLB flush requests, since the holder may be
//! waiting for exactly that (see `smp`).

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU32, Ordering};

use super::smp;

pub struct TicketLock<T> {
    next: AtomicU32,
    serving: AtomicU32,
    data: UnsafeCell<T>,
}

// SAFETY: the data is reached only through a guard, and one guard exists
// at a time (tickets are served one after another).
unsafe impl<T: Send> Sync for TicketLock<T> {}

pub struct Guard<'a, T> {
    lock: &'a TicketLock<T>,
}

impl<T> TicketLock<T> {
    pub const fn new(data: T) -> TicketLock<T> {
        TicketLock { next: AtomicU32::new(0), serving: AtomicU32::new(0), data: UnsafeCell::new(data) }
    }

    pub fn lock(&self) -> Guard<'_, T> {
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        while self.serving.load(Ordering::Acquire) != ticket {
            smp::serve_requests();
            core::hint::spin_loop();
        }
        Guard { lock: self }
    }
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard holds the lock, so no other reference exists.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`; `&mut self` makes this the only one.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        // Only the holder writes `serving`: a plain store (no locked
        // instruction on the hottest path) publishes the next ticket.
        let next = self.lock.serving.load(Ordering::Relaxed).wrapping_add(1);
        self.lock.serving.store(next, Ordering::Release);
    }
}
