//! System time: nanoseconds since the hypervisor started, derived from the
//! TSC with the same fixed-point conversion guests use (section 8.2), so a
//! guest's reading and the hypervisor's agree to within
//! [`GUEST_SKEW_NS`].

use hypercall_abi::shared_info::{time_flags, VcpuTimeInfo};

/// How far a guest's reading (extending its last record) may lag the
/// hypervisor's clock: the conversion rounds down once per record, and a
/// negative shift drops a low bit of each delta. A timer fires once the
/// hypervisor's clock is this far past the deadline, so the guest never
/// sees it early.
pub const GUEST_SKEW_NS: u64 = 2;

/// The TSC-to-nanoseconds conversion of this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    /// TSC ticks per second.
    pub tsc_hz: u64,
    /// The conversion from TSC `base` (system time 0) on.
    origin: VcpuTimeInfo,
    /// Whether the TSC is invariant and synchronised across CPUs.
    stable: bool,
}

impl Clock {
    /// A clock whose system time is 0 at TSC `base`. `tsc_hz` must be
    /// between 1 MHz and 2^40 Hz.
    pub fn new(base: u64, tsc_hz: u64, stable: bool) -> Clock {
        let (mul, shift) = VcpuTimeInfo::scale_for(tsc_hz);
        let origin = VcpuTimeInfo { tsc_timestamp: base, system_time: 0, tsc_to_system_mul: mul, tsc_shift: shift, ..VcpuTimeInfo::default() };
        Clock { tsc_hz, origin, stable }
    }

    /// System time at TSC `tsc`.
    pub fn ns(&self, tsc: u64) -> u64 {
        self.origin.ns_at(tsc)
    }

    /// The first TSC value at which system time has passed `ns`: waiting
    /// until then never ends early.
    pub fn tsc_after(&self, ns: u64) -> u64 {
        // Invert the conversion (ticks << shift) * mul >> 32, then settle on
        // the exact first tick: the estimate is off by a few at most.
        let mul = u128::from(self.origin.tsc_to_system_mul);
        let shifted = ((u128::from(ns) + 1) << 32).div_ceil(mul);
        let shift = i32::from(self.origin.tsc_shift);
        let delta = if shift >= 0 { shifted >> shift } else { shifted << -shift };
        let base = self.origin.tsc_timestamp;
        let mut tsc = base.saturating_add(u64::try_from(delta).unwrap_or(u64::MAX));
        while tsc > base && self.ns(tsc - 1) > ns {
            tsc -= 1;
        }
        while self.ns(tsc) <= ns && tsc != u64::MAX {
            tsc += 1;
        }
        tsc
    }

    /// The time record of a vCPU at TSC `tsc` (version left to the writer).
    pub fn record(&self, tsc: u64) -> VcpuTimeInfo {
        VcpuTimeInfo {
            tsc_timestamp: tsc,
            system_time: self.ns(tsc),
            flags: if self.stable { time_flags::TSC_STABLE } else { 0 },
            ..self.origin
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn starts_at_zero() {
        let c = Clock::new(1000, 2_000_000_000, true);
        assert_eq!(c.ns(1000), 0);
        assert_eq!(c.ns(3000), 1000);
        assert_eq!(c.record(5).flags, time_flags::TSC_STABLE);
    }

    proptest! {
        /// A guest extending any record the hypervisor wrote never reads
        /// later than the hypervisor's own clock, nor more than
        /// `GUEST_SKEW_NS` earlier; and later records never go back in time.
        #[test]
        fn records_agree_with_the_clock(hz in 1_000_000u64..10_000_000_000, base in 0u64..1 << 50, a in 0u64..1 << 40, d in 0u64..1 << 36) {
            let c = Clock::new(base, hz, false);
            let r = c.record(base + a);
            let t = base + a + d;
            let guest = r.ns_at(t);
            prop_assert!(guest <= c.ns(t) && c.ns(t) - guest <= GUEST_SKEW_NS, "guest {} clock {}", guest, c.ns(t));
            prop_assert!(c.record(t).system_time >= guest);
        }

        /// The TSC for a deadline is the first one past it.
        #[test]
        fn deadlines_are_never_early(hz in 1_000_000u64..10_000_000_000, base in 0u64..1 << 50, ns in 0u64..1 << 42) {
            let c = Clock::new(base, hz, false);
            let tsc = c.tsc_after(ns);
            prop_assert!(c.ns(tsc) > ns);
            prop_assert!(c.ns(tsc - 1) <= ns, "not the first: {} for {}", c.ns(tsc - 1), ns);
        }
    }
}
