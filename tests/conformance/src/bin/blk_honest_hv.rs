//! As `blk_honest`, for the `blk_bad_*_hv` tests: its own device served by
//! the hypervisor, beside the misbehaving frontend's.
#![no_std]
#![no_main]

veneer_guest::entry!(main);
veneer_guest::devices!(b"block hypervisor image=pattern-512K.img");

fn main(start: &veneer_guest::StartInfo) -> ! {
    veneer_conformance::blk_workload::check_device(start, 200);
    veneer_guest::hypercall::poweroff(0)
}
