/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * veneer/note.h: Veneer hypercall ABI 1.0, the guest ELF note.
 *
 * GENERATED from the hypercall-abi crate; do not edit. Regenerate with
 *     cargo run -p veneer-abi-cgen
 * The semantics are specified in hypercall-abi/SPEC.md.
 */
#ifndef VENEER_NOTE_H
#define VENEER_NOTE_H

#include "veneer/types.h"

/* `note_consts` (constants): The guest ELF note. */
/*
 * Note type of the guest descriptor (`NOTE_TYPE_GUEST`); the owner
 * name is the 7 bytes `"Veneer\0"` (`namesz` 7).
 */
#define VENEER_NOTE_TYPE_GUEST 1U
/* `namesz` of the note: the length of `"Veneer"` plus its NUL. */
#define VENEER_NOTE_NAME_SIZE  7U

/* Descriptor of the guest note. */
struct veneer_guest_note {
    /* [0x0] ABI major version the guest was built against. */
    uint16_t abi_major;
    /* [0x2] ABI minor version the guest was built against. */
    uint16_t abi_minor;
    /* [0x4] Must be zero. */
    uint32_t reserved0;
    /*
     * [0x8] Features the guest cannot run without; the builder refuses the
     * image if the hypervisor lacks any.
     */
    uint64_t required_features;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_guest_note) == 16, "size of struct veneer_guest_note");
VENEER_STATIC_ASSERT(offsetof(struct veneer_guest_note, abi_major) == 0, "offset of struct veneer_guest_note.abi_major");
VENEER_STATIC_ASSERT(offsetof(struct veneer_guest_note, abi_minor) == 2, "offset of struct veneer_guest_note.abi_minor");
VENEER_STATIC_ASSERT(offsetof(struct veneer_guest_note, reserved0) == 4, "offset of struct veneer_guest_note.reserved0");
VENEER_STATIC_ASSERT(offsetof(struct veneer_guest_note, required_features) == 8, "offset of struct veneer_guest_note.required_features");

#endif /* VENEER_NOTE_H */
