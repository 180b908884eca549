/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * veneer/start_info.h: Veneer hypercall ABI 1.0, the start-info page.
 *
 * GENERATED from the hypercall-abi crate; do not edit. Regenerate with
 *     cargo run -p veneer-abi-cgen
 * The semantics are specified in hypercall-abi/SPEC.md.
 */
#ifndef VENEER_START_INFO_H
#define VENEER_START_INFO_H

#include "veneer/types.h"

/* `start_info_consts` (constants): Start-info page constants. */
/* `StartInfo::magic`. */
#define VENEER_START_INFO_MAGIC       0x49535245454e4556ULL
/* `StartInfoExt::magic`. */
#define VENEER_START_INFO_EXT_MAGIC   0x58535245454e4556ULL
/* Offset of the `StartInfoExt` in the page. */
#define VENEER_START_INFO_EXT_OFFSET  0x480ULL
/* Bytes of command line, NUL included. */
#define VENEER_START_INFO_CMDLINE_MAX 0x400ULL

/* `start_flags` (constants): `StartInfoExt::flags`. */
/*
 * The domain is privileged: it may use domain control, the machine
 * memory map and foreign mappings.
 */
#define VENEER_SIF_PRIVILEGED    1ULL
/*
 * The domain owns the physical console: `console_read` and
 * `VIRQ_CONSOLE` are its.
 */
#define VENEER_SIF_CONSOLE_OWNER 2ULL
/*
 * The domain holds I/O permissions (ports, MMIO, interrupts) at
 * start: it is a driver domain.
 */
#define VENEER_SIF_DRIVER        4ULL

/* The first part of the start-info page (offset 0). */
struct veneer_start_info {
    /* [0x0] `START_INFO_MAGIC` ("VENEERSI"). */
    uint64_t magic;
    /* [0x8] ABI major version the hypervisor implements. */
    uint16_t abi_major;
    /* [0xa] ABI minor version the hypervisor implements. */
    uint16_t abi_minor;
    /* [0xc] This domain's id. */
    uint32_t domain_id;
    /* [0x10] Pseudo-physical frames the domain owns (frames 0 .. nr_pages). */
    uint64_t nr_pages;
    /* [0x18] First pseudo-physical frame not used by the bootstrap regions. */
    uint64_t first_free_pfn;
    /* [0x20] Virtual address of the p2m array. */
    uint64_t p2m_base;
    /* [0x28] Virtual address of the top-level page table (read-only mapping). */
    uint64_t pt_base;
    /* [0x30] Frames of bootstrap page tables, starting at `pt_base`. */
    uint64_t nr_pt_frames;
    /* [0x38] Virtual address of the domain's ramdisk, 0 if none. */
    uint64_t ramdisk_base;
    /* [0x40] Length in bytes of the domain's ramdisk, 0 if none. */
    uint64_t ramdisk_len;
    /* [0x48] Feature bits the hypervisor offers. */
    uint64_t features;
    /* [0x50] Must be zero. */
    uint64_t reserved0[6];
    /* [0x80] NUL-terminated command line from the domain configuration. */
    uint8_t cmdline[1024];
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_start_info) == 1152, "size of struct veneer_start_info");
VENEER_STATIC_ASSERT(offsetof(struct veneer_start_info, magic) == 0, "offset of struct veneer_start_info.magic");
VENEER_STATIC_ASSERT(offsetof(struct veneer_start_info, abi_major) == 8, "offset of struct veneer_start_info.abi_major");
VENEER_STATIC_ASSERT(offsetof(struct veneer_start_info, abi_minor) == 10, "offset of struct veneer_start_info.abi_minor");
VENEER_STATIC_ASSERT(offsetof(struct veneer_start_info, domain_id) == 12, "offset of struct veneer_start_info.domain_id");
VENEER_STATIC_ASSERT(offsetof(struct veneer_start_info, nr_pages) == 16, "offset of struct veneer_start_info.nr_pages");
VENEER_STATIC_ASSERT(offsetof(struct veneer_start_info, first_free_pfn) == 24, "offset of struct veneer_start_info.first_free_pfn");
VENEER_STATIC_ASSERT(offsetof(struct veneer_start_info, p2m_base) == 32, "offset of struct veneer_start_info.p2m_base");
VENEER_STATIC_ASSERT(offsetof(struct veneer_start_info, pt_base) == 40, "offset of struct veneer_start_info.pt_base");
VENEER_STATIC_ASSERT(offsetof(struct veneer_start_info, nr_pt_frames) == 48, "offset of struct veneer_start_info.nr_pt_frames");
VENEER_STATIC_ASSERT(offsetof(struct veneer_start_info, ramdisk_base) == 56, "offset of struct veneer_start_info.ramdisk_base");
VENEER_STATIC_ASSERT(offsetof(struct veneer_start_info, ramdisk_len) == 64, "offset of struct veneer_start_info.ramdisk_len");
VENEER_STATIC_ASSERT(offsetof(struct veneer_start_info, features) == 72, "offset of struct veneer_start_info.features");
VENEER_STATIC_ASSERT(offsetof(struct veneer_start_info, reserved0) == 80, "offset of struct veneer_start_info.reserved0");
VENEER_STATIC_ASSERT(offsetof(struct veneer_start_info, cmdline) == 128, "offset of struct veneer_start_info.cmdline");

