//! Two kernel threads in two address spaces, for the native side of the
//! context-switch and event ping-pong rows: a switch saves the callee-saved
//! registers and the vector state (XSAVE, as Veneer saves a vCPU's), and
//! loads the other thread's CR3, stack, vector state and registers.
//!
//! Thread 0 is the boot thread; thread 1 starts at the function given to
//! [`start`] on a stack of its own, the first time something switches to it.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering};

const STACK_SIZE: usize = 16384;
/// Bytes of an XSAVE area (x87, SSE, AVX, AVX-512 fit), as Veneer's.
const XSAVE_SIZE: usize = 4096;

#[repr(C, align(64))]
struct Xsave([u8; XSAVE_SIZE]);

#[repr(C, align(16))]
struct Stack([u8; STACK_SIZE]);

struct Thread {
    /// Saved stack pointer while switched out.
    rsp: u64,
    cr3: u64,
    xsave: Xsave,
}

struct Threads(UnsafeCell<[Thread; 2]>);
// SAFETY: one CPU runs the native kernel; the threads are changed only by
// `start` (before any switch) and by `switch_to` with interrupts off.
unsafe impl Sync for Threads {}

static THREADS: Threads = Threads(UnsafeCell::new([const { Thread { rsp: 0, cr3: 0, xsave: Xsave([0; XSAVE_SIZE]) } }; 2]));
struct StackCell(UnsafeCell<Stack>);
// SAFETY: only thread 1 runs on it.
unsafe impl Sync for StackCell {}
static STACK_1: StackCell = StackCell(UnsafeCell::new(Stack([0; STACK_SIZE])));
static CURRENT: AtomicUsize = AtomicUsize::new(0);

/// Offset of MXCSR in an XSAVE area, and its value after reset.
const MXCSR_OFFSET: usize = 24;
const MXCSR_DEFAULT: u32 = 0x1f80;

extern "C" {
    /// Saves the callee-saved registers and vector state on the current
    /// stack and in `from_xsave`, stores rsp at `from_rsp`, loads `to_cr3`,
    /// `to_rsp`, `to_xsave` and the registers saved there, and returns on
    /// the other thread.
    fn native_switch(from_rsp: *mut u64, to_rsp: u64, to_cr3: u64, from_xsave: *mut u8, to_xsave: *const u8);
}

core::arch::global_asm!(
    ".global native_switch",
    "native_switch:",
    "push rbp",
    "push rbx",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "mov r9, rdx",
    "mov eax, -1",
    "mov edx, -1",
    "xsave64 [rcx]",
    "mov [rdi], rsp",
    "mov cr3, r9",
    "mov rsp, rsi",
    "mov eax, -1",
    "mov edx, -1",
    "xrstor64 [r8]",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbx",
    "pop rbp",
    "ret",
);

/// Prepares thread 1 to start at `entry` in the address space `cr3` the
/// first time it is switched to; thread 0 (the caller) keeps `boot_cr3`.
pub fn start(entry: extern "C" fn() -> !, cr3: u64, boot_cr3: u64) {
    let threads = THREADS.0.get();
    let top = STACK_1.0.get() as u64 + STACK_SIZE as u64;
    // SAFETY: no switch has happened, so nothing else uses the threads or
    // thread 1's stack; the frame is what `native_switch` pops (six
    // registers, zero) and the return address it takes, 16-byte aligned
    // at `entry` as a call would leave it.
    unsafe {
        let frame = (top - 8 * 8) as *mut u64;
        for i in 0..6 {
            frame.add(i).write(0);
        }
        frame.add(6).write(entry as *const () as u64);
        frame.add(7).write(0);
        (*threads)[1].rsp = frame as u64;
        (*threads)[1].cr3 = cr3;
        (*threads)[0].cr3 = boot_cr3;
        for t in &mut *threads {
            // A fresh area: the initial state (zero header), a valid MXCSR.
            t.xsave.0[MXCSR_OFFSET..MXCSR_OFFSET + 4].copy_from_slice(&MXCSR_DEFAULT.to_le_bytes());
        }
    }
}

/// Switches to the other thread; returns when something switches back.
/// Interrupts must be off.
pub fn switch_to_other() {
    let from = CURRENT.load(Ordering::SeqCst);
    let to = 1 - from;
    CURRENT.store(to, Ordering::SeqCst);
    let threads = THREADS.0.get();
    // SAFETY: interrupts are off and one CPU runs, so nothing else touches
    // the threads; both areas are 64-byte aligned XSAVE areas, the target's
    // written by a previous switch or prepared by `start`, and both threads'
    // address spaces map this code, its stacks and these statics.
    unsafe {
        let (f, t) = (&raw mut (*threads)[from], &raw const (*threads)[to]);
        native_switch(&raw mut (*f).rsp, (*t).rsp, (*t).cr3, (&raw mut (*f).xsave).cast(), (&raw const (*t).xsave).cast());
    }
}

// The IPI's handler: the end of the interrupt, then a switch to the other
// thread; when something switches back, the interrupted thread resumes.
core::arch::global_asm!(
    ".global native_ipi_handler",
    "native_ipi_handler:",
    "push rax", "push rcx", "push rdx", "push rsi", "push rdi",
    "push r8", "push r9", "push r10", "push r11",
    "call {handler}",
    "pop r11", "pop r10", "pop r9", "pop r8",
    "pop rdi", "pop rsi", "pop rdx", "pop rcx", "pop rax",
    "iretq",
    handler = sym ipi,
);

extern "C" fn ipi() {
    crate::apic::eoi();
    switch_to_other();
}
