/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * veneer/version.h: Veneer hypercall ABI 1.0, ABI version, error codes, feature bits, reserved domain ids.
 *
 * GENERATED from the hypercall-abi crate; do not edit. Regenerate with
 *     cargo run -p veneer-abi-cgen
 * The semantics are specified in hypercall-abi/SPEC.md.
 */
#ifndef VENEER_VERSION_H
#define VENEER_VERSION_H

#include "veneer/types.h"

/* `abi_version` (constants): The ABI version this crate and these headers describe. */
/* Major version (`ABI_MAJOR`): bumped only by a breaking change. */
#define VENEER_ABI_MAJOR 1U
/* Minor version (`ABI_MINOR`): bumped by every backwards-compatible addition. */
#define VENEER_ABI_MINOR 0U

/* `Error` (values): Why a hypercall failed. */
/* The caller lacks the privilege or the permission the call needs. */
#define VENEER_E_NOT_PERMITTED 1
/* The named object (port, grant, domain, vCPU, device, ...) does not exist. */
#define VENEER_E_NOT_FOUND     2
/* A buffer or list is larger than the call accepts. */
#define VENEER_E_TOO_BIG       7
/*
 * The image given to the domain builder is not a loadable Veneer
 * guest: bad ELF, no guest note, an ABI version or required feature
 * this hypervisor does not offer.
 */
#define VENEER_E_BAD_IMAGE     8
/*
 * The call would block or a resource is temporarily exhausted; the
 * same call may succeed later.
 */
#define VENEER_E_AGAIN         11
/* The hypervisor is out of memory. */
#define VENEER_E_NO_MEMORY     12
/*
 * A guest pointer is not mapped, not canonical, not accessible, or
 * points into the hypervisor's reserved range.
 */
#define VENEER_E_BAD_ADDRESS   14
/* The object is in use. */
#define VENEER_E_BUSY          16
/* The object exists already. */
#define VENEER_E_EXISTS        17
/*
 * An argument is out of range or malformed, or a reserved field is
 * not zero.
 */
#define VENEER_E_INVALID       22
/* A fixed-size table (ports, grant frames, device slots) is full. */
#define VENEER_E_NO_SPACE      28
/* A number is outside its range. */
#define VENEER_E_RANGE         34
/*
 * No hypercall has this number, or the feature it belongs to is not
 * offered.
 */
#define VENEER_E_NO_SUCH_CALL  38

/*
 * `features` (constants): Feature bits (`AbiInfo::features`, `StartInfo::features`,
 * `GuestNote::required_features`).
 */
/*
 * L2 entries with the page-size bit map 2 MiB of machine-contiguous
 * memory, and reservations accept extent order 9.
 */
#define VENEER_FEATURE_SUPERPAGE_2M        1ULL
/*
 * `counters_read` and `counters_reset` exist: the hypervisor counts
 * every hypercall and bounce per domain.
 */
#define VENEER_FEATURE_COUNTERS            2ULL
/*
 * The domain-control calls (`0x80–0x8f`) exist, so a privileged
 * domain can create and manage domains at run time.
 */
#define VENEER_FEATURE_DOMAIN_CONTROL      4ULL
/*
 * The physical-device calls (`0x90–0x9f`), `set_io_privilege` and
 * `set_io_bitmap` exist, so a domain can drive real devices.
 */
#define VENEER_FEATURE_PHYSDEV             8ULL
/*
 * Split-device backends may live in the hypervisor
 * (`DOMID_HYPERVISOR` as a slot's backend).
 */
#define VENEER_FEATURE_HYPERVISOR_BACKENDS 16ULL
/* Every bit v1 defines. */
#define VENEER_FEATURE_ALL_V1              31ULL

/* `domid` (constants): Reserved domain ids. */
/* The highest id a real domain has. */
#define VENEER_DOMID_MAX        0x7fefU
/* The caller's own domain. */
#define VENEER_DOMID_SELF       0x7ff0U
/*
 * The hypervisor, as the backend of a device slot or the grantee
 * of a grant it uses to serve one.
 */
#define VENEER_DOMID_HYPERVISOR 0x7ff1U
/* No domain. */
#define VENEER_DOMID_INVALID    0x7fffU

#endif /* VENEER_VERSION_H */
