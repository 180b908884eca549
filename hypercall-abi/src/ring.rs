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
    crate::layout::usize_of(ring_consts::HEADER_SIZE) + (index & nr_slots.wrapping_sub(1)) as usize * slot_size
}

/// Whether a producer that moved its index from `old` to `new` must notify
/// a consumer whose event index is `event`: `event` lies in `(old, new]`.
pub const fn needs_notify(old: u32, new: u32, event: u32) -> bool {
    new.wrapping_sub(event) < new.wrapping_sub(old)
}

/// Frontend: request slots free to fill, given the requests it has produced
/// privately (`req_prod_pvt`, published or not) and the responses it has
/// consumed. Both are the frontend's own, so `req_prod_pvt - rsp_cons` never
/// exceeds `nr_slots`; like every function here it is total anyway
/// (wrapping), as its C form is.
pub const fn requests_free(req_prod_pvt: u32, rsp_cons: u32, nr_slots: u32) -> u32 {
    nr_slots.wrapping_sub(req_prod_pvt.wrapping_sub(rsp_cons))
}

/// Backend: requests waiting to be consumed. Bounded by the slots the
/// backend has not answered yet, so a frontend that publishes a bogus
/// `req_prod` cannot make the backend overrun its own responses.
pub const fn requests_unconsumed(req_prod: u32, req_cons: u32, rsp_prod_pvt: u32, nr_slots: u32) -> u32 {
    let published = req_prod.wrapping_sub(req_cons);
    let room = nr_slots.wrapping_sub(req_cons.wrapping_sub(rsp_prod_pvt));
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

// ---- the ring library ------------------------------------------------------
//
// The protocol above, implemented once for every side that speaks it: guest
// frontends and backends, and the hypervisor's own backends. Each side keeps
// its private indices here; the page itself is reached through
// [`SharedPage`], which the guest implements over its mapping of the page and
// the hypervisor over machine memory. Every slot is copied into private
// memory (decoded with [`Wire`]) before anything looks at it, and every
// index the other side publishes is clamped by the arithmetic above, so a
// hostile peer can make this side read at most one ring's worth of garbage
// per pass and never makes it write outside the slots it owns.

use crate::layout::Wire;

/// Byte offsets of the header's indices.
mod at {
    use super::RingHeader;
    use core::mem::offset_of;
    pub const REQ_PROD: usize = offset_of!(RingHeader, req_prod);
    pub const RSP_EVENT: usize = offset_of!(RingHeader, rsp_event);
    pub const RSP_PROD: usize = offset_of!(RingHeader, rsp_prod);
    pub const REQ_EVENT: usize = offset_of!(RingHeader, req_event);
}

/// The largest slot of any protocol: slots are staged in a buffer this big.
pub const SLOT_SIZE_MAX: usize = 128;

/// The page a ring lives in, as one side reaches it. The other side writes
/// it concurrently: indices are read and written whole, with the ordering
/// each method names, and slot bytes may change under a reader (which is
/// why they are copied out before use).
pub trait SharedPage {
    /// The `u32` at byte `offset`, read with acquire ordering.
    fn load_u32(&self, offset: usize) -> u32;
    /// Stores `value` at byte `offset` with release ordering: every write
    /// before it is visible to a reader that sees the value.
    fn store_u32(&mut self, offset: usize, value: u32);
    /// A full barrier: the stores before it are visible before the loads
    /// after it are performed (x86 `mfence`).
    fn fence(&mut self);
    /// Copies `out.len()` bytes from byte `offset`.
    fn read(&self, offset: usize, out: &mut [u8]);
    /// Copies `bytes` to byte `offset`.
    fn write(&mut self, offset: usize, bytes: &[u8]);
}

/// A protocol on one ring: what travels each way and in what slot size.
pub trait Protocol {
    /// What the frontend produces.
    type Request: Wire;
    /// What the backend answers.
    type Response: Wire;
    /// Bytes per slot (`BLK_SLOT_SIZE`, ...).
    const SLOT_SIZE: usize;
    /// Slots of a one-page ring.
    const NR_SLOTS: u32 = slots_for(crate::layout::usize_of(ring_consts::SIZE), Self::SLOT_SIZE);
}

fn read_slot<P: Protocol, T: Wire>(page: &impl SharedPage, index: u32) -> T {
    const { assert!(P::SLOT_SIZE <= SLOT_SIZE_MAX) };
    let mut buf = [0u8; SLOT_SIZE_MAX];
    let bytes = &mut buf[..T::WIRE_SIZE];
    page.read(slot_offset(index, P::NR_SLOTS, P::SLOT_SIZE), bytes);
    T::decode(bytes)
}

fn write_slot<P: Protocol, T: Wire>(page: &mut impl SharedPage, index: u32, value: &T) {
    let mut buf = [0u8; SLOT_SIZE_MAX];
    let bytes = &mut buf[..T::WIRE_SIZE];
    value.encode(bytes);
    page.write(slot_offset(index, P::NR_SLOTS, P::SLOT_SIZE), bytes);
}

/// Why a request or response could not be queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// Frontend: every slot holds a request not yet answered.
    Full,
    /// Backend: every consumed request has been answered already.
    NothingToAnswer,
}

