/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * veneer/ring.h: Veneer hypercall ABI 1.0, the generic shared ring.
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

#endif /* VENEER_RING_H */
