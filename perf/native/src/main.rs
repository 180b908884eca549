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
//! - In ring 3, a `syscall` round trip against a ring-0 handler that does
//!   nothing but `sysretq` (the native hypercall round trip).
#![no_std]
#![no_main]

use core::cell::UnsafeCell;
use core::fmt::Write;

use spin::Once;
use uart_16550::SerialPort;
use veneer_perf_measure::{cycles_per_op, per_item, Line};
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::registers::model_specific::{Efer, EferFlags, LStar, SFMask, Star};
use x86_64::registers::rflags::RFlags;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable};
use x86_64::structures::paging::PhysFrame;
use x86_64::{PhysAddr, VirtAddr};

core::arch::global_asm!(include_str!("../../../hypervisor/src/arch/x86_64/boot.S"), options(att_syntax));

core::arch::global_asm!(
    ".section .text.native_syscall_entry, \"ax\"",
    ".global native_syscall_entry",
    "native_syscall_entry:",
    "sysretq",
);

/// Must match the hypervisor's link.ld: virtual = IMAGE_OFFSET + physical.
const IMAGE_OFFSET: u64 = 0xffff_8780_0000_0000;
const PRESENT_WRITABLE_USER: u64 = 0x7;
const LARGE: u64 = 0x80;

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

static GDT: Once<GlobalDescriptorTable> = Once::new();

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

#[no_mangle]
extern "C" fn boot_main(_start_info: u64) -> ! {
    let mut gdt = GlobalDescriptorTable::new();
    let kernel_code = gdt.append(Descriptor::kernel_code_segment());
    let kernel_data = gdt.append(Descriptor::kernel_data_segment());
    let user_data = gdt.append(Descriptor::user_data_segment());
    let user_code = gdt.append(Descriptor::user_code_segment());
    GDT.call_once(|| gdt).load();
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
        (*PD_WINDOW.0.get())[0] = phys(&WINDOW) | PRESENT_WRITABLE_USER;
        for (i, e) in (*PD.0.get()).iter_mut().enumerate() {
            *e = ((i as u64) << 21) | PRESENT_WRITABLE_USER | LARGE;
        }
        Cr3::write(PhysFrame::containing_address(PhysAddr::new(phys(&PML4))), Cr3Flags::empty());
    }
    page_table_benchmarks();
    memcpy_benchmarks();

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

extern "C" fn ring3_main() -> ! {
    let mut out = serial();
    let stats = cycles_per_op(1000, || {
        // SAFETY: the handler returns at once with rcx and r11 as syscall
        // left them.
        unsafe { core::arch::asm!("syscall", out("rcx") _, out("r11") _, options(nostack)) };
    });
    let _ = writeln!(out, "{}", Line { name: "native_syscall_round_trip", stats });
    // The value Veneer writes for a clean run, so the harness reads both alike.
    exit(0x10)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let _ = writeln!(serial(), "native kernel panic: {info}");
    exit(0x11)
}
