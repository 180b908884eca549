//! The data segment selectors (DS, ES, FS, GS) a vCPU loads stay its own:
//! the hypervisor saves and restores them with the rest of the vCPU. Two
//! vCPUs of this domain share the machine's one CPU, each loads its own
//! set of the selectors a guest may hold (the flat DPL-3 segments and
//! null), and they yield to each other `ROUNDS` times, each checking its
//! set after every switch. Had the CPU's selectors simply stayed as the
//! last vCPU left them, each would find the other's.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};

use veneer_guest::hypercall_abi::cpu::selectors::{FLAT_USER_CS32, FLAT_USER_CS64, FLAT_USER_DS};
use veneer_guest::{check, event, smp, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::vcpus!(b"2");
veneer_guest::host_cpus!(b"1");

const ROUNDS: u64 = 50;
static FINISHED: AtomicU64 = AtomicU64::new(0);

fn load(sel: [u64; 4]) {
    // SAFETY: each selector is null or one of the hypervisor's flat DPL-3
    // segments, loadable in ring 3; nothing here uses FS or GS.
    unsafe {
        core::arch::asm!(
            "mov ds, {0:x}", "mov es, {1:x}", "mov fs, {2:x}", "mov gs, {3:x}",
            in(reg) sel[0], in(reg) sel[1], in(reg) sel[2], in(reg) sel[3],
            options(nostack, preserves_flags),
        )
    };
}

fn read() -> [u64; 4] {
    let (ds, es, fs, gs): (u64, u64, u64, u64);
    // SAFETY: reading segment registers has no side effect.
    unsafe {
        core::arch::asm!(
            "mov {0:x}, ds", "mov {1:x}, es", "mov {2:x}, fs", "mov {3:x}, gs",
            out(reg) ds, out(reg) es, out(reg) fs, out(reg) gs,
            options(nomem, nostack, preserves_flags),
        )
    };
    [ds & 0xffff, es & 0xffff, fs & 0xffff, gs & 0xffff]
}

/// Loads `mine`, then yields `ROUNDS` times, checking them each time.
fn run(who: &str, mine: [u64; 4]) {
    load(mine);
    for round in 0..ROUNDS {
        event::sched_yield().unwrap();
        let now = read();
        check!(now == mine, "{} round {}: selectors {:x?}, loaded {:x?}", who, round, now, mine);
    }
    FINISHED.fetch_add(1, Ordering::SeqCst);
}

extern "C" fn second(_: u64) -> ! {
    run("vCPU 1", [FLAT_USER_CS32, FLAT_USER_CS64, 0, FLAT_USER_DS]);
    loop {
        event::sched_block().unwrap();
    }
}

fn main(start: &StartInfo) -> ! {
    event::init(start);
    smp::init();
    check!(smp::start_vcpu(start, 1, second).is_ok(), "start vCPU 1");
    run("vCPU 0", [FLAT_USER_DS, FLAT_USER_DS, FLAT_USER_CS32, 0]);
    while FINISHED.load(Ordering::SeqCst) < 2 {
        event::sched_yield().unwrap();
    }
    veneer_guest::success()
}
