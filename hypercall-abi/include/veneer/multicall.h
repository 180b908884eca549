/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * veneer/multicall.h: Veneer hypercall ABI 1.0, multicall.
 *
 * GENERATED from the hypercall-abi crate; do not edit. Regenerate with
 *     cargo run -p veneer-abi-cgen
 * The semantics are specified in hypercall-abi/SPEC.md.
 */
#ifndef VENEER_MULTICALL_H
#define VENEER_MULTICALL_H

#include "veneer/types.h"

/* `multicall_consts` (constants): Multicall limits. */
/* The most entries one `multicall` takes. */
#define VENEER_MULTICALL_MAX 64ULL

/* One call of a `multicall`. */
struct veneer_multicall_entry {
    /* [0x0] The hypercall number. */
    uint64_t op;
    /* [0x8] Its arguments, as they would be in `rdi rsi rdx r10 r8 r9`. */
    uint64_t args[6];
    /* [0x38] Out: what the call would have returned in `rax`. */
    uint64_t result;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_multicall_entry) == 64, "size of struct veneer_multicall_entry");
VENEER_STATIC_ASSERT(offsetof(struct veneer_multicall_entry, op) == 0, "offset of struct veneer_multicall_entry.op");
VENEER_STATIC_ASSERT(offsetof(struct veneer_multicall_entry, args) == 8, "offset of struct veneer_multicall_entry.args");
VENEER_STATIC_ASSERT(offsetof(struct veneer_multicall_entry, result) == 56, "offset of struct veneer_multicall_entry.result");

#endif /* VENEER_MULTICALL_H */
