//! A batch stops at its first bad entry and says where: of 400 updates
//! whose 300th (index 299) maps the guest's L4 writable, the first 299
//! take effect, `done` reads 299, the call fails with the entry's error
//! (`Busy`), and entries 299-399 are not applied. The guest resumes the
//! batch after fixing the entry, as a kernel would. The same for
//! `mmuext_op`.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::memory::{MmuUpdate, MmuextCmd, MmuextOp};
use veneer_guest::hypercall_abi::Error;
use veneer_guest::mmu::{self, op, peek, Memory, RO, RW};
use veneer_guest::{check, StartInfo, IMAGE_BASE};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"mmu_companion");

const WINDOW: u64 = IMAGE_BASE + (2 << 20);
const FIRST: u64 = 1024;

static mut BATCH: [MmuUpdate; 400] = [MmuUpdate { ptr: 0, val: 0 }; 400];

fn main(start: &StartInfo) -> ! {
    let mut mem = Memory::new(start);
    let l4 = mem.mfn((start.pt_base - IMAGE_BASE) / 4096);
    let table = mem.alloc();
    check!(mem.fresh_table(table) == Ok(0) && mmu::pin(1, mem.mfn(table)) == Ok(0), "new L1");
    let hook = MmuUpdate::pt_update(mem.entry_maddr(WINDOW, 2), mem.mfn(table) << 12 | RW);
    check!(mmu::mmu_update(&[hook]) == (1, Ok(0)), "hook it in");
    // SAFETY: single-threaded; BATCH is used only here.
    let batch = unsafe { &mut *core::ptr::addr_of_mut!(BATCH) };
    for (i, u) in batch.iter_mut().enumerate() {
        *u = MmuUpdate::pt_update((mem.mfn(table) << 12) | (i as u64 * 8), (mem.mfn(FIRST + i as u64) << 12) | RO);
    }
    batch[299].val = l4 << 12 | RW;
    let (done, r) = mmu::mmu_update(&batch[..]);
    check!(done == 299 && r == Err(Error::Busy), "done {}, result {:?}", done, r);
    let entry = |i: u64| peek(Memory::va(table) + i * 8);
    for i in 0..400 {
        let mapped = entry(i) != 0;
        check!(mapped == (i < 299), "entry {} is {:#x}", i, entry(i));
    }
    // Resume: fix the entry, send the rest.
    batch[299].val = mem.mfn(FIRST + 299) << 12 | RO;
    let (done, r) = mmu::mmu_update(&batch[299..]);
    check!((done, r) == (101, Ok(0)), "the rest: {} {:?}", done, r);
    check!(entry(399) != 0 && entry(299) != 0, "resumed");

    // mmuext_op: the third of four operations is bad.
    let ops: [MmuextOp; 4] = [
        op(MmuextCmd::TlbFlushLocal, 0, 0),
        op(MmuextCmd::Unpin, mem.mfn(table), 0),
        op(MmuextCmd::Unpin, mem.mfn(table), 0),
        op(MmuextCmd::PinL1, mem.mfn(table), 0),
    ];
    let (done, r) = mmu::mmuext(&ops);
    check!(done == 2 && r == Err(Error::NotPermitted), "mmuext: done {}, result {:?}", done, r);
    check!(mmu::pin(1, mem.mfn(table)) == Ok(0), "the fourth did not run: pin now works");
    veneer_guest::success()
}
