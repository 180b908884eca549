//! The native side of the micro-benchmarks: a tiny kernel, booted by QEMU
//! through Veneer's own PVH entry, that runs the same timing loops as the
//! Veneer guests.
//!
//! - In ring 0, the page-table operations a PV guest makes hypercalls for,
//!   done the native way: stores of 1, 16 and 512 entries into a live L1
//!   (the native `mmu_update` batch), filling a whole L1 (what a native
//!   kernel does where a PV one also pins it), and a CR3 load (a new base
//!   pointer).
//! - In ring 0, `memcpy` of 4 KiB, 64 KiB and 1500 bytes: the physical
//!   ceiling the I/O rows (block requests, packets) are set against.
//! - In ring 0, what Veneer does for events, time and scheduling, the
//!   native way: a switch between two threads in two address spaces
//!   (registers, stack, CR3, XSAVE state: a vCPU context switch), two
//!   threads bouncing a self-IPI whose handler switches to the other (an
//!   event ping-pong between two domains), and the local APIC timer's
//!   latency from its deadline to its handler while the CPU halts (a
//!   vCPU's timer while it blocks).
//! - In ring 3, a `syscall` round trip against a ring-0 handler that does
//!   nothing but `sysretq` (the native hypercall round trip), and a `ud2`
//!   whose ring-0 handler skips it with `iretq` (an exception bounce).
#![no_std]
#![no_main]

mod apic;
mod threads;

use core::cell::UnsafeCell;
use core::fmt::Write;

use spin::Once;
use uart_16550::SerialPort;
use veneer_perf_measure::{cycles_per_op, per_item, sample, Line};
use x86_64::instructions::tables::load_tss;
use x86_64::registers::control::{Cr3, Cr3Flags, Cr4, Cr4Flags};
use x86_64::registers::model_specific::{Efer, EferFlags, LStar, SFMask, Star};
use x86_64::registers::rflags::RFlags;
use x86_64::registers::xcontrol::XCr0;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable};
use x86_64::structures::idt::InterruptDescriptorTable;
use x86_64::structures::paging::PhysFrame;
use x86_64::structures::tss::TaskStateSegment;
use x86_64::{PhysAddr, VirtAddr};

core::arch::global_asm!(include_str!("../../../hypervisor/src/arch/x86_64/boot.S"), options(att_syntax));

core::arch::global_asm!(
    ".section .text.native_syscall_entry, \"ax\"",
    ".global native_syscall_entry",
    "native_syscall_entry:",
    "sysretq",
    // #UD from ring 3: skip the 2-byte ud2 and return.
    ".global native_ud_handler",
    "native_ud_handler:",
    "add qword ptr [rsp], 2",
    "iretq",
    ".global native_spurious_handler",
    "native_spurious_handler:",
    "iretq",
);

/// Must match the hypervisor's link.ld: virtual = IMAGE_OFFSET + physical.
const IMAGE_OFFSET: u64 = 0xffff_8780_0000_0000;
const PRESENT_WRITABLE_USER: u64 = 0x7;
const LARGE: u64 = 0x80;
/// Cache disable and write-through: how device registers are mapped.
const UNCACHED: u64 = 0x18;
/// XCR0 components, as Veneer enables them: x87, SSE, AVX, AVX-512.
const XCR0_WANTED: u64 = 0b1110_0111;
/// The timer latency's deadline, in APIC ticks from arming (with the
/// calibration, about 50 microseconds under TCG).
const TIMER_DELAY_US: u64 = 50;

#[repr(C, align(4096))]
struct Table(UnsafeCell<[u64; 512]>);
// SAFETY: written once by boot_main on the only CPU, before ring 3 runs.
unsafe impl Sync for Table {}

