//! Hypercall numbers.
//!
//! A guest kernel issues `syscall` with the number in `rax` and arguments in
//! `rdi, rsi, rdx, r10, r8, r9`; the result comes back in `rax` (negative:
//! an [`Error`](crate::Error)). Every other register, vector registers
//! included, is preserved except `rcx` and `r11`, which `syscall` clobbers.
//!
//! Numbers are grouped by area and are never reused: a retired call keeps
//! its number and answers `NoSuchCall`.
//!
//! | range | area |
//! |---|---|
//! | `0x00–0x0f` | base: ABI query, console, multicall, counters |
//! | `0x10–0x2f` | memory |
//! | `0x30–0x3f` | CPU state |
//! | `0x40–0x4f` | vCPU operations |
//! | `0x50–0x5f` | scheduler |
//! | `0x60–0x6f` | event channels and time |
//! | `0x70–0x77` | grant tables |
//! | `0x78–0x7f` | split-device discovery and handshake |
//! | `0x80–0x8f` | domain control |
//! | `0x90–0x9f` | physical devices |

use crate::features;

crate::abi_enum! {
    /// Every hypercall of ABI v1, by number.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum Hypercall: u64, c_prefix = "HC" {
        /// `abi_query(info: *mut AbiInfo) -> 0`: the ABI version and features.
        AbiQuery = 0x00,
        /// `console_write(buf: *const u8, len) -> len`: append to the hypervisor console.
        ConsoleWrite = 0x01,
        /// `console_read(buf: *mut u8, len) -> n`: take input from the physical console.
        ConsoleRead = 0x02,
        /// `multicall(entries: *mut MulticallEntry, count) -> count`: several calls in one entry.
        Multicall = 0x03,
        /// `counters_read(domid, first, count, buf: *mut Counter) -> n`: read measurement counters.
        CountersRead = 0x04,
        /// `counters_reset(domid) -> 0`: zero a domain's measurement counters.
        CountersReset = 0x05,

        /// `mmu_update(reqs: *const MmuUpdate, count, done: *mut u32, foreign_domid) -> 0`: batched validated page-table writes.
        MmuUpdate = 0x10,
        /// `update_va_mapping(va, pte, flags, vcpu_mask) -> 0`: write the entry that maps `va`, then flush.
        UpdateVaMapping = 0x11,
        /// `mmuext_op(ops: *const MmuextOp, count, done: *mut u32) -> 0`: pin, unpin, base pointers, TLB flushes.
        MmuextOp = 0x12,
        /// `memory_map(buf: *mut MemoryMapEntry, max) -> n`: the domain's pseudo-physical memory map.
        MemoryMap = 0x13,
        /// `machine_memory_map(buf: *mut MemoryMapEntry, max) -> n`: the host's memory map (privileged).
        MachineMemoryMap = 0x14,
        /// `reservation_increase(r: *mut Reservation) -> n`: take frames from the hypervisor.
        ReservationIncrease = 0x15,
        /// `reservation_decrease(r: *mut Reservation) -> n`: give frames back.
        ReservationDecrease = 0x16,
        /// `reservation_exchange(x: *mut ReservationExchange) -> 0`: trade frames for a machine-contiguous extent.
        ReservationExchange = 0x17,
        /// `reservation_query(domid, out: *mut ReservationInfo) -> 0`: current and maximum reservation.
        ReservationQuery = 0x18,

        /// `set_trap_table(table: *const TrapInfo, count) -> 0`: install virtual trap handlers.
        SetTrapTable = 0x30,
        /// `stack_switch(sp) -> 0`: the kernel stack used on entry from guest user mode.
        StackSwitch = 0x31,
        /// `set_callback(kind, address, flags) -> 0`: event, failsafe or syscall entry point.
        SetCallback = 0x32,
        /// `iret() -> !`: return from a bounce, using the `IretFrame` at `rsp`.
        Iret = 0x33,
        /// `set_segment_base(which, value) -> 0`: FS base, kernel and user GS base, user GS selector.
        SetSegmentBase = 0x34,
        /// `set_gdt(frames: *const u64, nr_entries) -> 0`: install the guest's descriptor table.
        SetGdt = 0x35,
        /// `update_descriptor(maddr, desc) -> 0`: write one validated GDT or LDT entry.
        UpdateDescriptor = 0x36,
        /// `set_ldt(va, nr_entries) -> 0`: install a local descriptor table.
        SetLdt = 0x37,
        /// `set_io_privilege(mode) -> 0`: let guest kernel mode use the domain's I/O ports.
        SetIoPrivilege = 0x38,
        /// `set_io_bitmap(va, nr_ports) -> 0`: the I/O ports guest user mode may use.
        SetIoBitmap = 0x39,
        /// `cpuid_query(leaf, subleaf, out: *mut CpuidResult) -> 0`: the domain's view of CPUID.
        CpuidQuery = 0x3a,
        /// `msr_read(msr, out: *mut u64) -> 0`: read an MSR the policy exposes.
        MsrRead = 0x3b,
        /// `msr_write(msr, value) -> 0`: write an MSR the policy exposes.
        MsrWrite = 0x3c,
        /// `set_debugreg(reg, value) -> 0`: set a debug register.
        SetDebugreg = 0x3d,
        /// `get_debugreg(reg, out: *mut u64) -> 0`: read a debug register.
        GetDebugreg = 0x3e,

        /// `vcpu_initialise(vcpu, ctx: *const VcpuContext) -> 0`: set an offline vCPU's start state.
        VcpuInitialise = 0x40,
        /// `vcpu_up(vcpu) -> 0`: bring an initialised vCPU online.
        VcpuUp = 0x41,
        /// `vcpu_down(vcpu) -> 0`: take a vCPU offline.
        VcpuDown = 0x42,
        /// `vcpu_is_up(vcpu) -> 0|1`: whether a vCPU is online.
        VcpuIsUp = 0x43,
        /// `vcpu_register_runstate(vcpu, va) -> 0`: where the hypervisor keeps a `RunstateInfo` current.
        VcpuRegisterRunstate = 0x44,

        /// `sched_yield() -> 0`: let another vCPU run.
        SchedYield = 0x50,
        /// `sched_block() -> 0`: unmask events and sleep until one is pending.
        SchedBlock = 0x51,
        /// `sched_poll(ports: *const u32, nr, deadline) -> 0`: sleep until a listed port is pending or the deadline passes.
        SchedPoll = 0x52,
        /// `sched_shutdown(reason: ShutdownReason, code: u32) -> !`: end the domain.
        SchedShutdown = 0x53,

        /// `evtchn_alloc_unbound(remote_domid) -> port`: a port another domain may bind to.
        EvtchnAllocUnbound = 0x60,
        /// `evtchn_bind_interdomain(remote_domid, remote_port) -> port`: connect to a remote unbound port.
        EvtchnBindInterdomain = 0x61,
        /// `evtchn_bind_virq(virq, vcpu) -> port`: a port for a virtual IRQ.
        EvtchnBindVirq = 0x62,
        /// `evtchn_bind_ipi(vcpu) -> port`: a port for inter-vCPU notifications.
        EvtchnBindIpi = 0x63,
        /// `evtchn_send(port) -> 0`: notify the other end.
        EvtchnSend = 0x64,
        /// `evtchn_close(port) -> 0`: close a port.
        EvtchnClose = 0x65,
        /// `evtchn_unmask(port) -> 0`: clear the mask bit and deliver if pending.
        EvtchnUnmask = 0x66,
        /// `evtchn_status(port, out: *mut EvtchnStatus) -> 0`: what a port is bound to.
        EvtchnStatus = 0x67,
        /// `evtchn_bind_vcpu(port, vcpu) -> 0`: deliver a port to another vCPU.
        EvtchnBindVcpu = 0x68,
        /// `evtchn_deliver() -> 0`: deliver pending unmasked events now.
        EvtchnDeliver = 0x69,
        /// `timer_set(deadline) -> 0`: arm or cancel this vCPU's one-shot timer.
        TimerSet = 0x6a,
        /// `wallclock_set(sec, nsec, system_time) -> 0`: set the wall clock (privileged).
        WallclockSet = 0x6b,

        /// `grant_set_table(frames: *const u64, nr_frames) -> 0`: register the caller's grant table.
        GrantSetTable = 0x70,
        /// `grant_map(ops: *mut GrantMapOp, count) -> count`: map frames others granted.
        GrantMap = 0x71,
        /// `grant_unmap(ops: *mut GrantUnmapOp, count) -> count`: undo grant mappings.
        GrantUnmap = 0x72,
        /// `grant_copy(ops: *mut GrantCopyOp, count) -> count`: copy through grants.
        GrantCopy = 0x73,
        /// `grant_query(out: *mut GrantTableInfo) -> 0`: grant-table size and limits.
        GrantQuery = 0x74,
        /// `device_query(handle, out: *mut DeviceInfo) -> 0`: read a split-device slot.
        DeviceQuery = 0x78,
        /// `device_set_params(handle, params: *const DeviceParams) -> 0`: backend publishes device parameters.
        DeviceSetParams = 0x79,
        /// `device_connect(handle, args: *const DeviceConnect) -> 0`: frontend hands over its rings.
        DeviceConnect = 0x7a,
        /// `device_set_state(handle, state) -> 0`: move this side of a device slot.
        DeviceSetState = 0x7b,

        /// `domain_create(args: *const DomainCreate) -> domid`: make an empty, paused domain.
        DomainCreate = 0x80,
        /// `domain_build(domid, args: *const DomainBuild) -> 0`: load a guest image into it.
        DomainBuild = 0x81,
        /// `domain_pause(domid) -> 0`: stop a domain's vCPUs.
        DomainPause = 0x82,
        /// `domain_unpause(domid) -> 0`: let them run.
        DomainUnpause = 0x83,
        /// `domain_destroy(domid) -> 0`: tear a domain down.
        DomainDestroy = 0x84,
        /// `domain_query(domid, out: *mut DomainInfo) -> 0`: state of the first domain at or above `domid`.
        DomainQuery = 0x85,
        /// `domain_io_permit(domid, kind, first, count, allow) -> 0`: grant or revoke I/O resources.
        DomainIoPermit = 0x86,
        /// `domain_device_create(args: *const DeviceCreate) -> handle`: plug a split device in.
        DomainDeviceCreate = 0x87,
        /// `domain_device_destroy(frontend_domid, handle) -> 0`: ask for its removal.
        DomainDeviceDestroy = 0x88,

        /// `physdev_irq_bind(gsi, flags) -> port`: a physical interrupt line as an event.
        PhysdevIrqBind = 0x90,
        /// `physdev_irq_eoi(gsi) -> 0`: end of a level-triggered interrupt.
        PhysdevIrqEoi = 0x91,
        /// `physdev_msi_bind(sbdf, entry, flags) -> port`: an MSI or MSI-X vector as an event.
        PhysdevMsiBind = 0x92,
        /// `physdev_pci_config_read(sbdf, offset, size) -> value`: read PCI configuration space.
        PhysdevPciConfigRead = 0x93,
        /// `physdev_pci_config_write(sbdf, offset, size, value) -> 0`: write PCI configuration space.
        PhysdevPciConfigWrite = 0x94,
    }
}

