//! The honest frontend beside a misbehaving one (the `blk_bad_*` tests):
//! its own device of the same backend domain (`blkback`) must read and
//! write exactly as if it were alone (`blk_workload::check_device`), and it
//! powers off cleanly only if it did.
#![no_std]
#![no_main]

veneer_guest::entry!(main);
veneer_guest::devices!(b"block blkback");

fn main(start: &veneer_guest::StartInfo) -> ! {
    veneer_conformance::blk_workload::check_device(start, 200);
    veneer_guest::hypercall::poweroff(0)
}
