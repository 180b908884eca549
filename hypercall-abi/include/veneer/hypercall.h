/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * veneer/hypercall.h: Veneer hypercall ABI 1.0, hypercall numbers and the base calls.
 *
 * GENERATED from the hypercall-abi crate; do not edit. Regenerate with
 *     cargo run -p veneer-abi-cgen
 * The semantics are specified in hypercall-abi/SPEC.md.
 */
#ifndef VENEER_HYPERCALL_H
#define VENEER_HYPERCALL_H

#include "veneer/types.h"

/* `Hypercall` (values): Every hypercall of ABI v1, by number. */
/* `abi_query(info: *mut AbiInfo) -> 0`: the ABI version and features. */
#define VENEER_HC_ABI_QUERY                0ULL
/* `console_write(buf: *const u8, len) -> len`: append to the hypervisor console. */
#define VENEER_HC_CONSOLE_WRITE            1ULL
/* `console_read(buf: *mut u8, len) -> n`: take input from the physical console. */
#define VENEER_HC_CONSOLE_READ             2ULL
/* `multicall(entries: *mut MulticallEntry, count) -> count`: several calls in one entry. */
#define VENEER_HC_MULTICALL                3ULL
/* `counters_read(domid, first, count, buf: *mut Counter) -> n`: read measurement counters. */
#define VENEER_HC_COUNTERS_READ            4ULL
/* `counters_reset(domid) -> 0`: zero a domain's measurement counters. */
#define VENEER_HC_COUNTERS_RESET           5ULL
/* `mmu_update(reqs: *const MmuUpdate, count, done: *mut u32, foreign_domid) -> 0`: batched validated page-table writes. */
#define VENEER_HC_MMU_UPDATE               16ULL
/* `update_va_mapping(va, pte, flags, vcpu_mask) -> 0`: write the entry that maps `va`, then flush. */
#define VENEER_HC_UPDATE_VA_MAPPING        17ULL
/* `mmuext_op(ops: *const MmuextOp, count, done: *mut u32) -> 0`: pin, unpin, base pointers, TLB flushes. */
#define VENEER_HC_MMUEXT_OP                18ULL
/* `memory_map(buf: *mut MemoryMapEntry, max) -> n`: the domain's pseudo-physical memory map. */
#define VENEER_HC_MEMORY_MAP               19ULL
/* `machine_memory_map(buf: *mut MemoryMapEntry, max) -> n`: the host's memory map (privileged). */
#define VENEER_HC_MACHINE_MEMORY_MAP       20ULL
/* `reservation_increase(r: *mut Reservation) -> n`: take frames from the hypervisor. */
#define VENEER_HC_RESERVATION_INCREASE     21ULL
/* `reservation_decrease(r: *mut Reservation) -> n`: give frames back. */
#define VENEER_HC_RESERVATION_DECREASE     22ULL
/* `reservation_exchange(x: *mut ReservationExchange) -> 0`: trade frames for a machine-contiguous extent. */
#define VENEER_HC_RESERVATION_EXCHANGE     23ULL
/* `reservation_query(domid, out: *mut ReservationInfo) -> 0`: current and maximum reservation. */
#define VENEER_HC_RESERVATION_QUERY        24ULL
/* `set_trap_table(table: *const TrapInfo, count) -> 0`: install virtual trap handlers. */
#define VENEER_HC_SET_TRAP_TABLE           48ULL
/* `stack_switch(sp) -> 0`: the kernel stack used on entry from guest user mode. */
#define VENEER_HC_STACK_SWITCH             49ULL
/* `set_callback(kind, address, flags) -> 0`: event, failsafe or syscall entry point. */
#define VENEER_HC_SET_CALLBACK             50ULL
/* `iret() -> !`: return from a bounce, using the `IretFrame` at `rsp`. */
#define VENEER_HC_IRET                     51ULL
/* `set_segment_base(which, value) -> 0`: FS base, kernel and user GS base, user GS selector. */
#define VENEER_HC_SET_SEGMENT_BASE         52ULL
/* `set_gdt(frames: *const u64, nr_entries) -> 0`: install the guest's descriptor table. */
#define VENEER_HC_SET_GDT                  53ULL
/* `update_descriptor(maddr, desc) -> 0`: write one validated GDT or LDT entry. */
#define VENEER_HC_UPDATE_DESCRIPTOR        54ULL
/* `set_ldt(va, nr_entries) -> 0`: install a local descriptor table. */
#define VENEER_HC_SET_LDT                  55ULL
/* `set_io_privilege(mode) -> 0`: let guest kernel mode use the domain's I/O ports. */
#define VENEER_HC_SET_IO_PRIVILEGE         56ULL
/* `set_io_bitmap(va, nr_ports) -> 0`: the I/O ports guest user mode may use. */
#define VENEER_HC_SET_IO_BITMAP            57ULL
/* `cpuid_query(leaf, subleaf, out: *mut CpuidResult) -> 0`: the domain's view of CPUID. */
#define VENEER_HC_CPUID_QUERY              58ULL
/* `msr_read(msr, out: *mut u64) -> 0`: read an MSR the policy exposes. */
#define VENEER_HC_MSR_READ                 59ULL
/* `msr_write(msr, value) -> 0`: write an MSR the policy exposes. */
#define VENEER_HC_MSR_WRITE                60ULL
/* `set_debugreg(reg, value) -> 0`: set a debug register. */
#define VENEER_HC_SET_DEBUGREG             61ULL
/* `get_debugreg(reg, out: *mut u64) -> 0`: read a debug register. */
#define VENEER_HC_GET_DEBUGREG             62ULL
/* `vcpu_initialise(vcpu, ctx: *const VcpuContext) -> 0`: set an offline vCPU's start state. */
#define VENEER_HC_VCPU_INITIALISE          64ULL
/* `vcpu_up(vcpu) -> 0`: bring an initialised vCPU online. */
#define VENEER_HC_VCPU_UP                  65ULL
/* `vcpu_down(vcpu) -> 0`: take a vCPU offline. */
#define VENEER_HC_VCPU_DOWN                66ULL
/* `vcpu_is_up(vcpu) -> 0|1`: whether a vCPU is online. */
#define VENEER_HC_VCPU_IS_UP               67ULL
/* `vcpu_register_runstate(vcpu, va) -> 0`: where the hypervisor keeps a `RunstateInfo` current. */
#define VENEER_HC_VCPU_REGISTER_RUNSTATE   68ULL
/* `sched_yield() -> 0`: let another vCPU run. */
#define VENEER_HC_SCHED_YIELD              80ULL
/* `sched_block() -> 0`: unmask events and sleep until one is pending. */
#define VENEER_HC_SCHED_BLOCK              81ULL
/* `sched_poll(ports: *const u32, nr, deadline) -> 0`: sleep until a listed port is pending or the deadline passes. */
#define VENEER_HC_SCHED_POLL               82ULL
/* `sched_shutdown(reason: ShutdownReason, code: u32) -> !`: end the domain. */
#define VENEER_HC_SCHED_SHUTDOWN           83ULL
/* `evtchn_alloc_unbound(remote_domid) -> port`: a port another domain may bind to. */
#define VENEER_HC_EVTCHN_ALLOC_UNBOUND     96ULL
/* `evtchn_bind_interdomain(remote_domid, remote_port) -> port`: connect to a remote unbound port. */
#define VENEER_HC_EVTCHN_BIND_INTERDOMAIN  97ULL
/* `evtchn_bind_virq(virq, vcpu) -> port`: a port for a virtual IRQ. */
#define VENEER_HC_EVTCHN_BIND_VIRQ         98ULL
/* `evtchn_bind_ipi(vcpu) -> port`: a port for inter-vCPU notifications. */
#define VENEER_HC_EVTCHN_BIND_IPI          99ULL
/* `evtchn_send(port) -> 0`: notify the other end. */
#define VENEER_HC_EVTCHN_SEND              100ULL
/* `evtchn_close(port) -> 0`: close a port. */
#define VENEER_HC_EVTCHN_CLOSE             101ULL
/* `evtchn_unmask(port) -> 0`: clear the mask bit and deliver if pending. */
#define VENEER_HC_EVTCHN_UNMASK            102ULL
/* `evtchn_status(port, out: *mut EvtchnStatus) -> 0`: what a port is bound to. */
#define VENEER_HC_EVTCHN_STATUS            103ULL
/* `evtchn_bind_vcpu(port, vcpu) -> 0`: deliver a port to another vCPU. */
#define VENEER_HC_EVTCHN_BIND_VCPU         104ULL
/* `evtchn_deliver() -> 0`: deliver pending unmasked events now. */
#define VENEER_HC_EVTCHN_DELIVER           105ULL
/* `timer_set(deadline) -> 0`: arm or cancel this vCPU's one-shot timer. */
#define VENEER_HC_TIMER_SET                106ULL
/* `wallclock_set(sec, nsec, system_time) -> 0`: set the wall clock (privileged). */
#define VENEER_HC_WALLCLOCK_SET            107ULL
/* `grant_set_table(frames: *const u64, nr_frames) -> 0`: register the caller's grant table. */
#define VENEER_HC_GRANT_SET_TABLE          112ULL
/* `grant_map(ops: *mut GrantMapOp, count) -> count`: map frames others granted. */
#define VENEER_HC_GRANT_MAP                113ULL
/* `grant_unmap(ops: *mut GrantUnmapOp, count) -> count`: undo grant mappings. */
#define VENEER_HC_GRANT_UNMAP              114ULL
/* `grant_copy(ops: *mut GrantCopyOp, count) -> count`: copy through grants. */
#define VENEER_HC_GRANT_COPY               115ULL
/* `grant_query(out: *mut GrantTableInfo) -> 0`: grant-table size and limits. */
#define VENEER_HC_GRANT_QUERY              116ULL
/* `device_query(handle, out: *mut DeviceInfo) -> 0`: read a split-device slot. */
#define VENEER_HC_DEVICE_QUERY             120ULL
/* `device_set_params(handle, params: *const DeviceParams) -> 0`: backend publishes device parameters. */
#define VENEER_HC_DEVICE_SET_PARAMS        121ULL
/* `device_connect(handle, args: *const DeviceConnect) -> 0`: frontend hands over its rings. */
#define VENEER_HC_DEVICE_CONNECT           122ULL
/* `device_set_state(handle, state) -> 0`: move this side of a device slot. */
#define VENEER_HC_DEVICE_SET_STATE         123ULL
/* `domain_create(args: *const DomainCreate) -> domid`: make an empty, paused domain. */
#define VENEER_HC_DOMAIN_CREATE            128ULL
/* `domain_build(domid, args: *const DomainBuild) -> 0`: load a guest image into it. */
#define VENEER_HC_DOMAIN_BUILD             129ULL
/* `domain_pause(domid) -> 0`: stop a domain's vCPUs. */
#define VENEER_HC_DOMAIN_PAUSE             130ULL
/* `domain_unpause(domid) -> 0`: let them run. */
#define VENEER_HC_DOMAIN_UNPAUSE           131ULL
/* `domain_destroy(domid) -> 0`: tear a domain down. */
#define VENEER_HC_DOMAIN_DESTROY           132ULL
/* `domain_query(domid, out: *mut DomainInfo) -> 0`: state of the first domain at or above `domid`. */
#define VENEER_HC_DOMAIN_QUERY             133ULL
/* `domain_io_permit(domid, kind, first, count, allow) -> 0`: grant or revoke I/O resources. */
#define VENEER_HC_DOMAIN_IO_PERMIT         134ULL
/* `domain_device_create(args: *const DeviceCreate) -> handle`: plug a split device in. */
#define VENEER_HC_DOMAIN_DEVICE_CREATE     135ULL
/* `domain_device_destroy(frontend_domid, handle) -> 0`: ask for its removal. */
#define VENEER_HC_DOMAIN_DEVICE_DESTROY    136ULL
/* `physdev_irq_bind(gsi, flags) -> port`: a physical interrupt line as an event. */
#define VENEER_HC_PHYSDEV_IRQ_BIND         144ULL
/* `physdev_irq_eoi(gsi) -> 0`: end of a level-triggered interrupt. */
#define VENEER_HC_PHYSDEV_IRQ_EOI          145ULL
/* `physdev_msi_bind(sbdf, entry, flags) -> port`: an MSI or MSI-X vector as an event. */
#define VENEER_HC_PHYSDEV_MSI_BIND         146ULL
/* `physdev_pci_config_read(sbdf, offset, size) -> value`: read PCI configuration space. */
#define VENEER_HC_PHYSDEV_PCI_CONFIG_READ  147ULL
/* `physdev_pci_config_write(sbdf, offset, size, value) -> 0`: write PCI configuration space. */
#define VENEER_HC_PHYSDEV_PCI_CONFIG_WRITE 148ULL

