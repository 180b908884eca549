//! Numbers that name no hypercall answer `NoSuchCall` and change nothing:
//! gaps between defined calls, the ends of each area, huge values.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::{Error, Hypercall};
use veneer_guest::{check, hypercall, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");

fn main(_: &StartInfo) -> ! {
    let mut tried = 0;
    for nr in (0..0x200u64).chain([1 << 31, 1 << 32, 1 << 63, u64::MAX]) {
        if Hypercall::from_number(nr).is_some() {
            continue;
        }
        let r = hypercall::raw(nr, [0xdead, 0xbeef, 1, 2, 3, 4]);
        check!(r == Err(Error::NoSuchCall), "number {:#x} returned {:?}", nr, r);
        tried += 1;
    }
    check!(tried > 0x100, "tried only {} numbers", tried);
    veneer_guest::success()
}
