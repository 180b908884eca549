//! A frontend that lies about its ring indices: `req_prod` 1000 ahead of what
//! it wrote, then behind what the backend consumed. The backend answers the
//! garbage slots with errors, never more than it was told of, and the honest
//! frontend beside it (`blk_honest_hv`), whose device the hypervisor serves
//! too, reads and writes as if alone.
#![no_std]
#![no_main]

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"blk_honest_hv");
veneer_guest::devices!(b"block hypervisor image=pattern-512K.img");

fn main(start: &veneer_guest::StartInfo) -> ! {
    veneer_conformance::blk_attacks::run(start, veneer_conformance::blk_attacks::Attack::LyingIndices)
}
