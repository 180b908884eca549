//! A frontend that names sectors past the end of its device (and wrapping
//! ranges) and malformed requests: `IoError` and `NotSupported`, nothing
//! written (the last sector itself is writable), and the honest frontend
//! beside it (`blk_honest`), whose device the backend domain `blkback` serves
//! too, reads and writes as if alone.
#![no_std]
#![no_main]

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"blkback blk_honest");
veneer_guest::devices!(b"block blkback");

fn main(start: &veneer_guest::StartInfo) -> ! {
    veneer_conformance::blk_attacks::run(start, veneer_conformance::blk_attacks::Attack::SectorPastEnd)
}