/// Who may make a call. The hypervisor checks before it reads any argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Privilege {
    /// Any guest kernel.
    Any,
    /// A domain whose start-info flags include `CONSOLE_OWNER`.
    ConsoleOwner,
    /// The privileged domain (flag `PRIVILEGED`); some calls also accept
    /// `DOMID_SELF` or the caller's own id from any domain, as their
    /// sections say.
    Privileged,
    /// A domain holding the I/O permission the call names (a driver
    /// domain); see `domain_io_permit`.
    IoPermission,
}

impl Hypercall {
    /// The call with this number, if there is one.
    pub fn from_number(number: u64) -> Option<Hypercall> {
        Hypercall::from_value(number)
    }

    /// The number placed in `rax`.
    pub const fn number(self) -> u64 {
        self as u64
    }

    /// The feature bit (`features` module) that must be offered for this
    /// call to exist, or 0 for a core call. Without it the call answers
    /// `NoSuchCall`.
    pub const fn feature(self) -> u64 {
        use Hypercall::*;
        match self {
            CountersRead | CountersReset => features::COUNTERS,
            DomainCreate | DomainBuild | DomainPause | DomainUnpause | DomainDestroy
            | DomainQuery | DomainIoPermit | DomainDeviceCreate | DomainDeviceDestroy => {
                features::DOMAIN_CONTROL
            }
            PhysdevIrqBind | PhysdevIrqEoi | PhysdevMsiBind | PhysdevPciConfigRead
            | PhysdevPciConfigWrite | SetIoPrivilege | SetIoBitmap => features::PHYSDEV,
            _ => 0,
        }
    }

