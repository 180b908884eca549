//! A frontend that revokes a grant its request names after writing the
//! request into the ring and before the backend looks: the write (whose other
//! segment is fine) and a read through it fail with `IoError`, the disk is
//! unchanged, and the honest frontend beside it (`blk_honest_hv`), whose
//! device the hypervisor serves too, reads and writes as if alone.
#![no_std]
#![no_main]

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"blk_honest_hv");
veneer_guest::devices!(b"block hypervisor image=pattern-512K.img");

fn main(start: &veneer_guest::StartInfo) -> ! {
    veneer_conformance::blk_attacks::run(start, veneer_conformance::blk_attacks::Attack::RevokeMidRequest)
}
