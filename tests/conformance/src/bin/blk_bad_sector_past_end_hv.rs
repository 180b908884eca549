//! A frontend that names sectors past the end of its device (and wrapping
//! ranges) and malformed requests: `IoError` and `NotSupported`, nothing
//! written (the last sector itself is writable), and the honest frontend
//! beside it (`blk_honest_hv`), whose device the hypervisor serves too, reads
//! and writes as if alone.
#![no_std]
#![no_main]

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"blk_honest_hv");
veneer_guest::devices!(b"block hypervisor image=pattern-512K.img");

fn main(start: &veneer_guest::StartInfo) -> ! {
    veneer_conformance::blk_attacks::run(start, veneer_conformance::blk_attacks::Attack::SectorPastEnd)
}