    /// Who may make this call.
    pub const fn privilege(self) -> Privilege {
        use Hypercall::*;
        match self {
            ConsoleRead => Privilege::ConsoleOwner,
            MachineMemoryMap | WallclockSet | DomainCreate | DomainBuild | DomainPause
            | DomainUnpause | DomainDestroy | DomainQuery | DomainIoPermit | DomainDeviceCreate
            | DomainDeviceDestroy => Privilege::Privileged,
            SetIoPrivilege | SetIoBitmap | PhysdevIrqBind | PhysdevIrqEoi | PhysdevMsiBind
            | PhysdevPciConfigRead | PhysdevPciConfigWrite => Privilege::IoPermission,
            _ => Privilege::Any,
        }
    }

    /// Whether the call may be an entry of a `multicall`. Calls that do not
    /// return to the caller, that block, or that nest are excluded.
    pub const fn allowed_in_multicall(self) -> bool {
        use Hypercall::*;
        !matches!(
            self,
            Multicall | Iret | SchedBlock | SchedPoll | SchedShutdown | VcpuDown | DomainBuild
        )
    }

    /// Number of register arguments the call reads (`rdi rsi rdx r10 r8 r9`
    /// in that order); the remaining argument registers are ignored.
    pub const fn arg_count(self) -> usize {
        use Hypercall::*;
        match self {
            Iret | SchedYield | SchedBlock | EvtchnDeliver => 0,
            AbiQuery | StackSwitch | CountersReset | SetIoPrivilege | VcpuUp | VcpuDown | VcpuIsUp | EvtchnAllocUnbound
            | EvtchnBindIpi | EvtchnSend | EvtchnClose | EvtchnUnmask | TimerSet | GrantQuery
            | DomainCreate | DomainPause | DomainUnpause | DomainDestroy | DomainDeviceCreate
            | PhysdevIrqEoi | ReservationIncrease | ReservationDecrease | ReservationExchange => 1,
            ConsoleWrite | ConsoleRead | Multicall | MemoryMap | MachineMemoryMap
            | ReservationQuery | SetTrapTable | SetSegmentBase | SetGdt | UpdateDescriptor
            | SetLdt | SetIoBitmap | MsrRead | MsrWrite | SetDebugreg | GetDebugreg
            | VcpuInitialise | VcpuRegisterRunstate | SchedShutdown | EvtchnBindInterdomain
            | EvtchnBindVirq | EvtchnStatus | EvtchnBindVcpu | GrantSetTable | GrantMap
            | GrantUnmap | GrantCopy | DeviceQuery | DeviceSetParams | DeviceConnect
            | DeviceSetState | DomainBuild | DomainQuery | DomainDeviceDestroy | PhysdevIrqBind => 2,
            SetCallback | MmuextOp | CpuidQuery | SchedPoll | WallclockSet | PhysdevMsiBind
            | PhysdevPciConfigRead => 3,
            CountersRead | MmuUpdate | UpdateVaMapping | PhysdevPciConfigWrite => 4,
            DomainIoPermit => 5,
        }
    }
}