static PML4: Table = Table(UnsafeCell::new([0; 512]));
static PDPT: Table = Table(UnsafeCell::new([0; 512]));
static PD: Table = Table(UnsafeCell::new([0; 512]));
/// A second top level with the same mappings, for CR3 loads.
static PML4_B: Table = Table(UnsafeCell::new([0; 512]));
/// The 2 MiB after the image's 1 GiB: a PD whose first entry is `WINDOW`,
/// a live L1 the batch benchmarks write.
static PD_WINDOW: Table = Table(UnsafeCell::new([0; 512]));
static WINDOW: Table = Table(UnsafeCell::new([0; 512]));
/// An L1 that is only filled, never hooked in.
static SPARE: Table = Table(UnsafeCell::new([0; 512]));

/// Source and destination of the memcpy measurements: 64 KiB each.
#[repr(C, align(4096))]
struct CopyBuffer(UnsafeCell<[u8; 65536]>);
// SAFETY: used only by `memcpy_benchmarks`, on the only CPU.
unsafe impl Sync for CopyBuffer {}
static COPY_SRC: CopyBuffer = CopyBuffer(UnsafeCell::new([1; 65536]));
static COPY_DST: CopyBuffer = CopyBuffer(UnsafeCell::new([0; 65536]));

#[repr(C, align(16))]
struct UserStack(UnsafeCell<[u8; 16384]>);
// SAFETY: used only as ring 3's stack.
unsafe impl Sync for UserStack {}
static USER_STACK: UserStack = UserStack(UnsafeCell::new([0; 16384]));

/// Ring 0's stack for exceptions from ring 3 (TSS.RSP0).
static KERNEL_STACK: UserStack = UserStack(UnsafeCell::new([0; 16384]));
/// The 1 GiB that holds the local APIC's registers, mapped uncached.
static PD_APIC: Table = Table(UnsafeCell::new([0; 512]));

static GDT: Once<GlobalDescriptorTable> = Once::new();
static TSS: Once<TaskStateSegment> = Once::new();
static IDT: Once<InterruptDescriptorTable> = Once::new();

extern "C" {
    fn native_ud_handler();
    fn native_spurious_handler();
    fn native_timer_handler();
    fn native_ipi_handler();
}

fn phys(table: &Table) -> u64 {
    table.0.get() as u64 - IMAGE_OFFSET
}

fn serial() -> SerialPort {
    // SAFETY: COM1; this kernel has no other user of the port.
    let mut port = unsafe { SerialPort::new(0x3f8) };
    port.init();
    port
}

fn exit(value: u32) -> ! {
    // SAFETY: isa-debug-exit; reachable from ring 3 because IOPL is 3.
    unsafe { x86_64::instructions::port::Port::<u32>::new(0xf4).write(value) };
    loop {
        core::hint::spin_loop();
    }
}

/// Moves the legacy PICs' vectors out of the exceptions' way and masks
/// every line, as Veneer does (the firmware leaves the PIT's IRQ 0 on
/// vector 8).
fn disable_pics() {
    use x86_64::instructions::port::Port;
    let init: [(u16, [u8; 4]); 2] = [(0x20, [0x11, 0x20, 0x04, 0x01]), (0xa0, [0x11, 0x28, 0x02, 0x01])];
    for (base, icw) in init {
        let (mut command, mut data) = (Port::<u8>::new(base), Port::<u8>::new(base + 1));
        // SAFETY: the two PICs' ports, used by nothing else; the documented
        // initialisation, then every line masked.
        unsafe {
            command.write(icw[0]);
            for &b in &icw[1..] {
                data.write(b);
            }
            data.write(0xff);
        }
    }
}

/// The vector registers as Veneer sets them up for guests: SSE and XSAVE
/// on, XCR0 with what this CPU has of x87, SSE, AVX and AVX-512.
fn init_vector_state() {
    let leaf1 = core::arch::x86_64::__cpuid(1);
    assert!(leaf1.ecx & (1 << 26) != 0, "the native kernel needs XSAVE, as the context switch saves with it");
    let xsave = core::arch::x86_64::__cpuid_count(0xd, 0);
    let xcr0 = (u64::from(xsave.edx) << 32 | u64::from(xsave.eax)) & XCR0_WANTED;
    // SAFETY: OSFXSR, OSXMMEXCPT and OSXSAVE are supported (CPUID above and
    // architectural) and change no mapping; XCR0 holds only components the
    // CPU reports, x87 among them.
    unsafe {
        Cr4::update(|f| *f |= Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE | Cr4Flags::OSXSAVE);
        XCr0::write_raw(xcr0);
    }
    assert!(core::arch::x86_64::__cpuid_count(0xd, 0).ebx <= 4096, "XSAVE area too big");
}

