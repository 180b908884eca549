//! A guest kernel's side of bounces: entry stubs for every vector, the
//! syscall callback, and the `iret` back.
//!
//! A stub saves every general register below the hypervisor's `TrapFrame`,
//! calls the Rust handler registered for its vector with the whole
//! [`TrapContext`], restores the (possibly changed) registers and returns
//! with the `iret` hypercall, building the `IretFrame` over the `TrapFrame`
//! (Linux's `xen_iret` does the same). A test inspects and changes the
//! interrupted state through the context: skip a faulting instruction,
//! switch to another user process.

use core::arch::global_asm;

use hypercall_abi::cpu::selectors::{FLAT_USER_CS64, FLAT_USER_DS};
use hypercall_abi::cpu::{callback_flags, trap_flags, CallbackKind, IretFrame, TrapFrame, TrapInfo};
use hypercall_abi::Error;

use crate::hypercall;

/// General registers as the stubs push them (lowest address first).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Gprs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
}

/// Everything about the interrupted code: its registers (`rcx` and `r11`
/// as the hypervisor left them: the interrupted values are in `frame`),
/// the vector (`SYSCALL_VECTOR` for the syscall callback) and the frame the
/// hypervisor wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct TrapContext {
    pub gprs: Gprs,
    pub vector: u64,
    pub frame: TrapFrame,
}

/// `TrapContext::vector` in the syscall callback.
pub const SYSCALL_VECTOR: u64 = 0x100;

/// `HANDLERS` index of the syscall callback.
const SYSCALL_SLOT: usize = 256;
/// `HANDLERS` index of the event callback, and its `TrapContext::vector`.
pub const EVENT_VECTOR: u64 = 0x101;

/// A Rust handler for a vector.
pub type Handler = fn(&mut TrapContext);

static mut HANDLERS: [Option<Handler>; 258] = [None; 258];

// Every stub is 16 bytes: push the vector, jump to the common code.
global_asm!(
    ".section .text.veneer_traps, \"ax\"",
    ".balign 16",
    ".global veneer_trap_stubs",
    "veneer_trap_stubs:",
    ".set vector, 0",
    ".rept 256",
    ".balign 16",
    // push imm32 (0x68), spelled out: Intel syntax would read a bare
    // symbol as a memory operand.
    ".byte 0x68",
    ".long vector",
    "jmp veneer_trap_common",
    ".set vector, vector + 1",
    ".endr",
    ".balign 16",
    ".global veneer_event_stub",
    "veneer_event_stub:",
    "push 0x101",
    "jmp veneer_trap_common",
    ".balign 16",
    ".global veneer_syscall_stub",
    "veneer_syscall_stub:",
    "push 0x100",
    "veneer_trap_common:",
    "push rax", "push rbx", "push rcx", "push rdx", "push rsi", "push rdi", "push rbp",
    "push r8", "push r9", "push r10", "push r11", "push r12", "push r13", "push r14", "push r15",
    "mov rdi, rsp",
    // The TrapFrame is 16-byte aligned; 16 pushes keep it so.
    "call {dispatch}",
    "pop r15", "pop r14", "pop r13", "pop r12", "pop r11", "pop r10", "pop r9", "pop r8",
    "pop rbp", "pop rdi", "pop rsi", "pop rdx", "pop rcx", "pop rbx", "pop rax",
    // Drop the vector, then turn the TrapFrame into an IretFrame: rip..ss
    // line up one word lower; rcx, r11 and the flags fill the rest.
    "add rsp, 8",
    "push rax",
    "mov rax, [rsp + 8]",
    "xchg rax, [rsp + 16]",
    "mov [rsp + 8], rax",
    "mov qword ptr [rsp + 24], 0",
    "mov eax, 0x33",
    "syscall",
    "ud2",
    dispatch = sym veneer_trap_dispatch,
);

extern "C" {
    static veneer_trap_stubs: [u8; 256 * 16];
    static veneer_syscall_stub: u8;
    static veneer_event_stub: u8;
}

