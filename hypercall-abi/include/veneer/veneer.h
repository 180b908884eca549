/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * veneer/veneer.h: Veneer hypercall ABI 1.0, every header.
 *
 * GENERATED from the hypercall-abi crate; do not edit. Regenerate with
 *     cargo run -p veneer-abi-cgen
 * The semantics are specified in hypercall-abi/SPEC.md.
 */
#ifndef VENEER_VENEER_H
#define VENEER_VENEER_H

#include "veneer/version.h"
#include "veneer/hypercall.h"
#include "veneer/note.h"
#include "veneer/start_info.h"
#include "veneer/shared_info.h"
#include "veneer/memory.h"
#include "veneer/cpu.h"
#include "veneer/vcpu.h"
#include "veneer/event.h"
#include "veneer/grant.h"
#include "veneer/ring.h"
#include "veneer/device.h"
#include "veneer/blk.h"
#include "veneer/net.h"
#include "veneer/console.h"
#include "veneer/multicall.h"
#include "veneer/domctl.h"
#include "veneer/physdev.h"
#include "veneer/counters.h"

#endif /* VENEER_VENEER_H */
