/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * veneer/memory.h: Veneer hypercall ABI 1.0, page-table updates, pinning, TLB flushes, memory maps, reservations.
 *
 * GENERATED from the hypercall-abi crate; do not edit. Regenerate with
 *     cargo run -p veneer-abi-cgen
 * The semantics are specified in hypercall-abi/SPEC.md.
 */
#ifndef VENEER_MEMORY_H
#define VENEER_MEMORY_H

#include "veneer/types.h"

/* `memory_consts` (constants): Fixed addresses and limits of the memory interface. */
/* Bytes in a page and a frame. */
#define VENEER_MEM_PAGE_SIZE                0x1000ULL
/*
 * First virtual address the hypervisor reserves in every address
 * space (top-level slot 256).
 */
#define VENEER_MEM_HYPERVISOR_VIRT_START    0xffff800000000000ULL
/* One past the last reserved address (slot 272 starts here). */
#define VENEER_MEM_HYPERVISOR_VIRT_END      0xffff880000000000ULL
/* First reserved top-level (L4) slot. */
#define VENEER_MEM_HYPERVISOR_L4_FIRST_SLOT 0x100ULL
/* Last reserved top-level slot. */
#define VENEER_MEM_HYPERVISOR_L4_LAST_SLOT  0x10fULL
/*
 * Where the read-only m2p table (u64 per machine frame: its pfn)
 * is mapped in every guest address space.
 */
#define VENEER_MEM_M2P_VIRT_START           0xffff800000000000ULL
/* One past the end of the m2p window (256 GiB: 2^35 frames). */
#define VENEER_MEM_M2P_VIRT_END             0xffff804000000000ULL
/* An m2p or p2m entry with no frame behind it. */
#define VENEER_MEM_INVALID_FRAME            0xffffffffffffffffULL
/* The most entries one `mmu_update` takes. */
#define VENEER_MEM_MMU_UPDATE_MAX           0x200ULL
/* The most operations one `mmuext_op` takes. */
#define VENEER_MEM_MMUEXT_OP_MAX            128ULL
/* The most extents one reservation call takes. */
#define VENEER_MEM_RESERVATION_MAX          0x200ULL
/*
 * The largest extent order: 9 (2 MiB) with `SUPERPAGE_2M` or for
 * `reservation_exchange`; 0 otherwise.
 */
#define VENEER_MEM_EXTENT_ORDER_MAX         9ULL
/* The most entries a memory map has. */
#define VENEER_MEM_MEMORY_MAP_MAX           128ULL

/*
 * `pte` (constants): Bits of a page-table entry as the hypervisor validates them (the
 * x86-64 format; `val` of `mmu_update` and `update_va_mapping`).
 */
/* Present. */
#define VENEER_PTE_PRESENT    1ULL
/* Writable. */
#define VENEER_PTE_RW         2ULL
/*
 * User. The hypervisor sets it in every guest entry it writes
 * (guest kernels run in ring 3); guests may leave it clear.
 */
#define VENEER_PTE_USER       4ULL
/* Write-through. */
#define VENEER_PTE_PWT        8ULL
/* Cache disable. */
#define VENEER_PTE_PCD        16ULL
/* Accessed. */
#define VENEER_PTE_ACCESSED   32ULL
/* Dirty (L1 entries and superpages). */
#define VENEER_PTE_DIRTY      64ULL
/* Page size in L2 entries (needs `SUPERPAGE_2M`); PAT in L1 entries. */
#define VENEER_PTE_PSE        128ULL
/* Global: refused (`Invalid`); the hypervisor owns global mappings. */
#define VENEER_PTE_GLOBAL     0x100ULL
/* Bits 9–11: free for the guest; the hypervisor ignores and keeps them. */
#define VENEER_PTE_AVAIL_LOW  0xe00ULL
/* Machine-address bits 12–51. */
#define VENEER_PTE_FRAME      0xffffffffff000ULL
/* Bits 52–62: free for the guest; ignored and kept. */
#define VENEER_PTE_AVAIL_HIGH 0x7ff0000000000000ULL
/* No-execute. */
#define VENEER_PTE_NX         0x8000000000000000ULL

/* `MmuUpdateCmd` (values): Command in the low two bits of `MmuUpdate::ptr`. */
/* Write `val` to the entry at machine address `ptr & !7`. */
#define VENEER_MMU_PT_UPDATE             0ULL
/* Set the m2p entry of machine frame `ptr >> 12` to pfn `val`. */
#define VENEER_MMU_MACHPHYS_UPDATE       1ULL
/*
 * As `PtUpdate`, but keep the accessed and dirty bits the CPU set in
 * the old entry meanwhile (for read-modify-write of live entries).
 */
#define VENEER_MMU_PT_UPDATE_PRESERVE_AD 2ULL

