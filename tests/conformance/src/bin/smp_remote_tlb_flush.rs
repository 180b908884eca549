//! A TLB flush a guest asks for reaches the vCPUs it names on the physical
//! CPUs they run on, before the call returns. vCPU 1, on the other CPU,
//! reads a window page in a loop, so its TLB holds the window's
//! translation; vCPU 0 points the window at another frame and asks for the
//! flush on vCPU 1, each way the ABI offers (`update_va_mapping` with an
//! `INVLPG` or a full flush for a vCPU mask or for every vCPU, `mmuext_op`
//! `InvlpgMulti` and `TlbFlushMulti`), then lets vCPU 1 read once more: it
//! must see the new frame's contents. A flush done only on vCPU 0's CPU
//! would leave vCPU 1 reading the old frame through its stale translation.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};

use veneer_guest::hypercall_abi::memory::{uvmf, MmuUpdate, MmuextCmd};
use veneer_guest::mmu::{self, peek, poke, Memory, RO, RW};
use veneer_guest::{check, event, println, smp, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::vcpus!(b"2");

const WAIT_NS: u64 = 10_000_000_000;
static WINDOW: AtomicU64 = AtomicU64::new(0);
/// Round vCPU 0 has finished remapping for; vCPU 1 reads once for it.
static ROUND: AtomicU64 = AtomicU64::new(0);
/// What vCPU 1 read in the loop, and after each round's remap.
static SEEN: AtomicU64 = AtomicU64::new(0);
static AFTER: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];
static DONE: AtomicU64 = AtomicU64::new(0);

extern "C" fn reader(_: u64) -> ! {
    let window = WINDOW.load(Ordering::SeqCst);
    let mut done = 0;
    loop {
        let round = ROUND.load(Ordering::SeqCst);
        let value = peek(window);
        if round > done {
            AFTER[round as usize].store(value, Ordering::SeqCst);
            done = round;
            DONE.store(done, Ordering::SeqCst);
        } else {
            SEEN.store(value, Ordering::SeqCst);
        }
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
    let mut mem = Memory::new(start);
    // Frames whose first word says which they are; the window starts on 1.
    let frames = [mem.alloc(), mem.alloc()];
    for (i, &f) in frames.iter().enumerate() {
        check!(mem.map(f, RW) == Ok(0), "map");
        poke(Memory::va(f), 0xf00 + i as u64);
    }
    let window = Memory::va(mem.alloc());
    let point = |i: usize| mem.mfn(frames[i]) << 12 | RO;
    check!(mmu::update_va_mapping(window, point(0), uvmf::INVLPG) == Ok(0), "window on frame 0");
    WINDOW.store(window, Ordering::SeqCst);
    check!(smp::start_vcpu(start, 1, reader).is_ok(), "start vCPU 1");
    let entry = mem.entry_maddr(window, 1);
    let vcpu1 = 1u64 << 1;
    let uvm = |flags: u64, mask: u64| move |new: u64| mmu::update_va_mapping_multi(window, new, flags, mask) == Ok(0);
    let write_then = |cmd: MmuextCmd, arg1: u64, mask: u64| {
        move |new: u64| mmu::mmu_update(&[MmuUpdate::pt_update(entry, new)]).1 == Ok(0) && mmu::mmuext(&[mmu::op(cmd, arg1, mask)]).1 == Ok(0)
    };
    let ways: [(&str, &dyn Fn(u64) -> bool); 6] = [
        ("update_va_mapping INVLPG for vCPU 1", &uvm(uvmf::INVLPG | uvmf::MULTI, vcpu1)),
        ("update_va_mapping full flush for vCPU 1", &uvm(uvmf::TLB_FLUSH | uvmf::MULTI, vcpu1)),
        ("update_va_mapping INVLPG for every vCPU", &uvm(uvmf::INVLPG | uvmf::ALL, 0)),
        ("update_va_mapping full flush for every vCPU", &uvm(uvmf::TLB_FLUSH | uvmf::ALL, 0)),
        ("mmu_update, then mmuext InvlpgMulti", &write_then(MmuextCmd::InvlpgMulti, window, vcpu1)),
        ("mmu_update, then mmuext TlbFlushMulti", &write_then(MmuextCmd::TlbFlushMulti, 0, vcpu1)),
    ];
    let mut on = 0;
    for (round, (what, remap)) in (1u64..).zip(ways) {
        // vCPU 1 reads the current frame through its TLB.
        let expect = 0xf00 + on as u64;
        wait_until("vCPU 1 reading the window", || SEEN.load(Ordering::SeqCst) == expect);
        on ^= 1;
        check!(remap(point(on)), "{} refused", what);
        ROUND.store(round, Ordering::SeqCst);
        wait_until("vCPU 1's read after the remap", || DONE.load(Ordering::SeqCst) == round);
        let after = AFTER[round as usize].load(Ordering::SeqCst);
        check!(after == 0xf00 + on as u64, "{}: vCPU 1 still reads {:#x}", what, after);
        println!("{}: vCPU 1 sees the new frame", what);
    }
    veneer_guest::success()
}
