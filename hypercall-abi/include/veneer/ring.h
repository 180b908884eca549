/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * veneer/ring.h: Veneer hypercall ABI 1.0, the generic shared ring and the ring library.
 *
 * GENERATED from the hypercall-abi crate; do not edit. Regenerate with
 *     cargo run -p veneer-abi-cgen
 * The semantics are specified in hypercall-abi/SPEC.md.
 */
#ifndef VENEER_RING_H
#define VENEER_RING_H

#include "veneer/types.h"

/* `ring_consts` (constants): Ring geometry. */
/* Bytes of a ring: one page in v1. */
#define VENEER_RING_SIZE        0x1000ULL
/* Bytes of the header before the first slot. */
#define VENEER_RING_HEADER_SIZE 128ULL

/*
 * The ring header. Each side writes only its own cache line: the
 * frontend the first 64 bytes, the backend the second.
 */
struct veneer_ring_header {
    /* [0x0] Frontend: requests produced (free-running). */
    uint32_t req_prod;
    /* [0x4] Frontend: notify me when `rsp_prod` passes this. */
    uint32_t rsp_event;
    /* [0x8] Must be zero. */
    uint32_t reserved0[14];
    /* [0x40] Backend: responses produced (free-running). */
    uint32_t rsp_prod;
    /* [0x44] Backend: notify me when `req_prod` passes this. */
    uint32_t req_event;
    /* [0x48] Must be zero. */
    uint32_t reserved1[14];
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_ring_header) == 128, "size of struct veneer_ring_header");
VENEER_STATIC_ASSERT(offsetof(struct veneer_ring_header, req_prod) == 0, "offset of struct veneer_ring_header.req_prod");
VENEER_STATIC_ASSERT(offsetof(struct veneer_ring_header, rsp_event) == 4, "offset of struct veneer_ring_header.rsp_event");
VENEER_STATIC_ASSERT(offsetof(struct veneer_ring_header, reserved0) == 8, "offset of struct veneer_ring_header.reserved0");
VENEER_STATIC_ASSERT(offsetof(struct veneer_ring_header, rsp_prod) == 64, "offset of struct veneer_ring_header.rsp_prod");
VENEER_STATIC_ASSERT(offsetof(struct veneer_ring_header, req_event) == 68, "offset of struct veneer_ring_header.req_event");
VENEER_STATIC_ASSERT(offsetof(struct veneer_ring_header, reserved1) == 72, "offset of struct veneer_ring_header.reserved1");

/*
 * ring library: The ring library: index arithmetic and the two sides of a ring, as in
 * `hypercall_abi::ring`. A kernel defines `VENEER_RING_LOAD_ACQUIRE`,
 * `VENEER_RING_STORE_RELEASE`, `VENEER_RING_MB` and `VENEER_RING_MEMCPY`
 * before including this header to use its own primitives (Linux:
 * `smp_load_acquire`, `smp_store_release`, `smp_mb`, `memcpy`); the defaults
 * are the GCC/Clang builtins.
 */
#ifndef VENEER_RING_LOAD_ACQUIRE
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

#endif /* VENEER_RING_H */
