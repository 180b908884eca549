//! Typed hypercalls.

use hypercall_abi::call::{hypercall1, hypercall2, hypercall3, hypercall6};
use hypercall_abi::cpu::{CallbackKind, CpuidResult, SegmentBase, TrapInfo};
use hypercall_abi::memory::{MmuextCmd, MmuextOp};
use hypercall_abi::multicall::MulticallEntry;
use hypercall_abi::hypercall::{AbiInfo, ShutdownReason};
use hypercall_abi::{Error, Hypercall};

/// Decodes a raw `rax`.
pub fn result(rax: u64) -> Result<u64, Error> {
    Error::from_return(rax).map_err(|e| e.unwrap_or_else(|| panic!("undefined error code {:#x}", rax)))
}

pub fn abi_query() -> Result<AbiInfo, Error> {
    let mut info = AbiInfo::default();
    result(hypercall2(Hypercall::AbiQuery.number(), &mut info as *mut AbiInfo as u64, 0))?;
    Ok(info)
}

pub fn console_write(bytes: &[u8]) -> Result<usize, Error> {
    result(hypercall2(Hypercall::ConsoleWrite.number(), bytes.as_ptr() as u64, bytes.len() as u64)).map(|n| n as usize)
}

pub fn shutdown(reason: ShutdownReason, code: u32) -> ! {
    hypercall6(Hypercall::SchedShutdown.number(), reason as u64, u64::from(code), 0, 0, 0, 0);
    // Shutdown does not return; if it ever did, stop anyway.
    loop {
        core::hint::spin_loop();
    }
}

pub fn poweroff(code: u32) -> ! {
    shutdown(ShutdownReason::Poweroff, code)
}

pub fn crash(code: u32) -> ! {
    shutdown(ShutdownReason::Crash, code)
}

/// A raw call with arbitrary registers, for tests of bad input.
pub fn raw(nr: u64, args: [u64; 6]) -> Result<u64, Error> {
    result(hypercall6(nr, args[0], args[1], args[2], args[3], args[4], args[5]))
}


pub fn set_trap_table(table: &[TrapInfo]) -> Result<u64, Error> {
    result(hypercall2(Hypercall::SetTrapTable.number(), table.as_ptr() as u64, table.len() as u64))
}

pub fn stack_switch(sp: u64) -> Result<u64, Error> {
    result(hypercall1(Hypercall::StackSwitch.number(), sp))
}

pub fn set_callback(kind: CallbackKind, address: u64, flags: u64) -> Result<u64, Error> {
    result(hypercall3(Hypercall::SetCallback.number(), kind as u64, address, flags))
}

pub fn set_segment_base(which: SegmentBase, value: u64) -> Result<u64, Error> {
    result(hypercall2(Hypercall::SetSegmentBase.number(), which as u64, value))
}

/// The domain's view of CPUID `leaf`, `subleaf`.
pub fn cpuid_query(leaf: u32, subleaf: u32) -> Result<CpuidResult, Error> {
    let mut r = CpuidResult::default();
    result(hypercall3(Hypercall::CpuidQuery.number(), leaf.into(), subleaf.into(), &mut r as *mut CpuidResult as u64))?;
    Ok(r)
}

pub fn msr_read(msr: u32) -> Result<u64, Error> {
    let mut value = 0u64;
    result(hypercall2(Hypercall::MsrRead.number(), msr.into(), &mut value as *mut u64 as u64))?;
    Ok(value)
}

pub fn msr_write(msr: u32, value: u64) -> Result<u64, Error> {
    result(hypercall2(Hypercall::MsrWrite.number(), msr.into(), value))
}

/// `multicall` of `entries`; each entry's `result` says how it went.
pub fn multicall(entries: &mut [MulticallEntry]) -> Result<u64, Error> {
    result(hypercall2(Hypercall::Multicall.number(), entries.as_mut_ptr() as u64, entries.len() as u64))
}

/// `mmuext_op` on `ops`; returns how many took effect with the result.
pub fn mmuext_op(ops: &[MmuextOp]) -> (u32, Result<u64, Error>) {
    let mut done = 0u32;
    let r = result(hypercall3(Hypercall::MmuextOp.number(), ops.as_ptr() as u64, ops.len() as u64, &mut done as *mut u32 as u64));
    (done, r)
}

/// Installs `mfn` (an L4 frame) as this vCPU's user-mode base pointer.
pub fn set_user_base(mfn: u64) -> Result<u64, Error> {
    mmuext_op(&[MmuextOp { cmd: MmuextCmd::NewUserBaseptr as u32, reserved0: 0, arg1: mfn, arg2: 0 }]).1
}

/// `vcpu_initialise(vcpu, ctx)`.
pub fn vcpu_initialise(vcpu: u32, ctx: &hypercall_abi::vcpu::VcpuContext) -> Result<u64, Error> {
    result(hypercall2(Hypercall::VcpuInitialise.number(), u64::from(vcpu), ctx as *const _ as u64))
}

pub fn vcpu_up(vcpu: u32) -> Result<u64, Error> {
    result(hypercall1(Hypercall::VcpuUp.number(), u64::from(vcpu)))
}

pub fn vcpu_down(vcpu: u32) -> Result<u64, Error> {
    result(hypercall1(Hypercall::VcpuDown.number(), u64::from(vcpu)))
}

pub fn vcpu_is_up(vcpu: u32) -> Result<u64, Error> {
    result(hypercall1(Hypercall::VcpuIsUp.number(), u64::from(vcpu)))
}

pub fn vcpu_register_runstate(vcpu: u32, area: *mut hypercall_abi::vcpu::RunstateInfo) -> Result<u64, Error> {
    result(hypercall2(Hypercall::VcpuRegisterRunstate.number(), u64::from(vcpu), area as u64))
}
