/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * veneer/grant.h: Veneer hypercall ABI 1.0, grant tables.
 *
 * GENERATED from the hypercall-abi crate; do not edit. Regenerate with
 *     cargo run -p veneer-abi-cgen
 * The semantics are specified in hypercall-abi/SPEC.md.
 */
#ifndef VENEER_GRANT_H
#define VENEER_GRANT_H

#include "veneer/types.h"

/* `grant_consts` (constants): Grant-table limits. */
/* Entries per grant-table frame. */
#define VENEER_GRANT_ENTRIES_PER_FRAME 0x100ULL
/* The most frames a grant table has. */
#define VENEER_GRANT_TABLE_FRAMES_MAX  32ULL
/* The most operations one `grant_map`, `grant_unmap` or `grant_copy` takes. */
#define VENEER_GRANT_OPS_MAX           128ULL
/* Reference 0 is never valid; frontends start at 1. */
#define VENEER_GRANT_REF_INVALID       0ULL

/*
 * `grant_flags` (constants): `GrantEntry::flags`. Bits 0–7 are written by the granting domain,
 * bits 8–15 by the hypervisor.
 */
/* The grant is active: `grantee` may use `frame`. */
#define VENEER_GTF_PERMIT          1U
/* The grantee may only read. */
#define VENEER_GTF_READONLY        2U
/*
 * Set by the hypervisor while the grantee has the frame mapped or is
 * copying from it.
 */
#define VENEER_GTF_IN_USE_READ     0x100U
/*
 * Set by the hypervisor while the grantee has the frame mapped
 * writable or is copying to it.
 */
#define VENEER_GTF_IN_USE_WRITE    0x200U
/* The bits the granting domain writes. */
#define VENEER_GTF_GUEST_MASK      255U
/* The bits the hypervisor writes. */
#define VENEER_GTF_HYPERVISOR_MASK 0xff00U

/*
 * One grant-table entry. The granting domain fills `grantee` and
 * `frame`, then sets `PERMIT` with a release store; it revokes by
 * compare-and-swap of `flags` from a value without `IN_USE_*` bits to 0,
 * and retries later if the swap fails.
 */
struct veneer_grant_entry {
    /* [0x0] `grant_flags` bits. */
    uint16_t flags;
    /* [0x2] Must be zero. */
    uint16_t reserved0;
    /* [0x4] The domain allowed to use the grant. */
    uint32_t grantee;
    /* [0x8] The granted machine frame, owned by the granting domain. */
    uint64_t frame;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_grant_entry) == 16, "size of struct veneer_grant_entry");
VENEER_STATIC_ASSERT(offsetof(struct veneer_grant_entry, flags) == 0, "offset of struct veneer_grant_entry.flags");
VENEER_STATIC_ASSERT(offsetof(struct veneer_grant_entry, reserved0) == 2, "offset of struct veneer_grant_entry.reserved0");
VENEER_STATIC_ASSERT(offsetof(struct veneer_grant_entry, grantee) == 4, "offset of struct veneer_grant_entry.grantee");
VENEER_STATIC_ASSERT(offsetof(struct veneer_grant_entry, frame) == 8, "offset of struct veneer_grant_entry.frame");

/* `grant_op_flags` (constants): `GrantMapOp::flags` and `GrantCopyOp::flags`. */
/* Map read-only (`grant_map`). */
#define VENEER_GNT_MAP_READONLY  1U
/* The copy source is a grant reference, else a frame of the caller. */
#define VENEER_GNT_COPY_SRC_GREF 2U
/* The copy destination is a grant reference, else a frame of the caller. */
#define VENEER_GNT_COPY_DST_GREF 4U

/* One operation of `grant_map`. */
struct veneer_grant_map_op {
    /*
     * [0x0] Page-aligned virtual address in the caller's kernel address space
     * whose (existing, non-present) L1 entry receives the mapping.
     */
    uint64_t host_addr;
    /* [0x8] `grant_op_flags` bits (`MAP_READONLY`). */
    uint32_t flags;
    /* [0xc] The grant reference in the granting domain's table. */
    uint32_t gref;
    /* [0x10] The granting domain. */
    uint32_t domid;
    /* [0x14] Out: 0 or a negated `Error`. */
    int32_t status;
    /* [0x18] Out: the handle `grant_unmap` takes. */
    uint32_t handle;
    /* [0x1c] Must be zero. */
    uint32_t reserved0;
    /* [0x20] Out: the machine frame mapped (for DMA by a driver domain). */
    uint64_t frame;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_grant_map_op) == 40, "size of struct veneer_grant_map_op");
VENEER_STATIC_ASSERT(offsetof(struct veneer_grant_map_op, host_addr) == 0, "offset of struct veneer_grant_map_op.host_addr");
VENEER_STATIC_ASSERT(offsetof(struct veneer_grant_map_op, flags) == 8, "offset of struct veneer_grant_map_op.flags");
VENEER_STATIC_ASSERT(offsetof(struct veneer_grant_map_op, gref) == 12, "offset of struct veneer_grant_map_op.gref");
VENEER_STATIC_ASSERT(offsetof(struct veneer_grant_map_op, domid) == 16, "offset of struct veneer_grant_map_op.domid");
VENEER_STATIC_ASSERT(offsetof(struct veneer_grant_map_op, status) == 20, "offset of struct veneer_grant_map_op.status");
VENEER_STATIC_ASSERT(offsetof(struct veneer_grant_map_op, handle) == 24, "offset of struct veneer_grant_map_op.handle");
VENEER_STATIC_ASSERT(offsetof(struct veneer_grant_map_op, reserved0) == 28, "offset of struct veneer_grant_map_op.reserved0");
VENEER_STATIC_ASSERT(offsetof(struct veneer_grant_map_op, frame) == 32, "offset of struct veneer_grant_map_op.frame");

