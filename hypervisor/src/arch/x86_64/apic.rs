//! The local APIC: the one interrupt source Veneer uses. Its timer is
//! programmed one-shot for the next deadline of the CPU (the earliest vCPU
//! timer or the end of the time slice); its ICR sends the IPIs between
//! CPUs (reschedule, TLB shootdown) and starts the other CPUs.
//!
//! Where the CPU has them, the APIC is driven as an x2APIC (MSRs) and its
//! timer in TSC-deadline mode, which takes the deadline as a TSC value.
//! Otherwise (QEMU's TCG, for one, offers neither) it is driven through its
//! memory-mapped registers and the timer counts down from a value computed
//! with the APIC timer's frequency, calibrated at boot against the PIT.

use spin::Once;
use x86_64::registers::model_specific::Msr;

use super::clock;
use super::cpu::Features;
use super::direct_map::phys_to_virt;

/// Vector of the APIC timer.
pub const TIMER_VECTOR: u8 = 0xf0;
/// Vector of the IPI that makes a CPU pick again (a vCPU woke for it).
pub const RESCHED_VECTOR: u8 = 0xf1;
/// Vector of the IPI that makes a CPU serve requests (TLB flushes) without
/// the hypervisor lock.
pub const WORK_VECTOR: u8 = 0xf2;
/// Vector of spurious interrupts (the low four bits must be ones).
pub const SPURIOUS_VECTOR: u8 = 0xff;

const IA32_APIC_BASE: u32 = 0x1b;
const IA32_TSC_DEADLINE: u32 = 0x6e0;
const APIC_BASE_ENABLE: u64 = 1 << 11;
const APIC_BASE_X2APIC: u64 = 1 << 10;
/// The architectural physical address of the xAPIC registers.
pub const XAPIC_PHYS: u64 = 0xfee0_0000;

// Register offsets (xAPIC MMIO; the x2APIC MSR is 0x800 + offset / 16).
const REG_ID: u32 = 0x20;
const REG_TPR: u32 = 0x80;
const REG_EOI: u32 = 0xb0;
const REG_SVR: u32 = 0xf0;
const REG_ICR_LOW: u32 = 0x300;
const REG_ICR_HIGH: u32 = 0x310;
const REG_LVT_TIMER: u32 = 0x320;
const REG_LVT_LINT0: u32 = 0x350;
const REG_LVT_LINT1: u32 = 0x360;
const REG_LVT_ERROR: u32 = 0x370;
const REG_TIMER_INITIAL: u32 = 0x380;
const REG_TIMER_CURRENT: u32 = 0x390;
const REG_TIMER_DIVIDE: u32 = 0x3e0;

const LVT_MASKED: u32 = 1 << 16;
const LVT_TSC_DEADLINE: u32 = 0b10 << 17;
const SVR_ENABLE: u32 = 1 << 8;
/// Divide configuration 0b1011: divide by 1.
const DIVIDE_BY_1: u32 = 0b1011;
/// ICR: delivery modes (fixed is 0), level assert, and the xAPIC's
/// delivery status (an IPI still being sent).
const ICR_INIT: u32 = 0b101 << 8;
const ICR_STARTUP: u32 = 0b110 << 8;
const ICR_ASSERT: u32 = 1 << 14;
const ICR_PENDING: u32 = 1 << 12;

#[derive(Clone, Copy, Debug)]
enum Access {
    X2apic,
    Mmio(u64),
}

#[derive(Clone, Copy, Debug)]
enum TimerMode {
    TscDeadline,
    /// One-shot count-down at `hz` ticks per second.
    OneShot { hz: u64, tsc_hz: u64 },
}

#[derive(Debug)]
pub struct LocalApic {
    access: Access,
    timer: TimerMode,
}

static APIC: Once<LocalApic> = Once::new();

impl LocalApic {
    fn read(&self, reg: u32) -> u32 {
        match self.access {
            // SAFETY: x2APIC registers are MSRs 0x800 + reg / 16; reading
            // the ones named here has no side effect.
            Access::X2apic => unsafe { Msr::new(0x800 + reg / 16).read() as u32 },
            // SAFETY: the register page is mapped uncached at `base`; a
            // 32-bit aligned read of a defined register.
            Access::Mmio(base) => unsafe { core::ptr::read_volatile((base + u64::from(reg)) as *const u32) },
        }
    }

    fn write(&self, reg: u32, value: u32) {
        match self.access {
            // SAFETY: as for `read`; every write here is to a register the
            // APIC defines, with a value this module computed.
            Access::X2apic => unsafe { Msr::new(0x800 + reg / 16).write(u64::from(value)) },
            // SAFETY: as for `read`.
            Access::Mmio(base) => unsafe { core::ptr::write_volatile((base + u64::from(reg)) as *mut u32, value) },
        }
    }

    /// Signals the end of the interrupt being handled.
    pub fn eoi(&self) {
        self.write(REG_EOI, 0);
    }

    /// This CPU's APIC id.
    pub fn id(&self) -> u32 {
        match self.access {
            Access::X2apic => self.read(REG_ID),
            Access::Mmio(_) => self.read(REG_ID) >> 24,
        }
    }

    /// Sends an IPI: `low` is the ICR's low word (vector, delivery mode),
    /// to the CPU whose APIC id is `dest` (physical destination).
    fn send(&self, dest: u32, low: u32) {
        match self.access {
            // SAFETY: the x2APIC ICR is one 64-bit MSR, destination in the
            // high half; writing it sends the IPI this module composed.
            Access::X2apic => unsafe { Msr::new(0x800 + REG_ICR_LOW / 16).write(u64::from(dest) << 32 | u64::from(low)) },
            Access::Mmio(_) => {
                while self.read(REG_ICR_LOW) & ICR_PENDING != 0 {
                    core::hint::spin_loop();
                }
                // The write of the low word sends it.
                self.write(REG_ICR_HIGH, dest << 24);
                self.write(REG_ICR_LOW, low);
            }
        }
    }

