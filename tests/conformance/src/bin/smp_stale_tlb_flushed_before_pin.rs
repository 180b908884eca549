//! Rule M10 with the stale translation on another physical CPU. vCPU 1, on
//! the other CPU, writes a frame through a writable window in a loop (a
//! changing non-present entry, so the frame stays a valid L1), so its TLB
//! holds the window's writable translation. vCPU 0 drops the window's
//! entry with `mmu_update` (which flushes nothing) and pins the frame as
//! an L1. The hypervisor must flush vCPU 1's TLB before the frame becomes
//! a page table: vCPU 1's next write faults (its #PF handler stops the
//! loop), and the pinned table never changes after the pin. Had vCPU 1's
//! stale translation survived, it would go on writing into a validated
//! page table.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use veneer_guest::hypercall_abi::memory::{uvmf, MmuUpdate};
use veneer_guest::mmu::{self, peek, Memory, RW};
use veneer_guest::trap::{self, TrapContext};
use veneer_guest::{check, event, println, smp, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::vcpus!(b"2");

const WAIT_NS: u64 = 10_000_000_000;
/// How long vCPU 0 watches the pinned table for writes after vCPU 1
/// faulted.
const WATCH_NS: u64 = 20_000_000;
/// Bit 1 set, bit 0 clear: a non-present entry whatever the count.
const NOT_PRESENT: u64 = 0x2;

static WINDOW: AtomicU64 = AtomicU64::new(0);
static WRITES: AtomicU64 = AtomicU64::new(0);
static FAULTED: AtomicBool = AtomicBool::new(false);

/// vCPU 1's #PF handler: the window is gone; skip the 3-byte store.
fn page_fault(ctx: &mut TrapContext) {
    check!(smp::this_vcpu() == 1, "a page fault on vCPU {} at {:#x}", smp::this_vcpu(), ctx.frame.rip);
    FAULTED.store(true, Ordering::SeqCst);
    ctx.frame.rip += 3;
}

extern "C" fn writer(_: u64) -> ! {
    let window = WINDOW.load(Ordering::SeqCst);
    let mut n = 0u64;
    while !FAULTED.load(Ordering::SeqCst) {
        n += 1;
        // SAFETY: the window is mapped writable until vCPU 0 drops it; the
        // store is `mov [rdi], rax` (3 bytes), which the #PF handler skips
        // once it faults.
        unsafe { core::arch::asm!(".byte 0x48, 0x89, 0x07", in("rdi") window, in("rax") n << 12 | NOT_PRESENT, options(nostack)) };
        WRITES.store(n, Ordering::SeqCst);
    }
    loop {
        event::sched_block().unwrap();
    }
}

fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = event::now() + WAIT_NS;
    while !cond() {
        check!(event::now() < deadline, "timed out waiting: {}", what);
    }
}

fn main(start: &StartInfo) -> ! {
    event::init(start);
    smp::init();
    check!(trap::install(14, 0, true, page_fault).is_ok(), "#PF handler");
    let mut mem = Memory::new(start);
    let (frame, window) = (mem.alloc(), Memory::va(mem.alloc()));
    // The frame starts as zeros: a valid L1.
    check!(mem.fresh_table(frame) == Ok(0), "a zeroed frame");
    check!(mmu::update_va_mapping(window, mem.mfn(frame) << 12 | RW, uvmf::INVLPG) == Ok(0), "window writable");
    WINDOW.store(window, Ordering::SeqCst);
    check!(smp::start_vcpu(start, 1, writer).is_ok(), "start vCPU 1");
    wait_until("vCPU 1 writing", || WRITES.load(Ordering::SeqCst) > 1000);
    let entry = mem.entry_maddr(window, 1);
    check!(mmu::mmu_update(&[MmuUpdate::pt_update(entry, 0)]) == (1, Ok(0)), "drop the window, no flush");
    let at_drop = WRITES.load(Ordering::SeqCst);
    check!(mmu::pin(1, mem.mfn(frame)) == Ok(0), "pin as L1");
    let pinned = peek(Memory::va(frame));
    println!("vCPU 1 wrote {} times after the window was dropped, before the pin", WRITES.load(Ordering::SeqCst).saturating_sub(at_drop));
    wait_until("vCPU 1's page fault", || FAULTED.load(Ordering::SeqCst));
    let watch = event::now() + WATCH_NS;
    while event::now() < watch {
        let now = peek(Memory::va(frame));
        check!(now == pinned, "the pinned L1 changed from {:#x} to {:#x}: a stale translation wrote it", pinned, now);
    }
    veneer_guest::success()
}
