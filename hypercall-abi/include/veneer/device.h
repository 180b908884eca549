/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * veneer/device.h: Veneer hypercall ABI 1.0, split-device slots and the frontend/backend handshake.
 *
 * GENERATED from the hypercall-abi crate; do not edit. Regenerate with
 *     cargo run -p veneer-abi-cgen
 * The semantics are specified in hypercall-abi/SPEC.md.
 */
#ifndef VENEER_DEVICE_H
#define VENEER_DEVICE_H

#include "veneer/types.h"

/* `DeviceKind` (values): What a device slot carries. */
/* A console: the `console` protocol on one ring. */
#define VENEER_DEVICE_KIND_CONSOLE 1U
/* A block device: the `blk` protocol on one ring. */
#define VENEER_DEVICE_KIND_BLOCK   2U
/* A network interface: the `net` protocol on two rings (tx, rx). */
#define VENEER_DEVICE_KIND_NET     3U

/* `DeviceRole` (values): Which side of a slot the caller is. */
/* The side that uses the device. */
#define VENEER_DEVICE_ROLE_FRONTEND 0U
/* The side that provides it. */
#define VENEER_DEVICE_ROLE_BACKEND  1U

/* `DeviceState` (values): The state of one side of a slot. */
/* Setting up; nothing published yet. */
#define VENEER_DEVICE_STATE_INITIALISING 1U
/* Backend: parameters published, waiting for the frontend's rings. */
#define VENEER_DEVICE_STATE_INIT_WAIT    2U
/* Frontend: rings and port handed over (`device_connect`). */
#define VENEER_DEVICE_STATE_INITIALISED  3U
/* In service. */
#define VENEER_DEVICE_STATE_CONNECTED    4U
/* Shutting down; finish or fail outstanding requests. */
#define VENEER_DEVICE_STATE_CLOSING      5U
/* Down; rings unmapped, port closed. */
#define VENEER_DEVICE_STATE_CLOSED       6U

/* `device_consts` (constants): Device-slot limits and flags. */
/* Handles per domain: 0 .. `SLOTS_MAX`. */
#define VENEER_DEVICE_SLOTS_MAX 64U
/* Rings a slot can carry. */
#define VENEER_DEVICE_RINGS_MAX 2U
/* "No device" (`StartInfoExt::console_device`). */
#define VENEER_DEVICE_NONE      0xffffffffU
/* `DeviceInfo::flags`: removal was requested; move to `Closing`. */
#define VENEER_DEVICE_REMOVING  1U

/*
 * `device_features` (constants): `DeviceParams::features` and `DeviceConnect::features` bits: the
 * backend offers, the frontend accepts a subset.
 */
/* Block: the device is read-only. */
#define VENEER_DEVF_BLK_READONLY       1U
/* Block: `Flush` requests are honoured. */
#define VENEER_DEVF_BLK_FLUSH          2U
/* Block: `Discard` requests are honoured. */
#define VENEER_DEVF_BLK_DISCARD        4U
/* Block: removable medium. */
#define VENEER_DEVF_BLK_REMOVABLE      8U
/*
 * Net: the tx side accepts packets with a blank checksum
 * (`NET_TX_CSUM_BLANK`), and rx may deliver them.
 */
#define VENEER_DEVF_NET_CSUM_OFFLOAD   0x100U
/* Net: a packet may span several slots (`NET_MORE_DATA`). */
#define VENEER_DEVF_NET_SCATTER_GATHER 0x200U

/*
 * What the backend publishes about the device (`device_set_params`).
 * Fields of other kinds are zero.
 */
struct veneer_device_params {
    /* [0x0] Block: capacity in 512-byte sectors. */
    uint64_t nr_sectors;
    /* [0x8] Block: logical sector size in bytes (512 or 4096). */
    uint32_t sector_size;
    /* [0xc] `device_features` the backend offers. */
    uint32_t features;
    /*
     * [0x10] Net: the MAC address (set by the configuration; the backend may
     * not change a non-zero one).
     */
    uint8_t mac[6];
    /* [0x16] Net: MTU in bytes (0: 1500). */
    uint16_t mtu;
    /* [0x18] Must be zero. */
    uint64_t reserved0[5];
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_device_params) == 64, "size of struct veneer_device_params");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_params, nr_sectors) == 0, "offset of struct veneer_device_params.nr_sectors");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_params, sector_size) == 8, "offset of struct veneer_device_params.sector_size");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_params, features) == 12, "offset of struct veneer_device_params.features");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_params, mac) == 16, "offset of struct veneer_device_params.mac");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_params, mtu) == 22, "offset of struct veneer_device_params.mtu");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_params, reserved0) == 24, "offset of struct veneer_device_params.reserved0");

