//! A frontend that submits more requests than the ring holds: a full ring of
//! reads, 16 more written over its first slots, `req_prod` 48. The backend
//! answers at most 48, the 16 reads it saw correctly, the slots it then finds
//! (its own responses) with errors, and the honest frontend beside it
//! (`blk_honest_hv`), whose device the hypervisor serves too, reads and
//! writes as if alone.
#![no_std]
#![no_main]

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"blk_honest_hv");
veneer_guest::devices!(b"block hypervisor image=pattern-512K.img");

fn main(start: &veneer_guest::StartInfo) -> ! {
    veneer_conformance::blk_attacks::run(start, veneer_conformance::blk_attacks::Attack::OverfullRing)
}
