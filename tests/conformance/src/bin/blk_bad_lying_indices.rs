//! A frontend that lies about its ring indices: `req_prod` 1000 ahead of what
//! it wrote, then behind what the backend consumed. The backend answers the
//! garbage slots with errors, never more than it was told of, and the honest
//! frontend beside it (`blk_honest`), whose device the backend domain
//! `blkback` serves too, reads and writes as if alone.
#![no_std]
#![no_main]

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"blkback blk_honest");
veneer_guest::devices!(b"block blkback");

fn main(start: &veneer_guest::StartInfo) -> ! {
    veneer_conformance::blk_attacks::run(start, veneer_conformance::blk_attacks::Attack::LyingIndices)
}
