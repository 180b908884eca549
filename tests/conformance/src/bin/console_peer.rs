//! The peer of `console_ring` (domain 2): writes a line through its own
//! console ring, which the hypervisor serves beside domain 1's.
#![no_std]
#![no_main]

use veneer_guest::console::ConsoleFront;
use veneer_guest::device;
use veneer_guest::grant::Grants;
use veneer_guest::mmu::Memory;
use veneer_guest::{event, hypercall, StartInfo};

veneer_guest::entry!(main);
veneer_guest::devices!(b"console hypervisor");

fn main(start: &StartInfo) -> ! {
    event::init(start);
    let mut mem = Memory::new(start);
    let virq = device::bind_device_virq();
    let mut grants = Grants::setup(&mut mem, 1).expect("a grant table");
    let mut con = ConsoleFront::connect(start, virq, &mut mem, &mut grants).expect("the console handshake");
    con.write(b"console peer: hello from the other domain\n").expect("write");
    con.flush().expect("every write answered");
    hypercall::poweroff(0)
}
