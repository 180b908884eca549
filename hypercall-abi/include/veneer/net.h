/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * veneer/net.h: Veneer hypercall ABI 1.0, the network protocol.
 *
 * GENERATED from the hypercall-abi crate; do not edit. Regenerate with
 *     cargo run -p veneer-abi-cgen
 * The semantics are specified in hypercall-abi/SPEC.md.
 */
#ifndef VENEER_NET_H
#define VENEER_NET_H

#include "veneer/types.h"

/* `net_consts` (constants): Network protocol constants. */
/* Bytes per tx slot. */
#define VENEER_NET_TX_SLOT_SIZE         16ULL
/* Bytes per rx slot. */
#define VENEER_NET_RX_SLOT_SIZE         8ULL
/* The most slots one packet spans (with `NET_SCATTER_GATHER`). */
#define VENEER_NET_SLOTS_PER_PACKET_MAX 18ULL

/* `net_flags` (constants): `NetTxRequest::flags` and `NetRxResponse::flags`. */
/*
 * The packet's transport checksum is blank (partial); the other
 * side computes it (needs `NET_CSUM_OFFLOAD`).
 */
#define VENEER_NETF_CSUM_BLANK     1U
/* The packet's checksum was verified already. */
#define VENEER_NETF_DATA_VALIDATED 2U
/* More slots of this packet follow. */
#define VENEER_NETF_MORE_DATA      4U

/* `NetStatus` (values): Status of a network response. */
/* Done. */
#define VENEER_NET_STATUS_OK      0
/* The backend could not handle the packet. */
#define VENEER_NET_STATUS_ERROR   (-1)
/* The packet was dropped (no room, filtered). */
#define VENEER_NET_STATUS_DROPPED (-2)

/* A transmit request: one slot of a packet. */
struct veneer_net_tx_request {
    /* [0x0] Grant of the page holding the data (read-only suffices). */
    uint32_t gref;
    /* [0x4] Offset of the data in the page. */
    uint16_t offset;
    /* [0x6] `net_flags` bits. */
    uint16_t flags;
    /* [0x8] Echoed in the response. */
    uint16_t id;
    /* [0xa] First slot: the whole packet's length; later slots: this slot's. */
    uint16_t size;
    /* [0xc] Must be zero. */
    uint32_t reserved0;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_net_tx_request) == 16, "size of struct veneer_net_tx_request");
VENEER_STATIC_ASSERT(offsetof(struct veneer_net_tx_request, gref) == 0, "offset of struct veneer_net_tx_request.gref");
VENEER_STATIC_ASSERT(offsetof(struct veneer_net_tx_request, offset) == 4, "offset of struct veneer_net_tx_request.offset");
VENEER_STATIC_ASSERT(offsetof(struct veneer_net_tx_request, flags) == 6, "offset of struct veneer_net_tx_request.flags");
VENEER_STATIC_ASSERT(offsetof(struct veneer_net_tx_request, id) == 8, "offset of struct veneer_net_tx_request.id");
VENEER_STATIC_ASSERT(offsetof(struct veneer_net_tx_request, size) == 10, "offset of struct veneer_net_tx_request.size");
VENEER_STATIC_ASSERT(offsetof(struct veneer_net_tx_request, reserved0) == 12, "offset of struct veneer_net_tx_request.reserved0");

/* A transmit response, one per request slot. */
struct veneer_net_tx_response {
    /* [0x0] The request's `id`. */
    uint16_t id;
    /* [0x2] A `NetStatus`. */
    int16_t status;
    /* [0x4] Must be zero. */
    uint32_t reserved0;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_net_tx_response) == 8, "size of struct veneer_net_tx_response");
VENEER_STATIC_ASSERT(offsetof(struct veneer_net_tx_response, id) == 0, "offset of struct veneer_net_tx_response.id");
VENEER_STATIC_ASSERT(offsetof(struct veneer_net_tx_response, status) == 2, "offset of struct veneer_net_tx_response.status");
VENEER_STATIC_ASSERT(offsetof(struct veneer_net_tx_response, reserved0) == 4, "offset of struct veneer_net_tx_response.reserved0");

/* A receive request: an empty page for the backend to fill. */
struct veneer_net_rx_request {
    /* [0x0] Echoed in the response. */
    uint16_t id;
    /* [0x2] Must be zero. */
    uint16_t reserved0;
    /* [0x4] Grant of the page, writable. */
    uint32_t gref;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_net_rx_request) == 8, "size of struct veneer_net_rx_request");
VENEER_STATIC_ASSERT(offsetof(struct veneer_net_rx_request, id) == 0, "offset of struct veneer_net_rx_request.id");
VENEER_STATIC_ASSERT(offsetof(struct veneer_net_rx_request, reserved0) == 2, "offset of struct veneer_net_rx_request.reserved0");
VENEER_STATIC_ASSERT(offsetof(struct veneer_net_rx_request, gref) == 4, "offset of struct veneer_net_rx_request.gref");

/* A receive response: where the data landed. */
struct veneer_net_rx_response {
    /* [0x0] The request's `id`. */
    uint16_t id;
    /* [0x2] Offset of the data in the page. */
    uint16_t offset;
    /* [0x4] `net_flags` bits. */
    uint16_t flags;
    /* [0x6] Bytes received (≥ 0) or a negative `NetStatus`. */
    int16_t status;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_net_rx_response) == 8, "size of struct veneer_net_rx_response");
VENEER_STATIC_ASSERT(offsetof(struct veneer_net_rx_response, id) == 0, "offset of struct veneer_net_rx_response.id");
VENEER_STATIC_ASSERT(offsetof(struct veneer_net_rx_response, offset) == 2, "offset of struct veneer_net_rx_response.offset");
VENEER_STATIC_ASSERT(offsetof(struct veneer_net_rx_response, flags) == 4, "offset of struct veneer_net_rx_response.flags");
VENEER_STATIC_ASSERT(offsetof(struct veneer_net_rx_response, status) == 6, "offset of struct veneer_net_rx_response.status");

#endif /* VENEER_NET_H */