/* One entry of `mmu_update`. */
struct veneer_mmu_update {
    /*
     * [0x0] Machine address of the target (8-byte aligned) with an
     * `MmuUpdateCmd` in bits 0–1.
     */
    uint64_t ptr;
    /* [0x8] The new entry, or the pfn for `MachphysUpdate`. */
    uint64_t val;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_mmu_update) == 16, "size of struct veneer_mmu_update");
VENEER_STATIC_ASSERT(offsetof(struct veneer_mmu_update, ptr) == 0, "offset of struct veneer_mmu_update.ptr");
VENEER_STATIC_ASSERT(offsetof(struct veneer_mmu_update, val) == 8, "offset of struct veneer_mmu_update.val");

/* `MmuextCmd` (values): `MmuextOp::cmd`. */
/* Validate frame `arg1` (mfn) as an L1 table and pin it. */
#define VENEER_MMUEXT_PIN_L1           0U
/* Validate frame `arg1` as an L2 table and pin it. */
#define VENEER_MMUEXT_PIN_L2           1U
/* Validate frame `arg1` as an L3 table and pin it. */
#define VENEER_MMUEXT_PIN_L3           2U
/* Validate frame `arg1` as an L4 table and pin it. */
#define VENEER_MMUEXT_PIN_L4           3U
/* Drop the pin on frame `arg1`. */
#define VENEER_MMUEXT_UNPIN            4U
/* Use L4 frame `arg1` as the kernel-mode base (CR3) of this vCPU. */
#define VENEER_MMUEXT_NEW_BASEPTR      5U
/* Use L4 frame `arg1` as the user-mode base of this vCPU; 0: none. */
#define VENEER_MMUEXT_NEW_USER_BASEPTR 6U
/* Flush this vCPU's TLB (non-global entries of both address spaces). */
#define VENEER_MMUEXT_TLB_FLUSH_LOCAL  7U
/* Invalidate the translation of virtual address `arg1` on this vCPU. */
#define VENEER_MMUEXT_INVLPG_LOCAL     8U
/* Flush the TLBs of the vCPUs in mask `arg2`. */
#define VENEER_MMUEXT_TLB_FLUSH_MULTI  9U
/* Invalidate `arg1` on the vCPUs in mask `arg2`. */
#define VENEER_MMUEXT_INVLPG_MULTI     10U
/* Flush the TLBs of all the domain's vCPUs. */
#define VENEER_MMUEXT_TLB_FLUSH_ALL    11U
/* Invalidate `arg1` on all the domain's vCPUs. */
#define VENEER_MMUEXT_INVLPG_ALL       12U

/* One operation of `mmuext_op`. */
struct veneer_mmuext_op {
    /* [0x0] An `MmuextCmd`. */
    uint32_t cmd;
    /* [0x4] Must be zero. */
    uint32_t reserved0;
    /* [0x8] Machine frame or virtual address, per command; else zero. */
    uint64_t arg1;
    /* [0x10] vCPU mask (bit n: vCPU n) for the `*Multi` commands; else zero. */
    uint64_t arg2;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_mmuext_op) == 24, "size of struct veneer_mmuext_op");
VENEER_STATIC_ASSERT(offsetof(struct veneer_mmuext_op, cmd) == 0, "offset of struct veneer_mmuext_op.cmd");
VENEER_STATIC_ASSERT(offsetof(struct veneer_mmuext_op, reserved0) == 4, "offset of struct veneer_mmuext_op.reserved0");
VENEER_STATIC_ASSERT(offsetof(struct veneer_mmuext_op, arg1) == 8, "offset of struct veneer_mmuext_op.arg1");
VENEER_STATIC_ASSERT(offsetof(struct veneer_mmuext_op, arg2) == 16, "offset of struct veneer_mmuext_op.arg2");

/*
 * `uvmf` (constants): `update_va_mapping` flags (third argument). Bits 0–1 choose the flush;
 * bit 2 widens it from the calling vCPU to the vCPUs in the fourth
 * argument's mask; bit 3 to all the domain's vCPUs.
 */
/* No flush. */
#define VENEER_UVMF_NONE       0ULL
/* Flush the whole TLB. */
#define VENEER_UVMF_TLB_FLUSH  1ULL
/* Invalidate only `va`. */
#define VENEER_UVMF_INVLPG     2ULL
/* Bits 0–1. */
#define VENEER_UVMF_FLUSH_MASK 3ULL
/* Flush on the vCPUs in the mask argument instead of only the caller. */
#define VENEER_UVMF_MULTI      4ULL
/* Flush on every vCPU of the domain. */
#define VENEER_UVMF_ALL        8ULL

/* `MemoryKind` (values): `MemoryMapEntry::kind`. */
/* Usable RAM. */
#define VENEER_MEMORY_RAM              1U
/* Reserved: not RAM, not to be used. */
#define VENEER_MEMORY_RESERVED         2U
/* ACPI tables, reclaimable after they are read. */
#define VENEER_MEMORY_ACPI_RECLAIMABLE 3U
/* ACPI non-volatile storage. */
#define VENEER_MEMORY_ACPI_NVS         4U
/* Unusable (bad) memory. */
#define VENEER_MEMORY_UNUSABLE         5U

