//! Block I/O through the hypervisor's own backend (the monolithic model):
//! the same frontend and workload as `blk_domain_backend`, the device
//! configured `block hypervisor image=pattern-512K.img` instead — backend
//! placement is one word of the domain configuration.
#![no_std]
#![no_main]

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::devices!(b"block hypervisor image=pattern-512K.img");

fn main(start: &veneer_guest::StartInfo) -> ! {
    veneer_conformance::blk_workload::run(start)
}