/// The frontend's side of a ring: produces requests, consumes responses.
#[derive(Debug)]
pub struct FrontRing<P: Protocol> {
    req_prod_pvt: u32,
    /// `req_prod` as this side last published it (never read back from the
    /// page, which the other side could change).
    req_prod: u32,
    rsp_cons: u32,
    _protocol: core::marker::PhantomData<P>,
}

impl<P: Protocol> FrontRing<P> {
    /// Initialises a fresh ring page (before it is granted): every index
    /// zero, both event indices 1 (each side wants to hear of the first
    /// item), the reserved words and slots zero.
    pub fn init(page: &mut impl SharedPage) -> FrontRing<P> {
        let header_size = crate::layout::usize_of(ring_consts::HEADER_SIZE);
        let mut header = [0u8; 128];
        const { assert!(ring_consts::HEADER_SIZE == 128) };
        header[at::REQ_EVENT..at::REQ_EVENT + 4].copy_from_slice(&1u32.to_le_bytes());
        header[at::RSP_EVENT..at::RSP_EVENT + 4].copy_from_slice(&1u32.to_le_bytes());
        let zero = [0u8; 256];
        let size = crate::layout::usize_of(ring_consts::SIZE);
        let mut off = header_size;
        while off < size {
            let n = zero.len().min(size - off);
            page.write(off, &zero[..n]);
            off += n;
        }
        // The header last, whole: the page is not shared yet.
        page.write(0, &header);
        page.fence();
        FrontRing { req_prod_pvt: 0, req_prod: 0, rsp_cons: 0, _protocol: core::marker::PhantomData }
    }

    /// Slots free for new requests.
    pub fn free(&self) -> u32 {
        requests_free(self.req_prod_pvt, self.rsp_cons, P::NR_SLOTS)
    }

    /// Requests produced and not yet answered.
    pub fn outstanding(&self) -> u32 {
        self.req_prod_pvt.wrapping_sub(self.rsp_cons)
    }

    /// Writes `req` into the next slot; the backend sees it after
    /// [`publish`](Self::publish).
    pub fn push(&mut self, page: &mut impl SharedPage, req: &P::Request) -> Result<(), RingError> {
        if self.free() == 0 {
            return Err(RingError::Full);
        }
        write_slot::<P, _>(page, self.req_prod_pvt, req);
        self.req_prod_pvt = self.req_prod_pvt.wrapping_add(1);
        Ok(())
    }

    /// Publishes the requests pushed so far; returns whether the backend
    /// must be notified (its `req_event` was crossed).
    pub fn publish(&mut self, page: &mut impl SharedPage) -> bool {
        let (old, new) = (self.req_prod, self.req_prod_pvt);
        self.req_prod = new;
        page.store_u32(at::REQ_PROD, new);
        page.fence();
        needs_notify(old, new, page.load_u32(at::REQ_EVENT))
    }

