/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * veneer/domctl.h: Veneer hypercall ABI 1.0, domain control.
 *
 * GENERATED from the hypercall-abi crate; do not edit. Regenerate with
 *     cargo run -p veneer-abi-cgen
 * The semantics are specified in hypercall-abi/SPEC.md.
 */
#ifndef VENEER_DOMCTL_H
#define VENEER_DOMCTL_H

#include "veneer/types.h"

/* `domain_create_flags` (constants): `DomainCreate::flags`. */
/* The new domain may hold I/O permissions (a driver domain). */
#define VENEER_DOMCREATEF_DRIVER 1U

/* Argument of `domain_create`. */
struct veneer_domain_create {
    /* [0x0] vCPUs, 1 .. `VCPU_MAX`. */
    uint32_t max_vcpus;
    /* [0x4] `domain_create_flags` bits. */
    uint32_t flags;
    /* [0x8] Frames to give the domain when it is built. */
    uint64_t nr_pages;
    /* [0x10] The most frames it may ever own (≥ `nr_pages`). */
    uint64_t max_pages;
    /* [0x18] Must be zero. */
    uint64_t reserved0;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_domain_create) == 32, "size of struct veneer_domain_create");
VENEER_STATIC_ASSERT(offsetof(struct veneer_domain_create, max_vcpus) == 0, "offset of struct veneer_domain_create.max_vcpus");
VENEER_STATIC_ASSERT(offsetof(struct veneer_domain_create, flags) == 4, "offset of struct veneer_domain_create.flags");
VENEER_STATIC_ASSERT(offsetof(struct veneer_domain_create, nr_pages) == 8, "offset of struct veneer_domain_create.nr_pages");
VENEER_STATIC_ASSERT(offsetof(struct veneer_domain_create, max_pages) == 16, "offset of struct veneer_domain_create.max_pages");
VENEER_STATIC_ASSERT(offsetof(struct veneer_domain_create, reserved0) == 24, "offset of struct veneer_domain_create.reserved0");

/*
 * Argument of `domain_build`: the image and what the guest gets in its
 * start-info page. All buffers are in the caller's address space and
 * are copied before the call returns.
 */
struct veneer_domain_build {
    /* [0x0] Address of the ELF image. */
    uint64_t image;
    /* [0x8] Its length in bytes. */
    uint64_t image_len;
    /* [0x10] Address of the ramdisk, 0 for none. */
    uint64_t ramdisk;
    /* [0x18] Its length. */
    uint64_t ramdisk_len;
    /* [0x20] Address of the command line (no NUL needed). */
    uint64_t cmdline;
    /* [0x28] Its length, below `CMDLINE_MAX`. */
    uint64_t cmdline_len;
    /* [0x30] Must be zero. */
    uint64_t reserved0;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_domain_build) == 56, "size of struct veneer_domain_build");
VENEER_STATIC_ASSERT(offsetof(struct veneer_domain_build, image) == 0, "offset of struct veneer_domain_build.image");
VENEER_STATIC_ASSERT(offsetof(struct veneer_domain_build, image_len) == 8, "offset of struct veneer_domain_build.image_len");
VENEER_STATIC_ASSERT(offsetof(struct veneer_domain_build, ramdisk) == 16, "offset of struct veneer_domain_build.ramdisk");
VENEER_STATIC_ASSERT(offsetof(struct veneer_domain_build, ramdisk_len) == 24, "offset of struct veneer_domain_build.ramdisk_len");
VENEER_STATIC_ASSERT(offsetof(struct veneer_domain_build, cmdline) == 32, "offset of struct veneer_domain_build.cmdline");
VENEER_STATIC_ASSERT(offsetof(struct veneer_domain_build, cmdline_len) == 40, "offset of struct veneer_domain_build.cmdline_len");
VENEER_STATIC_ASSERT(offsetof(struct veneer_domain_build, reserved0) == 48, "offset of struct veneer_domain_build.reserved0");

