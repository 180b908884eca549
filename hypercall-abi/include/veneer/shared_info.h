/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * veneer/shared_info.h: Veneer hypercall ABI 1.0, the shared-info page: per-vCPU state, event bitmaps, time.
 *
 * GENERATED from the hypercall-abi crate; do not edit. Regenerate with
 *     cargo run -p veneer-abi-cgen
 * The semantics are specified in hypercall-abi/SPEC.md.
 */
#ifndef VENEER_SHARED_INFO_H
#define VENEER_SHARED_INFO_H

#include "veneer/types.h"

/* `shared_info_consts` (constants): Shared-info limits. */
/* vCPUs whose `VcpuInfo` the page holds: the most vCPUs a v1 domain has. */
#define VENEER_SHARED_INFO_VCPU_MAX     32ULL
/* Event-channel ports: bits in each of the pending and mask bitmaps. */
#define VENEER_SHARED_INFO_EVTCHN_PORTS 0x1000ULL
/* 64-bit words in each bitmap (`EVTCHN_PORTS / 64`). */
#define VENEER_SHARED_INFO_EVTCHN_WORDS 64ULL

/* `time_flags` (constants): `VcpuTimeInfo::flags`. */
/*
 * The TSC is invariant and synchronised across physical CPUs, so
 * readings from different vCPUs are comparable without a global
 * maximum.
 */
#define VENEER_TIME_TSC_STABLE 1U

/*
 * A vCPU's time record. `system_time` (ns since the hypervisor
 * started, the same clock on every vCPU) at TSC `tsc_timestamp`, and
 * the factor to extend it: see [`VcpuTimeInfo::ns_at`]. Layout-compatible
 * with Linux's and FreeBSD's `pvclock_vcpu_time_info`.
 */
struct veneer_vcpu_time_info {
    /*
     * [0x0] Odd while the hypervisor updates the record; read it again until
     * the version is even and unchanged around the read.
     */
    uint32_t version;
    /* [0x4] Must be zero. */
    uint32_t reserved0;
    /* [0x8] TSC value at which `system_time` was taken. */
    uint64_t tsc_timestamp;
    /* [0x10] System time in nanoseconds at `tsc_timestamp`. */
    uint64_t system_time;
    /* [0x18] Multiplier (32.32 fixed point) from shifted TSC ticks to ns. */
    uint32_t tsc_to_system_mul;
    /* [0x1c] Shift applied to the TSC delta before the multiply (may be negative). */
    int8_t tsc_shift;
    /* [0x1d] `time_flags` bits. */
    uint8_t flags;
    /* [0x1e] Must be zero. */
    uint8_t reserved1[2];
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_vcpu_time_info) == 32, "size of struct veneer_vcpu_time_info");
VENEER_STATIC_ASSERT(offsetof(struct veneer_vcpu_time_info, version) == 0, "offset of struct veneer_vcpu_time_info.version");
VENEER_STATIC_ASSERT(offsetof(struct veneer_vcpu_time_info, reserved0) == 4, "offset of struct veneer_vcpu_time_info.reserved0");
VENEER_STATIC_ASSERT(offsetof(struct veneer_vcpu_time_info, tsc_timestamp) == 8, "offset of struct veneer_vcpu_time_info.tsc_timestamp");
VENEER_STATIC_ASSERT(offsetof(struct veneer_vcpu_time_info, system_time) == 16, "offset of struct veneer_vcpu_time_info.system_time");
VENEER_STATIC_ASSERT(offsetof(struct veneer_vcpu_time_info, tsc_to_system_mul) == 24, "offset of struct veneer_vcpu_time_info.tsc_to_system_mul");
VENEER_STATIC_ASSERT(offsetof(struct veneer_vcpu_time_info, tsc_shift) == 28, "offset of struct veneer_vcpu_time_info.tsc_shift");
VENEER_STATIC_ASSERT(offsetof(struct veneer_vcpu_time_info, flags) == 29, "offset of struct veneer_vcpu_time_info.flags");
VENEER_STATIC_ASSERT(offsetof(struct veneer_vcpu_time_info, reserved1) == 30, "offset of struct veneer_vcpu_time_info.reserved1");