/* `base_limits` (constants): Limits of the base calls. */
/* The most bytes one `console_write` accepts (`CONSOLE_WRITE_MAX`). */
#define VENEER_BASE_CONSOLE_WRITE_MAX 0x1000ULL
/* The most bytes one `console_read` returns. */
#define VENEER_BASE_CONSOLE_READ_MAX  0x1000ULL

/* `ShutdownReason` (values): Why a domain shuts down (`sched_shutdown`, first argument). */
/* Orderly power-off; the code is the domain's exit status. */
#define VENEER_SHUTDOWN_POWEROFF 0ULL
/* The domain asks to be restarted. */
#define VENEER_SHUTDOWN_REBOOT   1ULL
/* The domain detected a fatal error; the code says which. */
#define VENEER_SHUTDOWN_CRASH    2ULL

/* What `abi_query` writes. */
struct veneer_abi_info {
    /* [0x0] ABI major version the hypervisor implements (`ABI_MAJOR`). */
    uint16_t major;
    /* [0x2] ABI minor version the hypervisor implements (`ABI_MINOR`). */
    uint16_t minor;
    /* [0x4] Must be zero. */
    uint32_t reserved0;
    /* [0x8] Feature bits the hypervisor offers (`features` module). */
    uint64_t features;
};
VENEER_STATIC_ASSERT(sizeof(struct veneer_abi_info) == 16, "size of struct veneer_abi_info");
VENEER_STATIC_ASSERT(offsetof(struct veneer_abi_info, major) == 0, "offset of struct veneer_abi_info.major");
VENEER_STATIC_ASSERT(offsetof(struct veneer_abi_info, minor) == 2, "offset of struct veneer_abi_info.minor");
VENEER_STATIC_ASSERT(offsetof(struct veneer_abi_info, reserved0) == 4, "offset of struct veneer_abi_info.reserved0");
VENEER_STATIC_ASSERT(offsetof(struct veneer_abi_info, features) == 8, "offset of struct veneer_abi_info.features");

#endif /* VENEER_HYPERCALL_H */
