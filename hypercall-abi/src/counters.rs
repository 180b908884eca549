//! Per-domain measurement counters (feature `COUNTERS`).
//!
//! Counter ids `0x000–0x0ff` count hypercalls by number; ids from `0x100`
//! count events the hypervisor handles for the domain without a hypercall
//! ([`CounterEvent`]).

crate::abi_enum! {
    /// Counter ids above the hypercall range.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum CounterEvent: u32, c_prefix = "COUNTER" {
        /// A `syscall` from guest user mode bounced to the guest kernel.
        SyscallBounce = 0x100,
        /// An exception bounced to the guest kernel (page faults included).
        ExceptionBounce = 0x101,
        /// Of those, page faults.
        PageFaultBounce = 0x102,
        /// An event upcall delivered.
        EventUpcall = 0x103,
        /// A switch from another vCPU to one of this domain's.
        VcpuSwitchIn = 0x104,
        /// An `iret` from kernel to user mode (half of every user round trip).
        IretToUser = 0x105,
    }
}

crate::abi_consts! {
    /// Counter ids.
    pub mod counter_consts: u32, c_prefix = "COUNTERS" {
        /// Number of counter ids: `0 .. NR`.
        NR = 0x106;
    }
}

crate::abi_struct! {
    /// One counter as `counters_read` writes it.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Counter(size = 32) {
        /// Times it happened.
        @0 count: u64,
        /// Of those, hypercalls that returned an error (0 for events).
        @8 errors: u64,
        /// TSC cycles spent in the hypervisor handling them.
        @16 cycles: u64,
        /// Must be zero.
        @24 reserved0: u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Hypercall;

    #[test]
    fn ids_cover_every_call_and_event() {
        for h in Hypercall::ALL {
            assert!(h.number() < 0x100);
        }
        for e in CounterEvent::ALL {
            assert!((e as u32) >= 0x100 && (e as u32) < counter_consts::NR);
        }
        assert_eq!(CounterEvent::ALL.last().map(|e| *e as u32 + 1), Some(counter_consts::NR));
    }
}
