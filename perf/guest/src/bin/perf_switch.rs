//! vCPU context switch on Veneer, one CPU: this domain and its peer
//! (`perf_switch_peer`) take turns with `sched_yield`, so each yield
//! switches to the other domain's vCPU and the peer's yield switches back.
//! A switch saves one vCPU (registers, XSAVE state, segment registers and
//! bases) and loads the other (with both its address spaces afresh), plus
//! the hypercall that asks for it; reported per switch. Its native
//! counterpart is a kernel's switch between two threads in two address
//! spaces (registers, stack, CR3, XSAVE state).
#![no_std]
#![no_main]

use veneer_guest::{event, hypercall, println, StartInfo};
use veneer_perf_measure::{cycles_per_op, per_item, Line};

veneer_guest::entry!(main);
veneer_guest::peers!(b"perf_switch_peer");

/// Yields per batch (the peer yields `ops_of` of them, and a few more).
const PER_BATCH: u32 = 200;

fn main(_: &StartInfo) -> ! {
    println!("bench entered");
    // Each yield switches to the peer and the peer's switches back.
    let stats = cycles_per_op(PER_BATCH, || {
        event::sched_yield().expect("yield");
    });
    println!("{}", Line { name: "vcpu_context_switch", stats: per_item(stats, 2) });
    hypercall::poweroff(0)
}
