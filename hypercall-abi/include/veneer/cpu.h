/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * veneer/cpu.h: Veneer hypercall ABI 1.0, traps, entry points, segments, descriptor tables, CPUID and MSRs.
 *
 * GENERATED from the hypercall-abi crate; do not edit. Regenerate with
 *     cargo run -p veneer-abi-cgen
 * The semantics are specified in hypercall-abi/SPEC.md.
 */
#ifndef VENEER_CPU_H
#define VENEER_CPU_H

#include "veneer/types.h"

/*
 * `selectors` (constants): Segment selectors the hypervisor provides (entries of its own part of
 * the GDT, above the guest's `GDT_GUEST_ENTRIES`). In a bounce frame the
 * code selector's RPL is the guest's virtual privilege level: 0 when
 * the guest kernel was interrupted, 3 for guest user mode.
 */
/*
 * Entries of the GDT the guest owns (one frame); selectors with an
 * index at or above this are the hypervisor's.
 */
#define VENEER_SEL_GDT_GUEST_ENTRIES 0x200ULL
/* Flat 32-bit code, DPL 3 (compatibility-mode user processes). */
#define VENEER_SEL_FLAT_USER_CS32    0x101bULL
/* Flat data and stack, DPL 3. */
#define VENEER_SEL_FLAT_USER_DS      0x1023ULL
/* Flat 64-bit code, DPL 3. */
#define VENEER_SEL_FLAT_USER_CS64    0x102bULL
/*
 * How the guest kernel's code selector appears in bounce frames
 * (`FLAT_USER_CS64` with RPL 0); `iret` to it returns to kernel mode.
 */
#define VENEER_SEL_FLAT_KERNEL_CS64  0x1028ULL
/* How the guest kernel's stack selector appears in bounce frames. */
#define VENEER_SEL_FLAT_KERNEL_SS    0x1020ULL

/* `cpu_limits` (constants): Limits of the CPU calls. */
/* Entries of a trap table: one per vector. */
#define VENEER_CPU_TRAP_VECTORS    0x100ULL
/* The most LDT entries `set_ldt` accepts (the x86 limit). */
#define VENEER_CPU_LDT_ENTRIES_MAX 0x2000ULL
/* Ports an I/O bitmap covers. */
#define VENEER_CPU_IO_PORTS        0x10000ULL
/*
 * First CPUID leaf of the hypervisor range; `cpuid_query` answers
 * it with the signature "VeneerVeneer" and the highest leaf 0x40000001.
 */
#define VENEER_CPU_CPUID_HV_BASE   0x40000000ULL

/* `trap_flags` (constants): `TrapInfo::flags`. */
/*
 * Bits 0–1: the lowest virtual privilege level that may raise the
 * vector with `int n` (3: user mode may, as for `int3` and `int 0x80`;
 * 0: only the hypervisor delivers it).
 */
#define VENEER_TRAP_DPL_MASK    3U
/*
 * Mask events on entry (as an interrupt gate clears IF); otherwise
 * `upcall_mask` is left alone (a trap gate).
 */
#define VENEER_TRAP_MASK_EVENTS 4U

/* One entry of `set_trap_table`. */
struct veneer_trap_info {
    /* [0x0] The vector, 0–255. */
    uint8_t vector;
    /* [0x1] `trap_flags` bits. */
    uint8_t flags;
    /* [0x2] Must be zero. */
    uint8_t reserved0[6];
    /* [0x8] Entry point in the guest kernel; 0 removes the vector's handler. */
    uint64_t address;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_trap_info) == 16, "size of struct veneer_trap_info");
VENEER_STATIC_ASSERT(offsetof(struct veneer_trap_info, vector) == 0, "offset of struct veneer_trap_info.vector");
VENEER_STATIC_ASSERT(offsetof(struct veneer_trap_info, flags) == 1, "offset of struct veneer_trap_info.flags");
VENEER_STATIC_ASSERT(offsetof(struct veneer_trap_info, reserved0) == 2, "offset of struct veneer_trap_info.reserved0");
VENEER_STATIC_ASSERT(offsetof(struct veneer_trap_info, address) == 8, "offset of struct veneer_trap_info.address");

/*
 * What the hypervisor pushes on the guest kernel stack when it bounces
 * an exception, event or user `syscall` to the guest (lowest address
 * first; `rsp` points at `rcx` on entry). The stack is the one set by
 * `stack_switch` when the guest was in user mode, else the interrupted
 * kernel stack, 16-byte aligned below the interrupted `rsp`.
 */
