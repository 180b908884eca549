//! Fair share on an SMP host (section 15): four domains that never block,
//! this one and three `spinner` peers, on a machine with two CPUs. The
//! scheduler keeps two on each CPU's queue (new vCPUs go to the shortest
//! queue; a queue two longer than another gives one up), so this domain
//! gets about half of a CPU: between `MIN_SHARE` and `MAX_SHARE` percent
//! of `WINDOW_NS` of guest time, never kept off the CPU for longer than
//! `MAX_GAP_NS`. Measured as `fairness_two_spinners` does, from the gaps in
//! its own reading of system time after a warm-up, with the same generous
//! bounds for QEMU's TCG on a busy host.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::Error;
use veneer_guest::{check, event, println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"spinner spinner spinner");
veneer_guest::host_cpus!(b"2");

const WINDOW_NS: u64 = 1_000_000_000;
const WARMUP_NS: u64 = 200_000_000;
const MIN_SHARE: u64 = 20;
const MAX_SHARE: u64 = 80;
const MAX_GAP_NS: u64 = 100_000_000;
/// A gap longer than this between two readings means the vCPU was off
/// the CPU.
const OFF_CPU_NS: u64 = 500_000;
/// The spinners: domains 2-4, each with port 1 allocated for this one.
const SPINNERS: [u32; 3] = [2, 3, 4];

fn main(start: &StartInfo) -> ! {
    event::init(start);
    let mut ports = [0u32; 3];
    for (port, &spinner) in ports.iter_mut().zip(&SPINNERS) {
        *port = loop {
            match event::bind_interdomain(spinner, 1) {
                Ok(p) => break p,
                Err(Error::Busy) => {
                    event::sched_yield().unwrap();
                }
                Err(e) => veneer_guest::failure(format_args!("bind_interdomain d{}: {:?}", spinner, e)),
            }
        };
    }
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
    for port in ports {
        event::close(port).unwrap();
    }
    let total = last - begin;
    let share = (total - off) * 100 / total;
    println!("share {}% of {} ms beside three spinners on two CPUs, longest time off the CPU {} ms", share, total / 1_000_000, worst / 1_000_000);
    check!((MIN_SHARE..=MAX_SHARE).contains(&share), "share {}% outside {}..{}%", share, MIN_SHARE, MAX_SHARE);
    check!(worst <= MAX_GAP_NS, "off the CPU for {} ns at a stretch", worst);
    veneer_guest::success()
}
