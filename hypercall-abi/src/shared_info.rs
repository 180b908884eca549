//! The shared-info page: per-vCPU event and time state, the event-channel
//! bitmaps and the wall clock, shared read-write between the hypervisor and
//! one domain.
//!
//! The hypervisor allocates the page when it builds the domain and reports
//! its machine frame in `StartInfoExt::shared_info_mfn`. The guest maps it
//! writable; it is the one frame of type `shared-info`, which never becomes
//! a page table and cannot be given away.

crate::abi_consts! {
    /// Shared-info limits.
    pub mod shared_info_consts: u64, c_prefix = "SHARED_INFO" {
        /// vCPUs whose `VcpuInfo` the page holds: the most vCPUs a v1 domain has.
        VCPU_MAX = 32;
        /// Event-channel ports: bits in each of the pending and mask bitmaps.
        EVTCHN_PORTS = 4096;
        /// 64-bit words in each bitmap (`EVTCHN_PORTS / 64`).
        EVTCHN_WORDS = 64;
    }
}

/// vCPUs a v1 domain may have.
pub const VCPU_MAX: usize = crate::layout::usize_of(shared_info_consts::VCPU_MAX);
/// Event-channel ports per domain (port 0 is never bound).
pub const EVTCHN_PORTS: usize = crate::layout::usize_of(shared_info_consts::EVTCHN_PORTS);
const EVTCHN_WORDS: usize = crate::layout::usize_of(shared_info_consts::EVTCHN_WORDS);
const _: () = assert!(EVTCHN_WORDS * 64 == EVTCHN_PORTS);

crate::abi_consts! {
    /// `VcpuTimeInfo::flags`.
    pub mod time_flags: u8, c_prefix = "TIME" {
        /// The TSC is invariant and synchronised across physical CPUs, so
        /// readings from different vCPUs are comparable without a global
        /// maximum.
        TSC_STABLE = 1 << 0;
    }
}

crate::abi_struct! {
    /// A vCPU's time record. `system_time` (ns since the hypervisor
    /// started, the same clock on every vCPU) at TSC `tsc_timestamp`, and
    /// the factor to extend it: see [`VcpuTimeInfo::ns_at`]. Layout-compatible
    /// with Linux's and FreeBSD's `pvclock_vcpu_time_info`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct VcpuTimeInfo(size = 32) {
        /// Odd while the hypervisor updates the record; read it again until
        /// the version is even and unchanged around the read.
        @0 version: u32,
        /// Must be zero.
        @4 reserved0: u32,
        /// TSC value at which `system_time` was taken.
        @8 tsc_timestamp: u64,
        /// System time in nanoseconds at `tsc_timestamp`.
        @16 system_time: u64,
        /// Multiplier (32.32 fixed point) from shifted TSC ticks to ns.
        @24 tsc_to_system_mul: u32,
        /// Shift applied to the TSC delta before the multiply (may be negative).
        @28 tsc_shift: i8,
        /// `time_flags` bits.
        @29 flags: u8,
        /// Must be zero.
        @30 reserved1: [u8; 2],
    }
}

impl VcpuTimeInfo {
    /// System time in ns at TSC value `tsc`, as a guest computes it:
    /// `system_time + ((tsc - tsc_timestamp) shifted by tsc_shift) * mul >> 32`.
    /// A TSC behind the stamp counts as no time elapsed.
    pub const fn ns_at(&self, tsc: u64) -> u64 {
        let delta = tsc.saturating_sub(self.tsc_timestamp);
        let shifted = if self.tsc_shift >= 0 {
            delta << (self.tsc_shift as u32)
        } else {
            delta >> ((-(self.tsc_shift as i32)) as u32)
        };
        // A u64 times a u32, shifted right by 32, fits in a u64.
        #[allow(clippy::cast_possible_truncation)]
        let scaled = ((shifted as u128 * self.tsc_to_system_mul as u128) >> 32) as u64;
        self.system_time.wrapping_add(scaled)
    }

    /// The `(mul, shift)` pair that converts ticks of a `tsc_hz` clock to
    /// nanoseconds with the least rounding error, as the hypervisor computes
    /// it. Shifted deltas keep the product below 2^64 for deltas up to 2^31
    /// ticks. `tsc_hz` must be between 1 MHz and 2^40 Hz.
    pub const fn scale_for(tsc_hz: u64) -> (u32, i8) {
        // Find the shift that brings mul = 10^9 * 2^32 / (hz << shift) into
        // [2^31, 2^32): the most precision a u32 multiplier holds.
        let mut shift: i32 = 0;
        let target: u128 = 1_000_000_000u128 << 32;
        loop {
            let hz = if shift >= 0 { (tsc_hz as u128) << shift } else { (tsc_hz as u128) >> -shift };
            let mul = target / hz;
            if mul >= 1 << 32 {
                shift += 1;
            } else if mul < 1 << 31 {
                shift -= 1;
            } else {
                // The loop leaves mul in [2^31, 2^32) and, for the
                // frequencies allowed, |shift| below 64.
                #[allow(clippy::cast_possible_truncation)]
                return (mul as u32, shift as i8);
            }
        }
    }
}

