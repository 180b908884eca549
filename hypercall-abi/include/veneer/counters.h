/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * veneer/counters.h: Veneer hypercall ABI 1.0, measurement counters.
 *
 * GENERATED from the hypercall-abi crate; do not edit. Regenerate with
 *     cargo run -p veneer-abi-cgen
 * The semantics are specified in hypercall-abi/SPEC.md.
 */
#ifndef VENEER_COUNTERS_H
#define VENEER_COUNTERS_H

#include "veneer/types.h"

/* `CounterEvent` (values): Counter ids above the hypercall range. */
/* A `syscall` from guest user mode bounced to the guest kernel. */
#define VENEER_COUNTER_SYSCALL_BOUNCE    0x100U
/* An exception bounced to the guest kernel (page faults included). */
#define VENEER_COUNTER_EXCEPTION_BOUNCE  0x101U
/* Of those, page faults. */
#define VENEER_COUNTER_PAGE_FAULT_BOUNCE 0x102U
/* An event upcall delivered. */
#define VENEER_COUNTER_EVENT_UPCALL      0x103U
/* A switch from another vCPU to one of this domain's. */
#define VENEER_COUNTER_VCPU_SWITCH_IN    0x104U
/* An `iret` from kernel to user mode (half of every user round trip). */
#define VENEER_COUNTER_IRET_TO_USER      0x105U

/* `counter_consts` (constants): Counter ids. */
/* Number of counter ids: `0 .. NR`. */
#define VENEER_COUNTERS_NR 0x106U

/* One counter as `counters_read` writes it. */
struct veneer_counter {
    /* [0x0] Times it happened. */
    uint64_t count;
    /* [0x8] Of those, hypercalls that returned an error (0 for events). */
    uint64_t errors;
    /* [0x10] TSC cycles spent in the hypervisor handling them. */
    uint64_t cycles;
    /* [0x18] Must be zero. */
    uint64_t reserved0;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_counter) == 32, "size of struct veneer_counter");
VENEER_STATIC_ASSERT(offsetof(struct veneer_counter, count) == 0, "offset of struct veneer_counter.count");
VENEER_STATIC_ASSERT(offsetof(struct veneer_counter, errors) == 8, "offset of struct veneer_counter.errors");
VENEER_STATIC_ASSERT(offsetof(struct veneer_counter, cycles) == 16, "offset of struct veneer_counter.cycles");
VENEER_STATIC_ASSERT(offsetof(struct veneer_counter, reserved0) == 24, "offset of struct veneer_counter.reserved0");

#endif /* VENEER_COUNTERS_H */
