//! Hypercall decoding and handling.
//!
//! Each call is decoded from the saved registers into a typed [`Call`]
//! (every register argument checked, nothing changed), then carried out. A
//! call that fails changes nothing and returns an [`Error`] in `rax`, except
//! the batches, which say how much they did (`mmu.rs`). Calls that take a
//! table from guest memory copy it in and check all of it before they apply
//! any of it.

use core::mem::{offset_of, size_of};

use crate::guest_memory::Access;
use hypercall_abi::cpu::{callback_flags, msr, trap_flags, CallbackKind, CpuidResult, SegmentBase, TrapInfo};
use hypercall_abi::error::encode;
use hypercall_abi::event::event_consts;
use hypercall_abi::grant::grant_consts;
use hypercall_abi::hypercall::{base_limits, AbiInfo, Privilege, ShutdownReason, CONSOLE_WRITE_MAX};
use hypercall_abi::memory::memory_consts::{MMUEXT_OP_MAX, MMU_UPDATE_MAX};
use hypercall_abi::memory::uvmf;
use hypercall_abi::multicall::multicall_consts;
use hypercall_abi::vcpu::RunstateInfo;
use hypercall_abi::version::AbiVersion;
use hypercall_abi::{Error, Hypercall};

use crate::addr::{is_canonical, range_is_guest};
use crate::domain::{Domain, KillReason, Outcome};
use crate::event_channel::EventChannels;
use crate::grant_table;
use crate::machine::MachineMemory;
use crate::mmu::{self, all_vcpus, check_vcpu_mask, VaFlush};
use crate::phys::PhysMemory;
use crate::cpuid;
use crate::vcpu::{Callback, GuestCpu, GuestRegisters, HostMsr, Mode, TrapEntry, Vcpu, TRAP_VECTORS, USER_DS};

/// Room a `stack_switch` stack must have below it, all inside the guest's
/// range: a `TrapFrame` and the failsafe callback's four selectors, rounded
/// up.
pub const KERNEL_STACK_ROOM: u64 = 128;

/// A decoded call with its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    AbiQuery { info: u64 },
    /// `count` is `1 ..= MULTICALL_MAX`.
    Multicall { entries: u64, count: usize },
    ConsoleWrite { buf: u64, len: usize },
    ConsoleRead { buf: u64, len: usize },
    Shutdown(Outcome),
    SetTrapTable { table: u64, count: usize },
    StackSwitch { sp: u64 },
    SetCallback { kind: CallbackKind, callback: Callback },
    Iret,
    SetSegmentBase { which: SegmentBase, value: u64 },
    CpuidQuery { leaf: u64, subleaf: u64, out: u64 },
    MsrRead { msr: Msr, out: u64 },
    MsrWrite { msr: Msr, value: u64 },
    SchedYield,
    SchedBlock,
    /// `ports` points at `nr` u32 ports (`1 ..= EVTCHN_POLL_MAX`).
    SchedPoll { ports: u64, nr: usize, deadline: u64 },
    /// `remote` as given (`DOMID_SELF` not yet resolved).
    EvtchnAllocUnbound { remote: u32 },
    EvtchnBindInterdomain { remote: u32, remote_port: u64 },
    EvtchnBindVirq { virq: u64, vcpu: u64 },
    EvtchnBindIpi { vcpu: u64 },
    EvtchnSend { port: u32 },
    EvtchnClose { port: u64 },
    EvtchnUnmask { port: u32 },
    EvtchnStatus { port: u64, out: u64 },
    EvtchnBindVcpu { port: u64, vcpu: u64 },
    EvtchnDeliver,
    TimerSet { deadline: u64 },
    WallclockSet { sec: u64, nsec: u32, system_time: u64 },
    VcpuInitialise { vcpu: u32, ctx: u64 },
    VcpuUp { vcpu: u32 },
    VcpuDown { vcpu: u32 },
    VcpuIsUp { vcpu: u32 },
    VcpuRegisterRunstate { vcpu: u32, va: u64 },
    MmuUpdate { reqs: u64, count: usize, done: u64 },
    UpdateVaMapping { va: u64, value: u64, flush: VaFlush },
    MmuextOp { ops: u64, count: usize, done: u64 },
    MemoryMap { buf: u64, max: u64 },
    ReservationIncrease { args: u64 },
    ReservationDecrease { args: u64 },
    ReservationExchange { args: u64 },
    ReservationQuery { out: u64 },
    GrantSetTable { list: u64, nr: u64 },
    GrantMap { ops: u64, count: u64 },
    GrantUnmap { ops: u64, count: u64 },
    GrantCopy { ops: u64, count: u64 },
    GrantQuery { out: u64 },
    DeviceQuery { handle: u64, out: u64 },
    DeviceSetParams { handle: u64, params: u64 },
    DeviceConnect { handle: u64, args: u64 },
    DeviceSetState { handle: u64, state: u64 },
}

/// The MSRs `msr_read` and `msr_write` know (SPEC 13.11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Msr {
    ApicBase,
    MiscEnable,
    Pat,
    Efer,
    FsBase,
    GsBase,
    KernelGsBase,
    TscAux,
}

impl Msr {
    /// The MSR numbered `n`; any other (C4), a number wider than 32 bits
    /// among them, is `NotFound`.
    fn from_number(n: u64) -> Result<Msr, Error> {
        Ok(match u32::try_from(n).map_err(|_| Error::NotFound)? {
            msr::APIC_BASE => Msr::ApicBase,
            msr::MISC_ENABLE => Msr::MiscEnable,
            msr::PAT => Msr::Pat,
            msr::EFER => Msr::Efer,
            msr::FS_BASE => Msr::FsBase,
            msr::GS_BASE => Msr::GsBase,
            msr::KERNEL_GS_BASE => Msr::KernelGsBase,
            msr::TSC_AUX => Msr::TscAux,
            _ => return Err(Error::NotFound),
        })
    }
}

/// IA32_MISC_ENABLE bits a guest sees: fast strings, enhanced SpeedStep.
const MISC_ENABLE_SHOWN: u64 = 1 << 0 | 1 << 16;
/// EFER bits a guest sees: SCE, LME, LMA, NXE.
const EFER_SHOWN: u64 = 1 << 0 | 1 << 8 | 1 << 10 | 1 << 11;

impl Call {
    /// Calls about the domain and the scheduler, which the hypervisor
    /// carries out itself (they touch other vCPUs and domains).
    pub fn is_deferred(&self) -> bool {
        matches!(
            self,
            Call::Multicall { .. }
                | Call::SchedYield
                | Call::SchedBlock
                | Call::SchedPoll { .. }
                | Call::EvtchnAllocUnbound { .. }
                | Call::EvtchnBindInterdomain { .. }
                | Call::EvtchnBindVirq { .. }
                | Call::EvtchnBindIpi { .. }
                | Call::EvtchnSend { .. }
                | Call::EvtchnClose { .. }
                | Call::EvtchnUnmask { .. }
                | Call::EvtchnStatus { .. }
                | Call::EvtchnBindVcpu { .. }
                | Call::EvtchnDeliver
                | Call::TimerSet { .. }
                | Call::WallclockSet { .. }
                | Call::VcpuInitialise { .. }
                | Call::VcpuUp { .. }
                | Call::VcpuDown { .. }
                | Call::VcpuIsUp { .. }
                | Call::VcpuRegisterRunstate { .. }
                | Call::GrantMap { .. }
                | Call::GrantUnmap { .. }
                | Call::GrantCopy { .. }
                | Call::DeviceQuery { .. }
                | Call::DeviceSetParams { .. }
                | Call::DeviceConnect { .. }
                | Call::DeviceSetState { .. }
        )
    }
}

/// The most console input one `console_read` moves: the call may return
/// fewer bytes than asked (SPEC 11.3), and the rest waits for the next.
const CONSOLE_READ_CHUNK: usize = 64;

/// What the caller of [`handle`] must do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Resume the vCPU with this value in `rax`.
    Return(u64),
    /// Resume the vCPU with the registers as the call left them, all of
    /// them (`iret`): `rcx` and `r11` are the guest's, not `syscall`'s.
    Resume,
    /// The domain has ended.
    End(Outcome),
    /// A decoded call for the hypervisor to carry out (`Call::is_deferred`).
    Defer(Call),
}

/// The hypervisor's side of the calls: what it offers, machine memory,
/// where console output goes, and the CPU state a call may change.
pub struct Services<'a, M: PhysMemory> {
    pub abi: AbiVersion,
    pub features: u64,
    pub mem: &'a mut M,
    pub machine: &'a mut MachineMemory,
    pub console: &'a mut dyn FnMut(&[u8]),
    /// Moves the physical console's waiting input into the buffer, without
    /// waiting; returns how many bytes it moved (`console_read`).
    pub console_input: &'a mut dyn FnMut(&mut [u8]) -> usize,
    pub cpu: &'a mut dyn GuestCpu,
}

/// The six argument registers, in ABI order.
fn args(regs: &GuestRegisters) -> [u64; 6] {
    let g = &regs.gprs;
    [g.rdi, g.rsi, g.rdx, g.r10, g.r8, g.r9]
}

/// An entry point a guest registers (C3): 0 (none), or canonical and
/// outside the hypervisor's range.
fn entry_point_ok(address: u64) -> bool {
    address == 0 || range_is_guest(address, 1)
}

/// A batch count: at most `max` (else `TooBig`).
fn count(n: u64, max: u64) -> Result<usize, Error> {
    if n > max {
        return Err(Error::TooBig);
    }
    usize::try_from(n).map_err(|_| Error::TooBig)
}

/// Decodes `update_va_mapping`'s flags and vCPU mask (§12.3).
fn va_flush(caller: &Domain, flags: u64, mask: u64) -> Result<VaFlush, Error> {
    let defined = uvmf::FLUSH_MASK | uvmf::MULTI | uvmf::ALL;
    if flags & !defined != 0 || flags & uvmf::FLUSH_MASK == uvmf::FLUSH_MASK {
        return Err(Error::Invalid);
    }
    let vcpus = match (flags & uvmf::MULTI != 0, flags & uvmf::ALL != 0) {
        (true, true) => return Err(Error::Invalid),
        (true, false) => check_vcpu_mask(caller, mask)?,
        // The mask is read only with MULTI; anything else there is a
        // mistake the guest hears about.
        (false, _) if mask != 0 => return Err(Error::Invalid),
        (false, true) => all_vcpus(caller),
        (false, false) => 1,
    };
    Ok(match flags & uvmf::FLUSH_MASK {
        uvmf::TLB_FLUSH => VaFlush::All(vcpus),
        uvmf::INVLPG => VaFlush::Page(vcpus),
        _ => VaFlush::None,
    })
}

