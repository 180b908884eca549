//! Console lines of writers running at once stay whole (SPEC 11.2): this
//! domain's two vCPUs, on the machine's two CPUs, and the peer domain
//! `console_line_writer` each print `LINES` lines a byte at a time (one
//! `console_write` per byte), so without line gathering their bytes would
//! mix on the serial port. The runner checks every line of the run has
//! its domain's `(dN) ` prefix and that all 60 `whole` lines came out
//! intact, each a run of one writer's character.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicBool, Ordering};

use veneer_guest::{event, smp, whole, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::vcpus!(b"2");
veneer_guest::peers!(b"console_line_writer");
veneer_guest::whole_lines!(b"60");

const LINES: usize = 20;
static DONE: AtomicBool = AtomicBool::new(false);

extern "C" fn second(_: u64) -> ! {
    whole::print_lines(b'b', LINES);
    DONE.store(true, Ordering::SeqCst);
    loop {
        event::sched_block().unwrap();
    }
}

fn main(start: &StartInfo) -> ! {
    event::init(start);
    smp::init();
    if smp::start_vcpu(start, 1, second).is_err() {
        veneer_guest::failure(format_args!("start vCPU 1"));
    }
    whole::print_lines(b'a', LINES);
    while !DONE.load(Ordering::SeqCst) {
        event::sched_yield().unwrap();
    }
    veneer_guest::success()
}
