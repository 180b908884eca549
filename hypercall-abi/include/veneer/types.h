/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * veneer/types.h: Veneer hypercall ABI 1.0, integer types and compile-time checks.
 *
 * GENERATED from the hypercall-abi crate; do not edit. Regenerate with
 *     cargo run -p veneer-abi-cgen
 * The semantics are specified in hypercall-abi/SPEC.md.
 */
#ifndef VENEER_TYPES_H
#define VENEER_TYPES_H

#if defined(__linux__) && defined(__KERNEL__)
#include <linux/types.h>
#include <linux/stddef.h>
#elif defined(__FreeBSD__) && defined(_KERNEL)
#include <sys/types.h>
#include <sys/stddef.h>
#else
#include <stdint.h>
#include <stddef.h>
#endif

/* VENEER_STATIC_ASSERT(cond, msg): a compile-time check at file scope. */
#if defined(__cplusplus) && __cplusplus >= 201103L
#define VENEER_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define VENEER_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#else
/* Before C11: a typedef of a negative-size array fails to compile. */
#define VENEER_SA_CAT_(a, b) a##b
#define VENEER_SA_CAT(a, b) VENEER_SA_CAT_(a, b)
#ifdef __COUNTER__
#define VENEER_SA_ID __COUNTER__
#else
#define VENEER_SA_ID __LINE__
#endif
#define VENEER_STATIC_ASSERT(cond, msg) \
    typedef char VENEER_SA_CAT(veneer_static_assert_, VENEER_SA_ID)[(cond) ? 1 : -1]
#endif

#endif /* VENEER_TYPES_H */
