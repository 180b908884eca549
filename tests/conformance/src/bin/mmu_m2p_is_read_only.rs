//! The m2p table is mapped read-only: a guest store to it (which would let
//! it lie about which frames are whose to every reader) raises #PF and the
//! domain is stopped. Changes go through `MachphysUpdate`, for own frames.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::memory::memory_consts::M2P_VIRT_START;
use veneer_guest::mmu::{self, Memory};
use veneer_guest::{println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"stopped #PF (vector 14, error 0x7)");
veneer_guest::peers!(b"mmu_companion");

fn main(start: &StartInfo) -> ! {
    let mfn = Memory::new(start).mfn(0);
    println!("m2p[{:#x}] reads {}; writing it", mfn, mmu::peek(M2P_VIRT_START + mfn * 8));
    mmu::poke(M2P_VIRT_START + mfn * 8, 7);
    veneer_guest::failure(format_args!("the store to the m2p went through"))
}
