//! The local APIC of the native kernel, driven through its memory-mapped
//! registers as Veneer drives it under TCG: a one-shot count-down timer and
//! self-IPIs.

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::registers::model_specific::Msr;

/// Where `main` maps the APIC's registers (uncached): the image offset plus
/// their physical address.
pub const MMIO: u64 = crate::IMAGE_OFFSET + PHYS;
/// The architectural physical address of the xAPIC registers.
pub const PHYS: u64 = 0xfee0_0000;
pub const TIMER_VECTOR: u8 = 0xf0;
pub const IPI_VECTOR: u8 = 0xf1;
pub const SPURIOUS_VECTOR: u8 = 0xff;

const REG_EOI: u64 = 0xb0;
const REG_SVR: u64 = 0xf0;
const REG_ICR_LOW: u64 = 0x300;
const REG_LVT_TIMER: u64 = 0x320;
const REG_TIMER_INITIAL: u64 = 0x380;
const REG_TIMER_DIVIDE: u64 = 0x3e0;
const ICR_SELF: u32 = 0b01 << 18;
const ICR_PENDING: u32 = 1 << 12;

/// TSC when the timer interrupt's handler started; 0 until it fires.
pub static TIMER_FIRED: AtomicU64 = AtomicU64::new(0);

fn write(reg: u64, value: u32) {
    // SAFETY: `main` maps the register page uncached at `MMIO`; every
    // register written here is one the APIC defines.
    unsafe { core::ptr::write_volatile((MMIO + reg) as *mut u32, value) }
}

fn read(reg: u64) -> u32 {
    // SAFETY: as for `write`.
    unsafe { core::ptr::read_volatile((MMIO + reg) as *const u32) }
}

/// Enables the APIC with a one-shot timer (divide by 1) on `TIMER_VECTOR`.
pub fn init() {
    let mut base = Msr::new(0x1b);
    // SAFETY: IA32_APIC_BASE: setting the enable bit at the firmware's base.
    unsafe { base.write(base.read() | 1 << 11) };
    write(REG_SVR, 0x100 | u32::from(SPURIOUS_VECTOR));
    write(REG_TIMER_DIVIDE, 0b1011);
    write(REG_LVT_TIMER, u32::from(TIMER_VECTOR));
}

pub fn eoi() {
    write(REG_EOI, 0);
}

/// Interrupts this CPU with `IPI_VECTOR`.
pub fn self_ipi() {
    while read(REG_ICR_LOW) & ICR_PENDING != 0 {
        core::hint::spin_loop();
    }
    write(REG_ICR_LOW, ICR_SELF | u32::from(IPI_VECTOR));
}

/// Arms the timer `ticks` from now; returns the TSC just before.
pub fn arm(ticks: u32) -> u64 {
    TIMER_FIRED.store(0, Ordering::SeqCst);
    let t0 = veneer_perf_measure::tsc();
    write(REG_TIMER_INITIAL, ticks);
    t0
}

/// Halts, interrupts on, until the timer has fired; returns the TSC at
/// its handler.
pub fn wait_for_timer() -> u64 {
    loop {
        // SAFETY: `sti; hlt` waits for the next interrupt (sti's shadow
        // covers hlt, so none is lost); the IDT handles every vector the
        // APIC raises; `cli` restores the kernel's rule.
        unsafe { core::arch::asm!("sti", "hlt", "cli", options(nomem, nostack)) };
        let fired = TIMER_FIRED.load(Ordering::SeqCst);
        if fired != 0 {
            return fired;
        }
    }
}

// The timer's handler: the TSC first, then the end of the interrupt.
core::arch::global_asm!(
    ".global native_timer_handler",
    "native_timer_handler:",
    "push rax",
    "push rdx",
    "rdtsc",
    "shl rdx, 32",
    "or rax, rdx",
    "mov [rip + {fired}], rax",
    "movabs rax, {eoi}",
    "mov dword ptr [rax], 0",
    "pop rdx",
    "pop rax",
    "iretq",
    fired = sym TIMER_FIRED,
    eoi = const MMIO + REG_EOI,
);