/* One range of a memory map. */
struct veneer_memory_map_entry {
    /*
     * [0x0] Start address (pseudo-physical for `memory_map`, machine for
     * `machine_memory_map`), page aligned.
     */
    uint64_t addr;
    /* [0x8] Length in bytes, a multiple of the page size. */
    uint64_t len;
    /* [0x10] A `MemoryKind`. */
    uint32_t kind;
    /* [0x14] Must be zero. */
    uint32_t reserved0;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_memory_map_entry) == 24, "size of struct veneer_memory_map_entry");
VENEER_STATIC_ASSERT(offsetof(struct veneer_memory_map_entry, addr) == 0, "offset of struct veneer_memory_map_entry.addr");
VENEER_STATIC_ASSERT(offsetof(struct veneer_memory_map_entry, len) == 8, "offset of struct veneer_memory_map_entry.len");
VENEER_STATIC_ASSERT(offsetof(struct veneer_memory_map_entry, kind) == 16, "offset of struct veneer_memory_map_entry.kind");
VENEER_STATIC_ASSERT(offsetof(struct veneer_memory_map_entry, reserved0) == 20, "offset of struct veneer_memory_map_entry.reserved0");

/* Argument of `reservation_increase` and `reservation_decrease`. */
struct veneer_reservation {
    /*
     * [0x0] Guest virtual address of an array of `nr_extents` u64. Increase:
     * pfns in, first machine frame of each new extent out. Decrease:
     * first machine frame of each extent to give back.
     */
    uint64_t extents;
    /* [0x8] Entries in the array, at most `RESERVATION_MAX`. */
    uint32_t nr_extents;
    /* [0xc] log2 of the frames per extent. */
    uint32_t extent_order;
    /*
     * [0x10] Highest machine address bit the frames may use (0: any); only
     * for increase.
     */
    uint32_t address_bits;
    /* [0x14] `DOMID_SELF`, or (privileged) the domain to act on. */
    uint32_t domid;
    /* [0x18] Must be zero. */
    uint64_t reserved0;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_reservation) == 32, "size of struct veneer_reservation");
VENEER_STATIC_ASSERT(offsetof(struct veneer_reservation, extents) == 0, "offset of struct veneer_reservation.extents");
VENEER_STATIC_ASSERT(offsetof(struct veneer_reservation, nr_extents) == 8, "offset of struct veneer_reservation.nr_extents");
VENEER_STATIC_ASSERT(offsetof(struct veneer_reservation, extent_order) == 12, "offset of struct veneer_reservation.extent_order");
VENEER_STATIC_ASSERT(offsetof(struct veneer_reservation, address_bits) == 16, "offset of struct veneer_reservation.address_bits");
VENEER_STATIC_ASSERT(offsetof(struct veneer_reservation, domid) == 20, "offset of struct veneer_reservation.domid");
VENEER_STATIC_ASSERT(offsetof(struct veneer_reservation, reserved0) == 24, "offset of struct veneer_reservation.reserved0");

/*
 * Argument of `reservation_exchange`: give `input` extents, take
 * `output` extents of the same total size.
 */
struct veneer_reservation_exchange {
    /* [0x0] The frames given (a decrease-style `Reservation`). */
    struct veneer_reservation input;
    /* [0x20] The frames taken (an increase-style `Reservation`). */
    struct veneer_reservation output;
    /* [0x40] Out: input extents exchanged (all of them or none in v1). */
    uint64_t nr_exchanged;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_reservation_exchange) == 72, "size of struct veneer_reservation_exchange");
VENEER_STATIC_ASSERT(offsetof(struct veneer_reservation_exchange, input) == 0, "offset of struct veneer_reservation_exchange.input");
VENEER_STATIC_ASSERT(offsetof(struct veneer_reservation_exchange, output) == 32, "offset of struct veneer_reservation_exchange.output");
VENEER_STATIC_ASSERT(offsetof(struct veneer_reservation_exchange, nr_exchanged) == 64, "offset of struct veneer_reservation_exchange.nr_exchanged");

/* What `reservation_query` writes. */
struct veneer_reservation_info {
    /* [0x0] Frames the domain owns now. */
    uint64_t current_pages;
    /* [0x8] Frames it may own at most. */
    uint64_t max_pages;
    /* [0x10] Frames the hypervisor has free for any domain. */
    uint64_t free_pages;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_reservation_info) == 24, "size of struct veneer_reservation_info");
VENEER_STATIC_ASSERT(offsetof(struct veneer_reservation_info, current_pages) == 0, "offset of struct veneer_reservation_info.current_pages");
VENEER_STATIC_ASSERT(offsetof(struct veneer_reservation_info, max_pages) == 8, "offset of struct veneer_reservation_info.max_pages");
VENEER_STATIC_ASSERT(offsetof(struct veneer_reservation_info, free_pages) == 16, "offset of struct veneer_reservation_info.free_pages");

#endif /* VENEER_MEMORY_H */
