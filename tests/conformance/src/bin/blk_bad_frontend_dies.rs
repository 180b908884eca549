//! A frontend that dies mid-request: 24 requests in the ring, 16 announced to
//! the backend, 8 published without telling, and the domain powers off. The
//! backend lets go of the ring and the pages (the runner sees every frame
//! free again), and the honest frontend beside it (`blk_honest`), whose
//! device the backend domain `blkback` serves too, reads and writes as if
//! alone.
#![no_std]
#![no_main]

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"blkback blk_honest");
veneer_guest::devices!(b"block blkback");

fn main(start: &veneer_guest::StartInfo) -> ! {
    veneer_conformance::blk_attacks::run(start, veneer_conformance::blk_attacks::Attack::FrontendDies)
}
