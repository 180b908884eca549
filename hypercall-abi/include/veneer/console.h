/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * veneer/console.h: Veneer hypercall ABI 1.0, the console protocol.
 *
 * GENERATED from the hypercall-abi crate; do not edit. Regenerate with
 *     cargo run -p veneer-abi-cgen
 * The semantics are specified in hypercall-abi/SPEC.md.
 */
#ifndef VENEER_CONSOLE_H
#define VENEER_CONSOLE_H

#include "veneer/types.h"

/* `ConsoleOp` (values): `ConsoleSlot::op`. */
/* Request: `data[..len]` is output. Response: `len` bytes were taken. */
#define VENEER_CONSOLE_OP_WRITE 0U
/*
 * Request: up to `len` bytes of input wanted. Response: `data[..len]`
 * is input (the backend answers when it has at least one byte).
 */
#define VENEER_CONSOLE_OP_READ  1U

/* `console_consts` (constants): Console protocol constants. */
/* Bytes per slot. */
#define VENEER_CONSOLE_SLOT_SIZE 64ULL
/* Data bytes per slot. */
#define VENEER_CONSOLE_DATA_MAX  56ULL

/* A console request or response (same layout both ways). */
struct veneer_console_slot {
    /* [0x0] A `ConsoleOp`. */
    uint8_t op;
    /* [0x1] Must be zero. */
    uint8_t reserved0;
    /* [0x2] Bytes of `data` used (request: wanted, for `Read`). */
    uint16_t len;
    /* [0x4] Echoed in the response. */
    uint32_t id;
    /* [0x8] The bytes. */
    uint8_t data[56];
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_console_slot) == 64, "size of struct veneer_console_slot");
VENEER_STATIC_ASSERT(offsetof(struct veneer_console_slot, op) == 0, "offset of struct veneer_console_slot.op");
VENEER_STATIC_ASSERT(offsetof(struct veneer_console_slot, reserved0) == 1, "offset of struct veneer_console_slot.reserved0");
VENEER_STATIC_ASSERT(offsetof(struct veneer_console_slot, len) == 2, "offset of struct veneer_console_slot.len");
VENEER_STATIC_ASSERT(offsetof(struct veneer_console_slot, id) == 4, "offset of struct veneer_console_slot.id");
VENEER_STATIC_ASSERT(offsetof(struct veneer_console_slot, data) == 8, "offset of struct veneer_console_slot.data");

#endif /* VENEER_CONSOLE_H */