/// The most bytes one `console_write` accepts.
pub const CONSOLE_WRITE_MAX: usize = 4096;

crate::abi_enum! {
    /// Why a domain shuts down (`sched_shutdown`, first argument).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum ShutdownReason: u64, c_prefix = "SHUTDOWN" {
        /// Orderly power-off; the code is the domain's exit status.
        Poweroff = 0,
        /// The domain asks to be restarted.
        Reboot = 1,
        /// The domain detected a fatal error; the code says which.
        Crash = 2,
    }
}

impl ShutdownReason {
    /// The reason with this number, if there is one.
    pub fn from_number(n: u64) -> Option<ShutdownReason> {
        ShutdownReason::from_value(n)
    }
}

crate::abi_struct! {
    /// What `abi_query` writes.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct AbiInfo(size = 16) {
        /// ABI major version the hypervisor implements (`ABI_MAJOR`).
        @0 major: u16,
        /// ABI minor version the hypervisor implements (`ABI_MINOR`).
        @2 minor: u16,
        /// Must be zero.
        @4 reserved0: u32,
        /// Feature bits the hypervisor offers (`features` module).
        @8 features: u64,
    }
}

crate::abi_consts! {
    /// Limits of the base calls.
    pub mod base_limits: u64, c_prefix = "BASE" {
        /// The most bytes one `console_write` accepts (`CONSOLE_WRITE_MAX`).
        CONSOLE_WRITE_MAX = 4096;
        /// The most bytes one `console_read` returns.
        CONSOLE_READ_MAX = 4096;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_unique_and_round_trip() {
        for (i, a) in Hypercall::ALL.iter().enumerate() {
            assert_eq!(Hypercall::from_number(a.number()), Some(*a));
            for b in &Hypercall::ALL[i + 1..] {
                assert_ne!(a.number(), b.number());
            }
        }
        assert_eq!(Hypercall::from_number(0xffff), None);
        assert_eq!(Hypercall::from_number(u64::MAX), None);
    }

    #[test]
    fn fixed_numbers_never_move() {
        assert_eq!(Hypercall::AbiQuery.number(), 0x00);
        assert_eq!(Hypercall::ConsoleWrite.number(), 0x01);
        assert_eq!(Hypercall::SchedShutdown.number(), 0x53);
        assert_eq!(CONSOLE_WRITE_MAX as u64, base_limits::CONSOLE_WRITE_MAX);
    }

    #[test]
    fn every_call_sits_in_its_area() {
        // The area is named by the C-free Rust variant prefix; a call filed
        // under the wrong range is a numbering mistake.
        for h in Hypercall::ALL {
            let n = h.number();
            let name = Hypercall::TABLE.values.iter().find(|v| v.value == n).unwrap().name;
            let area = match n {
                0x00..=0x0f => ["AbiQuery", "Console", "Multicall", "Counters"].iter().any(|p| name.starts_with(p)),
                0x10..=0x2f => ["Mmu", "UpdateVa", "Memory", "MachineMemory", "Reservation"].iter().any(|p| name.starts_with(p)),
                0x30..=0x3f => !name.starts_with("Vcpu"),
                0x40..=0x4f => name.starts_with("Vcpu"),
                0x50..=0x5f => name.starts_with("Sched"),
                0x60..=0x6f => ["Evtchn", "Timer", "Wallclock"].iter().any(|p| name.starts_with(p)),
                0x70..=0x77 => name.starts_with("Grant"),
                0x78..=0x7f => name.starts_with("Device"),
                0x80..=0x8f => name.starts_with("Domain"),
                0x90..=0x9f => name.starts_with("Physdev"),
                _ => false,
            };
            assert!(area, "{name} ({n:#x}) is outside its area");
        }
    }

    #[test]
    fn multicall_excludes_calls_that_do_not_return_or_block() {
        assert!(!Hypercall::Multicall.allowed_in_multicall());
        assert!(!Hypercall::Iret.allowed_in_multicall());
        assert!(!Hypercall::SchedShutdown.allowed_in_multicall());
        assert!(Hypercall::MmuUpdate.allowed_in_multicall());
        assert!(Hypercall::UpdateDescriptor.allowed_in_multicall());
    }

    #[test]
    fn argument_counts_fit_the_registers() {
        for h in Hypercall::ALL {
            assert!(h.arg_count() <= 6);
        }
        assert_eq!(Hypercall::Iret.arg_count(), 0);
        assert_eq!(Hypercall::AbiQuery.arg_count(), 1);
        assert_eq!(Hypercall::DomainIoPermit.arg_count(), 5);
    }

    #[test]
    fn gated_calls_name_an_offered_feature_bit() {
        for h in Hypercall::ALL {
            let f = h.feature();
            assert!(f == 0 || (f.is_power_of_two() && f & features::ALL_V1 == f));
        }
    }

    #[test]
    fn shutdown_reasons_round_trip() {
        for r in ShutdownReason::ALL {
            assert_eq!(ShutdownReason::from_number(r as u64), Some(r));
        }
        assert_eq!(ShutdownReason::from_number(3), None);
    }
}
