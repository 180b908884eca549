/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * veneer/blk.h: Veneer hypercall ABI 1.0, the block protocol.
 *
 * GENERATED from the hypercall-abi crate; do not edit. Regenerate with
 *     cargo run -p veneer-abi-cgen
 * The semantics are specified in hypercall-abi/SPEC.md.
 */
#ifndef VENEER_BLK_H
#define VENEER_BLK_H

#include "veneer/types.h"

/* `BlkOp` (values): `BlkRequest::operation`. */
/* Read sectors into the segments. */
#define VENEER_BLK_OP_READ    0U
/* Write sectors from the segments. */
#define VENEER_BLK_OP_WRITE   1U
/* Make every completed write durable (needs `BLK_FLUSH`); no segments. */
#define VENEER_BLK_OP_FLUSH   2U
/* Discard `nr_sectors` from `sector` (needs `BLK_DISCARD`); no segments. */
#define VENEER_BLK_OP_DISCARD 3U

/* `blk_consts` (constants): Block protocol constants. */
/* Bytes per slot: `size_of(BlkRequest)`. */
#define VENEER_BLK_SLOT_SIZE    96ULL
/* Segments per request. */
#define VENEER_BLK_SEGMENTS_MAX 8ULL
/*
 * Sector unit of `sector`, `first_sect`, `last_sect`: 512 bytes,
 * whatever the device's logical sector size.
 */
#define VENEER_BLK_SECTOR_SIZE  0x200ULL

/* `BlkStatus` (values): `BlkResponse::status`. */
/* Done. */
#define VENEER_BLK_STATUS_OK            0
/* The device failed the request. */
#define VENEER_BLK_STATUS_IO_ERROR      (-1)
/* The operation is not supported (not offered, or a malformed request). */
#define VENEER_BLK_STATUS_NOT_SUPPORTED (-2)

/*
 * One segment: sectors `first_sect ..= last_sect` (512-byte units) of
 * the granted page `gref`.
 */
struct veneer_blk_segment {
    /* [0x0] Grant of the data page (writable for `Read`). */
    uint32_t gref;
    /* [0x4] First sector within the page, 0–7. */
    uint8_t first_sect;
    /* [0x5] Last sector within the page, `first_sect`–7. */
    uint8_t last_sect;
    /* [0x6] Must be zero. */
    uint16_t reserved0;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_blk_segment) == 8, "size of struct veneer_blk_segment");
VENEER_STATIC_ASSERT(offsetof(struct veneer_blk_segment, gref) == 0, "offset of struct veneer_blk_segment.gref");
VENEER_STATIC_ASSERT(offsetof(struct veneer_blk_segment, first_sect) == 4, "offset of struct veneer_blk_segment.first_sect");
VENEER_STATIC_ASSERT(offsetof(struct veneer_blk_segment, last_sect) == 5, "offset of struct veneer_blk_segment.last_sect");
VENEER_STATIC_ASSERT(offsetof(struct veneer_blk_segment, reserved0) == 6, "offset of struct veneer_blk_segment.reserved0");

/* A block request. */
struct veneer_blk_request {
    /* [0x0] A `BlkOp`. */
    uint8_t operation;
    /* [0x1] Segments used, 1–8 for `Read`/`Write`, 0 otherwise. */
    uint8_t nr_segments;
    /* [0x2] Must be zero. */
    uint16_t reserved0;
    /* [0x4] Must be zero. */
    uint32_t reserved1;
    /* [0x8] Echoed in the response. */
    uint64_t id;
    /* [0x10] First 512-byte sector. */
    uint64_t sector;
    /* [0x18] `Discard`: sectors to discard; else zero. */
    uint64_t nr_sectors;
    /* [0x20] The data. */
    struct veneer_blk_segment segments[8];
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_blk_request) == 96, "size of struct veneer_blk_request");
VENEER_STATIC_ASSERT(offsetof(struct veneer_blk_request, operation) == 0, "offset of struct veneer_blk_request.operation");
VENEER_STATIC_ASSERT(offsetof(struct veneer_blk_request, nr_segments) == 1, "offset of struct veneer_blk_request.nr_segments");
VENEER_STATIC_ASSERT(offsetof(struct veneer_blk_request, reserved0) == 2, "offset of struct veneer_blk_request.reserved0");
VENEER_STATIC_ASSERT(offsetof(struct veneer_blk_request, reserved1) == 4, "offset of struct veneer_blk_request.reserved1");
VENEER_STATIC_ASSERT(offsetof(struct veneer_blk_request, id) == 8, "offset of struct veneer_blk_request.id");
VENEER_STATIC_ASSERT(offsetof(struct veneer_blk_request, sector) == 16, "offset of struct veneer_blk_request.sector");
VENEER_STATIC_ASSERT(offsetof(struct veneer_blk_request, nr_sectors) == 24, "offset of struct veneer_blk_request.nr_sectors");
VENEER_STATIC_ASSERT(offsetof(struct veneer_blk_request, segments) == 32, "offset of struct veneer_blk_request.segments");

/* A block response. */
struct veneer_blk_response {
    /* [0x0] The request's `id`. */
    uint64_t id;
    /* [0x8] The request's `operation`. */
    uint8_t operation;
    /* [0x9] Must be zero. */
    uint8_t reserved0;
    /* [0xa] A `BlkStatus`. */
    int16_t status;
    /* [0xc] Must be zero. */
    uint32_t reserved1;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_blk_response) == 16, "size of struct veneer_blk_response");
VENEER_STATIC_ASSERT(offsetof(struct veneer_blk_response, id) == 0, "offset of struct veneer_blk_response.id");
VENEER_STATIC_ASSERT(offsetof(struct veneer_blk_response, operation) == 8, "offset of struct veneer_blk_response.operation");
VENEER_STATIC_ASSERT(offsetof(struct veneer_blk_response, reserved0) == 9, "offset of struct veneer_blk_response.reserved0");
VENEER_STATIC_ASSERT(offsetof(struct veneer_blk_response, status) == 10, "offset of struct veneer_blk_response.status");
VENEER_STATIC_ASSERT(offsetof(struct veneer_blk_response, reserved1) == 12, "offset of struct veneer_blk_response.reserved1");

#endif /* VENEER_BLK_H */
