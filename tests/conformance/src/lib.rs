//! What several conformance guests share: the workloads of the split-device
//! tests, each run by guests that differ only in how the device is
//! configured (who serves it) or what else happens around it.
#![no_std]

pub mod blk_attacks;
pub mod blk_workload;
pub mod net_workload;
pub mod pair;
pub mod wakeups;
