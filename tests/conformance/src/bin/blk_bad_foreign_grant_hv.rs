//! A frontend whose requests name grants the backend may not use: granted to
//! another domain, never granted, read-only for a read, past the table,
//! reference 0 — each answered `IoError`; a write with one such segment
//! leaves the disk unchanged (while a read-only grant suffices for a write),
//! and the honest frontend beside it (`blk_honest_hv`), whose device the
//! hypervisor serves too, reads and writes as if alone.
#![no_std]
#![no_main]

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"blk_honest_hv");
veneer_guest::devices!(b"block hypervisor image=pattern-512K.img");

fn main(start: &veneer_guest::StartInfo) -> ! {
    veneer_conformance::blk_attacks::run(start, veneer_conformance::blk_attacks::Attack::ForeignGrant)
}