crate::abi_struct! {
    /// One vCPU's slot of the shared-info page.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct VcpuInfo(size = 64) {
        /// Set by the hypervisor when it sets a bit in `pending_sel`; the
        /// guest clears it before scanning.
        @0 upcall_pending: u8,
        /// Non-zero: events are masked (the virtual interrupt flag is clear);
        /// the hypervisor does not bounce to the event callback. Written by
        /// the guest.
        @1 upcall_mask: u8,
        /// Must be zero.
        @2 reserved0: [u8; 6],
        /// Bit `w` set: word `w` of `evtchn_pending` may hold a pending port
        /// bound to this vCPU. Set by the hypervisor, cleared by the guest
        /// with an atomic exchange.
        @8 pending_sel: u64,
        /// The faulting address of the last page fault bounced to this vCPU
        /// (what CR2 would hold).
        @16 cr2: u64,
        /// Must be zero.
        @24 reserved1: u64,
        /// The vCPU's time record.
        @32 time: VcpuTimeInfo,
    }
}

crate::abi_struct! {
    /// The wall clock: the UTC time at which system time was zero. Wall time
    /// now is this plus the current system time.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Wallclock(size = 16) {
        /// Odd while the hypervisor updates it; read as for `VcpuTimeInfo`.
        @0 version: u32,
        /// Nanoseconds part, below 10^9.
        @4 nsec: u32,
        /// Seconds since 1970-01-01T00:00:00Z.
        @8 sec: u64,
    }
}

crate::abi_struct! {
    /// The shared-info page.
    #[derive(Clone, Copy, Debug)]
    pub struct SharedInfo(size = 4096) {
        /// Per-vCPU state, indexed by vCPU id.
        @0 vcpu_info: [VcpuInfo; 32],
        /// Bit `p` set: port `p` is pending. Set by the hypervisor (and by
        /// the guest to retrigger), cleared by the guest when it handles `p`.
        @2048 evtchn_pending: [u64; 64],
        /// Bit `p` set: port `p` is masked: it stays pending without an
        /// upcall. Written by the guest.
        @2560 evtchn_mask: [u64; 64],
        /// The wall clock.
        @3072 wallclock: Wallclock,
        /// Must be zero.
        @3088 reserved0: [u64; 126],
    }
}
const _: () = assert!(core::mem::size_of::<[VcpuInfo; 32]>() == 64 * VCPU_MAX);

/// The bitmap word and bit of event-channel port `port`.
pub const fn port_word_bit(port: u32) -> (usize, u32) {
    ((port / 64) as usize, port % 64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn one_ghz_is_identity() {
        let (mul, shift) = VcpuTimeInfo::scale_for(1_000_000_000);
        let t = VcpuTimeInfo { tsc_timestamp: 100, system_time: 5, tsc_to_system_mul: mul, tsc_shift: shift, ..Default::default() };
        assert_eq!(t.ns_at(100), 5);
        assert_eq!(t.ns_at(1_100), 1_005);
        assert_eq!(t.ns_at(99), 5, "a TSC behind the stamp adds nothing");
    }

    #[test]
    fn port_bits() {
        assert_eq!(port_word_bit(0), (0, 0));
        assert_eq!(port_word_bit(63), (0, 63));
        assert_eq!(port_word_bit(64), (1, 0));
        assert_eq!(port_word_bit(4095), (63, 63));
    }

    proptest! {
        /// For every TSC frequency a real CPU has, the conversion is within
        /// 1 ns per µs of the exact value over a second's worth of ticks.
        #[test]
        fn scale_is_accurate(hz in 1_000_000u64..20_000_000_000, ticks in 0u64..(1u64 << 31)) {
            let (mul, shift) = VcpuTimeInfo::scale_for(hz);
            prop_assert!(mul >= 1 << 31);
            let t = VcpuTimeInfo { tsc_to_system_mul: mul, tsc_shift: shift, ..Default::default() };
            let exact = u64::try_from(ticks as u128 * 1_000_000_000 / hz as u128).unwrap();
            let got = t.ns_at(ticks);
            let tolerance = 1 + exact / 1000;
            prop_assert!(got.abs_diff(exact) <= tolerance, "hz {hz} ticks {ticks}: {got} vs {exact}");
        }
    }
}