extern "C" fn veneer_trap_dispatch(ctx: &mut TrapContext) {
    // SAFETY: single vCPU; the table is written only by `install`, never
    // while a handler runs.
    let handler = unsafe { (*core::ptr::addr_of!(HANDLERS)).get(usize::try_from(ctx.vector).unwrap_or(usize::MAX)).copied().flatten() };
    match handler {
        Some(h) => h(ctx),
        None => crate::failure(format_args!("no handler for vector {:#x} at rip {:#x}", ctx.vector, ctx.frame.rip)),
    }
}

/// Address of the stub of `vector`.
pub fn stub(vector: u8) -> u64 {
    core::ptr::addr_of!(veneer_trap_stubs) as u64 + u64::from(vector) * 16
}

/// Address of the syscall callback's stub.
pub fn syscall_stub() -> u64 {
    core::ptr::addr_of!(veneer_syscall_stub) as u64
}

/// Routes `vector` to `handler`; `dpl` 3 lets user mode raise it with
/// `int n`.
pub fn install(vector: u8, dpl: u8, mask_events: bool, handler: Handler) -> Result<u64, Error> {
    // SAFETY: see `veneer_trap_dispatch`.
    unsafe { (*core::ptr::addr_of_mut!(HANDLERS))[usize::from(vector)] = Some(handler) };
    let flags = (dpl & trap_flags::DPL_MASK) | if mask_events { trap_flags::MASK_EVENTS } else { 0 };
    hypercall::set_trap_table(&[TrapInfo { vector, flags, reserved0: [0; 6], address: stub(vector) }])
}

/// Makes `handler` the syscall callback.
pub fn install_syscall(mask_events: bool, handler: Handler) -> Result<u64, Error> {
    // SAFETY: see `veneer_trap_dispatch`.
    unsafe { (*core::ptr::addr_of_mut!(HANDLERS))[SYSCALL_SLOT] = Some(handler) };
    let flags = if mask_events { callback_flags::MASK_EVENTS } else { 0 };
    hypercall::set_callback(CallbackKind::Syscall, syscall_stub(), flags)
}

/// Makes `handler` the event callback (the upcall of section 8.1).
pub fn install_event(mask_events: bool, handler: Handler) -> Result<u64, Error> {
    // SAFETY: see `veneer_trap_dispatch`.
    unsafe { (*core::ptr::addr_of_mut!(HANDLERS))[EVENT_VECTOR as usize] = Some(handler) };
    let flags = if mask_events { callback_flags::MASK_EVENTS } else { 0 };
    hypercall::set_callback(CallbackKind::Event, core::ptr::addr_of!(veneer_event_stub) as u64, flags)
}

/// Leaves guest kernel mode for user mode at `rip` on stack `rsp` with
/// events unmasked, through `iret` (a user base pointer must be installed).
pub fn enter_user(rip: u64, rsp: u64) -> ! {
    let frame = IretFrame { rax: 0, r11: 0, rcx: 0, flags: 0, rip, cs: FLAT_USER_CS64, rflags: 0x202, rsp, ss: FLAT_USER_DS };
    // SAFETY: the iret hypercall does not return; the frame is on this
    // stack, which is abandoned.
    unsafe { core::arch::asm!("mov rsp, {f}", "mov eax, 0x33", "syscall", "ud2", f = in(reg) &frame, options(noreturn)) }
}

/// The machine frame of the bootstrap L4 (a frame of type L4, usable as a
/// base pointer), from the p2m array.
pub fn bootstrap_l4_mfn(start: &crate::StartInfo) -> u64 {
    let pfn = (start.pt_base - crate::IMAGE_BASE) / 4096;
    // SAFETY: the p2m array is mapped read-write at p2m_base with nr_pages
    // entries, and pt_base lies in the bootstrap region.
    unsafe { core::ptr::read_volatile((start.p2m_base as *const u64).add(pfn as usize)) }
}

/// Reads the word at `gs:[0]`.
pub fn gs_word() -> u64 {
    let v: u64;
    // SAFETY: callers point the GS base at a readable word first.
    unsafe { core::arch::asm!("mov {}, gs:[0]", out(reg) v, options(nostack, readonly)) };
    v
}

/// Reads the word at `fs:[0]`.
pub fn fs_word() -> u64 {
    let v: u64;
    // SAFETY: as for `gs_word`.
    unsafe { core::arch::asm!("mov {}, fs:[0]", out(reg) v, options(nostack, readonly)) };
    v
}