/// Checks the number and register arguments of the call `caller` made.
pub fn decode(regs: &GuestRegisters, features: u64, caller: &Domain) -> Result<Call, Error> {
    let a = args(regs);
    let call = Hypercall::from_number(regs.gprs.rax).ok_or(Error::NoSuchCall)?;
    if call.feature() & !features != 0 {
        return Err(Error::NoSuchCall);
    }
    // Console ownership comes from the boot configuration; the privileged
    // domain and I/O permissions arrive with domain control and physical
    // devices (SPEC P1, P2).
    match call.privilege() {
        Privilege::Any => {}
        Privilege::ConsoleOwner if caller.events.privileges().console_owner => {}
        _ => return Err(Error::NotPermitted),
    }
    match call {
        Hypercall::AbiQuery => Ok(Call::AbiQuery { info: a[0] }),
        Hypercall::ConsoleWrite => {
            let len = count(a[1], CONSOLE_WRITE_MAX as u64)?;
            Ok(Call::ConsoleWrite { buf: a[0], len })
        }
        Hypercall::Multicall => {
            if a[1] == 0 {
                return Err(Error::Invalid);
            }
            Ok(Call::Multicall { entries: a[0], count: count(a[1], multicall_consts::MAX)? })
        }
        Hypercall::ConsoleRead => Ok(Call::ConsoleRead { buf: a[0], len: count(a[1], base_limits::CONSOLE_READ_MAX)? }),
        Hypercall::SchedShutdown => {
            let reason = ShutdownReason::from_number(a[0]).ok_or(Error::Invalid)?;
            let code = u32::try_from(a[1]).map_err(|_| Error::Invalid)?;
            Ok(Call::Shutdown(match reason {
                ShutdownReason::Poweroff => Outcome::Poweroff(code),
                ShutdownReason::Reboot => Outcome::Reboot(code),
                ShutdownReason::Crash => Outcome::Crash(code),
            }))
        }
        Hypercall::SetTrapTable => Ok(Call::SetTrapTable { table: a[0], count: count(a[1], TRAP_VECTORS as u64)? }),
        Hypercall::StackSwitch => {
            let sp = a[0];
            let room_ok = sp.checked_sub(KERNEL_STACK_ROOM).is_some_and(|low| range_is_guest(low, KERNEL_STACK_ROOM));
            if !sp.is_multiple_of(16) || !is_canonical(sp) || !room_ok {
                return Err(Error::Invalid);
            }
            Ok(Call::StackSwitch { sp })
        }
        Hypercall::SetCallback => {
            let kind = CallbackKind::from_value(a[0]).ok_or(Error::Invalid)?;
            if a[2] & !callback_flags::MASK_EVENTS != 0 || !entry_point_ok(a[1]) {
                return Err(Error::Invalid);
            }
            let callback = Callback { address: a[1], masks_events: a[2] & callback_flags::MASK_EVENTS != 0 };
            Ok(Call::SetCallback { kind, callback })
        }
        Hypercall::Iret => Ok(Call::Iret),
        Hypercall::SetSegmentBase => {
            let which = SegmentBase::from_value(a[0]).ok_or(Error::Invalid)?;
            let ok = match which {
                SegmentBase::Fs | SegmentBase::GsKernel | SegmentBase::GsUser => is_canonical(a[1]),
                // The guest owns no descriptors yet: a null selector or the
                // flat data segment, both with base 0.
                SegmentBase::GsUserSelector => a[1] <= 3 || a[1] == USER_DS,
            };
            if !ok {
                return Err(Error::Invalid);
            }
            Ok(Call::SetSegmentBase { which, value: a[1] })
        }
        Hypercall::CpuidQuery => Ok(Call::CpuidQuery { leaf: a[0], subleaf: a[1], out: a[2] }),
        Hypercall::MsrRead => Ok(Call::MsrRead { msr: Msr::from_number(a[0])?, out: a[1] }),
        Hypercall::MsrWrite => Ok(Call::MsrWrite { msr: Msr::from_number(a[0])?, value: a[1] }),
        Hypercall::SchedYield => Ok(Call::SchedYield),
        Hypercall::SchedBlock => Ok(Call::SchedBlock),
        Hypercall::SchedPoll => {
            if a[1] == 0 {
                return Err(Error::Invalid);
            }
            Ok(Call::SchedPoll { ports: a[0], nr: count(a[1], event_consts::POLL_MAX)?, deadline: a[2] })
        }
        Hypercall::EvtchnAllocUnbound => Ok(Call::EvtchnAllocUnbound { remote: narrow(a[0])? }),
        Hypercall::EvtchnBindInterdomain => Ok(Call::EvtchnBindInterdomain { remote: narrow(a[0])?, remote_port: a[1] }),
        Hypercall::EvtchnBindVirq => Ok(Call::EvtchnBindVirq { virq: a[0], vcpu: a[1] }),
        Hypercall::EvtchnBindIpi => Ok(Call::EvtchnBindIpi { vcpu: a[0] }),
        Hypercall::EvtchnSend => Ok(Call::EvtchnSend { port: EventChannels::port_arg(a[0])? }),
        Hypercall::EvtchnClose => Ok(Call::EvtchnClose { port: a[0] }),
        Hypercall::EvtchnUnmask => Ok(Call::EvtchnUnmask { port: EventChannels::port_arg(a[0])? }),
        Hypercall::EvtchnStatus => Ok(Call::EvtchnStatus { port: a[0], out: a[1] }),
        Hypercall::EvtchnBindVcpu => Ok(Call::EvtchnBindVcpu { port: a[0], vcpu: a[1] }),
        Hypercall::EvtchnDeliver => Ok(Call::EvtchnDeliver),
        Hypercall::TimerSet => Ok(Call::TimerSet { deadline: a[0] }),
        Hypercall::WallclockSet => Ok(Call::WallclockSet { sec: a[0], nsec: narrow(a[1])?, system_time: a[2] }),
        // A vCPU id wider than 32 bits names no vCPU.
        Hypercall::VcpuInitialise => Ok(Call::VcpuInitialise { vcpu: narrow(a[0]).map_err(|_| Error::NotFound)?, ctx: a[1] }),
        Hypercall::VcpuUp => Ok(Call::VcpuUp { vcpu: narrow(a[0]).map_err(|_| Error::NotFound)? }),
        Hypercall::VcpuDown => Ok(Call::VcpuDown { vcpu: narrow(a[0]).map_err(|_| Error::NotFound)? }),
        Hypercall::VcpuIsUp => Ok(Call::VcpuIsUp { vcpu: narrow(a[0]).map_err(|_| Error::NotFound)? }),
        Hypercall::VcpuRegisterRunstate => {
            let va = a[1];
            if va != 0 && (!va.is_multiple_of(8) || !range_is_guest(va, size_of::<RunstateInfo>() as u64)) {
                return Err(Error::Invalid);
            }
            Ok(Call::VcpuRegisterRunstate { vcpu: narrow(a[0]).map_err(|_| Error::NotFound)?, va })
        }
        Hypercall::MmuUpdate => {
            let count = count(a[1], MMU_UPDATE_MAX)?;
            mmu::check_self(caller, a[3])?;
            Ok(Call::MmuUpdate { reqs: a[0], count, done: a[2] })
        }
        Hypercall::UpdateVaMapping => {
            let va = mmu::check_guest_va(a[0])?;
            Ok(Call::UpdateVaMapping { va, value: a[1], flush: va_flush(caller, a[2], a[3])? })
        }
        Hypercall::MmuextOp => Ok(Call::MmuextOp { ops: a[0], count: count(a[1], MMUEXT_OP_MAX)?, done: a[2] }),
        Hypercall::MemoryMap => Ok(Call::MemoryMap { buf: a[0], max: a[1] }),
        Hypercall::ReservationIncrease => Ok(Call::ReservationIncrease { args: a[0] }),
        Hypercall::ReservationDecrease => Ok(Call::ReservationDecrease { args: a[0] }),
        Hypercall::ReservationExchange => Ok(Call::ReservationExchange { args: a[0] }),
        Hypercall::ReservationQuery => {
            mmu::check_self(caller, a[0])?;
            Ok(Call::ReservationQuery { out: a[1] })
        }
        Hypercall::GrantSetTable => {
            count(a[1], grant_consts::TABLE_FRAMES_MAX)?;
            Ok(Call::GrantSetTable { list: a[0], nr: a[1] })
        }
        Hypercall::GrantMap => Ok(Call::GrantMap { ops: a[0], count: count(a[1], grant_consts::OPS_MAX)? as u64 }),
        Hypercall::GrantUnmap => Ok(Call::GrantUnmap { ops: a[0], count: count(a[1], grant_consts::OPS_MAX)? as u64 }),
        Hypercall::GrantCopy => Ok(Call::GrantCopy { ops: a[0], count: count(a[1], grant_consts::OPS_MAX)? as u64 }),
        Hypercall::GrantQuery => Ok(Call::GrantQuery { out: a[0] }),
        Hypercall::DeviceQuery => Ok(Call::DeviceQuery { handle: a[0], out: a[1] }),
        Hypercall::DeviceSetParams => Ok(Call::DeviceSetParams { handle: a[0], params: a[1] }),
        Hypercall::DeviceConnect => Ok(Call::DeviceConnect { handle: a[0], args: a[1] }),
        Hypercall::DeviceSetState => Ok(Call::DeviceSetState { handle: a[0], state: a[1] }),
        // The rest of ABI v1 is specified but not yet served by this
        // hypervisor; it answers exactly as for an unknown number.
        _ => Err(Error::NoSuchCall),
    }
}

/// What `multicall` needs of the hypervisor: the entries in guest memory,
/// and each call carried out as if issued on its own (deferred ones too).
pub trait MulticallHost {
    /// Entry `i`'s `op` and `args`.
    fn read_entry(&mut self, i: usize) -> Result<(u64, [u64; 6]), Error>;
    fn write_result(&mut self, i: usize, result: u64) -> Result<(), Error>;
    fn call(&mut self, op: u64, args: [u64; 6]) -> Disposition;
}

/// Runs the `count` entries of a decoded `multicall` (SPEC 11.4).
pub fn multicall(host: &mut dyn MulticallHost, count: usize) -> Disposition {
    for i in 0..count {
        let (op, args) = match host.read_entry(i) {
            Ok(entry) => entry,
            Err(e) => return Disposition::Return(e.to_return()),
        };
        let result = match Hypercall::from_number(op) {
            // They would not return, block, or nest.
            Some(h) if !h.allowed_in_multicall() => Error::Invalid.to_return(),
            _ => match host.call(op, args) {
                Disposition::Return(value) => value,
                // A call may still end the domain.
                end @ Disposition::End(_) => return end,
                other => unreachable!("{other:?} from a call allowed in a multicall"),
            },
        };
        if let Err(e) = host.write_result(i, result) {
            return Disposition::Return(e.to_return());
        }
    }
    Disposition::Return(count as u64)
}