#[no_mangle]
extern "C" fn boot_main(_start_info: u64) -> ! {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        tss.privilege_stack_table[0] = VirtAddr::new(KERNEL_STACK.0.get() as u64 + 16384);
        tss
    });
    let mut gdt = GlobalDescriptorTable::new();
    let kernel_code = gdt.append(Descriptor::kernel_code_segment());
    let kernel_data = gdt.append(Descriptor::kernel_data_segment());
    let user_data = gdt.append(Descriptor::user_data_segment());
    let user_code = gdt.append(Descriptor::user_code_segment());
    let tss_selector = gdt.append(Descriptor::tss_segment(tss));
    GDT.call_once(|| gdt).load();
    // SAFETY: the selector names the TSS descriptor of the GDT just loaded.
    unsafe { load_tss(tss_selector) };
    IDT.call_once(|| {
        let mut idt = InterruptDescriptorTable::new();
        let at = |f: unsafe extern "C" fn()| VirtAddr::new(f as *const () as u64);
        // SAFETY: (each) the handlers are the assembly stubs above, which
        // save what they use and return with iretq.
        unsafe {
            idt.invalid_opcode.set_handler_addr(at(native_ud_handler));
            idt[apic::TIMER_VECTOR].set_handler_addr(at(native_timer_handler));
            idt[apic::IPI_VECTOR].set_handler_addr(at(native_ipi_handler));
            idt[apic::SPURIOUS_VECTOR].set_handler_addr(at(native_spurious_handler));
        }
        idt
    })
    .load();
    init_vector_state();
    disable_pics();
    Star::write(user_code, user_data, kernel_code, kernel_data).expect("GDT order suits SYSRET");
    extern "C" {
        fn native_syscall_entry();
    }
    LStar::write(VirtAddr::new(native_syscall_entry as *const () as u64));
    SFMask::write(RFlags::INTERRUPT_FLAG | RFlags::TRAP_FLAG | RFlags::DIRECTION_FLAG);
    // SAFETY: enabling SYSCALL; LSTAR/STAR/SFMASK are set.
    unsafe { Efer::update(|f| *f |= EferFlags::SYSTEM_CALL_EXTENSIONS) };

    // The image's slot (271), 1 GiB of large pages, user-accessible so ring 3
    // runs the same code. The boot tables' identity map is dropped.
    // SAFETY: nothing else uses the tables; they are live only after the
    // CR3 write below, and map the code and stack in use at the same
    // addresses as the boot tables.
    unsafe {
        (*PML4.0.get())[271] = phys(&PDPT) | PRESENT_WRITABLE_USER;
        (*PML4_B.0.get())[271] = phys(&PDPT) | PRESENT_WRITABLE_USER;
        (*PDPT.0.get())[0] = phys(&PD) | PRESENT_WRITABLE_USER;
        (*PDPT.0.get())[1] = phys(&PD_WINDOW) | PRESENT_WRITABLE_USER;
        (*PDPT.0.get())[3] = phys(&PD_APIC) | PRESENT_WRITABLE_USER;
        (*PD_APIC.0.get())[((apic::PHYS >> 21) & 511) as usize] = apic::PHYS | PRESENT_WRITABLE_USER | LARGE | UNCACHED;
        (*PD_WINDOW.0.get())[0] = phys(&WINDOW) | PRESENT_WRITABLE_USER;
        for (i, e) in (*PD.0.get()).iter_mut().enumerate() {
            *e = ((i as u64) << 21) | PRESENT_WRITABLE_USER | LARGE;
        }
        Cr3::write(PhysFrame::containing_address(PhysAddr::new(phys(&PML4))), Cr3Flags::empty());
    }
    page_table_benchmarks();
    memcpy_benchmarks();
    apic::init();
    scheduling_benchmarks();

    let stack_top = USER_STACK.0.get() as u64 + 16384;
    let rflags = RFlags::IOPL_HIGH | RFlags::IOPL_LOW | RFlags::from_bits_retain(2);
    // SAFETY: iretq to ring 3 at `ring3_main` on its own stack; the pages are
    // user-accessible, and IOPL 3 lets it report through the serial port.
    unsafe {
        core::arch::asm!(
            "push {ss}", "push {rsp}", "push {rflags}", "push {cs}", "push {rip}", "iretq",
            ss = in(reg) u64::from(user_data.0),
            rsp = in(reg) stack_top,
            rflags = in(reg) rflags.bits(),
            cs = in(reg) u64::from(user_code.0),
            rip = in(reg) ring3_main as *const () as u64,
            options(noreturn),
        )
    }
}