/* One operation of `grant_unmap`. */
struct veneer_grant_unmap_op {
    /* [0x0] The `host_addr` the mapping was made at. */
    uint64_t host_addr;
    /* [0x8] The handle `grant_map` returned. */
    uint32_t handle;
    /* [0xc] Out: 0 or a negated `Error`. */
    int32_t status;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_grant_unmap_op) == 16, "size of struct veneer_grant_unmap_op");
VENEER_STATIC_ASSERT(offsetof(struct veneer_grant_unmap_op, host_addr) == 0, "offset of struct veneer_grant_unmap_op.host_addr");
VENEER_STATIC_ASSERT(offsetof(struct veneer_grant_unmap_op, handle) == 8, "offset of struct veneer_grant_unmap_op.handle");
VENEER_STATIC_ASSERT(offsetof(struct veneer_grant_unmap_op, status) == 12, "offset of struct veneer_grant_unmap_op.status");

/* One side of a `grant_copy`. */
struct veneer_grant_copy_seg {
    /*
     * [0x0] A grant reference of `domid`'s table, or a machine frame the
     * caller owns, per the op's flags.
     */
    uint64_t gref_or_frame;
    /* [0x8] The granting domain (grant side), `DOMID_SELF` otherwise. */
    uint32_t domid;
    /* [0xc] Byte offset in the frame. */
    uint16_t offset;
    /* [0xe] Must be zero. */
    uint16_t reserved0;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_grant_copy_seg) == 16, "size of struct veneer_grant_copy_seg");
VENEER_STATIC_ASSERT(offsetof(struct veneer_grant_copy_seg, gref_or_frame) == 0, "offset of struct veneer_grant_copy_seg.gref_or_frame");
VENEER_STATIC_ASSERT(offsetof(struct veneer_grant_copy_seg, domid) == 8, "offset of struct veneer_grant_copy_seg.domid");
VENEER_STATIC_ASSERT(offsetof(struct veneer_grant_copy_seg, offset) == 12, "offset of struct veneer_grant_copy_seg.offset");
VENEER_STATIC_ASSERT(offsetof(struct veneer_grant_copy_seg, reserved0) == 14, "offset of struct veneer_grant_copy_seg.reserved0");

/* One operation of `grant_copy`. */
struct veneer_grant_copy_op {
    /* [0x0] Source. */
    struct veneer_grant_copy_seg src;
    /* [0x10] Destination. */
    struct veneer_grant_copy_seg dst;
    /* [0x20] Bytes to copy; neither side may cross its frame's end. */
    uint16_t len;
    /* [0x22] `grant_op_flags` bits (`COPY_SRC_GREF`, `COPY_DST_GREF`). */
    uint16_t flags;
    /* [0x24] Out: 0 or a negated `Error`. */
    int32_t status;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_grant_copy_op) == 40, "size of struct veneer_grant_copy_op");
VENEER_STATIC_ASSERT(offsetof(struct veneer_grant_copy_op, src) == 0, "offset of struct veneer_grant_copy_op.src");
VENEER_STATIC_ASSERT(offsetof(struct veneer_grant_copy_op, dst) == 16, "offset of struct veneer_grant_copy_op.dst");
VENEER_STATIC_ASSERT(offsetof(struct veneer_grant_copy_op, len) == 32, "offset of struct veneer_grant_copy_op.len");
VENEER_STATIC_ASSERT(offsetof(struct veneer_grant_copy_op, flags) == 34, "offset of struct veneer_grant_copy_op.flags");
VENEER_STATIC_ASSERT(offsetof(struct veneer_grant_copy_op, status) == 36, "offset of struct veneer_grant_copy_op.status");

/* What `grant_query` writes. */
struct veneer_grant_table_info {
    /* [0x0] Frames in the caller's registered table (0: none). */
    uint32_t nr_frames;
    /* [0x4] The most frames a table may have (`TABLE_FRAMES_MAX`). */
    uint32_t max_frames;
    /* [0x8] Grant mappings other domains hold on the caller's grants now. */
    uint32_t nr_active;
    /* [0xc] Must be zero. */
    uint32_t reserved0;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_grant_table_info) == 16, "size of struct veneer_grant_table_info");
VENEER_STATIC_ASSERT(offsetof(struct veneer_grant_table_info, nr_frames) == 0, "offset of struct veneer_grant_table_info.nr_frames");
VENEER_STATIC_ASSERT(offsetof(struct veneer_grant_table_info, max_frames) == 4, "offset of struct veneer_grant_table_info.max_frames");
VENEER_STATIC_ASSERT(offsetof(struct veneer_grant_table_info, nr_active) == 8, "offset of struct veneer_grant_table_info.nr_active");
VENEER_STATIC_ASSERT(offsetof(struct veneer_grant_table_info, reserved0) == 12, "offset of struct veneer_grant_table_info.reserved0");

#endif /* VENEER_GRANT_H */
