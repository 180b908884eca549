//! No wake-up between domains on different CPUs is lost (with peer
//! `event_wakeups_peer`, domain 2; the scheduler gives each domain a CPU of
//! its own): the two take turns thousands of times asleep in `sched_poll`,
//! then in `sched_block`, each answer landing at a random point of the
//! waiting side's way to sleep (`wakeups`). Each turn must come within
//! 60 s.
#![no_std]
#![no_main]

use veneer_guest::{println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"event_wakeups_peer");
veneer_guest::host_cpus!(b"2");

fn main(start: &StartInfo) -> ! {
    veneer_conformance::wakeups::run(start, 2, false);
    println!("{} turns each way in sched_poll and in sched_block", veneer_conformance::wakeups::ROUNDS);
    veneer_guest::success()
}
