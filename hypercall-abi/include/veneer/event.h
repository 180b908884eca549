/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * veneer/event.h: Veneer hypercall ABI 1.0, event channels, virtual IRQs, timer and scheduler limits.
 *
 * GENERATED from the hypercall-abi crate; do not edit. Regenerate with
 *     cargo run -p veneer-abi-cgen
 * The semantics are specified in hypercall-abi/SPEC.md.
 */
#ifndef VENEER_EVENT_H
#define VENEER_EVENT_H

#include "veneer/types.h"

/* `Virq` (values): Virtual IRQs (`evtchn_bind_virq`). */
/* Per vCPU: the one-shot timer (`timer_set`) expired. */
#define VENEER_VIRQ_TIMER            0U
/* Global: input is waiting for `console_read` (console owner only). */
#define VENEER_VIRQ_CONSOLE          1U
/*
 * Global: a domain this domain controls shut down or died
 * (privileged only).
 */
#define VENEER_VIRQ_DOMAIN_EXCEPTION 2U
/*
 * Global: a device slot of this domain was created, changed state or
 * is being removed (`device_query` to see which).
 */
#define VENEER_VIRQ_DEVICE           3U

/* `EvtchnState` (values): `EvtchnStatus::state`. */
/* Not in use. */
#define VENEER_EVTCHNSTAT_CLOSED      0U
/* Allocated for a remote domain that has not bound it yet. */
#define VENEER_EVTCHNSTAT_UNBOUND     1U
/* Connected to a port of another domain. */
#define VENEER_EVTCHNSTAT_INTERDOMAIN 2U
/* Bound to a virtual IRQ. */
#define VENEER_EVTCHNSTAT_VIRQ        3U
/* Bound for inter-vCPU notification. */
#define VENEER_EVTCHNSTAT_IPI         4U
/* Bound to a physical interrupt (GSI or MSI). */
#define VENEER_EVTCHNSTAT_PHYSICAL    5U

/* What `evtchn_status` writes. */
struct veneer_evtchn_status {
    /* [0x0] An `EvtchnState`. */
    uint32_t state;
    /* [0x4] The vCPU the port is delivered to. */
    uint32_t vcpu;
    /* [0x8] `Unbound`: the domain allowed to bind; `Interdomain`: the remote domain. */
    uint32_t remote_domid;
    /* [0xc] `Interdomain`: the remote port. */
    uint32_t remote_port;
    /* [0x10] `Virq`: the virtual IRQ. */
    uint32_t virq;
    /*
     * [0x14] `Physical`: the GSI (`physdev_irq_bind`) or the MSI/MSI-X entry
     * number (`physdev_msi_bind`).
     */
    uint32_t irq;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_evtchn_status) == 24, "size of struct veneer_evtchn_status");
VENEER_STATIC_ASSERT(offsetof(struct veneer_evtchn_status, state) == 0, "offset of struct veneer_evtchn_status.state");
VENEER_STATIC_ASSERT(offsetof(struct veneer_evtchn_status, vcpu) == 4, "offset of struct veneer_evtchn_status.vcpu");
VENEER_STATIC_ASSERT(offsetof(struct veneer_evtchn_status, remote_domid) == 8, "offset of struct veneer_evtchn_status.remote_domid");
VENEER_STATIC_ASSERT(offsetof(struct veneer_evtchn_status, remote_port) == 12, "offset of struct veneer_evtchn_status.remote_port");
VENEER_STATIC_ASSERT(offsetof(struct veneer_evtchn_status, virq) == 16, "offset of struct veneer_evtchn_status.virq");
VENEER_STATIC_ASSERT(offsetof(struct veneer_evtchn_status, irq) == 20, "offset of struct veneer_evtchn_status.irq");

/* `event_consts` (constants): Event-channel and scheduler limits. */
/* Ports per domain; port 0 is never bound (`EVTCHN_PORTS`). */
#define VENEER_EVTCHN_PORTS       0x1000ULL
/* The most ports `sched_poll` watches. */
#define VENEER_EVTCHN_POLL_MAX    128ULL
/*
 * `timer_set` deadline that cancels the timer; also `sched_poll`'s
 * "no timeout".
 */
#define VENEER_EVTCHN_NO_DEADLINE 0ULL

#endif /* VENEER_EVENT_H */