    /// Interrupts CPU `dest` with `vector`.
    pub fn send_ipi(&self, dest: u32, vector: u8) {
        self.send(dest, ICR_ASSERT | u32::from(vector));
    }

    /// Resets CPU `dest` into its wait for a STARTUP IPI.
    pub fn send_init(&self, dest: u32) {
        self.send(dest, ICR_INIT | ICR_ASSERT);
    }

    /// Starts CPU `dest` in real mode at page `page` (address `page << 12`).
    pub fn send_startup(&self, dest: u32, page: u8) {
        self.send(dest, ICR_STARTUP | ICR_ASSERT | u32::from(page));
    }

    /// Interrupts this CPU once at TSC `deadline` (at once if it has
    /// passed), replacing any earlier setting.
    pub fn arm(&self, deadline: u64) {
        match self.timer {
            TimerMode::TscDeadline => {
                // SAFETY: IA32_TSC_DEADLINE arms the timer in TSC-deadline
                // mode; 0 would disarm it, so a passed deadline is 1.
                unsafe { Msr::new(IA32_TSC_DEADLINE).write(deadline.max(1)) };
            }
            TimerMode::OneShot { hz, tsc_hz } => {
                let ticks = u128::from(deadline.saturating_sub(clock::rdtsc())) * u128::from(hz) / u128::from(tsc_hz);
                // The count is 32 bits: a farther deadline fires early and
                // is re-armed then. 0 would stop the timer.
                let count = u32::try_from(ticks).unwrap_or(u32::MAX).max(1);
                self.write(REG_TIMER_INITIAL, count);
            }
        }
    }

    pub fn timer_mode(&self) -> &'static str {
        match self.timer {
            TimerMode::TscDeadline => "TSC-deadline",
            TimerMode::OneShot { .. } => "one-shot count-down",
        }
    }

    pub fn access_mode(&self) -> &'static str {
        match self.access {
            Access::X2apic => "x2APIC",
            Access::Mmio(_) => "xAPIC (MMIO)",
        }
    }
}

/// Enables the boot CPU's local APIC with every interrupt source masked but
/// its timer; `tsc_hz` calibrates the count-down timer when TSC-deadline
/// mode is missing. The xAPIC page must be mapped at its direct-map address.
pub fn init(f: &Features, tsc_hz: u64) -> &'static LocalApic {
    APIC.call_once(|| {
        let access = if f.x2apic { Access::X2apic } else { Access::Mmio(phys_to_virt(XAPIC_PHYS)) };
        let mut apic = LocalApic { access, timer: TimerMode::TscDeadline };
        apic.enable();
        if !f.tsc_deadline {
            apic.write(REG_TIMER_DIVIDE, DIVIDE_BY_1);
            apic.write(REG_LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
            apic.write(REG_TIMER_INITIAL, u32::MAX);
            let hz = clock::down_counter_hz(|| apic.read(REG_TIMER_CURRENT));
            apic.write(REG_TIMER_INITIAL, 0);
            apic.timer = TimerMode::OneShot { hz, tsc_hz };
        }
        apic.start_timer();
        apic
    })
}

/// Enables this CPU's local APIC (an AP) as `init` did the boot CPU's, with
/// the boot CPU's calibration: every CPU's APIC timer runs at the same rate.
pub fn init_this_cpu() {
    let apic = local();
    apic.enable();
    apic.start_timer();
}

impl LocalApic {
    /// Enables the APIC (in x2APIC mode where present) with the timer and
    /// every other source masked.
    fn enable(&self) {
        let mut base_msr = Msr::new(IA32_APIC_BASE);
        // SAFETY: enabling the APIC (then x2APIC mode where present: the
        // architecture allows disabled -> xAPIC -> x2APIC, not the jump
        // an AP fresh from INIT would otherwise make) at the base the
        // firmware set; nothing is routed to it until the LVT entries below
        // are written.
        unsafe {
            let base = base_msr.read() | APIC_BASE_ENABLE;
            base_msr.write(base);
            if matches!(self.access, Access::X2apic) {
                base_msr.write(base | APIC_BASE_X2APIC);
            }
        }
        self.write(REG_TPR, 0);
        self.write(REG_LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
        self.write(REG_LVT_LINT0, LVT_MASKED);
        self.write(REG_LVT_LINT1, LVT_MASKED);
        self.write(REG_LVT_ERROR, LVT_MASKED);
        self.write(REG_SVR, SVR_ENABLE | u32::from(SPURIOUS_VECTOR));
    }

    /// Unmasks the timer in its mode, not armed.
    fn start_timer(&self) {
        match self.timer {
            TimerMode::TscDeadline => self.write(REG_LVT_TIMER, LVT_TSC_DEADLINE | u32::from(TIMER_VECTOR)),
            TimerMode::OneShot { .. } => {
                self.write(REG_TIMER_DIVIDE, DIVIDE_BY_1);
                // One-shot mode (bits 17-18 zero), unmasked.
                self.write(REG_LVT_TIMER, u32::from(TIMER_VECTOR));
            }
        }
    }
}

/// This CPU's APIC, once `init` ran (every CPU's is reached the same way:
/// the MMIO page or the MSRs address the APIC of the CPU using them).
pub fn local() -> &'static LocalApic {
    APIC.get().expect("the local APIC is initialised at boot")
}
