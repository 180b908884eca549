//! Every CPU call refuses bad input with the documented error and changes
//! nothing: trap tables that are too long, unreadable, or name handlers in
//! the hypervisor or off the canonical range, with undefined flags or
//! reserved bytes set (and a refused table applies none of its entries);
//! kernel stacks that are unaligned, non-canonical, inside the hypervisor's
//! range or without room for a frame above it; unknown callback kinds and
//! flags and callbacks into the hypervisor; unknown segment bases,
//! non-canonical bases and selectors the guest cannot load; base pointers
//! that are not L4 frames, and `mmuext_op` entries with reserved fields set.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::cpu::TrapInfo;
use veneer_guest::hypercall_abi::memory::MmuextOp;
use veneer_guest::hypercall_abi::{Error, Hypercall};
use veneer_guest::trap::{self, TrapContext};
use veneer_guest::{check, hypercall, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");

static mut UD_SEEN: u32 = 0;

fn ud(ctx: &mut TrapContext) {
    // SAFETY: single vCPU.
    unsafe { UD_SEEN += 1 };
    ctx.frame.rip += 2;
}

fn entry(vector: u8, flags: u8, address: u64) -> TrapInfo {
    TrapInfo { vector, flags, reserved0: [0; 6], address }
}

fn main(start: &StartInfo) -> ! {
    let good = trap::stub(6);
    let hv_text = 0xffff_8780_0020_0000u64;
    let direct_map = 0xffff_8000_0000_0000u64;
    let non_canonical = 0x0000_8000_0000_0000u64;
    check!(trap::install(6, 0, false, ud).is_ok(), "install #UD");

    // set_trap_table: each bad table carries a good entry first, moving #UD
    // to vector 7's stub (which has no handler, so a #UD would then fail
    // the test); it must not be applied.
    let mut reserved = entry(13, 0, good);
    reserved.reserved0[3] = 1;
    for (what, bad, want) in [
        ("handler in hypervisor text", entry(13, 0, hv_text), Error::Invalid),
        ("handler in the direct map", entry(13, 0, direct_map), Error::Invalid),
        ("non-canonical handler", entry(13, 0, non_canonical), Error::Invalid),
        ("undefined flag", entry(13, 0x10, good), Error::Invalid),
        ("reserved byte", reserved, Error::Invalid),
    ] {
        let table = [entry(6, 0, trap::stub(7)), bad];
        let r = hypercall::set_trap_table(&table);
        check!(r == Err(want), "set_trap_table {}: {:?}", what, r);
    }
    let nr = Hypercall::SetTrapTable.number();
    for (what, args, want) in [
        ("257 entries", [good, 257], Error::TooBig),
        ("huge count", [good, u64::MAX], Error::TooBig),
        ("table in the hypervisor", [direct_map, 1], Error::BadAddress),
        ("unmapped table", [0x1000, 1], Error::BadAddress),
        ("non-canonical table", [non_canonical, 1], Error::BadAddress),
    ] {
        let r = hypercall::raw(nr, [args[0], args[1], 0, 0, 0, 0]);
        check!(r == Err(want), "set_trap_table {}: {:?}", what, r);
    }
    // The #UD handler is still the one installed first.
    // SAFETY: the handler skips the two-byte ud2.
    unsafe { core::arch::asm!("ud2") };
    // SAFETY: single vCPU.
    check!(unsafe { UD_SEEN } == 1, "#UD handler after refused tables");

    for (what, sp) in [
        ("unaligned", 0xffff_ffff_8000_8008u64),
        ("non-canonical", non_canonical),
        ("hypervisor range", 0xffff_8000_1000_0000),
        ("no room above the hypervisor range", 0xffff_8800_0000_0040),
        ("zero", 0),
    ] {
        let r = hypercall::stack_switch(sp);
        check!(r == Err(Error::Invalid), "stack_switch {}: {:?}", what, r);
    }

    let cb = Hypercall::SetCallback.number();
    for (what, args) in [
        ("unknown kind", [3, good, 0]),
        ("huge kind", [u64::MAX, good, 0]),
        ("unknown flag", [0, good, 2]),
        ("event callback in hypervisor text", [0, hv_text, 0]),
        ("failsafe callback in the direct map", [1, direct_map, 0]),
        ("syscall callback non-canonical", [2, non_canonical, 0]),
    ] {
        let r = hypercall::raw(cb, [args[0], args[1], args[2], 0, 0, 0]);
        check!(r == Err(Error::Invalid), "set_callback {}: {:?}", what, r);
    }

    let seg = Hypercall::SetSegmentBase.number();
    for (what, args) in [
        ("unknown base", [4, 0]),
        ("non-canonical FS", [0, non_canonical]),
        ("non-canonical kernel GS", [1, 0xfff0_0000_0000_0000]),
        ("non-canonical user GS", [2, 1 << 63]),
        ("hypervisor code selector", [3, 0x1000]),
        ("guest GDT selector", [3, 0x0b]),
    ] {
        let r = hypercall::raw(seg, [args[0], args[1], 0, 0, 0, 0]);
        check!(r == Err(Error::Invalid), "set_segment_base {}: {:?}", what, r);
    }

    // Base pointers: only an L4 frame (the bootstrap L4 here).
    let l4 = trap::bootstrap_l4_mfn(start);
    // SAFETY: p2m_base maps the p2m array; frame 0 is the image's first page.
    let image_mfn = unsafe { core::ptr::read_volatile(start.p2m_base as *const u64) };
    let op = |cmd: u32, reserved0: u32, arg1: u64, arg2: u64| MmuextOp { cmd, reserved0, arg1, arg2 };
    for (what, o, want) in [
        ("user base: an image frame", op(6, 0, image_mfn, 0), Error::Invalid),
        // Not a frame of the domain at all (SPEC 12.4).
        ("user base: a frame beyond RAM", op(6, 0, 1 << 40, 0), Error::NotFound),
        ("kernel base: not an L4", op(5, 0, image_mfn, 0), Error::Invalid),
        ("reserved field", op(6, 1, l4, 0), Error::Invalid),
        ("second argument", op(6, 0, l4, 1), Error::Invalid),
        ("unknown command", op(99, 0, l4, 0), Error::Invalid),
    ] {
        let (done, r) = hypercall::mmuext_op(&[o]);
        check!(r == Err(want) && done == 0, "mmuext_op {}: {:?}, {} done", what, r, done);
    }
    let r = hypercall::raw(Hypercall::MmuextOp.number(), [0x1000, 1, 0, 0, 0, 0]);
    check!(r == Err(Error::BadAddress), "mmuext_op unmapped ops: {:?}", r);
    let (done, r) = hypercall::mmuext_op(&[op(6, 0, l4, 0), op(6, 0, image_mfn, 0)]);
    check!(r == Err(Error::Invalid) && done == 1, "a batch stops at its first bad entry: {:?}, {}", r, done);
    veneer_guest::success()
}
