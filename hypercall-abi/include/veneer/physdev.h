/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * veneer/physdev.h: Veneer hypercall ABI 1.0, physical devices for driver domains.
 *
 * GENERATED from the hypercall-abi crate; do not edit. Regenerate with
 *     cargo run -p veneer-abi-cgen
 * The semantics are specified in hypercall-abi/SPEC.md.
 */
#ifndef VENEER_PHYSDEV_H
#define VENEER_PHYSDEV_H

#include "veneer/types.h"

/* `irq_flags` (constants): `physdev_irq_bind` flags. */
/* Level-triggered (needs `physdev_irq_eoi` after each event); else edge. */
#define VENEER_IRQF_LEVEL      1ULL
/* Active low; else active high. */
#define VENEER_IRQF_ACTIVE_LOW 2ULL

/* `msi_flags` (constants): `physdev_msi_bind` flags. */
/*
 * Use the function's MSI-X capability (`entry` is the table index);
 * else its MSI capability (`entry` is the vector number within a
 * multi-message block, 0 for single).
 */
#define VENEER_MSIF_MSIX 1ULL

/* `physdev_consts` (constants): Physical-device limits. */
/* Bytes of a function's configuration space (extended). */
#define VENEER_PHYSDEV_PCI_CONFIG_SIZE 0x1000ULL
/*
 * Ports `0xcf8–0xcff` (configuration mechanism #1) are never
 * permitted: configuration space goes through the calls.
 */
#define VENEER_PHYSDEV_PCI_CONFIG_PORT 0xcf8ULL

#endif /* VENEER_PHYSDEV_H */
