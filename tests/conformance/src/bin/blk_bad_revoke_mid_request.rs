//! A frontend that revokes a grant its request names after writing the
//! request into the ring and before the backend looks: the write (whose other
//! segment is fine) and a read through it fail with `IoError`, the disk is
//! unchanged, and the honest frontend beside it (`blk_honest`), whose device
//! the backend domain `blkback` serves too, reads and writes as if alone.
#![no_std]
#![no_main]

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"blkback blk_honest");
veneer_guest::devices!(b"block blkback");

fn main(start: &veneer_guest::StartInfo) -> ! {
    veneer_conformance::blk_attacks::run(start, veneer_conformance::blk_attacks::Attack::RevokeMidRequest)
}