    /// The next response, if the backend has published one; at most the
    /// requests outstanding, whatever `rsp_prod` says.
    pub fn pop(&mut self, page: &impl SharedPage) -> Option<P::Response> {
        let rsp_prod = page.load_u32(at::RSP_PROD);
        if responses_unconsumed(rsp_prod, self.rsp_cons, self.req_prod_pvt) == 0 {
            return None;
        }
        let rsp = read_slot::<P, P::Response>(page, self.rsp_cons);
        self.rsp_cons = self.rsp_cons.wrapping_add(1);
        Some(rsp)
    }

    /// Before sleeping: asks to be notified of the next response, then
    /// looks once more. True if a response arrived meanwhile (do not sleep).
    pub fn rearm(&mut self, page: &mut impl SharedPage) -> bool {
        page.store_u32(at::RSP_EVENT, rearm(self.rsp_cons));
        page.fence();
        responses_unconsumed(page.load_u32(at::RSP_PROD), self.rsp_cons, self.req_prod_pvt) > 0
    }
}

/// The backend's side of a ring: consumes requests, produces responses.
#[derive(Debug)]
pub struct BackRing<P: Protocol> {
    req_cons: u32,
    rsp_prod_pvt: u32,
    /// `rsp_prod` as this side last published it.
    rsp_prod: u32,
    _protocol: core::marker::PhantomData<P>,
}

impl<P: Protocol> Default for BackRing<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Protocol> BackRing<P> {
    /// The backend's side of a ring the frontend has just initialised
    /// (every index zero).
    pub const fn new() -> BackRing<P> {
        BackRing { req_cons: 0, rsp_prod_pvt: 0, rsp_prod: 0, _protocol: core::marker::PhantomData }
    }

    /// Requests waiting: what the frontend published, clamped to the slots
    /// whose requests have been answered.
    pub fn pending(&self, page: &impl SharedPage) -> u32 {
        requests_unconsumed(page.load_u32(at::REQ_PROD), self.req_cons, self.rsp_prod_pvt, P::NR_SLOTS)
    }

    /// Requests consumed and not yet answered.
    pub fn unanswered(&self) -> u32 {
        self.req_cons.wrapping_sub(self.rsp_prod_pvt)
    }

    /// The next request, copied out of the ring, if one is waiting.
    pub fn pop(&mut self, page: &impl SharedPage) -> Option<P::Request> {
        if self.pending(page) == 0 {
            return None;
        }
        let req = read_slot::<P, P::Request>(page, self.req_cons);
        self.req_cons = self.req_cons.wrapping_add(1);
        Some(req)
    }

    /// Writes `rsp` into the slot of the oldest unanswered request.
    pub fn push(&mut self, page: &mut impl SharedPage, rsp: &P::Response) -> Result<(), RingError> {
        if self.unanswered() == 0 {
            return Err(RingError::NothingToAnswer);
        }
        write_slot::<P, _>(page, self.rsp_prod_pvt, rsp);
        self.rsp_prod_pvt = self.rsp_prod_pvt.wrapping_add(1);
        Ok(())
    }

    /// Publishes the responses pushed so far; returns whether the frontend
    /// must be notified.
    pub fn publish(&mut self, page: &mut impl SharedPage) -> bool {
        let (old, new) = (self.rsp_prod, self.rsp_prod_pvt);
        self.rsp_prod = new;
        page.store_u32(at::RSP_PROD, new);
        page.fence();
        needs_notify(old, new, page.load_u32(at::RSP_EVENT))
    }

    /// Before sleeping: asks to be notified of the next request, then looks
    /// once more. True if one arrived meanwhile.
    pub fn rearm(&mut self, page: &mut impl SharedPage) -> bool {
        page.store_u32(at::REQ_EVENT, rearm(self.req_cons));
        page.fence();
        self.pending(page) > 0
    }
}