struct veneer_trap_frame {
    /* [0x0] The interrupted `rcx` (`syscall` sets it to the user return address). */
    uint64_t rcx;
    /* [0x8] The interrupted `r11` (`syscall` sets it to the user rflags). */
    uint64_t r11;
    /*
     * [0x10] The exception's error code; 0 for vectors without one, events and
     * syscalls.
     */
    uint64_t error_code;
    /* [0x18] Interrupted instruction pointer. */
    uint64_t rip;
    /* [0x20] Interrupted code selector; RPL 0 means guest kernel mode. */
    uint64_t cs;
    /* [0x28] Interrupted rflags; IF mirrors `!upcall_mask`, IOPL reads 0. */
    uint64_t rflags;
    /* [0x30] Interrupted stack pointer. */
    uint64_t rsp;
    /* [0x38] Interrupted stack selector. */
    uint64_t ss;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_trap_frame) == 64, "size of struct veneer_trap_frame");
VENEER_STATIC_ASSERT(offsetof(struct veneer_trap_frame, rcx) == 0, "offset of struct veneer_trap_frame.rcx");
VENEER_STATIC_ASSERT(offsetof(struct veneer_trap_frame, r11) == 8, "offset of struct veneer_trap_frame.r11");
VENEER_STATIC_ASSERT(offsetof(struct veneer_trap_frame, error_code) == 16, "offset of struct veneer_trap_frame.error_code");
VENEER_STATIC_ASSERT(offsetof(struct veneer_trap_frame, rip) == 24, "offset of struct veneer_trap_frame.rip");
VENEER_STATIC_ASSERT(offsetof(struct veneer_trap_frame, cs) == 32, "offset of struct veneer_trap_frame.cs");
VENEER_STATIC_ASSERT(offsetof(struct veneer_trap_frame, rflags) == 40, "offset of struct veneer_trap_frame.rflags");
VENEER_STATIC_ASSERT(offsetof(struct veneer_trap_frame, rsp) == 48, "offset of struct veneer_trap_frame.rsp");
VENEER_STATIC_ASSERT(offsetof(struct veneer_trap_frame, ss) == 56, "offset of struct veneer_trap_frame.ss");

/* `iret_flags` (constants): `IretFrame::flags`. */
/*
 * The frame returns from a syscall to user mode: `rcx` and `r11`
 * need not be restored, so the hypervisor may use `sysret`.
 */
#define VENEER_IRET_IN_SYSCALL 1ULL

/*
 * What `iret` pops from the guest stack (lowest address first, at `rsp`
 * when the guest issues the call). `rax` is restored from the frame, so
 * the call number does not clobber the guest's `rax`.
 */
struct veneer_iret_frame {
    /* [0x0] `rax` to restore. */
    uint64_t rax;
    /* [0x8] `r11` to restore (unless `IN_SYSCALL`). */
    uint64_t r11;
    /* [0x10] `rcx` to restore (unless `IN_SYSCALL`). */
    uint64_t rcx;
    /* [0x18] `iret_flags` bits. */
    uint64_t flags;
    /* [0x20] Return instruction pointer. */
    uint64_t rip;
    /* [0x28] Return code selector; RPL 3 returns to user mode. */
    uint64_t cs;
    /*
     * [0x30] Return rflags; IF sets `upcall_mask` to its inverse; IOPL, VM,
     * NT and RF are ignored.
     */
    uint64_t rflags;
    /* [0x38] Return stack pointer. */
    uint64_t rsp;
    /* [0x40] Return stack selector. */
    uint64_t ss;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_iret_frame) == 72, "size of struct veneer_iret_frame");
VENEER_STATIC_ASSERT(offsetof(struct veneer_iret_frame, rax) == 0, "offset of struct veneer_iret_frame.rax");
VENEER_STATIC_ASSERT(offsetof(struct veneer_iret_frame, r11) == 8, "offset of struct veneer_iret_frame.r11");
VENEER_STATIC_ASSERT(offsetof(struct veneer_iret_frame, rcx) == 16, "offset of struct veneer_iret_frame.rcx");
VENEER_STATIC_ASSERT(offsetof(struct veneer_iret_frame, flags) == 24, "offset of struct veneer_iret_frame.flags");
VENEER_STATIC_ASSERT(offsetof(struct veneer_iret_frame, rip) == 32, "offset of struct veneer_iret_frame.rip");
VENEER_STATIC_ASSERT(offsetof(struct veneer_iret_frame, cs) == 40, "offset of struct veneer_iret_frame.cs");
VENEER_STATIC_ASSERT(offsetof(struct veneer_iret_frame, rflags) == 48, "offset of struct veneer_iret_frame.rflags");
VENEER_STATIC_ASSERT(offsetof(struct veneer_iret_frame, rsp) == 56, "offset of struct veneer_iret_frame.rsp");
VENEER_STATIC_ASSERT(offsetof(struct veneer_iret_frame, ss) == 64, "offset of struct veneer_iret_frame.ss");

/* `CallbackKind` (values): First argument of `set_callback`. */
/* Event upcall: entered when an event is pending and unmasked. */
#define VENEER_CALLBACK_EVENT    0ULL
/*
 * Failsafe: entered when returning to the guest would fault on its
 * segment state (a selector `iret` cannot load); the frame holds the
 * selectors DS, ES, FS, GS below a `TrapFrame`.
 */