/*
 * The second part of the start-info page (offset `START_INFO_EXT_OFFSET`):
 * what the domain needs beyond its memory layout.
 */
struct veneer_start_info_ext {
    /* [0x0] `START_INFO_EXT_MAGIC` ("VENEERSX"). */
    uint64_t magic;
    /* [0x8] `start_flags` bits: what this domain may do. */
    uint64_t flags;
    /*
     * [0x10] Machine frame of the shared-info page; the guest may map it
     * elsewhere with `update_va_mapping` (read-write).
     */
    uint64_t shared_info_mfn;
    /*
     * [0x18] vCPUs the domain has (ids 0 .. nr_vcpus); only vCPU 0 is online
     * at entry.
     */
    uint32_t nr_vcpus;
    /*
     * [0x1c] Handle of the domain's console device slot, `DEVICE_NONE` if it
     * has none (the privileged domain uses `console_write`/`console_read`).
     */
    uint32_t console_device;
    /* [0x20] Virtual address of the read-only m2p table (`M2P_VIRT_START`). */
    uint64_t m2p_base;
    /* [0x28] Entries in the m2p table: one more than the highest machine frame. */
    uint64_t m2p_nr_entries;
    /*
     * [0x30] Virtual address at which the bootstrap address space maps the
     * shared-info page read-write: the page after the boot stack.
     */
    uint64_t shared_info_va;
    /* [0x38] Must be zero. */
    uint64_t reserved0[9];
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_start_info_ext) == 128, "size of struct veneer_start_info_ext");
VENEER_STATIC_ASSERT(offsetof(struct veneer_start_info_ext, magic) == 0, "offset of struct veneer_start_info_ext.magic");
VENEER_STATIC_ASSERT(offsetof(struct veneer_start_info_ext, flags) == 8, "offset of struct veneer_start_info_ext.flags");
VENEER_STATIC_ASSERT(offsetof(struct veneer_start_info_ext, shared_info_mfn) == 16, "offset of struct veneer_start_info_ext.shared_info_mfn");
VENEER_STATIC_ASSERT(offsetof(struct veneer_start_info_ext, nr_vcpus) == 24, "offset of struct veneer_start_info_ext.nr_vcpus");
VENEER_STATIC_ASSERT(offsetof(struct veneer_start_info_ext, console_device) == 28, "offset of struct veneer_start_info_ext.console_device");
VENEER_STATIC_ASSERT(offsetof(struct veneer_start_info_ext, m2p_base) == 32, "offset of struct veneer_start_info_ext.m2p_base");
VENEER_STATIC_ASSERT(offsetof(struct veneer_start_info_ext, m2p_nr_entries) == 40, "offset of struct veneer_start_info_ext.m2p_nr_entries");
VENEER_STATIC_ASSERT(offsetof(struct veneer_start_info_ext, shared_info_va) == 48, "offset of struct veneer_start_info_ext.shared_info_va");
VENEER_STATIC_ASSERT(offsetof(struct veneer_start_info_ext, reserved0) == 56, "offset of struct veneer_start_info_ext.reserved0");

#endif /* VENEER_START_INFO_H */