/// An entry mapping frame `i` of one of two 2 MiB runs of RAM (from 16
/// MiB), so consecutive batches change every entry, as on Veneer.
fn entry(i: usize, second: bool) -> u64 {
    let base = if second { 18 << 20 } else { 16 << 20 };
    (base + ((i as u64) << 12)) | PRESENT_WRITABLE_USER
}

fn write_entries(table: &Table, n: usize, second: bool) {
    let t = table.0.get() as *mut u64;
    for i in 0..n {
        // SAFETY: `i` < 512 within the table; the window's entries map RAM
        // nothing reads through them, and no TLB entry for them is used.
        unsafe { core::ptr::write_volatile(t.add(i), entry(i, second)) };
    }
}

/// The native costs of what a PV guest does with `mmu_update`, `PinL1` and
/// `NewBaseptr`, in ring 0 on this kernel's own tables.
fn page_table_benchmarks() {
    let mut out = serial();
    let _ = writeln!(out, "bench entered");
    for (n, per_batch, name) in [(1, 1000, "native_pte_write_1"), (16, 200, "native_pte_write_16"), (512, 20, "native_pte_write_512")] {
        let mut second = false;
        let stats = cycles_per_op(per_batch, || {
            second = !second;
            write_entries(&WINDOW, n, second);
        });
        let _ = writeln!(out, "{}", Line { name, stats: per_item(stats, n as u64) });
    }
    let mut second = false;
    let stats = cycles_per_op(200, || {
        second = !second;
        write_entries(&SPARE, 512, second);
    });
    let _ = writeln!(out, "{}", Line { name: "native_l1_fill", stats });
    let tables = [phys(&PML4), phys(&PML4_B)];
    let mut which = 0;
    let stats = cycles_per_op(1000, || {
        which ^= 1;
        // SAFETY: both top levels map the image and stack identically.
        unsafe { Cr3::write(PhysFrame::containing_address(PhysAddr::new(tables[which])), Cr3Flags::empty()) };
    });
    let _ = writeln!(out, "{}", Line { name: "native_cr3_write", stats });
}

/// The physical ceiling of the I/O rows: copying the bytes of one I/O (4
/// KiB, 64 KiB) or one packet (1500 bytes) from memory to memory, with the
/// same `memcpy` the guests and the hypervisor use.
fn memcpy_benchmarks() {
    let mut out = serial();
    for (bytes, per_batch, name) in [(4096, 200, "native_memcpy_4k"), (65536, 20, "native_memcpy_64k"), (1500, 400, "native_memcpy_1500")] {
        let stats = cycles_per_op(per_batch, || {
            // SAFETY: both buffers are this kernel's statics, 64 KiB each,
            // used by nobody else; `bytes` fits them.
            unsafe { core::ptr::copy_nonoverlapping(COPY_SRC.0.get() as *const u8, COPY_DST.0.get() as *mut u8, bytes) };
            core::hint::black_box(COPY_DST.0.get());
        });
        let _ = writeln!(out, "{}", Line { name, stats });
    }
}

/// Thread 1 of the context-switch row: switches straight back.
extern "C" fn switch_peer() -> ! {
    loop {
        threads::switch_to_other();
    }
}