/// A 32-bit argument: high bits set are `Invalid` (section 2).
fn narrow(arg: u64) -> Result<u32, Error> {
    u32::try_from(arg).map_err(|_| Error::Invalid)
}

/// Reads a little-endian u64 at `at` of `b`.
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Copies in and checks a trap table of `count` entries (C3, flags,
/// reserved fields).
fn read_trap_table<M: PhysMemory>(vcpu: &Vcpu, table: u64, count: usize, mem: &M) -> Result<[Option<TrapEntry>; TRAP_VECTORS], Error> {
    const ENTRY: usize = size_of::<TrapInfo>();
    let mut bytes = [0u8; TRAP_VECTORS * ENTRY];
    let bytes = &mut bytes[..count * ENTRY];
    vcpu.kernel_space().copy_from(mem, table, bytes)?;
    let mut out = [None; TRAP_VECTORS];
    for e in bytes.chunks_exact(ENTRY) {
        let vector = e[offset_of!(TrapInfo, vector)];
        let flags = e[offset_of!(TrapInfo, flags)];
        let reserved = &e[offset_of!(TrapInfo, reserved0)..offset_of!(TrapInfo, address)];
        let address = le64(e, offset_of!(TrapInfo, address));
        if flags & !(trap_flags::DPL_MASK | trap_flags::MASK_EVENTS) != 0 || reserved.iter().any(|&b| b != 0) || !entry_point_ok(address) {
            return Err(Error::Invalid);
        }
        out[usize::from(vector)] = Some(TrapEntry { address, flags });
    }
    Ok(out)
}

/// Decodes and carries out the call in `regs` for vCPU `vcpu` of `dom`.
/// `regs` is changed only by `iret`. TLB work the call leaves is in
/// `hv.machine.frames` (`take_flush`).
pub fn handle<M: PhysMemory>(regs: &mut GuestRegisters, dom: &mut Domain, vcpu: usize, hv: &mut Services<'_, M>) -> Disposition {
    let call = match decode(regs, hv.features, dom) {
        Ok(call) => call,
        Err(e) => return Disposition::Return(e.to_return()),
    };
    if call.is_deferred() {
        return Disposition::Defer(call);
    }
    let space = dom.space(vcpu);
    let (mem, machine) = (&mut *hv.mem, &mut *hv.machine);
    let result = match call {
        Call::Shutdown(outcome) => return Disposition::End(outcome),
        Call::AbiQuery { info } => {
            let mut bytes = [0u8; size_of::<AbiInfo>()];
            bytes[offset_of!(AbiInfo, major)..][..2].copy_from_slice(&hv.abi.major.to_le_bytes());
            bytes[offset_of!(AbiInfo, minor)..][..2].copy_from_slice(&hv.abi.minor.to_le_bytes());
            bytes[offset_of!(AbiInfo, features)..][..8].copy_from_slice(&hv.features.to_le_bytes());
            space.copy_to(mem, info, &bytes).map(|()| 0)
        }
        Call::ConsoleWrite { buf, len } => {
            let (console, lines) = (&mut hv.console, &mut dom.console);
            space.read_chunks(mem, buf, len, |bytes| lines.write(vcpu, bytes, *console)).map(|()| len as u64)
        }
        Call::ConsoleRead { buf, len } => {
            // Input taken from the console is gone: the whole buffer is
            // checked writable before any is taken.
            let mut chunk = [0u8; CONSOLE_READ_CHUNK];
            let want = len.min(CONSOLE_READ_CHUNK);
            let writable = want == 0
                || (space.translate(mem, buf, Access::Write).is_ok() && space.translate(mem, buf + want as u64 - 1, Access::Write).is_ok());
            if writable {
                let n = (hv.console_input)(&mut chunk[..want]);
                space.copy_to(mem, buf, &chunk[..n]).map(|()| n as u64)
            } else {
                Err(Error::BadAddress)
            }
        }
        Call::SetTrapTable { table, count } => read_trap_table(&dom.vcpus[vcpu], table, count, mem).map(|entries| {
            for (slot, entry) in dom.vcpus[vcpu].traps.iter_mut().zip(entries) {
                if let Some(e) = entry {
                    *slot = e;
                }
            }
            0
        }),
        Call::StackSwitch { sp } => {
            dom.vcpus[vcpu].entry.kernel_sp = sp;
            Ok(0)
        }
        Call::SetCallback { kind, callback } => {
            match kind {
                CallbackKind::Event => dom.vcpus[vcpu].event_callback = callback,
                CallbackKind::Failsafe => dom.vcpus[vcpu].failsafe_callback = callback,
                CallbackKind::Syscall => {
                    let v = &mut dom.vcpus[vcpu];
                    v.entry.syscall_entry = callback.address;
                    v.entry.syscall_masks_events = u64::from(callback.masks_events);
                }
            }
            Ok(0)
        }
        Call::Iret => {
            let v = &mut dom.vcpus[vcpu];
            return match v.decode_iret(regs.rsp, mem) {
                Ok(target) => {
                    v.iret(&target, regs, mem, hv.cpu);
                    Disposition::Resume
                }
                Err(e) => Disposition::End(Outcome::Killed(KillReason::BadIret(e))),
            };
        }
        Call::SetSegmentBase { which, value } => {
            // Hypercalls come from kernel mode: the kernel GS base is the
            // active one, the user one waits in the vCPU.
            let v = &mut dom.vcpus[vcpu];
            debug_assert_eq!(v.mode(), Mode::Kernel);
            match which {
                SegmentBase::Fs => hv.cpu.set_fs_base(value),
                SegmentBase::GsKernel => hv.cpu.set_active_gs_base(value),
                SegmentBase::GsUser => v.entry.inactive_gs_base = value,
                SegmentBase::GsUserSelector => v.entry.inactive_gs_base = 0,
            }
            Ok(0)
        }
        Call::CpuidQuery { leaf, subleaf, out } => {
            let r = cpuid::view(&*hv.cpu, hv.abi, dom.vcpus[vcpu].id, leaf, subleaf);
            let mut bytes = [0u8; size_of::<CpuidResult>()];
            for (at, reg) in [offset_of!(CpuidResult, eax), offset_of!(CpuidResult, ebx), offset_of!(CpuidResult, ecx), offset_of!(CpuidResult, edx)].into_iter().zip(r) {
                bytes[at..at + 4].copy_from_slice(&reg.to_le_bytes());
            }
            space.copy_to(mem, out, &bytes).map(|()| 0)
        }
        Call::MsrRead { msr, out } => {
            let v = &dom.vcpus[vcpu];
            let value = match msr {
                Msr::ApicBase => 0,
                Msr::MiscEnable => hv.cpu.host_msr(HostMsr::MiscEnable) & MISC_ENABLE_SHOWN,
                Msr::Pat => hv.cpu.host_msr(HostMsr::Pat),
                Msr::Efer => hv.cpu.host_msr(HostMsr::Efer) & EFER_SHOWN,
                Msr::FsBase => hv.cpu.fs_base(),
                // Hypercalls come from kernel mode: the active GS base is
                // the kernel's, the inactive one the user's.
                Msr::GsBase => hv.cpu.active_gs_base(),
                Msr::KernelGsBase => v.entry.inactive_gs_base,
                Msr::TscAux => u64::from(v.tsc_aux),
            };
            space.copy_to(mem, out, &value.to_le_bytes()).map(|()| 0)
        }
        Call::MsrWrite { msr, value } => {
            let v = &mut dom.vcpus[vcpu];
            let base_ok = is_canonical(value);
            match msr {
                Msr::MiscEnable | Msr::Efer => Ok(0),
                Msr::Pat if value == hv.cpu.host_msr(HostMsr::Pat) => Ok(0),
                Msr::ApicBase | Msr::Pat => Err(Error::Invalid),
                Msr::FsBase | Msr::GsBase | Msr::KernelGsBase if !base_ok => Err(Error::Invalid),
                Msr::FsBase => {
                    hv.cpu.set_fs_base(value);
                    Ok(0)
                }
                Msr::GsBase => {
                    hv.cpu.set_active_gs_base(value);
                    Ok(0)
                }
                Msr::KernelGsBase => {
                    v.entry.inactive_gs_base = value;
                    Ok(0)
                }
                Msr::TscAux => u32::try_from(value).map_err(|_| Error::Invalid).map(|aux| {
                    v.tsc_aux = aux;
                    hv.cpu.set_tsc_aux(aux);
                    0
                }),
            }
        }
        Call::MmuUpdate { reqs, count, done } => mmu::mmu_update(dom, vcpu, machine, mem, reqs, count, done),
        Call::UpdateVaMapping { va, value, flush } => mmu::update_va_mapping(dom, vcpu, machine, mem, va, value, flush),
        Call::MmuextOp { ops, count, done } => {
            let before = dom.vcpus[vcpu].kernel_base();
            let result = mmu::mmuext_op(dom, vcpu, machine, mem, ops, count, done);
            // A new kernel base pointer takes effect before the guest runs
            // again (hypercalls come from kernel mode).
            let v = &dom.vcpus[vcpu];
            if v.kernel_base() != before {
                hv.cpu.load_address_space(v.entry.kernel_l4, Mode::Kernel);
            }
            result
        }
        Call::MemoryMap { buf, max } => mmu::memory_map(dom, vcpu, mem, buf, max),
        Call::ReservationIncrease { args } => mmu::reservation_increase(dom, vcpu, machine, mem, args),
        Call::ReservationDecrease { args } => mmu::reservation_decrease(dom, vcpu, machine, mem, args),
        Call::ReservationExchange { args } => mmu::reservation_exchange(dom, vcpu, machine, mem, args),
        Call::ReservationQuery { out } => mmu::reservation_query(dom, vcpu, machine, mem, out),
        Call::GrantSetTable { list, nr } => grant_table::set_table(dom, vcpu, machine, mem, list, nr),
        Call::GrantQuery { out } => grant_table::query(dom, vcpu, mem, out),
        deferred => unreachable!("{deferred:?} is deferred above"),
    };
    Disposition::Return(encode(result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Mfn;
    use crate::frame_table::PageType;
    use crate::pte::PteFlags;
    use crate::test_support::TestDomain as T;
    use hypercall_abi::memory::memory_consts::{INVALID_FRAME, M2P_VIRT_START};
    use hypercall_abi::memory::{MmuUpdate, MmuextCmd};
    use Hypercall as H;

    const P: u64 = PteFlags::PRESENT.bits();
    const RW: u64 = PteFlags::WRITABLE.bits();
    const U: u64 = PteFlags::USER.bits();
    /// A VA in the first L1 that nothing maps: page 20 of the domain.
    const FREE_VA: u64 = T::TEXT + 20 * 0x1000;
    const DATA: u64 = T::DATA;
    const TEXT: u64 = T::TEXT;
    const END: u64 = T::END;
    type Harness = T;

    fn call(nr: u64, a: [u64; 6]) -> GuestRegisters {
        let mut r = GuestRegisters::default();
        (r.gprs.rax, r.gprs.rdi, r.gprs.rsi, r.gprs.rdx, r.gprs.r10, r.gprs.r8, r.gprs.r9) =
            (nr, a[0], a[1], a[2], a[3], a[4], a[5]);
        r
    }

    fn err(e: Error) -> Disposition {
        Disposition::Return(e.to_return())
    }

    fn page(t: &T, va: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        t.dom.space(0).copy_from(&t.mem, va, &mut b).unwrap();
        b
    }

    #[test]
    fn abi_query_writes_version_and_features() {
        let mut t = T::new();
        t.write(T::DATA, &[0xee; 32]);
        assert_eq!(t.call(0, [T::DATA + 8, 0, 0, 0, 0, 0]), Disposition::Return(0));
        let page = page(&t, T::DATA, 32);
        assert_eq!(&page[..8], &[0xee; 8]);
        assert_eq!(&page[8..12], &[1, 0, 0, 0]);
        assert_eq!(u64::from_le_bytes(page[16..24].try_into().unwrap()), T::FEATURES);
        assert_eq!(&page[24..32], &[0xee; 8]);
    }

    #[test]
    fn abi_query_refuses_bad_pointers() {
        let mut t = T::new();
        t.write(T::DATA, &[0xee; 32]);
        for bad in [0, T::TEXT, T::DATA - 8, T::END - 8, T::END, M2P_VIRT_START, 0x8000_0000_0000, u64::MAX] {
            assert_eq!(t.call(0, [bad, 0, 0, 0, 0, 0]), err(Error::BadAddress), "pointer {bad:#x}");
            assert_eq!(page(&t, T::DATA, 32), [0xee; 32]);
        }
    }

    #[test]
    fn console_write_copies_exactly_len_bytes() {
        let mut t = T::new();
        t.write(T::DATA, b"hello world\n");
        assert_eq!(t.call(1, [T::DATA, 5, 0, 0, 0, 0]), Disposition::Return(5));
        assert!(t.console.is_empty(), "a line goes out whole, once complete");
        assert_eq!(t.call(1, [T::DATA + 5, 7, 0, 0, 0, 0]), Disposition::Return(7));
        assert_eq!(t.console, format!("({}) hello world\n", t.dom.id).as_bytes());
        assert_eq!(t.call(1, [T::END - 3, 3, 0, 0, 0, 0]), Disposition::Return(3), "the last mapped bytes are readable");
        assert_eq!(t.call(1, [T::DATA, 0, 0, 0, 0, 0]), Disposition::Return(0));
        let mut rest = Vec::new();
        t.dom.console.flush(&mut |l| rest.extend_from_slice(l));
        assert_eq!(rest.len(), format!("({}) ", t.dom.id).len() + 3 + 1);
    }

    #[test]
    fn console_write_refuses_bad_input() {
        let max = CONSOLE_WRITE_MAX as u64;
        let mut t = T::new();
        for (buf, len, e) in [
            (T::DATA, max + 1, Error::TooBig),
            (T::DATA, u64::MAX, Error::TooBig),
            (0xffff_8000_0000_0000, 4, Error::BadAddress),
            (0x1234_0000, 4, Error::BadAddress),
            (T::END - 2, 4, Error::BadAddress),
            (T::END, 1, Error::BadAddress),
        ] {
            assert_eq!(t.call(1, [buf, len, 0, 0, 0, 0]), err(e), "buf {buf:#x} len {len}");
        }
        assert!(t.console.is_empty());
    }

    #[test]
    fn shutdown_reasons_and_codes() {
        let mut t = T::new();
        assert_eq!(t.call(0x53, [0, 7, 0, 0, 0, 0]), Disposition::End(Outcome::Poweroff(7)));
        assert_eq!(t.call(0x53, [1, 0, 0, 0, 0, 0]), Disposition::End(Outcome::Reboot(0)));
        assert_eq!(t.call(0x53, [2, 9, 0, 0, 0, 0]), Disposition::End(Outcome::Crash(9)));
        assert_eq!(t.call(0x53, [3, 0, 0, 0, 0, 0]), err(Error::Invalid));
        assert_eq!(t.call(0x53, [0, 1 << 32, 0, 0, 0, 0]), err(Error::Invalid));
    }

    #[test]
    fn unknown_unoffered_and_unprivileged_numbers() {
        let mut t = T::new();
        for nr in [0x0f, 0x19, 0x54, 0xff, 1 << 32, u64::MAX] {
            assert_eq!(t.call(nr, [0; 6]), err(Error::NoSuchCall), "number {nr:#x}");
        }
        // Features not offered: the counters, domain control.
        for h in [H::CountersRead, H::DomainCreate, H::PhysdevIrqBind] {
            assert_eq!(t.call(h.number(), [0; 6]), err(Error::NoSuchCall), "{h:?}");
        }
        // Offered, but for a privilege no domain has yet.
        for h in [H::MachineMemoryMap, H::ConsoleRead, H::WallclockSet] {
            assert_eq!(t.call(h.number(), [0; 6]), err(Error::NotPermitted), "{h:?}");
        }
    }

    #[test]
    fn the_console_owner_reads_waiting_input() {
        let mut t = T::with_console_owner();
        t.input.extend_from_slice(b"ls\n");
        // A buffer that is not writable takes nothing from the console.
        assert_eq!(t.result(H::ConsoleRead, [T::TEXT, 16, 0, 0, 0, 0]), Err(Error::BadAddress));
        assert_eq!(t.input, b"ls\n");
        assert_eq!(t.result(H::ConsoleRead, [T::DATA, 2, 0, 0, 0, 0]), Ok(2));
        assert_eq!(t.read(T::DATA, 2), b"ls");
        assert_eq!(t.result(H::ConsoleRead, [T::DATA + 8, 4096, 0, 0, 0, 0]), Ok(1));
        assert_eq!(t.read(T::DATA + 8, 1), b"\n");
        assert_eq!(t.result(H::ConsoleRead, [T::DATA, 16, 0, 0, 0, 0]), Ok(0), "nothing waiting");
        assert_eq!(t.result(H::ConsoleRead, [T::DATA, 4097, 0, 0, 0, 0]), Err(Error::TooBig));
        // Only the owner may read (and bind the console's VIRQ, E3).
        assert!(t.dom.events.privileges().console_owner);
        let mut other = T::new();
        other.input.extend_from_slice(b"x");
        assert_eq!(other.result(H::ConsoleRead, [T::DATA, 1, 0, 0, 0, 0]), Err(Error::NotPermitted));
        assert_eq!(other.input, b"x");
    }

    /// Writes `reqs` to the data page and runs them as one `mmu_update`,
    /// with `done` after them.
    fn mmu_update(t: &mut T, reqs: &[MmuUpdate]) -> (Result<u64, Error>, u32) {
        let mut bytes = Vec::new();
        for r in reqs {
            bytes.extend_from_slice(&r.ptr.to_le_bytes());
            bytes.extend_from_slice(&r.val.to_le_bytes());
        }
        let done = T::DATA + bytes.len() as u64;
        bytes.extend_from_slice(&[0xff; 4]);
        t.write(T::DATA, &bytes);
        let r = t.result(H::MmuUpdate, [T::DATA, reqs.len() as u64, done, 0x7ff0, 0, 0]);
        (r, t.read_u64(done) as u32)
    }

    fn l1_maddr(t: &T, index: u64) -> u64 {
        let (l1, _) = t.dom.space(0).translate(&t.mem, T::L1, crate::guest_memory::Access::Read).unwrap();
        l1.phys() + index * 8
    }

    #[test]
    fn mmu_update_applies_validates_and_reports_progress() {
        let mut t = T::new();
        let frame = t.mfn(20);
        let entry = l1_maddr(&t, 20);
        // Map page 20 writable at FREE_VA: the guest can now write it.
        assert_eq!(mmu_update(&mut t, &[MmuUpdate::pt_update(entry, frame.phys() | P | RW)]), (Ok(0), 1));
        t.write(FREE_VA, b"mapped");
        assert_eq!(&t.mem.frame(frame)[..6], b"mapped");
        t.audit();
        // A batch whose third entry maps the L4 writable stops there.
        let l4 = t.dom.vcpus[0].kernel_base();
        let batch = [
            MmuUpdate::pt_update(l1_maddr(&t, 21), t.mfn(21).phys() | P),
            MmuUpdate::pt_update(l1_maddr(&t, 22), t.mfn(22).phys() | P),
            MmuUpdate::pt_update(l1_maddr(&t, 23), l4.phys() | P | RW),
            MmuUpdate::pt_update(l1_maddr(&t, 24), t.mfn(24).phys() | P),
        ];
        assert_eq!(mmu_update(&mut t, &batch), (Err(Error::Busy), 2));
        assert_eq!(t.read_u64(T::L1 + 22 * 8), t.mfn(22).phys() | P | U);
        assert_eq!(t.read_u64(T::L1 + 23 * 8), 0);
        assert_eq!(t.read_u64(T::L1 + 24 * 8), 0, "nothing after the failure");
        t.audit();
        // Bad commands and targets.
        let mut bad = MmuUpdate::pt_update(entry, 0);
        bad.ptr |= 3;
        assert_eq!(mmu_update(&mut t, &[bad]), (Err(Error::Invalid), 0), "undefined command");
        assert_eq!(mmu_update(&mut t, &[MmuUpdate { ptr: entry | 4, val: 0 }]), (Err(Error::Invalid), 0), "unaligned");
        assert_eq!(mmu_update(&mut t, &[MmuUpdate::pt_update(frame.phys(), 0)]), (Err(Error::Invalid), 0), "not a table");
        let l4_slot = l4.phys() + 256 * 8;
        assert_eq!(mmu_update(&mut t, &[MmuUpdate::pt_update(l4_slot, 0)]), (Err(Error::NotPermitted), 0));
        // The m2p: own frames only.
        assert_eq!(mmu_update(&mut t, &[MmuUpdate::machphys_update(frame.0, 77)]), (Ok(0), 1));
        assert_eq!(t.machine.m2p.get(&t.mem, frame), 77);
        assert_eq!(mmu_update(&mut t, &[MmuUpdate::machphys_update(3, 77)]), (Err(Error::Invalid), 0));
        assert_eq!(t.machine.m2p.get(&t.mem, Mfn(3)), INVALID_FRAME);
        // Register arguments.
        assert_eq!(t.result(H::MmuUpdate, [T::DATA, 513, 0, 0x7ff0, 0, 0]), Err(Error::TooBig));
        assert_eq!(t.result(H::MmuUpdate, [T::DATA, 1, 0, 2, 0, 0]), Err(Error::NotPermitted), "foreign");
        assert_eq!(t.result(H::MmuUpdate, [T::DATA, 1, 0, 1 << 32, 0, 0]), Err(Error::Invalid));
        assert_eq!(t.result(H::MmuUpdate, [M2P_VIRT_START, 1, 0, 0x7ff0, 0, 0]), Err(Error::BadAddress));
        t.write(T::DATA, &[0xff; 4]);
        assert_eq!(t.result(H::MmuUpdate, [M2P_VIRT_START, 1, T::DATA, 0x7ff0, 0, 0]), Err(Error::BadAddress));
        assert_eq!(t.read_u64(T::DATA) as u32, 0, "done reports 0 for unreadable requests");
        t.write(T::DATA, &[0xff; 4]);
        assert_eq!(t.result(H::MmuUpdate, [T::DATA, 513, T::DATA, 0x7ff0, 0, 0]), Err(Error::TooBig));
        assert_eq!(t.read_u64(T::DATA) as u32, u32::MAX, "a call refused on its registers writes nothing");
        assert_eq!(t.result(H::MmuUpdate, [T::DATA, 1, T::TEXT, 0x7ff0, 0, 0]), Err(Error::BadAddress), "done read-only");
        assert_eq!(t.result(H::MmuUpdate, [T::DATA, 0, 0, 1, 0, 0]), Ok(0), "own id, nothing to do");
        t.audit();
    }

    #[test]
    fn a_batch_that_unmaps_its_own_requests_stops_there() {
        let mut t = T::new();
        // 40 updates in the data page; the first unmaps the data page. The
        // first chunk is already read, so its entries all apply; the next
        // chunk cannot be read.
        let data_entry = l1_maddr(&t, 1);
        let mut reqs = vec![MmuUpdate::pt_update(data_entry, 0)];
        for i in 1..40 {
            reqs.push(MmuUpdate::pt_update(l1_maddr(&t, 20 + i), t.mfn(20 + i).phys() | P));
        }
        let bytes: Vec<u8> = reqs.iter().flat_map(|r| [r.ptr.to_le_bytes(), r.val.to_le_bytes()].concat()).collect();
        t.write(T::DATA, &bytes);
        assert_eq!(t.result(H::MmuUpdate, [T::DATA, 40, 0, 0x7ff0, 0, 0]), Err(Error::BadAddress));
        let applied = (1..40).filter(|&i| t.read_u64(T::L1 + (20 + i) * 8) != 0).count();
        assert_eq!(applied, 31, "the first chunk of 32, less the unmapping entry itself");
        t.audit();
    }

    #[test]
    fn update_va_mapping_flags_and_flushes() {
        let mut t = T::new();
        let frame = t.mfn(20).phys();
        let uvm = |t: &mut T, va, val, flags, mask| t.result(H::UpdateVaMapping, [va, val, flags, mask, 0, 0]);
        t.machine.frames.take_flush();
        assert_eq!(uvm(&mut t, FREE_VA, frame | P | RW, 2, 0), Ok(0));
        assert_eq!(t.machine.frames.take_flush().pages(), &[FREE_VA]);
        assert_eq!(uvm(&mut t, FREE_VA, frame | P, 1 | 4, 1), Ok(0));
        assert!(t.machine.frames.take_flush().full);
        assert_eq!(uvm(&mut t, FREE_VA, frame | P, 8, 0), Ok(0));
        assert!(t.machine.frames.take_flush().is_empty());
        for (flags, mask, e) in [(3, 0, Error::Invalid), (16, 0, Error::Invalid), (4 | 8, 1, Error::Invalid), (4, 2, Error::NotFound), (1, 1, Error::Invalid)] {
            assert_eq!(uvm(&mut t, FREE_VA, 0, flags, mask), Err(e), "flags {flags:#x} mask {mask:#x}");
        }
        assert_eq!(uvm(&mut t, M2P_VIRT_START, 0, 0, 0), Err(Error::Invalid), "reserved range");
        assert_eq!(uvm(&mut t, 1 << 47, 0, 0, 0), Err(Error::Invalid), "non-canonical");
        assert_eq!(uvm(&mut t, 0x4000_0000, 0, 0, 0), Err(Error::Invalid), "no L1 there");
        let l4 = t.dom.vcpus[0].kernel_base().phys();
        assert_eq!(uvm(&mut t, T::L4, l4 | P | RW, 0, 0), Err(Error::Busy));
        t.audit();
    }

    fn mmuext(t: &mut T, ops: &[(MmuextCmd, u64, u64)]) -> (Result<u64, Error>, u32) {
        let mut bytes = Vec::new();
        for &(cmd, a1, a2) in ops {
            bytes.extend_from_slice(&(cmd as u32).to_le_bytes());
            bytes.extend_from_slice(&0u32.to_le_bytes());
            bytes.extend_from_slice(&a1.to_le_bytes());
            bytes.extend_from_slice(&a2.to_le_bytes());
        }
        let done = T::DATA + bytes.len() as u64;
        bytes.extend_from_slice(&[0xff; 4]);
        t.write(T::DATA, &bytes);
        let r = t.result(H::MmuextOp, [T::DATA, ops.len() as u64, done, 0, 0, 0]);
        (r, t.read_u64(done) as u32)
    }

    /// Makes page `pfn` a copy of the bootstrap L4's guest half, pinned.
    fn second_l4(t: &mut T, pfn: u64) -> Mfn {
        let l4 = t.dom.vcpus[0].kernel_base();
        let new = t.mfn(pfn);
        for i in 0..512 {
            let v = t.mem.read_u64(l4, i);
            t.mem.write_u64(new, i, v);
        }
        assert_eq!(mmuext(t, &[(MmuextCmd::PinL4, new.0, 0)]), (Ok(0), 1));
        new
    }

    #[test]
    fn mmuext_pins_switches_and_flushes() {
        use MmuextCmd::*;
        let mut t = T::new();
        let boot_l4 = t.dom.vcpus[0].kernel_base();
        let new = second_l4(&mut t, 30);
        assert_eq!(t.machine.frames.info(new).unwrap().ty, PageType::L4);
        t.machine.frames.take_flush();
        // Switch, unpin the old one (the tree stays: the new L4 names the
        // same L3), switch back.
        assert_eq!(mmuext(&mut t, &[(NewBaseptr, new.0, 0), (Unpin, boot_l4.0, 0)]), (Ok(0), 2));
        assert_eq!(t.dom.vcpus[0].kernel_base(), new);
        assert!(t.machine.frames.take_flush().full);
        assert_eq!(t.machine.frames.info(boot_l4).unwrap().ty, PageType::None, "no use left");
        t.audit();
        assert_eq!(mmuext(&mut t, &[(NewBaseptr, boot_l4.0, 0)]), (Err(Error::Invalid), 0), "no longer an L4");
        assert_eq!(mmuext(&mut t, &[(PinL4, boot_l4.0, 0), (NewBaseptr, boot_l4.0, 0)]), (Ok(0), 2));
        // User base pointer in and out.
        assert_eq!(mmuext(&mut t, &[(NewUserBaseptr, new.0, 0)]), (Ok(0), 1));
        assert_eq!(t.dom.vcpus[0].user_base(), Some(new));
        t.audit();
        assert_eq!(mmuext(&mut t, &[(NewUserBaseptr, 0, 0)]), (Ok(0), 1));
        assert_eq!(t.dom.vcpus[0].user_base(), None);
        // Flushes.
        t.machine.frames.take_flush();
        assert_eq!(mmuext(&mut t, &[(InvlpgLocal, FREE_VA, 0), (InvlpgMulti, T::DATA, 1)]), (Ok(0), 2));
        assert_eq!(t.machine.frames.take_flush().pages(), &[FREE_VA, T::DATA]);
        assert_eq!(mmuext(&mut t, &[(TlbFlushMulti, 0, 0)]), (Ok(0), 1));
        assert!(t.machine.frames.take_flush().is_empty(), "an empty mask flushes nothing");
        assert_eq!(mmuext(&mut t, &[(TlbFlushAll, 0, 0)]), (Ok(0), 1));
        assert!(t.machine.frames.take_flush().full);
        // Errors, each stopping the batch where it stands.
        let pt_frame = t.mfn(8).0;
        for (ops, want) in [
            (vec![(TlbFlushLocal, 1, 0)], (Err(Error::Invalid), 0)),
            (vec![(TlbFlushLocal, 0, 0), (InvlpgLocal, 1 << 47, 0)], (Err(Error::Invalid), 1)),
            (vec![(TlbFlushMulti, 0, 2)], (Err(Error::NotFound), 0)),
            (vec![(PinL1, 3, 0)], (Err(Error::NotFound), 0)),
            (vec![(PinL4, new.0, 0)], (Err(Error::Exists), 0)),
            (vec![(PinL2, pt_frame, 0)], (Err(Error::Busy), 0)),
            (vec![(Unpin, pt_frame, 0)], (Err(Error::NotPermitted), 0)),
            (vec![(NewBaseptr, pt_frame, 0)], (Err(Error::Invalid), 0)),
            (vec![(PinL1, t.mfn(31).0, 5)], (Err(Error::Invalid), 0)),
        ] {
            assert_eq!(mmuext(&mut t, &ops), want, "{ops:?}");
        }
        let mut raw = [0u8; 24];
        raw[0] = 13;
        t.write(T::DATA, &raw);
        assert_eq!(t.result(H::MmuextOp, [T::DATA, 1, 0, 0, 0, 0]), Err(Error::Invalid), "undefined command");
        raw[0] = TlbFlushLocal as u8;
        raw[4] = 1;
        t.write(T::DATA, &raw);
        assert_eq!(t.result(H::MmuextOp, [T::DATA, 1, 0, 0, 0, 0]), Err(Error::Invalid), "reserved field");
        assert_eq!(t.result(H::MmuextOp, [T::DATA, 129, 0, 0, 0, 0]), Err(Error::TooBig));
        t.audit();
    }

    #[test]
    fn memory_map_describes_the_pseudo_physical_space() {
        let mut t = T::new();
        assert_eq!(t.result(H::MemoryMap, [T::DATA, 4, 0, 0, 0, 0]), Ok(1));
        assert_eq!(page(&t, T::DATA, 24), [&0u64.to_le_bytes()[..], &(1u64 << 20).to_le_bytes(), &[1, 0, 0, 0, 0, 0, 0, 0]].concat());
        assert_eq!(t.result(H::MemoryMap, [T::DATA, 0, 0, 0, 0, 0]), Err(Error::TooBig));
        assert_eq!(t.result(H::MemoryMap, [T::TEXT, 1, 0, 0, 0, 0]), Err(Error::BadAddress));
    }

    fn reservation(t: &mut T, call: H, extents: &[u64], order: u32, bits: u32) -> (Result<u64, Error>, Vec<u64>) {
        let array = T::DATA + 0x100;
        let bytes: Vec<u8> = extents.iter().flat_map(|e| e.to_le_bytes()).collect();
        t.write(array, &bytes);
        let mut r = Vec::new();
        r.extend_from_slice(&array.to_le_bytes());
        r.extend_from_slice(&(extents.len() as u32).to_le_bytes());
        r.extend_from_slice(&order.to_le_bytes());
        r.extend_from_slice(&bits.to_le_bytes());
        r.extend_from_slice(&0x7ff0u32.to_le_bytes());
        r.extend_from_slice(&0u64.to_le_bytes());
        t.write(T::DATA, &r);
        let result = t.result(call, [T::DATA, 0, 0, 0, 0, 0]);
        let back = (0..extents.len() as u64).map(|i| t.read_u64(array + i * 8)).collect();
        (result, back)
    }

    #[test]
    fn reservations_give_back_and_take_again() {
        let mut t = T::new();
        let free = t.machine.allocator.free_count();
        let (a, b, c) = (t.mfn(40), t.mfn(41), t.mfn(42));
        // Page 13 is the first after the bootstrap region: map it, then try
        // to give it back while mapped.
        assert_eq!(t.result(H::UpdateVaMapping, [FREE_VA, c.phys() | P, 0, 0, 0, 0]), Ok(0));
        assert_eq!(reservation(&mut t, H::ReservationDecrease, &[c.0], 0, 0).0, Err(Error::Busy));
        assert_eq!(reservation(&mut t, H::ReservationDecrease, &[3], 0, 0).0, Err(Error::NotFound));
        let shared_info = t.dom.shared_info.0;
        assert_eq!(reservation(&mut t, H::ReservationDecrease, &[shared_info], 0, 0).0, Err(Error::Busy));
        // Two go back; the third is mapped, so the call stops at it.
        assert_eq!(reservation(&mut t, H::ReservationDecrease, &[a.0, b.0, c.0], 0, 0).0, Ok(2));
        assert_eq!((t.dom.nr_pages, t.machine.allocator.free_count()), (254, free + 2));
        assert_eq!(t.machine.m2p.get(&t.mem, a), INVALID_FRAME);
        assert_eq!(t.machine.frames.owner(a), None);
        // Take three more: only two fit under the maximum.
        let (r, got) = reservation(&mut t, H::ReservationIncrease, &[40, 41, 99], 0, 0);
        assert_eq!(r, Ok(2));
        assert_eq!(got[2], 99, "the third entry untouched");
        for (pfn, mfn) in [(40, got[0]), (41, got[1])] {
            assert_eq!(t.machine.frames.owner(Mfn(mfn)), Some(t.dom.id));
            assert_eq!(t.machine.m2p.get(&t.mem, Mfn(mfn)), pfn);
            assert!(t.mem.frame(Mfn(mfn)).iter().all(|&b| b == 0), "zeroed");
        }
        assert_eq!(reservation(&mut t, H::ReservationIncrease, &[50], 0, 0).0, Err(Error::NoMemory), "at the maximum");
        // Argument checks.
        assert_eq!(reservation(&mut t, H::ReservationIncrease, &[50], 9, 0).0, Err(Error::Invalid), "no superpages");
        assert_eq!(reservation(&mut t, H::ReservationDecrease, &[got[0]], 0, 32).0, Err(Error::Invalid), "address bits");
        assert_eq!(reservation(&mut t, H::ReservationDecrease, &[0; 513], 0, 0).0, Err(Error::TooBig));
        // Query.
        assert_eq!(t.result(H::ReservationQuery, [0x7ff0, T::DATA, 0, 0, 0, 0]), Ok(0));
        assert_eq!([t.read_u64(T::DATA), t.read_u64(T::DATA + 8)], [256, 256]);
        assert_eq!(t.read_u64(T::DATA + 16), t.machine.allocator.free_count());
        assert_eq!(t.result(H::ReservationQuery, [7, T::DATA, 0, 0, 0, 0]), Err(Error::NotPermitted));
        t.audit();
    }

    #[test]
    fn reservation_exchange_is_all_or_nothing() {
        let mut t = T::new();
        let inputs: Vec<u64> = (100..108).map(|p| t.mfn(p).0).collect();
        let ex = T::DATA + 0x200;
        let put_exchange = |t: &mut T, input: &[u64], out_order: u32, out_bits: u32| {
            let in_arr = T::DATA + 0x400;
            let out_arr = T::DATA + 0x800;
            let bytes: Vec<u8> = input.iter().flat_map(|e| e.to_le_bytes()).collect();
            t.write(in_arr, &bytes);
            t.write(out_arr, &100u64.to_le_bytes());
            let mut r = Vec::new();
            for (arr, n, order, bits) in [(in_arr, input.len() as u32, 0, 0), (out_arr, 1, out_order, out_bits)] {
                r.extend_from_slice(&arr.to_le_bytes());
                r.extend_from_slice(&n.to_le_bytes());
                r.extend_from_slice(&order.to_le_bytes());
                r.extend_from_slice(&bits.to_le_bytes());
                r.extend_from_slice(&0x7ff0u32.to_le_bytes());
                r.extend_from_slice(&0u64.to_le_bytes());
            }
            r.extend_from_slice(&u64::MAX.to_le_bytes());
            t.write(ex, &r);
            (t.result(H::ReservationExchange, [ex, 0, 0, 0, 0, 0]), t.read_u64(out_arr), t.read_u64(ex + 64))
        };
        // Sizes must match; inputs must be givable and named once.
        assert_eq!(put_exchange(&mut t, &inputs[..7], 3, 0).0, Err(Error::Invalid));
        let mut twice = inputs.clone();
        twice[7] = twice[0];
        assert_eq!(put_exchange(&mut t, &twice, 3, 0).0, Err(Error::Invalid));
        let mut mapped = inputs.clone();
        mapped[3] = t.mfn(0).0;
        assert_eq!(put_exchange(&mut t, &mapped, 3, 0).0, Err(Error::Busy));
        // No 8-frame run below 64 KiB: nothing changes.
        let (r, _, n) = put_exchange(&mut t, &inputs, 3, 16);
        assert_eq!((r, n), (Err(Error::NoMemory), 0), "nr_exchanged reads 0 on failure");
        assert!(inputs.iter().all(|&m| t.machine.frames.owner(Mfn(m)) == Some(t.dom.id)));
        // A contiguous, aligned extent of 8 for 8 scattered frames.
        let free = t.machine.allocator.free_count();
        let (r, first, n) = put_exchange(&mut t, &inputs, 3, 0);
        assert_eq!((r, n), (Ok(0), 8));
        assert_eq!(first % 8, 0);
        for k in 0..8 {
            assert_eq!(t.machine.frames.owner(Mfn(first + k)), Some(t.dom.id));
            assert_eq!(t.machine.m2p.get(&t.mem, Mfn(first + k)), 100 + k);
        }
        assert!(inputs.iter().all(|&m| t.machine.frames.owner(Mfn(m)).is_none()));
        assert_eq!((t.dom.nr_pages, t.machine.allocator.free_count()), (256, free));
        t.audit();
    }

    #[test]
    fn teardown_after_activity_returns_every_frame() {
        let mut t = T::new();
        let free_before_build = t.machine.allocator.free_count() + 257;
        let new = second_l4(&mut t, 30);
        assert_eq!(mmuext(&mut t, &[(MmuextCmd::NewUserBaseptr, new.0, 0)]), (Ok(0), 1));
        assert_eq!(t.result(H::UpdateVaMapping, [FREE_VA, t.mfn(20).phys() | P | RW, 0, 0, 0, 0]), Ok(0));
        let T { mut machine, mut mem, dom, .. } = t;
        assert_eq!(dom.teardown(&mut machine, &mut mem), Ok(crate::frame_table::Released { freed: 257, orphaned: 0 }));
        assert_eq!(machine.allocator.free_count(), free_before_build);
    }

    fn trap(vector: u8, flags: u8, address: u64) -> Vec<u8> {
        let mut b = vec![vector, flags, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&address.to_le_bytes());
        b
    }

    const HANDLER: u64 = TEXT + 0x10;

    #[test]
    fn set_trap_table_installs_entries_and_leaves_others() {
        let mut h = Harness::new();
        let table: Vec<u8> = [trap(14, 0x4, HANDLER), trap(0x80, 3, HANDLER + 8)].concat();
        h.write(DATA, &table);
        assert_eq!(h.call_hc(Hypercall::SetTrapTable, [DATA, 2, 0, 0, 0, 0]), Disposition::Return(0));
        let t = h.dom.vcpus[0].traps;
        assert_eq!(t[14], TrapEntry { address: HANDLER, flags: 4 });
        assert!(t[14].masks_events());
        assert_eq!((t[0x80].dpl(), t[0x80].address), (3, HANDLER + 8));
        // A second table changes only what it names; address 0 removes.
        h.write(DATA, &trap(14, 0, 0));
        assert_eq!(h.call_hc(Hypercall::SetTrapTable, [DATA, 1, 0, 0, 0, 0]), Disposition::Return(0));
        assert_eq!(h.dom.vcpus[0].traps[14], TrapEntry::default());
        assert_eq!(h.dom.vcpus[0].traps[0x80].address, HANDLER + 8);
        assert_eq!(h.call_hc(Hypercall::SetTrapTable, [DATA, 0, 0, 0, 0, 0]), Disposition::Return(0), "an empty table");
    }

    #[test]
    fn set_trap_table_refuses_bad_entries_whole() {
        for (bad, want) in [
            (trap(13, 0x8, HANDLER), Error::Invalid),
            (trap(13, 0x80, HANDLER), Error::Invalid),
            (trap(13, 0, 0xffff_8000_0000_1000), Error::Invalid),
            (trap(13, 0, 0xffff_8780_0020_0000), Error::Invalid),
            (trap(13, 0, 0x8000_0000_0000), Error::Invalid),
            ({ let mut t = trap(13, 0, HANDLER); t[5] = 1; t }, Error::Invalid),
        ] {
            let mut h = Harness::new();
            h.write(DATA, &[trap(14, 0, HANDLER), bad].concat());
            assert_eq!(h.call_hc(Hypercall::SetTrapTable, [DATA, 2, 0, 0, 0, 0]), err(want));
            assert_eq!(h.dom.vcpus[0].traps[14], TrapEntry::default(), "the good entry was not applied either");
        }
        let mut h = Harness::new();
        assert_eq!(h.call_hc(Hypercall::SetTrapTable, [DATA, 257, 0, 0, 0, 0]), err(Error::TooBig));
        assert_eq!(h.call_hc(Hypercall::SetTrapTable, [DATA, u64::MAX, 0, 0, 0, 0]), err(Error::TooBig));
        assert_eq!(h.call_hc(Hypercall::SetTrapTable, [END - 16, 2, 0, 0, 0, 0]), err(Error::BadAddress));
        assert_eq!(h.call_hc(Hypercall::SetTrapTable, [0xffff_8000_0000_0000, 1, 0, 0, 0, 0]), err(Error::BadAddress));
    }

    #[test]
    fn stack_switch_checks_the_stack_and_its_room() {
        let mut h = Harness::new();
        assert_eq!(h.call_hc(Hypercall::StackSwitch, [DATA + 0x100, 0, 0, 0, 0, 0]), Disposition::Return(0));
        assert_eq!(h.dom.vcpus[0].entry.kernel_sp, DATA + 0x100);
        for bad in [
            DATA + 8,                          // not 16-byte aligned
            0x8000_0000_0000,                  // non-canonical
            0xffff_8000_0010_0000,             // in the hypervisor's range
            0xffff_8800_0000_0000 + 0x40,      // its frame would be
            0,                                 // wraps
            0x40,                              // wraps
        ] {
            assert_eq!(h.call_hc(Hypercall::StackSwitch, [bad, 0, 0, 0, 0, 0]), err(Error::Invalid), "{bad:#x}");
        }
        assert_eq!(h.dom.vcpus[0].entry.kernel_sp, DATA + 0x100);
        assert_eq!(h.call_hc(Hypercall::StackSwitch, [0xffff_8800_0000_0000 + 0x80, 0, 0, 0, 0, 0]), Disposition::Return(0), "just enough room");
    }

    #[test]
    fn set_callback_kinds_flags_and_addresses() {
        let mut h = Harness::new();
        assert_eq!(h.call_hc(Hypercall::SetCallback, [2, HANDLER, 1, 0, 0, 0]), Disposition::Return(0));
        assert_eq!((h.dom.vcpus[0].entry.syscall_entry, h.dom.vcpus[0].entry.syscall_masks_events), (HANDLER, 1));
        assert_eq!(h.call_hc(Hypercall::SetCallback, [0, HANDLER + 4, 0, 0, 0, 0]), Disposition::Return(0));
        assert_eq!(h.dom.vcpus[0].event_callback, Callback { address: HANDLER + 4, masks_events: false });
        assert_eq!(h.call_hc(Hypercall::SetCallback, [1, HANDLER + 8, 1, 0, 0, 0]), Disposition::Return(0));
        assert_eq!(h.dom.vcpus[0].failsafe_callback, Callback { address: HANDLER + 8, masks_events: true });
        for (a, what) in [
            ([3, HANDLER, 0], "unknown kind"),
            ([u64::MAX, HANDLER, 0], "absurd kind"),
            ([2, HANDLER, 2], "unknown flag"),
            ([2, 0xffff_8780_0020_0000, 0], "hypervisor text"),
            ([2, 0xffff_8000_0000_0000, 0], "direct map"),
            ([2, 0x8000_0000_0000, 0], "non-canonical"),
        ] {
            assert_eq!(h.call_hc(Hypercall::SetCallback, [a[0], a[1], a[2], 0, 0, 0]), err(Error::Invalid), "{what}");
        }
        assert_eq!(h.dom.vcpus[0].entry.syscall_entry, HANDLER, "refused calls change nothing");
        assert_eq!(h.call_hc(Hypercall::SetCallback, [2, 0, 0, 0, 0, 0]), Disposition::Return(0), "0 removes");
        assert_eq!(h.dom.vcpus[0].entry.syscall_entry, 0);
    }

    #[test]
    fn set_segment_base_reaches_the_right_base() {
        let mut h = Harness::new();
        assert_eq!(h.call_hc(Hypercall::SetSegmentBase, [0, 0x1000, 0, 0, 0, 0]), Disposition::Return(0));
        assert_eq!(h.call_hc(Hypercall::SetSegmentBase, [1, 0x2000, 0, 0, 0, 0]), Disposition::Return(0));
        assert_eq!(h.call_hc(Hypercall::SetSegmentBase, [2, 0x3000, 0, 0, 0, 0]), Disposition::Return(0));
        assert_eq!((h.cpu.fs, h.cpu.gs, h.dom.vcpus[0].entry.inactive_gs_base), (0x1000, 0x2000, 0x3000));
        assert_eq!(h.call_hc(Hypercall::SetSegmentBase, [3, USER_DS, 0, 0, 0, 0]), Disposition::Return(0));
        assert_eq!(h.dom.vcpus[0].entry.inactive_gs_base, 0);
        for a in [[4, 0], [u64::MAX, 0], [0, 0x8000_0000_0000], [1, 0xfff0_0000_0000_0000], [2, 1 << 63], [3, 0x1000], [3, 0x1018]] {
            assert_eq!(h.call_hc(Hypercall::SetSegmentBase, [a[0], a[1], 0, 0, 0, 0]), err(Error::Invalid), "{a:?}");
        }
        assert_eq!((h.cpu.fs, h.cpu.gs), (0x1000, 0x2000));
    }

    #[test]
    fn iret_resumes_or_kills() {
        let mut h = Harness::new();
        let frame: Vec<u8> = [7u64, 0, 0, 0, TEXT + 0x20, 0x1028, 0x202, DATA + 0x800, 0x1020].iter().flat_map(|w| w.to_le_bytes()).collect();
        h.write(DATA, &frame);
        let mut regs = call(Hypercall::Iret.number(), [0; 6]);
        regs.rsp = DATA;
        assert_eq!(h.run(&mut regs), Disposition::Resume);
        assert_eq!((regs.gprs.rax, regs.rip, regs.rsp), (7, TEXT + 0x20, DATA + 0x800));
        regs = call(Hypercall::Iret.number(), [0; 6]);
        regs.rsp = END - 8;
        assert!(matches!(h.run(&mut regs), Disposition::End(Outcome::Killed(KillReason::BadIret(_)))));
    }

    #[test]
    fn event_and_scheduler_calls_are_decoded_for_the_hypervisor() {
        let mut h = Harness::new();
        assert_eq!(h.call_hc(Hypercall::EvtchnSend, [5, 0, 0, 0, 0, 0]), Disposition::Defer(Call::EvtchnSend { port: 5 }));
        assert_eq!(h.call_hc(Hypercall::SchedPoll, [DATA, 3, 77, 0, 0, 0]), Disposition::Defer(Call::SchedPoll { ports: DATA, nr: 3, deadline: 77 }));
        for (nr, a, e) in [
            (Hypercall::EvtchnSend, [0, 0], Error::Invalid),
            (Hypercall::EvtchnSend, [4096, 0], Error::Invalid),
            (Hypercall::EvtchnUnmask, [1 << 32, 0], Error::Invalid),
            (Hypercall::SchedPoll, [DATA, 0], Error::Invalid),
            (Hypercall::SchedPoll, [DATA, 129], Error::TooBig),
            (Hypercall::EvtchnAllocUnbound, [1 << 32, 0], Error::Invalid),
        ] {
            assert_eq!(h.call_hc(nr, [a[0], a[1], 0, 0, 0, 0]), err(e), "{nr:?} {a:?}");
        }
    }

    #[test]
    fn grant_and_device_calls_are_decoded_and_bounded() {
        let mut h = Harness::new();
        assert_eq!(h.call_hc(Hypercall::GrantMap, [DATA, 128, 0, 0, 0, 0]), Disposition::Defer(Call::GrantMap { ops: DATA, count: 128 }));
        assert_eq!(h.call_hc(Hypercall::DeviceSetState, [3, 4, 0, 0, 0, 0]), Disposition::Defer(Call::DeviceSetState { handle: 3, state: 4 }));
        for nr in [Hypercall::GrantMap, Hypercall::GrantUnmap, Hypercall::GrantCopy] {
            assert_eq!(h.call_hc(nr, [DATA, 129, 0, 0, 0, 0]), err(Error::TooBig), "{nr:?}");
        }
        assert_eq!(h.call_hc(Hypercall::GrantSetTable, [DATA, 33, 0, 0, 0, 0]), err(Error::TooBig));
        // The two calls about the caller's own table are carried out here.
        assert_eq!(h.call_hc(Hypercall::GrantQuery, [DATA, 0, 0, 0, 0, 0]), Disposition::Return(0));
        assert_eq!(h.read(DATA, 8), [0, 0, 0, 0, 32, 0, 0, 0]);
        assert_eq!(h.call_hc(Hypercall::GrantQuery, [END, 0, 0, 0, 0, 0]), err(Error::BadAddress));
        let frame = h.mfn(20);
        h.write(DATA, &frame.0.to_le_bytes());
        assert_eq!(h.call_hc(Hypercall::GrantSetTable, [DATA, 1, 0, 0, 0, 0]), Disposition::Return(0));
        assert_eq!(h.dom.grants.frames(), &[frame]);
        assert_eq!(h.machine.frames.info(frame).unwrap().ty, PageType::GrantTable);
    }

    #[test]
    fn cpuid_query_writes_the_filtered_view() {
        let mut h = Harness::new();
        h.write(DATA, &[0xee; 24]);
        assert_eq!(h.result(H::CpuidQuery, [1, 0, DATA + 4, 0, 0, 0]), Ok(0));
        let b = page(&h, DATA, 24);
        let reg = |i: usize| u32::from_le_bytes(b[4 + 4 * i..8 + 4 * i].try_into().unwrap());
        assert_eq!([reg(0), reg(1), reg(2), reg(3)], cpuid::view(&h.cpu, AbiVersion { major: 1, minor: 0 }, 0, 1, 0));
        assert_eq!(reg(2) & (1 << 5 | 1 << 21), 0, "VMX and x2APIC hidden");
        assert_eq!((&b[..4], &b[20..]), (&[0xee; 4][..], &[0xee; 4][..]), "exactly 16 bytes written");
        // Leaf and subleaf are not checked: an unknown one reads as zero.
        assert_eq!(h.result(H::CpuidQuery, [u64::MAX, u64::MAX, DATA, 0, 0, 0]), Ok(0));
        assert_eq!(page(&h, DATA, 16), [0; 16]);
    }

    #[test]
    fn cpuid_query_refuses_bad_pointers() {
        let mut h = Harness::new();
        for bad in [0, TEXT, END - 8, END, 0xffff_8000_0000_0000, 0x8000_0000_0000, u64::MAX - 7] {
            assert_eq!(h.result(H::CpuidQuery, [0, 0, bad, 0, 0, 0]), Err(Error::BadAddress), "pointer {bad:#x}");
        }
    }

    fn msr_read(h: &mut Harness, msr: u64) -> Result<u64, Error> {
        h.write(DATA, &[0xee; 8]);
        h.result(H::MsrRead, [msr, DATA, 0, 0, 0, 0]).map(|r| {
            assert_eq!(r, 0);
            le64(&page(h, DATA, 8), 0)
        })
    }

    #[test]
    fn msr_read_shows_the_listed_msrs_only() {
        use crate::test_support::FakeCpu;
        let mut h = Harness::new();
        h.cpu.fs = 0x1000;
        h.cpu.gs = 0x2000;
        h.dom.vcpus[0].entry.inactive_gs_base = 0x3000;
        h.dom.vcpus[0].tsc_aux = 7;
        for (nr, want) in [
            (msr::APIC_BASE, 0),
            (msr::MISC_ENABLE, FakeCpu::MISC_ENABLE & (1 | 1 << 16)),
            (msr::PAT, FakeCpu::PAT),
            (msr::EFER, FakeCpu::EFER & 0xd01),
            (msr::FS_BASE, 0x1000),
            (msr::GS_BASE, 0x2000),
            (msr::KERNEL_GS_BASE, 0x3000),
            (msr::TSC_AUX, 7),
        ] {
            assert_eq!(msr_read(&mut h, nr.into()), Ok(want), "msr {nr:#x}");
        }
        assert_ne!(FakeCpu::MISC_ENABLE & !(1 | 1 << 16), 0, "the fake has bits to hide");
        // LSTAR, STAR, SYSENTER_CS/ESP/EIP, the x2APIC, SPEC_CTRL, a number
        // that wraps to FS_BASE in 32 bits.
        for nr in [0xc000_0082, 0xc000_0081, 0x174, 0x175, 0x176, 0x802, 0x48, 0x1_c000_0100, u64::MAX] {
            assert_eq!(h.result(H::MsrRead, [nr, DATA, 0, 0, 0, 0]), Err(Error::NotFound), "msr {nr:#x}");
        }
        assert_eq!(h.result(H::MsrRead, [msr::EFER.into(), TEXT, 0, 0, 0, 0]), Err(Error::BadAddress));
        assert_eq!(h.result(H::MsrRead, [msr::EFER.into(), END, 0, 0, 0, 0]), Err(Error::BadAddress));
    }

    #[test]
    fn msr_write_takes_effect_ignores_or_refuses_per_msr() {
        use crate::test_support::FakeCpu;
        let mut h = Harness::new();
        let w = |h: &mut Harness, nr: u32, value: u64| h.result(H::MsrWrite, [nr.into(), value, 0, 0, 0, 0]);
        assert_eq!(w(&mut h, msr::FS_BASE, 0x1000), Ok(0));
        assert_eq!(w(&mut h, msr::GS_BASE, 0x2000), Ok(0));
        assert_eq!(w(&mut h, msr::KERNEL_GS_BASE, 0x3000), Ok(0));
        assert_eq!(w(&mut h, msr::TSC_AUX, 0xffff_ffff), Ok(0));
        assert_eq!((h.cpu.fs, h.cpu.gs, h.dom.vcpus[0].entry.inactive_gs_base), (0x1000, 0x2000, 0x3000));
        assert_eq!((h.dom.vcpus[0].tsc_aux, h.cpu.tsc_aux), (0xffff_ffff, 0xffff_ffff), "kept and loaded");
        assert_eq!(w(&mut h, msr::PAT, FakeCpu::PAT), Ok(0));
        assert_eq!(w(&mut h, msr::EFER, 0), Ok(0), "ignored");
        assert_eq!(w(&mut h, msr::MISC_ENABLE, 0), Ok(0), "ignored");
        for (nr, value) in [
            (msr::APIC_BASE, 0),
            (msr::APIC_BASE, 0xfee0_0900),
            (msr::PAT, 0),
            (msr::PAT, FakeCpu::PAT ^ 1),
            (msr::FS_BASE, 0x8000_0000_0000),
            (msr::GS_BASE, 1 << 63),
            (msr::KERNEL_GS_BASE, 0xfff0_0000_0000_0000),
            (msr::TSC_AUX, 1 << 32),
        ] {
            assert_eq!(w(&mut h, nr, value), Err(Error::Invalid), "msr {nr:#x} = {value:#x}");
        }
        for nr in [0xc000_0082u64, 0x174, 0x1b | 1 << 32, 0x277 | 1 << 40] {
            assert_eq!(h.result(H::MsrWrite, [nr, 0, 0, 0, 0, 0]), Err(Error::NotFound), "msr {nr:#x}");
        }
        assert_eq!((h.cpu.fs, h.cpu.gs, h.dom.vcpus[0].entry.inactive_gs_base), (0x1000, 0x2000, 0x3000), "refused writes change nothing");
        assert_eq!((h.dom.vcpus[0].tsc_aux, h.cpu.tsc_aux), (0xffff_ffff, 0xffff_ffff));
    }

    /// A multicall host over the test domain: entries at `entries` in its
    /// memory, calls made as the guest would make them.
    struct Batch<'a> {
        t: &'a mut T,
        entries: u64,
    }

    impl MulticallHost for Batch<'_> {
        fn read_entry(&mut self, i: usize) -> Result<(u64, [u64; 6]), Error> {
            let mut b = [0u8; 64];
            self.t.dom.space(0).copy_from(&self.t.mem, self.entries + 64 * i as u64, &mut b)?;
            Ok((le64(&b, 0), core::array::from_fn(|k| le64(&b, 8 + 8 * k))))
        }
        fn write_result(&mut self, i: usize, result: u64) -> Result<(), Error> {
            self.t.dom.space(0).copy_to(&mut self.t.mem, self.entries + 64 * i as u64 + 56, &result.to_le_bytes())
        }
        fn call(&mut self, op: u64, args: [u64; 6]) -> Disposition {
            self.t.call(op, args)
        }
    }

    fn entry(op: Hypercall, args: [u64; 6]) -> Vec<u8> {
        let mut b: Vec<u8> = core::iter::once(op.number()).chain(args).flat_map(u64::to_le_bytes).collect();
        b.extend_from_slice(&[0xee; 8]);
        b
    }

    fn results(t: &T, at: u64, n: usize) -> Vec<u64> {
        (0..n).map(|i| le64(&page(t, at + 64 * i as u64 + 56, 8), 0)).collect()
    }

    #[test]
    fn multicall_counts_are_checked_before_any_entry() {
        let mut t = T::new();
        assert_eq!(t.result(H::Multicall, [DATA, 0, 0, 0, 0, 0]), Err(Error::Invalid));
        assert_eq!(t.result(H::Multicall, [DATA, 65, 0, 0, 0, 0]), Err(Error::TooBig));
        assert_eq!(t.result(H::Multicall, [DATA, u64::MAX, 0, 0, 0, 0]), Err(Error::TooBig));
        assert_eq!(t.call_hc(H::Multicall, [DATA, 64, 0, 0, 0, 0]), Disposition::Defer(Call::Multicall { entries: DATA, count: 64 }));
    }

    #[test]
    fn multicall_runs_every_entry_and_writes_each_result() {
        let mut t = T::new();
        let mut b = Vec::new();
        b.extend(entry(H::SetSegmentBase, [0, 0x1000, 0, 0, 0, 0]));
        b.extend(entry(H::AbiQuery, [0x1000, 0, 0, 0, 0, 0]));
        b.extend(entry(H::Multicall, [DATA, 1, 0, 0, 0, 0]));
        b.extend(entry(H::Iret, [0; 6]));
        b.extend(entry(H::SchedShutdown, [0, 0, 0, 0, 0, 0]));
        b.extend(entry(H::CountersRead, [0; 6]));
        b.extend(entry(H::SetSegmentBase, [1, 0x2000, 0, 0, 0, 0]));
        let mut unknown = entry(H::AbiQuery, [0; 6]);
        unknown[..8].copy_from_slice(&0xffu64.to_le_bytes());
        b.extend(unknown);
        t.write(DATA, &b);
        assert_eq!(multicall(&mut Batch { t: &mut t, entries: DATA }, 8), Disposition::Return(8));
        let inv = Error::Invalid.to_return();
        let nsc = Error::NoSuchCall.to_return();
        assert_eq!(results(&t, DATA, 8), [0, Error::BadAddress.to_return(), inv, inv, inv, nsc, 0, nsc]);
        assert_eq!((t.cpu.fs, t.cpu.gs), (0x1000, 0x2000), "a failed entry does not stop the others");
    }

    #[test]
    fn multicall_stops_with_bad_address_at_an_unreadable_entry() {
        let mut t = T::new();
        let at = END - 128;
        let mut b = entry(H::SetSegmentBase, [0, 0x3000, 0, 0, 0, 0]);
        b.extend(entry(H::SetSegmentBase, [1, 0x4000, 0, 0, 0, 0]));
        t.write(at, &b);
        assert_eq!(multicall(&mut Batch { t: &mut t, entries: at }, 3), err(Error::BadAddress));
        assert_eq!(results(&t, at, 2), [0, 0], "earlier entries ran and have their results");
        assert_eq!((t.cpu.fs, t.cpu.gs), (0x3000, 0x4000));
    }

    /// A host whose entries all set FS, with a limit on writable results.
    struct Results {
        writable: usize,
        ran: usize,
        end_at: Option<usize>,
    }

    impl MulticallHost for Results {
        fn read_entry(&mut self, _: usize) -> Result<(u64, [u64; 6]), Error> {
            Ok((H::SetSegmentBase.number(), [0; 6]))
        }
        fn write_result(&mut self, i: usize, _: u64) -> Result<(), Error> {
            if i < self.writable { Ok(()) } else { Err(Error::BadAddress) }
        }
        fn call(&mut self, _: u64, _: [u64; 6]) -> Disposition {
            self.ran += 1;
            if self.end_at == Some(self.ran) { Disposition::End(Outcome::Crash(1)) } else { Disposition::Return(0) }
        }
    }

    #[test]
    fn multicall_stops_at_an_unwritable_result_or_the_end_of_the_domain() {
        let mut r = Results { writable: 2, ran: 0, end_at: None };
        assert_eq!(multicall(&mut r, 5), err(Error::BadAddress));
        assert_eq!(r.ran, 3, "the entry whose result cannot be written ran");
        let mut r = Results { writable: 5, ran: 0, end_at: Some(2) };
        assert_eq!(multicall(&mut r, 5), Disposition::End(Outcome::Crash(1)));
        assert_eq!(r.ran, 2);
    }
}
