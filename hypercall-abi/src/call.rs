//! Raw hypercall instructions for guest kernels.
//!
//! These are the only way into the hypervisor; everything typed sits above.
//! They are safe to call: a hypercall cannot break the caller's memory
//! safety except through the pointers it is given, and the calls that take
//! pointers are wrapped by typed functions that pass valid ones.

use core::arch::asm;

/// Issues hypercall `nr` with up to six arguments and returns raw `rax`.
#[inline(always)]
pub fn hypercall6(nr: u64, a0: u64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> u64 {
    let ret: u64;
    // SAFETY: `syscall` transfers to the hypervisor, which preserves every
    // register except rax (result), rcx and r11 (declared clobbered). The
    // hypervisor reads or writes guest memory only where the arguments point,
    // and callers of this raw form own that memory.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr => ret,
            in("rdi") a0, in("rsi") a1, in("rdx") a2,
            in("r10") a3, in("r8") a4, in("r9") a5,
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// Hypercall with no arguments.
#[inline(always)]
pub fn hypercall0(nr: u64) -> u64 {
    hypercall6(nr, 0, 0, 0, 0, 0, 0)
}

/// Hypercall with one argument.
#[inline(always)]
pub fn hypercall1(nr: u64, a0: u64) -> u64 {
    hypercall6(nr, a0, 0, 0, 0, 0, 0)
}

/// Hypercall with two arguments.
#[inline(always)]
pub fn hypercall2(nr: u64, a0: u64, a1: u64) -> u64 {
    hypercall6(nr, a0, a1, 0, 0, 0, 0)
}

/// Hypercall with three arguments.
#[inline(always)]
pub fn hypercall3(nr: u64, a0: u64, a1: u64, a2: u64) -> u64 {
    hypercall6(nr, a0, a1, a2, 0, 0, 0)
}

/// Hypercall with four arguments (the fourth travels in `r10`).
#[inline(always)]
pub fn hypercall4(nr: u64, a0: u64, a1: u64, a2: u64, a3: u64) -> u64 {
    hypercall6(nr, a0, a1, a2, a3, 0, 0)
}

/// Hypercall with five arguments.
#[inline(always)]
pub fn hypercall5(nr: u64, a0: u64, a1: u64, a2: u64, a3: u64, a4: u64) -> u64 {
    hypercall6(nr, a0, a1, a2, a3, a4, 0)
}

/// `abi_query`: the hypervisor's ABI version and offered features.
pub fn abi_query() -> Result<crate::hypercall::AbiInfo, Option<crate::Error>> {
    let mut info = crate::hypercall::AbiInfo::default();
    let p = core::ptr::addr_of_mut!(info) as u64;
    crate::Error::from_return(hypercall1(crate::Hypercall::AbiQuery.number(), p))?;
    Ok(info)
}

/// `console_write` of at most `CONSOLE_WRITE_MAX` bytes of `bytes`;
/// returns the bytes written.
pub fn console_write(bytes: &[u8]) -> Result<u64, Option<crate::Error>> {
    let len = bytes.len().min(crate::hypercall::CONSOLE_WRITE_MAX) as u64;
    crate::Error::from_return(hypercall2(crate::Hypercall::ConsoleWrite.number(), bytes.as_ptr() as u64, len))
}
