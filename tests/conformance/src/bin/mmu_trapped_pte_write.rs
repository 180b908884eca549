//! A guest kernel's plain writes to its own L1 table, through the
//! read-only mapping every page table has, are applied as validated
//! updates (SPEC 12.8): `mov` from a register and of an immediate, `xchg`
//! (which returns the old entry) and `lock cmpxchg` (which compares, and
//! sets ZF like the real instruction). The new mapping works; the entry
//! reads back with USER forced on.
#![no_std]
#![no_main]

use core::arch::asm;

use veneer_guest::hypercall_abi::memory::pte;
use veneer_guest::mmu::{self, peek, poke, Memory, RO, RW};
use veneer_guest::{check, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");

// SAFETY (the four helpers): `entry` is the read-only mapping of one of
// the guest's own L1 entries; the store faults and the hypervisor applies
// it as a validated update, or stops the domain. Nothing else is touched.

/// `mov [entry], value`.
fn store(entry: u64, value: u64) {
    // SAFETY: see above.
    unsafe { asm!("mov qword ptr [{e}], {v}", e = in(reg) entry, v = in(reg) value, options(nostack)) };
}

/// `mov qword [entry], 0`: the immediate form.
fn store_zero_immediate(entry: u64) {
    // SAFETY: see above.
    unsafe { asm!("mov qword ptr [{e}], 0", e = in(reg) entry, options(nostack)) };
}

/// `lock xchg [entry], value`: returns the old entry.
fn exchange(entry: u64, value: u64) -> u64 {
    let mut v = value;
    // SAFETY: see above.
    unsafe { asm!("lock xchg qword ptr [{e}], {v}", e = in(reg) entry, v = inout(reg) v, options(nostack)) };
    v
}

/// `lock cmpxchg [entry], new` with `rax` = `expected`: returns `rax`
/// afterwards and ZF.
fn compare_exchange(entry: u64, expected: u64, new: u64) -> (u64, bool) {
    let mut rax = expected;
    let zf: u8;
    // SAFETY: see above.
    unsafe {
        asm!("lock cmpxchg qword ptr [{e}], {v}", "sete {z}", e = in(reg) entry, v = in(reg) new,
             z = out(reg_byte) zf, inout("rax") rax, options(nostack))
    };
    (rax, zf == 1)
}

fn main(start: &StartInfo) -> ! {
    let mut mem = Memory::new(start);
    let [target, window] = core::array::from_fn(|_| mem.alloc());
    check!(mem.map(target, RW) == Ok(0), "map target");
    poke(Memory::va(target), 0x7a59e7);
    let va = Memory::va(window);
    let maddr = mem.entry_maddr(va, 1);
    // The entry, as the guest sees its L1: a read-only mapping.
    let entry = Memory::va(mem.m2p(maddr >> 12)) + (maddr & 0xfff);
    let mapping = mem.mfn(target) << 12 | RW;

    store(entry, mapping);
    check!(mmu::tlb_flush() == Ok(0), "flush");
    check!(peek(entry) == mapping | pte::USER, "mov: entry reads {:#x}", peek(entry));
    check!(peek(va) == 0x7a59e7, "the new mapping shows the target");
    poke(va, 0x1234);
    check!(peek(Memory::va(target)) == 0x1234, "and is writable");

    let old = exchange(entry, 0);
    // With the accessed and dirty bits the CPU set meanwhile.
    check!(old & !(pte::ACCESSED | pte::DIRTY) == mapping | pte::USER, "xchg returned {:#x}", old);
    check!(old & pte::DIRTY != 0, "the CPU's dirty bit survives in the value returned");
    check!(peek(entry) == 0, "xchg stored {:#x}", peek(entry));

    let read_only = mem.mfn(target) << 12 | RO;
    let (seen, zf) = compare_exchange(entry, 5, read_only);
    check!(!zf && seen == 0 && peek(entry) == 0, "cmpxchg with a wrong guess: zf {} rax {:#x}", zf, seen);
    let (seen, zf) = compare_exchange(entry, 0, read_only);
    check!(zf && seen == 0 && peek(entry) == read_only | pte::USER, "cmpxchg: zf {} rax {:#x} entry {:#x}", zf, seen, peek(entry));
    check!(mmu::tlb_flush() == Ok(0), "flush");
    check!(peek(va) == 0x1234, "read-only mapping of the target");

    store_zero_immediate(entry);
    check!(peek(entry) == 0, "mov of an immediate: entry {:#x}", peek(entry));
    veneer_guest::success()
}
