//! Page-table operations on Veneer, each the PV form of what the native
//! kernel (`perf/native`) does with plain stores and `mov cr3`:
//!
//! - `mmu_update` batches of 1, 16 and 512 entries rewriting a live L1
//!   (every entry maps a writable frame, and each batch maps other frames
//!   than the last, so every entry drops one type use and takes another);
//!   reported per entry;
//! - pinning an L1 whose 512 entries are present (validation of every
//!   entry), timed alone, the unpin that must precede it untimed;
//! - `NewBaseptr` between two L4 tables mapping the same space (the
//!   hypercall, the reference counting and the CR3 load).
#![no_std]
#![no_main]

use core::cell::Cell;

use veneer_guest::hypercall_abi::memory::{MmuUpdate, MmuextCmd};
use veneer_guest::mmu::{self, poke, Memory, RO, RW};
use veneer_guest::{hypercall, println, StartInfo, IMAGE_BASE};
use veneer_perf_measure::{cycles_per_op, cycles_per_op_with_setup, per_item, Line};

veneer_guest::entry!(main);

/// The live L1's 2 MiB, after the bootstrap L1's.
const WINDOW: u64 = IMAGE_BASE + (2 << 20);
/// The two runs of frames the batches alternate between.
const RUN_A: u64 = 1024;
const RUN_B: u64 = 1536;

static mut BATCHES: [[MmuUpdate; 512]; 2] = [[MmuUpdate { ptr: 0, val: 0 }; 512]; 2];

fn fail(what: &str) -> ! {
    println!("bench failed: {}", what);
    hypercall::crash(1)
}

fn main(start: &StartInfo) -> ! {
    println!("bench entered");
    let mut mem = Memory::new(start);
    if start.nr_pages < RUN_B + 512 {
        fail("needs 8 MiB");
    }
    let window = mem.alloc();
    if mem.fresh_table(window) != Ok(0) || mmu::pin(1, mem.mfn(window)) != Ok(0) {
        fail("window L1");
    }
    let hook = MmuUpdate::pt_update(mem.entry_maddr(WINDOW, 2), mem.mfn(window) << 12 | RW);
    if mmu::mmu_update(&[hook]) != (1, Ok(0)) {
        fail("hook");
    }
    // SAFETY: single-threaded; BATCHES is used only here.
    let batches = unsafe { &mut *core::ptr::addr_of_mut!(BATCHES) };
    for (b, run) in [RUN_A, RUN_B].into_iter().enumerate() {
        for (i, slot) in (0u64..).zip(batches[b].iter_mut()) {
            *slot = MmuUpdate::pt_update((mem.mfn(window) << 12) | (i * 8), (mem.mfn(run + i) << 12) | RW);
        }
    }
    let mut failures = 0u32;
    for (n, per_batch, name) in [(1, 1000, "mmu_update_1"), (16, 200, "mmu_update_16"), (512, 20, "mmu_update_512")] {
        let mut which = 0;
        let stats = cycles_per_op(per_batch, || {
            which ^= 1;
            let (done, r) = mmu::mmu_update(&batches[which][..n]);
            failures += u32::from(done as usize != n || r.is_err());
        });
        println!("{}", Line { name, stats: per_item(stats, n as u64) });
    }

    // A full L1, never hooked in: mapping RUN_A writable again.
    let full = mem.alloc();
    if mem.map(full, RW) != Ok(0) {
        fail("map the full L1");
    }
    for i in 0..512 {
        poke(Memory::va(full) + i * 8, mem.mfn(RUN_A + i) << 12 | RW);
    }
    if mem.map(full, RO) != Ok(0) {
        fail("remap it read-only");
    }
    let full_mfn = mem.mfn(full);
    // Both closures see these: the setup unpins what the last pin pinned.
    let (pinned, pin_failures) = (Cell::new(false), Cell::new(0u32));
    let stats = cycles_per_op_with_setup(
        200,
        || {
            if pinned.get() && mmu::unpin(full_mfn).is_err() {
                pin_failures.set(pin_failures.get() + 1);
            }
        },
        || {
            if mmu::pin(1, full_mfn).is_err() {
                pin_failures.set(pin_failures.get() + 1);
            }
            pinned.set(true);
        },
    );
    failures += pin_failures.get();
    println!("{}", Line { name: "pin_l1_full", stats });

    // A second L4 naming the same L3, pinned.
    let l4b = mem.alloc();
    if mem.map(l4b, RW) != Ok(0) {
        fail("map the second L4");
    }
    for i in 0..512 {
        poke(Memory::va(l4b) + i * 8, if i == 511 { mmu::peek(start.pt_base + 511 * 8) } else { 0 });
    }
    if mem.map(l4b, RO) != Ok(0) || mmu::pin(4, mem.mfn(l4b)) != Ok(0) {
        fail("pin the second L4");
    }
    let tables = [mem.mfn((start.pt_base - IMAGE_BASE) / 4096), mem.mfn(l4b)];
    let mut which = 0;
    let stats = cycles_per_op(1000, || {
        which ^= 1;
        failures += u32::from(mmu::mmuext1(MmuextCmd::NewBaseptr, tables[which]).is_err());
    });
    println!("{}", Line { name: "new_baseptr", stats });
    if failures != 0 {
        println!("bench failed: {} calls failed", failures);
        hypercall::crash(2)
    }
    hypercall::poweroff(0)
}
