//! Exceptions and `int n` raised in guest kernel mode are bounced to the
//! guest's trap table with the frame of section 13.3: on the interrupted
//! stack below the red zone, 16-byte aligned; the vector's error code (0
//! where it has none); the faulting `rip` for faults and the next one for
//! `int3` and `int n`; the kernel selectors with RPL 0; the interrupted
//! `rsp`, `rcx`, `r11`; IF mirroring `upcall_mask`; and for page faults the
//! address in `vcpu_info.cr2`. Every other register reaches the handler
//! and comes back through `iret` unchanged.
#![no_std]
#![no_main]

use core::arch::asm;

use veneer_guest::hypercall_abi::cpu::selectors::{FLAT_KERNEL_CS64, FLAT_KERNEL_SS};
use veneer_guest::hypercall_abi::shared_info::SharedInfo;
use veneer_guest::trap::{self, TrapContext};
use veneer_guest::{check, println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");

static mut LAST: Option<TrapContext> = None;
static mut LAST_AT: u64 = 0;
/// Bytes the handler skips past the faulting instruction.
static mut SKIP: u64 = 0;

fn record(ctx: &mut TrapContext) {
    // SAFETY: single vCPU, handlers do not nest here.
    unsafe {
        LAST = Some(*ctx);
        LAST_AT = core::ptr::addr_of!(ctx.frame) as u64;
        ctx.frame.rip += SKIP;
    }
}

/// Register values loaded before the fault and checked after it.
const PATTERN: [u64; 6] = [0x1111_2222_3333_4444, 0x5555_6666_7777_8888, 0x9999_aaaa_bbbb_cccc, 0xdddd_eeee_ffff_0000, 0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210];

/// Runs `insn` (at a label whose address is returned) with known values in
/// rbx, r12-r15, rcx and r11 and rsi; returns (label, rsp at the fault,
/// registers after).
macro_rules! fault {
    ($insn:literal, $arg:expr) => {{
        let (at, sp): (u64, u64);
        let mut after = [0u64; 6];
        // SAFETY: the instruction faults into `record`, which skips it;
        // every register the block changes is declared, rbx is saved by hand.
        unsafe {
            asm!(
                "push rbx",
                "mov rbx, [rdi]", "mov r12, [rdi + 8]", "mov r13, [rdi + 16]", "mov r14, [rdi + 24]",
                "mov r15, [rdi + 32]", "mov rcx, [rdi + 40]", "mov r11, [rdi]",
                "lea r8, [rip + 2f]",
                "mov r9, rsp",
                "2:",
                $insn,
                "mov [rdx], rbx", "mov [rdx + 8], r12", "mov [rdx + 16], r13", "mov [rdx + 24], r14",
                "mov [rdx + 32], r15", "mov [rdx + 40], rsi",
                "pop rbx",
                in("rdi") PATTERN.as_ptr(),
                in("rdx") after.as_mut_ptr(),
                out("r8") at,
                out("r9") sp,
                inout("rsi") $arg => _,
                out("rcx") _, out("r11") _, out("r12") _, out("r13") _, out("r14") _, out("r15") _,
            );
        }
        (at, sp, after)
    }};
}

fn cr2(start: &StartInfo) -> u64 {
    let si = veneer_guest::start_info_ext(start).shared_info_va as *const SharedInfo;
    // SAFETY: the bootstrap address space maps the shared-info page there.
    unsafe { core::ptr::read_volatile(core::ptr::addr_of!((*si).vcpu_info[0].cr2)) }
}

fn set_upcall_mask(start: &StartInfo, masked: bool) {
    let si = veneer_guest::start_info_ext(start).shared_info_va as *mut SharedInfo;
    // SAFETY: as above; the page is mapped writable.
    unsafe { core::ptr::write_volatile(core::ptr::addr_of_mut!((*si).vcpu_info[0].upcall_mask), u8::from(masked)) };
}

/// Checks the last bounce against what the fault should have produced.
fn expect(what: &str, vector: u64, error: u64, rip: u64, sp: u64, after: [u64; 6], rsi: u64, masked: bool) {
    // SAFETY: written by the handler before the fault returned.
    let (last, at) = unsafe { ((*core::ptr::addr_of_mut!(LAST)).take(), LAST_AT) };
    let Some(c) = last else { veneer_guest::failure(format_args!("{}: no bounce", what)) };
    let f = c.frame;
    check!(c.vector == vector, "{}: vector {:#x}", what, c.vector);
    check!(f.error_code == error, "{}: error code {:#x}, want {:#x}", what, f.error_code, error);
    check!(f.rip == rip, "{}: rip {:#x}, want {:#x}", what, f.rip, rip);
    check!(f.cs == FLAT_KERNEL_CS64 && f.ss == FLAT_KERNEL_SS, "{}: cs {:#x} ss {:#x}", what, f.cs, f.ss);
    check!(f.rsp == sp, "{}: rsp {:#x}, want {:#x}", what, f.rsp, sp);
    check!(at == ((sp - 128) & !15) - 64, "{}: frame at {:#x} for rsp {:#x}", what, at, sp);
    check!(f.rcx == PATTERN[5] && f.r11 == PATTERN[0], "{}: rcx {:#x} r11 {:#x}", what, f.rcx, f.r11);
    check!((f.rflags & 0x200 == 0) == masked, "{}: rflags {:#x} with events masked {}", what, f.rflags, masked);
    check!(f.rflags & 0x3000 == 0, "{}: IOPL in {:#x}", what, f.rflags);
    check!(c.gprs.rbx == PATTERN[0] && c.gprs.r12 == PATTERN[1] && c.gprs.r15 == PATTERN[4], "{}: registers at the handler", what);
    check!(after[..5] == PATTERN[..5] && after[5] == rsi, "{}: registers after iret {:x?}", what, after);
}

static READ_ONLY: u64 = 7;

fn main(start: &StartInfo) -> ! {
    for v in [0u8, 3, 6, 13, 14, 0x80] {
        check!(trap::install(v, 0, false, record).is_ok(), "install vector {}", v);
    }
    let unmapped = 0x0000_1000_0000_0000u64;
    let text = main as *const () as u64;
    for masked in [true, false] {
        set_upcall_mask(start, masked);
        println!("events masked: {}", masked);
        // SAFETY: single vCPU.
        unsafe { SKIP = 2 };
        let (at, sp, after) = fault!("ud2", 1u64);
        expect("#UD", 6, 0, at, sp, after, 1, masked);

        // `div sil` is 3 bytes (40 f6 f6).
        // SAFETY: single vCPU.
        unsafe { SKIP = 3 };
        let (at, sp, after) = fault!("div sil", 0u64);
        expect("#DE", 0, 0, at, sp, after, 0, masked);

        // SAFETY: single vCPU.
        unsafe { SKIP = 1 };
        let (at, sp, after) = fault!("cli", 2u64);
        expect("#GP", 13, 0, at, sp, after, 2, masked);

        // SAFETY: single vCPU.
        unsafe { SKIP = 0 };
        let (at, sp, after) = fault!("int3", 3u64);
        expect("#BP", 3, 0, at + 1, sp, after, 3, masked);
        let (at, sp, after) = fault!("int 0x80", 4u64);
        expect("int 0x80", 0x80, 0, at + 2, sp, after, 4, masked);

        // `mov al, [rsi]` (8a 06): a read of an unmapped page (U) ...
        // SAFETY: single vCPU.
        unsafe { SKIP = 2 };
        let (at, sp, after) = fault!("mov al, [rsi]", unmapped);
        expect("#PF read", 14, 0b100, at, sp, after, unmapped, masked);
        check!(cr2(start) == unmapped, "cr2 {:#x}", cr2(start));
        // ... and `mov [rsi], al` (88 06): a write to present read-only text (P|W|U).
        let (at, sp, after) = fault!("mov [rsi], al", text);
        expect("#PF write", 14, 0b111, at, sp, after, text, masked);
        check!(cr2(start) == text, "cr2 {:#x}", cr2(start));
        let ro = core::ptr::addr_of!(READ_ONLY) as u64;
        let (at, sp, after) = fault!("mov [rsi], al", ro);
        expect("#PF write rodata", 14, 0b111, at, sp, after, ro, masked);
    }
    veneer_guest::success()
}
