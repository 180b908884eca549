//! The vCPU's time record (section 8.2) gives a system time that only
//! moves forward across thousands of readings and across the hypervisor's
//! updates of the record (every time the vCPU is scheduled), whose version
//! is even when read, with the reserved fields zero; and the wall clock is
//! a plausible UTC time (after 2020) with `nsec` below 10^9.
#![no_std]
#![no_main]

use veneer_guest::{check, event, println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");

fn main(start: &StartInfo) -> ! {
    event::init(start);
    let first = event::time_record(0);
    check!(first.version.is_multiple_of(2) && first.version > 0, "version {}", first.version);
    check!(first.reserved0 == 0 && first.reserved1 == [0; 2], "reserved fields");
    check!(first.tsc_to_system_mul >= 1 << 31, "multiplier {:#x}", first.tsc_to_system_mul);
    let mut last = event::now();
    let mut updates = 0;
    let mut version = first.version;
    for i in 0..20_000 {
        let t = event::now();
        check!(t >= last, "time went back at reading {}: {} after {}", i, t, last);
        last = t;
        if i % 1000 == 0 {
            // A yield lets the hypervisor reschedule, which rewrites the record.
            event::sched_yield().unwrap();
        }
        let r = event::time_record(0);
        if r.version != version {
            updates += 1;
            version = r.version;
        }
    }
    check!(updates > 0, "the record was never updated");
    let (sec, nsec) = event::wallclock();
    check!(sec > 1_577_836_800 && nsec < 1_000_000_000, "wall clock {}.{:09}", sec, nsec);
    println!("system time {} ns, {} record updates, wall clock {} s at boot", last, updates, sec);
    veneer_guest::success()
}