/// Thread 1 of the ping-pong row: answers each IPI with its own, whose
/// handler switches back to thread 0.
extern "C" fn ipi_pong() -> ! {
    loop {
        // SAFETY: interrupts on: the IPI below is taken at once, and its
        // handler switches to thread 0.
        unsafe { core::arch::asm!("sti", options(nomem, nostack)) };
        apic::self_ipi();
    }
}

/// The native forms of a vCPU context switch, an event ping-pong and a
/// timer's delivery.
fn scheduling_benchmarks() {
    let mut out = serial();
    let (a, b) = (phys(&PML4), phys(&PML4_B));
    threads::start(switch_peer, b, a);
    // Each operation switches to thread 1 and back: two switches.
    let stats = cycles_per_op(200, threads::switch_to_other);
    let _ = writeln!(out, "{}", Line { name: "native_context_switch", stats: per_item(stats, 2) });

    threads::start(ipi_pong, b, a);
    // SAFETY: the IPI handler is installed; interrupts go off again below.
    unsafe { core::arch::asm!("sti", options(nomem, nostack)) };
    let stats = cycles_per_op(200, apic::self_ipi);
    // SAFETY: back to the kernel's rule for the rest of ring 0.
    unsafe { core::arch::asm!("cli", options(nomem, nostack)) };
    let _ = writeln!(out, "{}", Line { name: "native_ipi_ping_pong", stats });

    // TSC ticks per APIC tick, from one long count (its latency is lost in
    // the length).
    const CALIBRATION_TICKS: u32 = 10_000_000;
    let t0 = apic::arm(CALIBRATION_TICKS);
    let tsc_per_10m_ticks = apic::wait_for_timer() - t0;
    let tsc_hz = tsc_hz();
    let ticks = u32::try_from(TIMER_DELAY_US * tsc_hz / 1_000_000 * u64::from(CALIBRATION_TICKS) / tsc_per_10m_ticks).unwrap_or(u32::MAX).max(1);
    let stats = sample(|| {
        let t0 = apic::arm(ticks);
        let fired = apic::wait_for_timer();
        let due = t0 + u64::from(ticks) * tsc_per_10m_ticks / u64::from(CALIBRATION_TICKS);
        fired.saturating_sub(due)
    });
    let _ = writeln!(out, "{}", Line { name: "native_timer_latency", stats });
}

/// TSC ticks per second, against the PIT (channel 2, 10 ms).
fn tsc_hz() -> u64 {
    use x86_64::instructions::port::Port;
    const PIT_HZ: u64 = 1_193_182;
    let count = PIT_HZ / 100;
    let (mut gate, mut command, mut channel2) = (Port::<u8>::new(0x61), Port::<u8>::new(0x43), Port::<u8>::new(0x42));
    // SAFETY: the PIT's channel 2 and its gate; nothing else here uses
    // them, and the speaker stays off.
    unsafe {
        let g = gate.read();
        gate.write((g & !0x02) | 0x01);
        command.write(0b1011_0000);
        channel2.write((count & 0xff) as u8);
        channel2.write((count >> 8) as u8);
        let t0 = veneer_perf_measure::tsc();
        while gate.read() & 0x20 == 0 {
            core::hint::spin_loop();
        }
        (veneer_perf_measure::tsc() - t0) * 100
    }
}

extern "C" fn ring3_main() -> ! {
    let mut out = serial();
    let stats = cycles_per_op(1000, || {
        // SAFETY: the handler returns at once with rcx and r11 as syscall
        // left them.
        unsafe { core::arch::asm!("syscall", out("rcx") _, out("r11") _, options(nostack)) };
    });
    let _ = writeln!(out, "{}", Line { name: "native_syscall_round_trip", stats });
    let stats = cycles_per_op(1000, || {
        // SAFETY: the #UD handler skips the instruction and returns here.
        unsafe { core::arch::asm!("ud2", options(nomem, nostack)) };
    });
    let _ = writeln!(out, "{}", Line { name: "native_exception_round_trip", stats });
    // The value Veneer writes for a clean run, so the harness reads both alike.
    exit(0x10)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let _ = writeln!(serial(), "native kernel panic: {info}");
    exit(0x11)
}