/* What the frontend hands over (`device_connect`). */
struct veneer_device_connect {
    /*
     * [0x0] Grant references of the ring pages, granted writable to the
     * backend (net: tx then rx; unused entries 0).
     */
    uint32_t ring_gref[2];
    /* [0x8] A port allocated with `evtchn_alloc_unbound` for the backend. */
    uint32_t port;
    /* [0xc] `device_features` the frontend accepts (a subset of the offer). */
    uint32_t features;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_device_connect) == 16, "size of struct veneer_device_connect");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_connect, ring_gref) == 0, "offset of struct veneer_device_connect.ring_gref");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_connect, port) == 8, "offset of struct veneer_device_connect.port");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_connect, features) == 12, "offset of struct veneer_device_connect.features");

/* What `device_query` writes: a slot as one side sees it. */
struct veneer_device_info {
    /* [0x0] The caller's handle for the slot. */
    uint32_t handle;
    /* [0x4] A `DeviceKind`. */
    uint16_t kind;
    /* [0x6] The caller's `DeviceRole`. */
    uint8_t role;
    /* [0x7] Must be zero. */
    uint8_t reserved0;
    /* [0x8] The frontend domain. */
    uint32_t frontend_domid;
    /* [0xc] The backend domain, or `DOMID_HYPERVISOR`. */
    uint32_t backend_domid;
    /* [0x10] The frontend's `DeviceState`. */
    uint32_t frontend_state;
    /* [0x14] The backend's `DeviceState`. */
    uint32_t backend_state;
    /* [0x18] `device_consts` flags (`REMOVING`). */
    uint32_t flags;
    /*
     * [0x1c] Per-kind index among the frontend's devices of this kind
     * (`xvda` is block 0), fixed by the configuration.
     */
    uint32_t index;
    /* [0x20] What the frontend handed over (zero before `device_connect`). */
    struct veneer_device_connect connect;
    /* [0x30] What the backend published. */
    struct veneer_device_params params;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_device_info) == 112, "size of struct veneer_device_info");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_info, handle) == 0, "offset of struct veneer_device_info.handle");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_info, kind) == 4, "offset of struct veneer_device_info.kind");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_info, role) == 6, "offset of struct veneer_device_info.role");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_info, reserved0) == 7, "offset of struct veneer_device_info.reserved0");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_info, frontend_domid) == 8, "offset of struct veneer_device_info.frontend_domid");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_info, backend_domid) == 12, "offset of struct veneer_device_info.backend_domid");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_info, frontend_state) == 16, "offset of struct veneer_device_info.frontend_state");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_info, backend_state) == 20, "offset of struct veneer_device_info.backend_state");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_info, flags) == 24, "offset of struct veneer_device_info.flags");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_info, index) == 28, "offset of struct veneer_device_info.index");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_info, connect) == 32, "offset of struct veneer_device_info.connect");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_info, params) == 48, "offset of struct veneer_device_info.params");

/* Argument of `domain_device_create`. */
struct veneer_device_create {
    /* [0x0] The frontend domain. */
    uint32_t frontend_domid;
    /* [0x4] The backend domain or `DOMID_HYPERVISOR`. */
    uint32_t backend_domid;
    /* [0x8] A `DeviceKind`. */
    uint16_t kind;
    /* [0xa] Must be zero. */
    uint16_t reserved0;
    /* [0xc] Per-kind index in the frontend (see `DeviceInfo::index`). */
    uint32_t index;
    /* [0x10] Out: the frontend's handle. */
    uint32_t frontend_handle;
    /* [0x14] Out: the backend's handle (`DEVICE_NONE` for the hypervisor). */
    uint32_t backend_handle;
    /* [0x18] Parameters fixed by the configuration (net: `mac`); the rest zero. */
    struct veneer_device_params params;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_device_create) == 88, "size of struct veneer_device_create");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_create, frontend_domid) == 0, "offset of struct veneer_device_create.frontend_domid");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_create, backend_domid) == 4, "offset of struct veneer_device_create.backend_domid");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_create, kind) == 8, "offset of struct veneer_device_create.kind");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_create, reserved0) == 10, "offset of struct veneer_device_create.reserved0");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_create, index) == 12, "offset of struct veneer_device_create.index");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_create, frontend_handle) == 16, "offset of struct veneer_device_create.frontend_handle");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_create, backend_handle) == 20, "offset of struct veneer_device_create.backend_handle");
VENEER_STATIC_ASSERT(offsetof(struct veneer_device_create, params) == 24, "offset of struct veneer_device_create.params");

#endif /* VENEER_DEVICE_H */