/* One vCPU's slot of the shared-info page. */
struct veneer_vcpu_info {
    /*
     * [0x0] Set by the hypervisor when it sets a bit in `pending_sel`; the
     * guest clears it before scanning.
     */
    uint8_t upcall_pending;
    /*
     * [0x1] Non-zero: events are masked (the virtual interrupt flag is clear);
     * the hypervisor does not bounce to the event callback. Written by
     * the guest.
     */
    uint8_t upcall_mask;
    /* [0x2] Must be zero. */
    uint8_t reserved0[6];
    /*
     * [0x8] Bit `w` set: word `w` of `evtchn_pending` may hold a pending port
     * bound to this vCPU. Set by the hypervisor, cleared by the guest
     * with an atomic exchange.
     */
    uint64_t pending_sel;
    /*
     * [0x10] The faulting address of the last page fault bounced to this vCPU
     * (what CR2 would hold).
     */
    uint64_t cr2;
    /* [0x18] Must be zero. */
    uint64_t reserved1;
    /* [0x20] The vCPU's time record. */
    struct veneer_vcpu_time_info time;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_vcpu_info) == 64, "size of struct veneer_vcpu_info");
VENEER_STATIC_ASSERT(offsetof(struct veneer_vcpu_info, upcall_pending) == 0, "offset of struct veneer_vcpu_info.upcall_pending");
VENEER_STATIC_ASSERT(offsetof(struct veneer_vcpu_info, upcall_mask) == 1, "offset of struct veneer_vcpu_info.upcall_mask");
VENEER_STATIC_ASSERT(offsetof(struct veneer_vcpu_info, reserved0) == 2, "offset of struct veneer_vcpu_info.reserved0");
VENEER_STATIC_ASSERT(offsetof(struct veneer_vcpu_info, pending_sel) == 8, "offset of struct veneer_vcpu_info.pending_sel");
VENEER_STATIC_ASSERT(offsetof(struct veneer_vcpu_info, cr2) == 16, "offset of struct veneer_vcpu_info.cr2");
VENEER_STATIC_ASSERT(offsetof(struct veneer_vcpu_info, reserved1) == 24, "offset of struct veneer_vcpu_info.reserved1");
VENEER_STATIC_ASSERT(offsetof(struct veneer_vcpu_info, time) == 32, "offset of struct veneer_vcpu_info.time");

/*
 * The wall clock: the UTC time at which system time was zero. Wall time
 * now is this plus the current system time.
 */
struct veneer_wallclock {
    /* [0x0] Odd while the hypervisor updates it; read as for `VcpuTimeInfo`. */
    uint32_t version;
    /* [0x4] Nanoseconds part, below 10^9. */
    uint32_t nsec;
    /* [0x8] Seconds since 1970-01-01T00:00:00Z. */
    uint64_t sec;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_wallclock) == 16, "size of struct veneer_wallclock");
VENEER_STATIC_ASSERT(offsetof(struct veneer_wallclock, version) == 0, "offset of struct veneer_wallclock.version");
VENEER_STATIC_ASSERT(offsetof(struct veneer_wallclock, nsec) == 4, "offset of struct veneer_wallclock.nsec");
VENEER_STATIC_ASSERT(offsetof(struct veneer_wallclock, sec) == 8, "offset of struct veneer_wallclock.sec");

/* The shared-info page. */
struct veneer_shared_info {
    /* [0x0] Per-vCPU state, indexed by vCPU id. */
    struct veneer_vcpu_info vcpu_info[32];
    /*
     * [0x800] Bit `p` set: port `p` is pending. Set by the hypervisor (and by
     * the guest to retrigger), cleared by the guest when it handles `p`.
     */
    uint64_t evtchn_pending[64];
    /*
     * [0xa00] Bit `p` set: port `p` is masked: it stays pending without an
     * upcall. Written by the guest.
     */
    uint64_t evtchn_mask[64];
    /* [0xc00] The wall clock. */
    struct veneer_wallclock wallclock;
    /* [0xc10] Must be zero. */
    uint64_t reserved0[126];
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_shared_info) == 4096, "size of struct veneer_shared_info");
VENEER_STATIC_ASSERT(offsetof(struct veneer_shared_info, vcpu_info) == 0, "offset of struct veneer_shared_info.vcpu_info");
VENEER_STATIC_ASSERT(offsetof(struct veneer_shared_info, evtchn_pending) == 2048, "offset of struct veneer_shared_info.evtchn_pending");
VENEER_STATIC_ASSERT(offsetof(struct veneer_shared_info, evtchn_mask) == 2560, "offset of struct veneer_shared_info.evtchn_mask");
VENEER_STATIC_ASSERT(offsetof(struct veneer_shared_info, wallclock) == 3072, "offset of struct veneer_shared_info.wallclock");
VENEER_STATIC_ASSERT(offsetof(struct veneer_shared_info, reserved0) == 3088, "offset of struct veneer_shared_info.reserved0");

#endif /* VENEER_SHARED_INFO_H */