#define VENEER_CALLBACK_FAILSAFE 1ULL
/* `syscall` from guest user mode. */
#define VENEER_CALLBACK_SYSCALL  2ULL

/* `callback_flags` (constants): Third argument of `set_callback`. */
/* Mask events on entry to this callback. */
#define VENEER_CALLBACKF_MASK_EVENTS 1ULL

/* `SegmentBase` (values): First argument of `set_segment_base`. */
/* FS base (both modes). */
#define VENEER_SEGBASE_FS               0ULL
/* GS base while in guest kernel mode. */
#define VENEER_SEGBASE_GS_KERNEL        1ULL
/*
 * GS base while in guest user mode (the hypervisor swaps the two on
 * every kernel/user transition, so the guest never uses `swapgs`).
 */
#define VENEER_SEGBASE_GS_USER          2ULL
/*
 * Load the user-mode GS selector `value` (its base comes from the
 * descriptor; a null selector leaves base 0).
 */
#define VENEER_SEGBASE_GS_USER_SELECTOR 3ULL

/* `io_privilege` (constants): `set_io_privilege` modes. */
/* Guest kernel mode may not use I/O ports. */
#define VENEER_IOPRIV_NONE   0ULL
/* Guest kernel mode may use the ports the domain is permitted. */
#define VENEER_IOPRIV_KERNEL 1ULL

/* What `cpuid_query` writes. */
struct veneer_cpuid_result {
    /* [0x0] EAX. */
    uint32_t eax;
    /* [0x4] EBX. */
    uint32_t ebx;
    /* [0x8] ECX. */
    uint32_t ecx;
    /* [0xc] EDX. */
    uint32_t edx;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_cpuid_result) == 16, "size of struct veneer_cpuid_result");
VENEER_STATIC_ASSERT(offsetof(struct veneer_cpuid_result, eax) == 0, "offset of struct veneer_cpuid_result.eax");
VENEER_STATIC_ASSERT(offsetof(struct veneer_cpuid_result, ebx) == 4, "offset of struct veneer_cpuid_result.ebx");
VENEER_STATIC_ASSERT(offsetof(struct veneer_cpuid_result, ecx) == 8, "offset of struct veneer_cpuid_result.ecx");
VENEER_STATIC_ASSERT(offsetof(struct veneer_cpuid_result, edx) == 12, "offset of struct veneer_cpuid_result.edx");

/* `msr` (constants): MSRs `msr_read` and `msr_write` accept; any other answers `NotFound`. */
/* IA32_APIC_BASE: reads as 0 (no local APIC is visible); not writable. */
#define VENEER_MSR_APIC_BASE      27U
/*
 * IA32_MISC_ENABLE: reads the host value masked to the
 * fast-strings and enhanced-SpeedStep bits; writes ignored.
 */
#define VENEER_MSR_MISC_ENABLE    0x1a0U
/*
 * IA32_PAT: reads the fixed PAT the hypervisor programs; writes of
 * that value succeed, others answer `Invalid`.
 */
#define VENEER_MSR_PAT            0x277U
/* IA32_EFER: reads the hypervisor's value (LME, LMA, SCE, NXE); writes ignored. */
#define VENEER_MSR_EFER           0xc0000080U
/* FS base: as `set_segment_base(Fs)`. */
#define VENEER_MSR_FS_BASE        0xc0000100U
/* GS base: as `set_segment_base(GsKernel)`. */
#define VENEER_MSR_GS_BASE        0xc0000101U
/* Kernel GS base (the inactive one): as `set_segment_base(GsUser)`. */
#define VENEER_MSR_KERNEL_GS_BASE 0xc0000102U
/*
 * IA32_TSC_AUX (what `rdtscp` and `rdpid` return): per vCPU,
 * readable and writable (low 32 bits).
 */
#define VENEER_MSR_TSC_AUX        0xc0000103U

/* `descriptor` (constants): Descriptor validation (`update_descriptor`, `set_gdt`, `set_ldt`). */
/* Bytes per descriptor. */
#define VENEER_DESC_SIZE       8ULL
/* The DPL field (bits 45–46); must be 3 in a present descriptor. */
#define VENEER_DESC_DPL_MASK   0x600000000000ULL
/*
 * The S bit (bit 44): must be 1 (code or data) in a present
 * descriptor; system descriptors and gates are refused.
 */
#define VENEER_DESC_S_BIT      0x100000000000ULL
/* The present bit (bit 47); a non-present descriptor is accepted as is. */
#define VENEER_DESC_PRESENT    0x800000000000ULL
/* Type bits 42 (conforming, for code): a conforming code segment is refused. */
#define VENEER_DESC_CONFORMING 0x40000000000ULL
/* Bit 43: code (1) or data (0). */
#define VENEER_DESC_CODE       0x80000000000ULL

#endif /* VENEER_CPU_H */
