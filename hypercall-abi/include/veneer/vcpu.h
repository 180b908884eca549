/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * veneer/vcpu.h: Veneer hypercall ABI 1.0, vCPU bring-up and runstate.
 *
 * GENERATED from the hypercall-abi crate; do not edit. Regenerate with
 *     cargo run -p veneer-abi-cgen
 * The semantics are specified in hypercall-abi/SPEC.md.
 */
#ifndef VENEER_VCPU_H
#define VENEER_VCPU_H

#include "veneer/types.h"

/* `vcpu_flags` (constants): `VcpuContext::flags`. */
/* Start with events unmasked (`upcall_mask` 0); otherwise masked. */
#define VENEER_VCPUF_EVENTS_ENABLED 1ULL

/*
 * The state an offline vCPU starts in (`vcpu_initialise`). Everything
 * not named here is copied from the calling vCPU at the time of the
 * call: the trap table, the callbacks, the GDT and LDT, the I/O
 * privilege; other general registers start at zero.
 */
struct veneer_vcpu_context {
    /* [0x0] Entry point (guest kernel mode). */
    uint64_t rip;
    /* [0x8] Initial stack pointer. */
    uint64_t rsp;
    /* [0x10] Initial `rdi` (e.g. the vCPU's per-CPU area). */
    uint64_t rdi;
    /* [0x18] Initial `rsi`. */
    uint64_t rsi;
    /* [0x20] Machine frame of the kernel-mode L4 table (typed L4). */
    uint64_t kernel_l4_mfn;
    /* [0x28] Machine frame of the user-mode L4 table, 0 for none. */
    uint64_t user_l4_mfn;
    /* [0x30] Kernel stack for entries from user mode (as `stack_switch`). */
    uint64_t kernel_sp;
    /* [0x38] FS base. */
    uint64_t fs_base;
    /* [0x40] GS base in kernel mode. */
    uint64_t gs_base_kernel;
    /* [0x48] GS base in user mode. */
    uint64_t gs_base_user;
    /* [0x50] `vcpu_flags` bits. */
    uint64_t flags;
    /* [0x58] Must be zero. */
    uint64_t reserved0[5];
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_vcpu_context) == 128, "size of struct veneer_vcpu_context");
VENEER_STATIC_ASSERT(offsetof(struct veneer_vcpu_context, rip) == 0, "offset of struct veneer_vcpu_context.rip");
VENEER_STATIC_ASSERT(offsetof(struct veneer_vcpu_context, rsp) == 8, "offset of struct veneer_vcpu_context.rsp");
VENEER_STATIC_ASSERT(offsetof(struct veneer_vcpu_context, rdi) == 16, "offset of struct veneer_vcpu_context.rdi");
VENEER_STATIC_ASSERT(offsetof(struct veneer_vcpu_context, rsi) == 24, "offset of struct veneer_vcpu_context.rsi");
VENEER_STATIC_ASSERT(offsetof(struct veneer_vcpu_context, kernel_l4_mfn) == 32, "offset of struct veneer_vcpu_context.kernel_l4_mfn");
VENEER_STATIC_ASSERT(offsetof(struct veneer_vcpu_context, user_l4_mfn) == 40, "offset of struct veneer_vcpu_context.user_l4_mfn");
VENEER_STATIC_ASSERT(offsetof(struct veneer_vcpu_context, kernel_sp) == 48, "offset of struct veneer_vcpu_context.kernel_sp");
VENEER_STATIC_ASSERT(offsetof(struct veneer_vcpu_context, fs_base) == 56, "offset of struct veneer_vcpu_context.fs_base");
VENEER_STATIC_ASSERT(offsetof(struct veneer_vcpu_context, gs_base_kernel) == 64, "offset of struct veneer_vcpu_context.gs_base_kernel");
VENEER_STATIC_ASSERT(offsetof(struct veneer_vcpu_context, gs_base_user) == 72, "offset of struct veneer_vcpu_context.gs_base_user");
VENEER_STATIC_ASSERT(offsetof(struct veneer_vcpu_context, flags) == 80, "offset of struct veneer_vcpu_context.flags");
VENEER_STATIC_ASSERT(offsetof(struct veneer_vcpu_context, reserved0) == 88, "offset of struct veneer_vcpu_context.reserved0");

/* `RunstateState` (values): `RunstateInfo::state` and the index into `RunstateInfo::time`. */
/* Running on a physical CPU. */
#define VENEER_RUNSTATE_RUNNING  0U
/* Ready to run but waiting for a physical CPU (steal time). */
#define VENEER_RUNSTATE_RUNNABLE 1U
/* Blocked (`sched_block`, `sched_poll`) or paused. */
#define VENEER_RUNSTATE_BLOCKED  2U
/* Offline (never brought up, or `vcpu_down`). */
#define VENEER_RUNSTATE_OFFLINE  3U

/*
 * A vCPU's run-state accounting, kept current by the hypervisor in the
 * area `vcpu_register_runstate` names.
 */
struct veneer_runstate_info {
    /* [0x0] The current `RunstateState`. */
    uint32_t state;
    /* [0x4] Odd while the hypervisor updates the record. */
    uint32_t version;
    /* [0x8] System time (ns) at which `state` was entered. */
    uint64_t state_entry_time;
    /* [0x10] Total ns spent in each state, indexed by `RunstateState`. */
    uint64_t time[4];
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_runstate_info) == 48, "size of struct veneer_runstate_info");
VENEER_STATIC_ASSERT(offsetof(struct veneer_runstate_info, state) == 0, "offset of struct veneer_runstate_info.state");
VENEER_STATIC_ASSERT(offsetof(struct veneer_runstate_info, version) == 4, "offset of struct veneer_runstate_info.version");
VENEER_STATIC_ASSERT(offsetof(struct veneer_runstate_info, state_entry_time) == 8, "offset of struct veneer_runstate_info.state_entry_time");
VENEER_STATIC_ASSERT(offsetof(struct veneer_runstate_info, time) == 16, "offset of struct veneer_runstate_info.time");

#endif /* VENEER_VCPU_H */