/// The ring library in C, for the Linux and FreeBSD patch sets: the same
/// arithmetic and the same two sides as the Rust above, statement for
/// statement. The generator appends it to `veneer/ring.h`; the cgen tests
/// compile it in every dialect and run it against the Rust library.
pub const C_LIBRARY: crate::layout::CCode = crate::layout::CCode {
    name: "ring library",
    doc: "The ring library: index arithmetic and the two sides of a ring, as in\n`hypercall_abi::ring`. A kernel defines `VENEER_RING_LOAD_ACQUIRE`,\n`VENEER_RING_STORE_RELEASE`, `VENEER_RING_MB` and `VENEER_RING_MEMCPY`\nbefore including this header to use its own primitives (Linux:\n`smp_load_acquire`, `smp_store_release`, `smp_mb`, `memcpy`); the defaults\nare the GCC/Clang builtins.\n",
    text: r#"#ifndef VENEER_RING_LOAD_ACQUIRE
#define VENEER_RING_LOAD_ACQUIRE(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#endif
#ifndef VENEER_RING_STORE_RELEASE
#define VENEER_RING_STORE_RELEASE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#endif
#ifndef VENEER_RING_MB
#define VENEER_RING_MB() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#endif
#ifndef VENEER_RING_MEMCPY
#define VENEER_RING_MEMCPY(d, s, n) __builtin_memcpy((d), (s), (n))
#endif

/* Slots of `slot_size` bytes a ring of `ring_bytes` holds: the largest
 * power of two that fits after the header, or 0. */
static inline uint32_t veneer_ring_slots_for(size_t ring_bytes, size_t slot_size)
{
    size_t fit, n = 1;
    if (slot_size == 0 || ring_bytes <= VENEER_RING_HEADER_SIZE)
        return 0;
    fit = (ring_bytes - VENEER_RING_HEADER_SIZE) / slot_size;
    if (fit == 0)
        return 0;
    while (n <= fit / 2 && n < 0x80000000u)
        n *= 2;
    return (uint32_t)n;
}

/* Byte offset of slot `index` (a free-running index). */
static inline size_t veneer_ring_slot_offset(uint32_t index, uint32_t nr_slots, size_t slot_size)
{
    return VENEER_RING_HEADER_SIZE + (size_t)(index & (nr_slots - 1)) * slot_size;
}

/* A producer that moved its index from `old_idx` to `new_idx` notifies a
 * consumer whose event index is `event` if `event` is in (old, new]. */
static inline int veneer_ring_needs_notify(uint32_t old_idx, uint32_t new_idx, uint32_t event)
{
    return (uint32_t)(new_idx - event) < (uint32_t)(new_idx - old_idx);
}

static inline uint32_t veneer_ring_requests_free(uint32_t req_prod_pvt, uint32_t rsp_cons, uint32_t nr_slots)
{
    return nr_slots - (uint32_t)(req_prod_pvt - rsp_cons);
}

/* Bounded by the slots the backend has answered: a bogus req_prod cannot
 * make it overrun its own responses. */
static inline uint32_t veneer_ring_requests_unconsumed(uint32_t req_prod, uint32_t req_cons,
                                                       uint32_t rsp_prod_pvt, uint32_t nr_slots)
{
    uint32_t published = (uint32_t)(req_prod - req_cons);
    uint32_t room = nr_slots - (uint32_t)(req_cons - rsp_prod_pvt);
    return published < room ? published : room;
}

/* Bounded by the requests outstanding: a bogus rsp_prod cannot make the
 * frontend read slots it has not filled. */
static inline uint32_t veneer_ring_responses_unconsumed(uint32_t rsp_prod, uint32_t rsp_cons, uint32_t req_prod_pvt)
{
    uint32_t published = (uint32_t)(rsp_prod - rsp_cons);
    uint32_t outstanding = (uint32_t)(req_prod_pvt - rsp_cons);
    return published < outstanding ? published : outstanding;
}

static inline uint32_t veneer_ring_rearm(uint32_t cons)
{
    return cons + 1u;
}

/* The frontend's side: produces requests, consumes responses. */
struct veneer_front_ring {
    struct veneer_ring_header *sring;
    uint32_t nr_slots;
    uint32_t slot_size;
    uint32_t req_prod_pvt;
    uint32_t req_prod;
    uint32_t rsp_cons;
};

/* The backend's side: consumes requests, produces responses. */
struct veneer_back_ring {
    struct veneer_ring_header *sring;
    uint32_t nr_slots;
    uint32_t slot_size;
    uint32_t req_cons;
    uint32_t rsp_prod_pvt;
    uint32_t rsp_prod;
};

static inline void *veneer_ring_slot(struct veneer_ring_header *sring, uint32_t index, uint32_t nr_slots,
                                     uint32_t slot_size)
{
    return (char *)sring + veneer_ring_slot_offset(index, nr_slots, slot_size);
}

/* Initialises a fresh page (before it is granted): indices zero, both event
 * indices 1, everything else zero. */
static inline void veneer_front_ring_init(struct veneer_front_ring *r, void *page, uint32_t slot_size)
{
    size_t i;
    r->sring = (struct veneer_ring_header *)page;
    r->nr_slots = veneer_ring_slots_for(VENEER_RING_SIZE, slot_size);
    r->slot_size = slot_size;
    r->req_prod_pvt = r->req_prod = r->rsp_cons = 0;
    for (i = 0; i < VENEER_RING_SIZE; i++)
        ((volatile char *)page)[i] = 0;
    r->sring->req_event = 1;
    r->sring->rsp_event = 1;
    VENEER_RING_MB();
}

static inline uint32_t veneer_front_ring_free(const struct veneer_front_ring *r)
{
    return veneer_ring_requests_free(r->req_prod_pvt, r->rsp_cons, r->nr_slots);
}

/* Copies a request of `len` bytes into the next slot; 0, or -1 if full. */
static inline int veneer_front_ring_push(struct veneer_front_ring *r, const void *req, size_t len)
{
    if (veneer_front_ring_free(r) == 0 || len > r->slot_size)
        return -1;
    VENEER_RING_MEMCPY(veneer_ring_slot(r->sring, r->req_prod_pvt, r->nr_slots, r->slot_size), req, len);
    r->req_prod_pvt++;
    return 0;
}

/* Publishes what was pushed; non-zero if the backend must be notified. */
static inline int veneer_front_ring_publish(struct veneer_front_ring *r)
{
    uint32_t old_idx = r->req_prod, new_idx = r->req_prod_pvt;
    r->req_prod = new_idx;
    VENEER_RING_STORE_RELEASE(&r->sring->req_prod, new_idx);
    VENEER_RING_MB();
    return veneer_ring_needs_notify(old_idx, new_idx, VENEER_RING_LOAD_ACQUIRE(&r->sring->req_event));
}

/* Copies the next response (`len` bytes) out; 1 if there was one, else 0. */
static inline int veneer_front_ring_pop(struct veneer_front_ring *r, void *rsp, size_t len)
{
    uint32_t rsp_prod = VENEER_RING_LOAD_ACQUIRE(&r->sring->rsp_prod);
    if (veneer_ring_responses_unconsumed(rsp_prod, r->rsp_cons, r->req_prod_pvt) == 0 || len > r->slot_size)
        return 0;
    VENEER_RING_MEMCPY(rsp, veneer_ring_slot(r->sring, r->rsp_cons, r->nr_slots, r->slot_size), len);
    r->rsp_cons++;
    return 1;
}

/* Before sleeping: asks for the next response, then looks once more;
 * non-zero if one arrived meanwhile. */
static inline int veneer_front_ring_rearm(struct veneer_front_ring *r)
{
    VENEER_RING_STORE_RELEASE(&r->sring->rsp_event, veneer_ring_rearm(r->rsp_cons));
    VENEER_RING_MB();
    return veneer_ring_responses_unconsumed(VENEER_RING_LOAD_ACQUIRE(&r->sring->rsp_prod), r->rsp_cons,
                                            r->req_prod_pvt) > 0;
}

/* The backend's side of a ring the frontend has just initialised. */
static inline void veneer_back_ring_init(struct veneer_back_ring *r, void *page, uint32_t slot_size)
{
    r->sring = (struct veneer_ring_header *)page;
    r->nr_slots = veneer_ring_slots_for(VENEER_RING_SIZE, slot_size);
    r->slot_size = slot_size;
    r->req_cons = r->rsp_prod_pvt = r->rsp_prod = 0;
}

static inline uint32_t veneer_back_ring_pending(const struct veneer_back_ring *r)
{
    return veneer_ring_requests_unconsumed(VENEER_RING_LOAD_ACQUIRE(&r->sring->req_prod), r->req_cons,
                                           r->rsp_prod_pvt, r->nr_slots);
}

/* Copies the next request out; 1 if there was one, else 0. */
static inline int veneer_back_ring_pop(struct veneer_back_ring *r, void *req, size_t len)
{
    if (veneer_back_ring_pending(r) == 0 || len > r->slot_size)
        return 0;
    VENEER_RING_MEMCPY(req, veneer_ring_slot(r->sring, r->req_cons, r->nr_slots, r->slot_size), len);
    r->req_cons++;
    return 1;
}

/* Writes a response into the slot of the oldest unanswered request; 0, or
 * -1 if every consumed request is answered. */
static inline int veneer_back_ring_push(struct veneer_back_ring *r, const void *rsp, size_t len)
{
    if (r->req_cons == r->rsp_prod_pvt || len > r->slot_size)
        return -1;
    VENEER_RING_MEMCPY(veneer_ring_slot(r->sring, r->rsp_prod_pvt, r->nr_slots, r->slot_size), rsp, len);
    r->rsp_prod_pvt++;
    return 0;
}

static inline int veneer_back_ring_publish(struct veneer_back_ring *r)
{
    uint32_t old_idx = r->rsp_prod, new_idx = r->rsp_prod_pvt;
    r->rsp_prod = new_idx;
    VENEER_RING_STORE_RELEASE(&r->sring->rsp_prod, new_idx);
    VENEER_RING_MB();
    return veneer_ring_needs_notify(old_idx, new_idx, VENEER_RING_LOAD_ACQUIRE(&r->sring->rsp_event));
}

static inline int veneer_back_ring_rearm(struct veneer_back_ring *r)
{
    VENEER_RING_STORE_RELEASE(&r->sring->req_event, veneer_ring_rearm(r->req_cons));
    VENEER_RING_MB();
    return veneer_back_ring_pending(r) > 0;
}
"#,
};

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

    // ---- the ring library, driven through a simulated page ----------------

    /// A ring page in a vector. `side` names who is writing now, and every
    /// write is checked against what that side may write: its own half of
    /// the header and the slots.
    struct VecPage {
        bytes: std::vec::Vec<u8>,
        side: Side,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Side {
        Front,
        Back,
    }

    impl VecPage {
        fn new() -> VecPage {
            VecPage { bytes: std::vec![0xa5; 4096], side: Side::Front }
        }
        fn as_side(&mut self, side: Side) -> &mut VecPage {
            self.side = side;
            self
        }
        fn check_write(&self, offset: usize, len: usize) {
            let header = crate::layout::usize_of(ring_consts::HEADER_SIZE);
            assert!(offset + len <= 4096, "write past the page");
            if offset < header {
                let own = match self.side {
                    Side::Front => 0..64,
                    Side::Back => 64..128,
                };
                assert!(own.contains(&offset) && offset + len <= own.end, "{:?} wrote the other side's header at {offset}", self.side);
            }
        }
    }

    impl SharedPage for VecPage {
        fn load_u32(&self, offset: usize) -> u32 {
            u32::from_le_bytes(self.bytes[offset..offset + 4].try_into().unwrap())
        }
        fn store_u32(&mut self, offset: usize, value: u32) {
            self.check_write(offset, 4);
            self.bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
        }
        fn fence(&mut self) {}
        fn read(&self, offset: usize, out: &mut [u8]) {
            out.copy_from_slice(&self.bytes[offset..offset + out.len()]);
        }
        fn write(&mut self, offset: usize, bytes: &[u8]) {
            // The frontend's init writes the whole page once.
            if self.side != Side::Front || offset >= 128 || bytes.len() <= 4 {
                self.check_write(offset, bytes.len());
            }
            self.bytes[offset..offset + bytes.len()].copy_from_slice(bytes);
        }
    }

    /// A protocol with the block ring's geometry (32 slots of 96 bytes)
    /// carrying bare ids.
    struct Ids;
    impl Protocol for Ids {
        type Request = u64;
        type Response = u64;
        const SLOT_SIZE: usize = 96;
    }

    #[test]
    fn ids_ring_has_the_block_geometry() {
        assert_eq!(Ids::NR_SLOTS, 32);
        assert_eq!(crate::blk::BlkRing::NR_SLOTS, 32);
        assert_eq!(crate::net::NetTxRing::NR_SLOTS, 128);
        assert_eq!(crate::net::NetRxRing::NR_SLOTS, 256);
        assert_eq!(crate::console::ConsoleRing::NR_SLOTS, 32);
    }

    #[test]
    fn a_full_ring_refuses_and_an_empty_backend_has_nothing_to_answer() {
        let mut page = VecPage::new();
        let mut f = FrontRing::<Ids>::init(&mut page);
        for id in 0..32 {
            f.push(&mut page, &id).unwrap();
        }
        assert_eq!(f.push(&mut page, &99), Err(RingError::Full));
        assert!(f.publish(&mut page), "the backend asked to hear of the first request");
        let mut b = BackRing::<Ids>::new();
        assert_eq!(b.push(page.as_side(Side::Back), &0), Err(RingError::NothingToAnswer));
        let got: std::vec::Vec<u64> = core::iter::from_fn(|| b.pop(&page)).collect();
        assert_eq!(got, (0..32).collect::<std::vec::Vec<_>>());
        assert_eq!(b.pop(&page), None);
        b.push(page.as_side(Side::Back), &7).unwrap();
        assert!(b.publish(&mut page));
        assert_eq!(f.pop(&page), Some(7));
        assert_eq!(f.pop(&page), None);
        assert_eq!(f.free(), 1);
    }

    /// One step of the simulation; the test picks the order.
    #[derive(Clone, Debug)]
    enum Step {
        /// Frontend: push up to `n` requests and publish.
        Produce(u32),
        /// Frontend: consume every response it can, then rearm if empty.
        FrontConsume,
        /// Backend: consume up to `n` requests (kept unanswered).
        Consume(u32),
        /// Backend: answer the `k`-th oldest... of its unanswered requests, up to `n` of them, and publish.
        Answer(u32),
        /// Backend: rearm before sleeping.
        BackSleep,
        /// Hostile frontend: write `value` into `req_prod`.
        LieReqProd(u32),
        /// Hostile frontend: scribble over slot `slot`.
        Scribble(u8, u8),
        /// Hostile backend: write `value` into `rsp_prod`.
        LieRspProd(u32),
    }

    fn step(hostile_front: bool, hostile_back: bool) -> impl Strategy<Value = Step> {
        let mut v: std::vec::Vec<BoxedStrategy<Step>> = std::vec![
            (1u32..40).prop_map(Step::Produce).boxed(),
            Just(Step::FrontConsume).boxed(),
            (1u32..40).prop_map(Step::Consume).boxed(),
            (1u32..40).prop_map(Step::Answer).boxed(),
            Just(Step::BackSleep).boxed(),
        ];
        if hostile_front {
            v.push(any::<u32>().prop_map(Step::LieReqProd).boxed());
            v.push((any::<u8>(), any::<u8>()).prop_map(|(a, b)| Step::Scribble(a, b)).boxed());
        }
        if hostile_back {
            v.push(any::<u32>().prop_map(Step::LieRspProd).boxed());
        }
        proptest::strategy::Union::new(v)
    }

    /// Runs `steps`, checking after each that neither side went beyond
    /// what the protocol lets the other make it do. With both sides honest
    /// it also checks that every request is answered exactly once and that
    /// no side sleeps with work waiting and no notification coming.
    fn simulate(steps: &[Step], honest: bool) -> Result<(), TestCaseError> {
        let mut page = VecPage::new();
        let mut f = FrontRing::<Ids>::init(&mut page);
        let mut b = BackRing::<Ids>::new();
        let (mut next_id, mut unanswered) = (0u64, std::collections::VecDeque::new());
        let mut answered = std::collections::BTreeSet::new();
        let (mut back_asleep, mut back_kicked, mut front_asleep, mut front_kicked) = (true, false, false, false);
        for s in steps {
            match *s {
                Step::Produce(n) => {
                    page.as_side(Side::Front);
                    for _ in 0..n {
                        if f.push(&mut page, &next_id).is_err() {
                            break;
                        }
                        next_id += 1;
                    }
                    if f.publish(&mut page) {
                        back_kicked = true;
                    }
                }
                Step::FrontConsume => {
                    if front_asleep && !front_kicked {
                        continue;
                    }
                    page.as_side(Side::Front);
                    loop {
                        while let Some(id) = f.pop(&page) {
                            if honest {
                                prop_assert!(id < next_id && answered.insert(id), "response {} unknown or twice", id);
                            }
                        }
                        if !f.rearm(&mut page) {
                            break;
                        }
                    }
                    front_asleep = true;
                    front_kicked = false;
                    prop_assert!(f.outstanding() <= Ids::NR_SLOTS);
                }
                Step::Consume(n) => {
                    if back_asleep && !back_kicked {
                        continue;
                    }
                    back_asleep = false;
                    back_kicked = false;
                    for _ in 0..n {
                        match b.pop(&page) {
                            Some(id) => unanswered.push_back(id),
                            None => break,
                        }
                        prop_assert!(b.unanswered() <= Ids::NR_SLOTS, "the backend consumed past its room");
                    }
                }
                Step::Answer(n) => {
                    page.as_side(Side::Back);
                    for _ in 0..n {
                        let Some(id) = unanswered.pop_front() else { break };
                        prop_assert_eq!(b.push(&mut page, &id), Ok(()));
                    }
                    if b.publish(&mut page) {
                        front_kicked = true;
                    }
                }
                Step::BackSleep => {
                    if !unanswered.is_empty() {
                        continue;
                    }
                    page.as_side(Side::Back);
                    if b.rearm(&mut page) {
                        back_kicked = true;
                    }
                    back_asleep = true;
                }
                Step::LieReqProd(v) => page.as_side(Side::Front).store_u32(at::REQ_PROD, v),
                Step::Scribble(slot, byte) => {
                    let off = slot_offset(u32::from(slot), Ids::NR_SLOTS, Ids::SLOT_SIZE);
                    page.as_side(Side::Front).write(off, &[byte; 8]);
                }
                Step::LieRspProd(v) => page.as_side(Side::Back).store_u32(at::RSP_PROD, v),
            }
            prop_assert!(b.unanswered() as usize == unanswered.len());
        }
        if honest {
            // Run both sides to quiescence: what is waiting is found and
            // answered, and nobody sleeps through it.
            for _ in 0..200 {
                if back_asleep && !back_kicked && front_asleep && !front_kicked {
                    break;
                }
                page.as_side(Side::Back);
                if !back_asleep || back_kicked {
                    back_asleep = false;
                    back_kicked = false;
                    while let Some(id) = b.pop(&page) {
                        unanswered.push_back(id);
                    }
                    while let Some(id) = unanswered.pop_front() {
                        b.push(&mut page, &id).unwrap();
                    }
                    if b.publish(&mut page) {
                        front_kicked = true;
                    }
                    if b.rearm(&mut page) {
                        continue;
                    }
                    back_asleep = true;
                }
                page.as_side(Side::Front);
                if !front_asleep || front_kicked {
                    front_kicked = false;
                    while let Some(id) = f.pop(&page) {
                        prop_assert!(answered.insert(id));
                    }
                    front_asleep = !f.rearm(&mut page);
                }
            }
            prop_assert_eq!(answered.len() as u64, next_id, "a request was never answered: lost wakeup");
            prop_assert_eq!(f.outstanding(), 0);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Two honest sides in any interleaving: every request is answered
        /// exactly once, in a ring that never overflows, and the
        /// notification rules leave no side asleep with work waiting.
        #[test]
        fn honest_sides_lose_nothing(steps in proptest::collection::vec(step(false, false), 1..300)) {
            simulate(&steps, true)?;
        }

        /// A frontend that lies about `req_prod` and scribbles over slots
        /// makes the backend consume at most the slots it has answered:
        /// it never holds more than a ring of unanswered requests and never
        /// writes outside its half of the header or the slots.
        #[test]
        fn a_lying_frontend_cannot_overrun_the_backend(steps in proptest::collection::vec(step(true, false), 1..300)) {
            simulate(&steps, false)?;
        }

        /// A backend that lies about `rsp_prod` makes the frontend read at
        /// most the responses to requests it has outstanding.
        #[test]
        fn a_lying_backend_cannot_overrun_the_frontend(steps in proptest::collection::vec(step(false, true), 1..300)) {
            simulate(&steps, false)?;
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