/* `domain_flags` (constants): `DomainInfo::flags`. */
/* Built: `domain_build` succeeded. */
#define VENEER_DOMINFO_BUILT      1U
/* Paused by `domain_pause` (or never unpaused). */
#define VENEER_DOMINFO_PAUSED     2U
/* Shut down: `shutdown_reason` and `shutdown_code` are valid. */
#define VENEER_DOMINFO_SHUTDOWN   4U
/* Being destroyed; its resources are still being released. */
#define VENEER_DOMINFO_DYING      8U
/* The privileged domain. */
#define VENEER_DOMINFO_PRIVILEGED 16U
/* A driver domain. */
#define VENEER_DOMINFO_DRIVER     32U

/* What `domain_query` writes. */
struct veneer_domain_info {
    /* [0x0] The domain's id. */
    uint32_t domid;
    /* [0x4] `domain_flags` bits. */
    uint32_t flags;
    /* [0x8] The `ShutdownReason` (if `SHUTDOWN`). */
    uint32_t shutdown_reason;
    /* [0xc] The code passed to `sched_shutdown` (if `SHUTDOWN`). */
    uint32_t shutdown_code;
    /* [0x10] Frames owned now. */
    uint64_t nr_pages;
    /* [0x18] The most frames it may own. */
    uint64_t max_pages;
    /* [0x20] vCPUs it has. */
    uint32_t nr_vcpus;
    /* [0x24] vCPUs online now. */
    uint32_t nr_online_vcpus;
    /* [0x28] Total ns its vCPUs have run. */
    uint64_t cpu_time;
    /* [0x30] Must be zero. */
    uint64_t reserved0;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_domain_info) == 56, "size of struct veneer_domain_info");
VENEER_STATIC_ASSERT(offsetof(struct veneer_domain_info, domid) == 0, "offset of struct veneer_domain_info.domid");
VENEER_STATIC_ASSERT(offsetof(struct veneer_domain_info, flags) == 4, "offset of struct veneer_domain_info.flags");
VENEER_STATIC_ASSERT(offsetof(struct veneer_domain_info, shutdown_reason) == 8, "offset of struct veneer_domain_info.shutdown_reason");
VENEER_STATIC_ASSERT(offsetof(struct veneer_domain_info, shutdown_code) == 12, "offset of struct veneer_domain_info.shutdown_code");
VENEER_STATIC_ASSERT(offsetof(struct veneer_domain_info, nr_pages) == 16, "offset of struct veneer_domain_info.nr_pages");
VENEER_STATIC_ASSERT(offsetof(struct veneer_domain_info, max_pages) == 24, "offset of struct veneer_domain_info.max_pages");
VENEER_STATIC_ASSERT(offsetof(struct veneer_domain_info, nr_vcpus) == 32, "offset of struct veneer_domain_info.nr_vcpus");
VENEER_STATIC_ASSERT(offsetof(struct veneer_domain_info, nr_online_vcpus) == 36, "offset of struct veneer_domain_info.nr_online_vcpus");
VENEER_STATIC_ASSERT(offsetof(struct veneer_domain_info, cpu_time) == 40, "offset of struct veneer_domain_info.cpu_time");
VENEER_STATIC_ASSERT(offsetof(struct veneer_domain_info, reserved0) == 48, "offset of struct veneer_domain_info.reserved0");

/* `IoResource` (values): Second argument of `domain_io_permit`: which resource range. */
/* I/O ports `first .. first + count`. */
#define VENEER_IORES_PORTS         0ULL
/*
 * Machine frames of device memory (MMIO) `first .. first + count`;
 * RAM frames are refused.
 */
#define VENEER_IORES_MMIO_FRAMES   1ULL
/* Interrupt lines (GSIs) `first .. first + count`. */
#define VENEER_IORES_IRQS          2ULL
/*
 * PCI functions (`sbdf`) `first .. first + count`: their
 * configuration space and MSI.
 */
#define VENEER_IORES_PCI_FUNCTIONS 3ULL

#endif /* VENEER_DOMCTL_H */
