//! Event channels, virtual IRQs, the one-shot timer and the scheduler's
//! limits. Pending and mask bits live in the shared-info page.

crate::abi_enum! {
    /// Virtual IRQs (`evtchn_bind_virq`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Virq: u32, c_prefix = "VIRQ" {
        /// Per vCPU: the one-shot timer (`timer_set`) expired.
        Timer = 0,
        /// Global: input is waiting for `console_read` (console owner only).
        Console = 1,
        /// Global: a domain this domain controls shut down or died
        /// (privileged only).
        DomainException = 2,
        /// Global: a device slot of this domain was created, changed state or
        /// is being removed (`device_query` to see which).
        Device = 3,
    }
}

impl Virq {
    /// Whether the virtual IRQ is bound per vCPU (else once per domain, to
    /// any vCPU, and moveable with `evtchn_bind_vcpu`).
    pub const fn is_per_vcpu(self) -> bool {
        matches!(self, Virq::Timer)
    }
}

crate::abi_enum! {
    /// `EvtchnStatus::state`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum EvtchnState: u32, c_prefix = "EVTCHNSTAT" {
        /// Not in use.
        Closed = 0,
        /// Allocated for a remote domain that has not bound it yet.
        Unbound = 1,
        /// Connected to a port of another domain.
        Interdomain = 2,
        /// Bound to a virtual IRQ.
        Virq = 3,
        /// Bound for inter-vCPU notification.
        Ipi = 4,
        /// Bound to a physical interrupt (GSI or MSI).
        Physical = 5,
    }
}

crate::abi_struct! {
    /// What `evtchn_status` writes.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct EvtchnStatus(size = 24) {
        /// An `EvtchnState`.
        @0 state: u32,
        /// The vCPU the port is delivered to.
        @4 vcpu: u32,
        /// `Unbound`: the domain allowed to bind; `Interdomain`: the remote domain.
        @8 remote_domid: u32,
        /// `Interdomain`: the remote port.
        @12 remote_port: u32,
        /// `Virq`: the virtual IRQ.
        @16 virq: u32,
        /// `Physical`: the GSI (`physdev_irq_bind`) or the MSI/MSI-X entry
        /// number (`physdev_msi_bind`).
        @20 irq: u32,
    }
}

crate::abi_consts! {
    /// Event-channel and scheduler limits.
    pub mod event_consts: u64, c_prefix = "EVTCHN" {
        /// Ports per domain; port 0 is never bound (`EVTCHN_PORTS`).
        PORTS = 4096;
        /// The most ports `sched_poll` watches.
        POLL_MAX = 128;
        /// `timer_set` deadline that cancels the timer; also `sched_poll`'s
        /// "no timeout".
        NO_DEADLINE = 0;
    }
}
