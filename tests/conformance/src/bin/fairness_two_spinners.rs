//! Two domains that never block share one CPU fairly (section 15): while
//! the peer `spinner` spins too, this domain gets between `MIN_SHARE` and
//! `MAX_SHARE` percent of `WINDOW_NS` of guest time, and is never kept off
//! the CPU for longer than `MAX_GAP_NS` (a spinning domain cannot starve
//! another). Its share is measured from the gaps in its own reading of
//! system time, after `WARMUP_NS` of spinning together: the scheduler
//! first repays the peer the CPU time this domain used alone while
//! starting (fair share is over the long run, not from an instant). The
//! bounds are generous enough for QEMU's TCG on a busy host, where the
//! whole machine stalls now and then: a stall in this domain's turn looks
//! to it like time off the CPU while the scheduler charges it as time run,
//! so the measured share reads low (runs here measured 33-48%). The
//! scheduler's own guarantee (within one slice) is proved on the host by
//! its property test.
#![no_std]
#![no_main]

use veneer_guest::{check, event, println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"spinner");
veneer_guest::host_cpus!(b"1");

const WINDOW_NS: u64 = 1_000_000_000;
const WARMUP_NS: u64 = 200_000_000;
const MIN_SHARE: u64 = 20;
const MAX_SHARE: u64 = 80;
const MAX_GAP_NS: u64 = 100_000_000;
/// A gap longer than this between two readings means the vCPU was off
/// the CPU.
const OFF_CPU_NS: u64 = 500_000;
const SPINNER: u32 = 2;

fn main(start: &StartInfo) -> ! {
    event::init(start);
    // The spinner allocates a port for us and starts spinning; it stops
    // when that port is closed (it sees its end become unbound).
    let port = event::connect(SPINNER, 1);
    let warm = event::now() + WARMUP_NS;
    while event::now() < warm {
        core::hint::spin_loop();
    }
    let begin = event::now();
    let mut last = begin;
    let (mut off, mut worst) = (0, 0);
    loop {
        let t = event::now();
        let gap = t - last;
        if gap > OFF_CPU_NS {
            off += gap;
            worst = worst.max(gap);
        }
        last = t;
        if t - begin >= WINDOW_NS {
            break;
        }
    }
    event::close(port).unwrap();
    let total = last - begin;
    let share = (total - off) * 100 / total;
    println!("share {}% of {} ms, longest time off the CPU {} ms", share, total / 1_000_000, worst / 1_000_000);
    check!((MIN_SHARE..=MAX_SHARE).contains(&share), "share {}% outside {}..{}%", share, MIN_SHARE, MAX_SHARE);
    check!(worst <= MAX_GAP_NS, "off the CPU for {} ns at a stretch", worst);
    veneer_guest::success()
}
