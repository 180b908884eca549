//! The peer of `console_lines_stay_whole`: prints its `whole` lines a
//! byte at a time while domain 1 prints its own, then powers off.
#![no_std]
#![no_main]

use veneer_guest::{hypercall, whole, StartInfo};

veneer_guest::entry!(main);

fn main(_: &StartInfo) -> ! {
    whole::print_lines(b'c', 20);
    hypercall::poweroff(0)
}
