//! What the I/O benchmark guests share: block I/O at a queue depth, and
//! packets through the switch.
#![no_std]

pub mod blk_bench;
pub mod net_bench;

use veneer_guest::{hypercall, println};

/// Ends the boot as a failed benchmark (the harness sees the run fail).
pub fn fail(what: core::fmt::Arguments<'_>) -> ! {
    println!("bench failed: {}", what);
    hypercall::crash(1)
}
