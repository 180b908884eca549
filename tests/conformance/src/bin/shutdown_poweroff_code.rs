//! `sched_shutdown(Poweroff, code)` ends the domain with the exit status it
//! gives; a non-zero status is reported and makes the run unclean.
#![no_std]
#![no_main]

use veneer_guest::{hypercall, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"ended powered off (code 42)");

fn main(_: &StartInfo) -> ! {
    hypercall::poweroff(42)
}
