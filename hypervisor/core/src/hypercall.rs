//! Hypercall decoding and handling.
//!
//! Each call is decoded from the saved registers into a typed [`Call`]
//! (every argument checked, nothing changed), then carried out. A call that
//! fails changes nothing and returns an [`Error`] in `rax`. Calls that take
//! a table from guest memory copy it in and check all of it before they
//! apply any of it.

use core::mem::{offset_of, size_of};

use hypercall_abi::cpu::{callback_flags, trap_flags, CallbackKind, SegmentBase, TrapInfo};
use hypercall_abi::error::encode;
use hypercall_abi::hypercall::{AbiInfo, ShutdownReason, CONSOLE_WRITE_MAX};
use hypercall_abi::event::event_consts;
use hypercall_abi::vcpu::RunstateInfo;
use hypercall_abi::memory::{memory_consts, MmuextCmd, MmuextOp};
use hypercall_abi::version::AbiVersion;
use hypercall_abi::{Error, Hypercall};

use crate::addr::{is_canonical, range_is_guest, Mfn};
use crate::domain::{KillReason, Outcome};
use crate::event_channel::EventChannels;
use crate::phys::PhysMemory;
use crate::vcpu::{Callback, GuestCpu, GuestRegisters, Mode, TrapEntry, Vcpu, TRAP_VECTORS, USER_DS};

/// Room a `stack_switch` stack must have below it, all inside the guest's
/// range: a `TrapFrame` and the failsafe callback's four selectors, rounded
/// up.
pub const KERNEL_STACK_ROOM: u64 = 128;

/// A decoded call with its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    AbiQuery { info: u64 },
    ConsoleWrite { buf: u64, len: usize },
    Shutdown(Outcome),
    SetTrapTable { table: u64, count: usize },
    StackSwitch { sp: u64 },
    SetCallback { kind: CallbackKind, callback: Callback },
    Iret,
    SetSegmentBase { which: SegmentBase, value: u64 },
    MmuextOp { ops: u64, count: usize, done: u64 },
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
}

impl Call {
    /// Calls about the domain and the scheduler, which the hypervisor
    /// carries out itself (they touch other vCPUs and domains).
    pub fn is_deferred(&self) -> bool {
        matches!(
            self,
            Call::SchedYield
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
        )
    }
}

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

/// The hypervisor's side of the calls: what it offers, where console
/// output goes, and the machine state a call may change.
pub struct Services<'a, M: PhysMemory> {
    pub abi: AbiVersion,
    pub features: u64,
    pub mem: &'a mut M,
    pub console: &'a mut dyn FnMut(&[u8]),
    pub cpu: &'a mut dyn GuestCpu,
    /// Whether a frame has type L4 for the calling domain (rule M6).
    pub is_l4: &'a dyn Fn(Mfn) -> bool,
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

/// A count argument no larger than `max`, else `TooBig`.
fn count(arg: u64, max: u64) -> Result<usize, Error> {
    if arg > max {
        return Err(Error::TooBig);
    }
    usize::try_from(arg).map_err(|_| Error::TooBig)
}

/// Checks the number and arguments of the call in `regs`.
pub fn decode(regs: &GuestRegisters) -> Result<Call, Error> {
    let a = args(regs);
    match Hypercall::from_number(regs.gprs.rax).ok_or(Error::NoSuchCall)? {
        Hypercall::AbiQuery => Ok(Call::AbiQuery { info: a[0] }),
        Hypercall::ConsoleWrite => {
            let len = count(a[1], CONSOLE_WRITE_MAX as u64)?;
            Ok(Call::ConsoleWrite { buf: a[0], len })
        }
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
        Hypercall::MmuextOp => {
            Ok(Call::MmuextOp { ops: a[0], count: count(a[1], memory_consts::MMUEXT_OP_MAX)?, done: a[2] })
        }
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
        // The rest of ABI v1 is specified but not yet served by this
        // hypervisor; it answers exactly as for an unknown number.
        _ => Err(Error::NoSuchCall),
    }
}

/// A 32-bit argument: high bits set are `Invalid` (section 2).
fn narrow(arg: u64) -> Result<u32, Error> {
    u32::try_from(arg).map_err(|_| Error::Invalid)
}

/// Reads a little-endian u64 at `at` of `b`.
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
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

/// One decoded `mmuext_op` entry this hypervisor carries out.
enum BaseOp {
    Kernel(Mfn),
    User(Option<Mfn>),
}

/// Checks one `mmuext_op` entry. The base-pointer commands are served
/// here; pinning and TLB flushes belong to the frame table and fail with
/// `Invalid` until it serves them.
fn decode_mmuext(op: &[u8], is_l4: &dyn Fn(Mfn) -> bool) -> Result<BaseOp, Error> {
    let cmd = MmuextCmd::from_value(le32(op, offset_of!(MmuextOp, cmd))).ok_or(Error::Invalid)?;
    let (reserved, arg1, arg2) = (le32(op, offset_of!(MmuextOp, reserved0)), le64(op, offset_of!(MmuextOp, arg1)), le64(op, offset_of!(MmuextOp, arg2)));
    if reserved != 0 || arg2 != 0 {
        return Err(Error::Invalid);
    }
    let l4 = |mfn: u64| if is_l4(Mfn(mfn)) { Ok(Mfn(mfn)) } else { Err(Error::Invalid) };
    match cmd {
        MmuextCmd::NewBaseptr => Ok(BaseOp::Kernel(l4(arg1)?)),
        MmuextCmd::NewUserBaseptr if arg1 == 0 => Ok(BaseOp::User(None)),
        MmuextCmd::NewUserBaseptr => Ok(BaseOp::User(Some(l4(arg1)?))),
        _ => Err(Error::Invalid),
    }
}

/// Decodes and carries out the call in `regs` for `vcpu`. `regs` is
/// changed only by `iret`.
pub fn handle<M: PhysMemory>(regs: &mut GuestRegisters, vcpu: &mut Vcpu, hv: &mut Services<'_, M>) -> Disposition {
    let call = match decode(regs) {
        Ok(call) => call,
        Err(e) => return Disposition::Return(e.to_return()),
    };
    if call.is_deferred() {
        return Disposition::Defer(call);
    }
    let space = vcpu.kernel_space();
    let result = match call {
        Call::Shutdown(outcome) => return Disposition::End(outcome),
        Call::AbiQuery { info } => {
            let mut bytes = [0u8; size_of::<AbiInfo>()];
            bytes[offset_of!(AbiInfo, major)..][..2].copy_from_slice(&hv.abi.major.to_le_bytes());
            bytes[offset_of!(AbiInfo, minor)..][..2].copy_from_slice(&hv.abi.minor.to_le_bytes());
            bytes[offset_of!(AbiInfo, features)..][..8].copy_from_slice(&hv.features.to_le_bytes());
            space.copy_to(hv.mem, info, &bytes).map(|()| 0)
        }
        Call::ConsoleWrite { buf, len } => {
            let mut bytes = [0u8; CONSOLE_WRITE_MAX];
            space.copy_from(hv.mem, buf, &mut bytes[..len]).map(|()| {
                (hv.console)(&bytes[..len]);
                len as u64
            })
        }
        Call::SetTrapTable { table, count } => read_trap_table(vcpu, table, count, hv.mem).map(|entries| {
            for (slot, entry) in vcpu.traps.iter_mut().zip(entries) {
                if let Some(e) = entry {
                    *slot = e;
                }
            }
            0
        }),
        Call::StackSwitch { sp } => {
            vcpu.entry.kernel_sp = sp;
            Ok(0)
        }
        Call::SetCallback { kind, callback } => {
            match kind {
                CallbackKind::Event => vcpu.event_callback = callback,
                CallbackKind::Failsafe => vcpu.failsafe_callback = callback,
                CallbackKind::Syscall => {
                    vcpu.entry.syscall_entry = callback.address;
                    vcpu.entry.syscall_masks_events = u64::from(callback.masks_events);
                }
            }
            Ok(0)
        }
        Call::Iret => {
            return match vcpu.decode_iret(regs.rsp, hv.mem) {
                Ok(target) => {
                    vcpu.iret(&target, regs, hv.mem, hv.cpu);
                    Disposition::Resume
                }
                Err(e) => Disposition::End(Outcome::Killed(KillReason::BadIret(e))),
            };
        }
        Call::SetSegmentBase { which, value } => {
            // Hypercalls come from kernel mode: the kernel GS base is the
            // active one, the user one waits in the vCPU.
            debug_assert_eq!(vcpu.mode(), Mode::Kernel);
            match which {
                SegmentBase::Fs => hv.cpu.set_fs_base(value),
                SegmentBase::GsKernel => hv.cpu.set_active_gs_base(value),
                SegmentBase::GsUser => vcpu.entry.inactive_gs_base = value,
                SegmentBase::GsUserSelector => vcpu.entry.inactive_gs_base = 0,
            }
            Ok(0)
        }
        Call::MmuextOp { ops, count, done } => mmuext_op(vcpu, ops, count, done, hv),
        deferred => unreachable!("{deferred:?} is deferred above"),
    };
    Disposition::Return(encode(result))
}

/// `mmuext_op`: entries in order until one fails; `done` (if not 0)
/// receives how many took effect.
fn mmuext_op<M: PhysMemory>(vcpu: &mut Vcpu, ops: u64, count: usize, done: u64, hv: &mut Services<'_, M>) -> Result<u64, Error> {
    const OP: usize = size_of::<MmuextOp>();
    let space = vcpu.kernel_space();
    if !range_is_guest(ops, (count * OP) as u64) {
        return Err(Error::BadAddress);
    }
    if done != 0 {
        // The count pointer must be writable before anything is done.
        space.copy_to(hv.mem, done, &0u32.to_le_bytes())?;
    }
    let mut completed = 0u32;
    let mut result = Ok(0);
    for i in 0..count {
        let mut op = [0u8; OP];
        let step = space
            .copy_from(hv.mem, ops + (i * OP) as u64, &mut op)
            .and_then(|()| decode_mmuext(&op, hv.is_l4));
        match step {
            Ok(BaseOp::Kernel(l4)) => {
                vcpu.entry.kernel_l4 = l4.phys();
                if vcpu.mode() == Mode::Kernel {
                    hv.cpu.load_address_space(l4.phys(), Mode::Kernel);
                }
            }
            Ok(BaseOp::User(l4)) => vcpu.entry.user_l4 = l4.map_or(0, Mfn::phys),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
        completed += 1;
    }
    if done != 0 {
        space.copy_to(hv.mem, done, &completed.to_le_bytes())?;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Mfn;
    use crate::domain_builder::{build, DomainSpec, HypervisorSlots};
    use crate::domain::DomainId;
    use crate::elf_image::GuestImage;
    use crate::frame_allocator::FrameAllocator;
    use crate::pte::Pte;
    use crate::test_support::{ElfBuilder, VecMemory};

    const V1: AbiVersion = AbiVersion { major: 1, minor: 0 };
    const DATA: u64 = 0xffff_ffff_8000_1000;
    const TEXT: u64 = 0xffff_ffff_8000_0000;
    /// End of the bootstrap region of the 1 MiB test domain: image (3 pages),
    /// start info, p2m, page tables (4), stack (4), the shared-info page;
    /// nothing is mapped after.
    const END: u64 = TEXT + 14 * 0x1000;

    fn call(nr: u64, a: [u64; 6]) -> GuestRegisters {
        let mut r = GuestRegisters::default();
        (r.gprs.rax, r.gprs.rdi, r.gprs.rsi, r.gprs.rdx, r.gprs.r10, r.gprs.r8, r.gprs.r9) =
            (nr, a[0], a[1], a[2], a[3], a[4], a[5]);
        r
    }

    #[derive(Default)]
    struct FakeCpu {
        fs: u64,
        gs: u64,
        loads: Vec<(u64, Mode)>,
    }

    impl GuestCpu for FakeCpu {
        fn active_gs_base(&self) -> u64 {
            self.gs
        }
        fn set_active_gs_base(&mut self, value: u64) {
            self.gs = value;
        }
        fn set_fs_base(&mut self, value: u64) {
            self.fs = value;
        }
        fn load_address_space(&mut self, l4: u64, mode: Mode) {
            self.loads.push((l4, mode));
        }
    }

    /// A freshly built 1 MiB domain and the CPU it runs on.
    struct Harness {
        mem: VecMemory,
        domain: crate::domain::Domain,
        cpu: FakeCpu,
        out: Vec<u8>,
    }

    impl Harness {
        fn new() -> Harness {
            let bytes = ElfBuilder::guest().build();
            let image = GuestImage::parse(&bytes, V1, 0).unwrap();
            let mut mem = VecMemory::new(1024);
            let mut frames = FrameAllocator::new(&[Mfn(16)..Mfn(1024)], &[]);
            let spec = DomainSpec { id: DomainId(1), name: "t", image: &image, memory_bytes: 1 << 20, cmdline: "", ramdisk: None, abi: V1, features: 0b101, vcpus: 1 };
            let slots: HypervisorSlots = [Pte(0); 16];
            let domain = build(&spec, &slots, &mut frames, &mut mem).unwrap();
            Harness { mem, domain, cpu: FakeCpu::default(), out: Vec::new() }
        }

        fn write(&mut self, va: u64, bytes: &[u8]) {
            self.domain.space.copy_to(&mut self.mem, va, bytes).unwrap();
        }

        fn read(&self, va: u64, len: usize) -> Vec<u8> {
            let mut b = vec![0u8; len];
            self.domain.space.copy_from(&self.mem, va, &mut b).unwrap();
            b
        }

        fn run(&mut self, regs: &mut GuestRegisters) -> Disposition {
            let l4 = self.domain.space.l4;
            let is_l4 = move |mfn: Mfn| mfn == l4;
            let out = &mut self.out;
            let mut sink = |b: &[u8]| out.extend_from_slice(b);
            let mut services = Services { abi: V1, features: 0b101, mem: &mut self.mem, console: &mut sink, cpu: &mut self.cpu, is_l4: &is_l4 };
            handle(regs, &mut self.domain.vcpus[0], &mut services)
        }

        fn call(&mut self, nr: Hypercall, a: [u64; 6]) -> Disposition {
            self.run(&mut call(nr.number(), a))
        }
    }

    /// Runs `regs` against a freshly built domain; returns the disposition,
    /// the console output and the domain's data page afterwards.
    fn run(mut regs: GuestRegisters, data: &[u8]) -> (Disposition, Vec<u8>, Vec<u8>) {
        let mut h = Harness::new();
        h.write(DATA, data);
        let disp = h.run(&mut regs);
        let page = h.read(DATA, 64);
        (disp, h.out, page)
    }

    fn err(e: Error) -> Disposition {
        Disposition::Return(e.to_return())
    }

    #[test]
    fn abi_query_writes_version_and_features() {
        let (d, _, page) = run(call(0, [DATA + 8, 0, 0, 0, 0, 0]), &[0xee; 32]);
        assert_eq!(d, Disposition::Return(0));
        assert_eq!(&page[..8], &[0xee; 8]);
        assert_eq!(&page[8..12], &[1, 0, 0, 0]);
        assert_eq!(u64::from_le_bytes(page[16..24].try_into().unwrap()), 0b101);
        assert_eq!(&page[24..32], &[0xee; 8]);
    }

    #[test]
    fn abi_query_refuses_bad_pointers() {
        for bad in [0, TEXT, DATA - 8, END - 8, END, 0xffff_8000_0000_0000, 0x8000_0000_0000, u64::MAX] {
            let (d, _, page) = run(call(0, [bad, 0, 0, 0, 0, 0]), &[0xee; 32]);
            assert_eq!(d, err(Error::BadAddress), "pointer {bad:#x}");
            assert_eq!(&page[..32], &[0xee; 32]);
        }
    }

    #[test]
    fn console_write_copies_exactly_len_bytes() {
        let (d, out, _) = run(call(1, [DATA, 5, 0, 0, 0, 0]), b"hello world");
        assert_eq!(d, Disposition::Return(5));
        assert_eq!(out, b"hello");
        let (d, out, _) = run(call(1, [END - 3, 3, 0, 0, 0, 0]), b"");
        assert_eq!((d, out.len()), (Disposition::Return(3), 3), "the last mapped bytes are readable");
        let (d, out, _) = run(call(1, [DATA, 0, 0, 0, 0, 0]), b"x");
        assert_eq!((d, out.len()), (Disposition::Return(0), 0));
    }

    #[test]
    fn console_write_refuses_bad_input() {
        let max = CONSOLE_WRITE_MAX as u64;
        for (buf, len, e) in [
            (DATA, max + 1, Error::TooBig),
            (DATA, u64::MAX, Error::TooBig),
            (0xffff_8000_0000_0000, 4, Error::BadAddress),
            (0x1234_0000, 4, Error::BadAddress),
            (END - 2, 4, Error::BadAddress),
            (END, 1, Error::BadAddress),
        ] {
            let (d, out, _) = run(call(1, [buf, len, 0, 0, 0, 0]), b"");
            assert_eq!(d, err(e), "buf {buf:#x} len {len}");
            assert!(out.is_empty());
        }
    }

    #[test]
    fn shutdown_reasons_and_codes() {
        assert_eq!(run(call(0x53, [0, 7, 0, 0, 0, 0]), b"").0, Disposition::End(Outcome::Poweroff(7)));
        assert_eq!(run(call(0x53, [1, 0, 0, 0, 0, 0]), b"").0, Disposition::End(Outcome::Reboot(0)));
        assert_eq!(run(call(0x53, [2, 9, 0, 0, 0, 0]), b"").0, Disposition::End(Outcome::Crash(9)));
        assert_eq!(run(call(0x53, [3, 0, 0, 0, 0, 0]), b"").0, err(Error::Invalid));
        assert_eq!(run(call(0x53, [0, 1 << 32, 0, 0, 0, 0]), b"").0, err(Error::Invalid));
    }

    #[test]
    fn unknown_numbers_answer_no_such_call() {
        for nr in [2, 0x54, 0xff, 1 << 32, u64::MAX] {
            assert_eq!(run(call(nr, [0; 6]), b"").0, err(Error::NoSuchCall), "number {nr:#x}");
        }
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
        assert_eq!(h.call(Hypercall::SetTrapTable, [DATA, 2, 0, 0, 0, 0]), Disposition::Return(0));
        let t = h.domain.vcpus[0].traps;
        assert_eq!(t[14], TrapEntry { address: HANDLER, flags: 4 });
        assert!(t[14].masks_events());
        assert_eq!((t[0x80].dpl(), t[0x80].address), (3, HANDLER + 8));
        // A second table changes only what it names; address 0 removes.
        h.write(DATA, &trap(14, 0, 0));
        assert_eq!(h.call(Hypercall::SetTrapTable, [DATA, 1, 0, 0, 0, 0]), Disposition::Return(0));
        assert_eq!(h.domain.vcpus[0].traps[14], TrapEntry::default());
        assert_eq!(h.domain.vcpus[0].traps[0x80].address, HANDLER + 8);
        assert_eq!(h.call(Hypercall::SetTrapTable, [DATA, 0, 0, 0, 0, 0]), Disposition::Return(0), "an empty table");
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
            assert_eq!(h.call(Hypercall::SetTrapTable, [DATA, 2, 0, 0, 0, 0]), err(want));
            assert_eq!(h.domain.vcpus[0].traps[14], TrapEntry::default(), "the good entry was not applied either");
        }
        let mut h = Harness::new();
        assert_eq!(h.call(Hypercall::SetTrapTable, [DATA, 257, 0, 0, 0, 0]), err(Error::TooBig));
        assert_eq!(h.call(Hypercall::SetTrapTable, [DATA, u64::MAX, 0, 0, 0, 0]), err(Error::TooBig));
        assert_eq!(h.call(Hypercall::SetTrapTable, [END - 16, 2, 0, 0, 0, 0]), err(Error::BadAddress));
        assert_eq!(h.call(Hypercall::SetTrapTable, [0xffff_8000_0000_0000, 1, 0, 0, 0, 0]), err(Error::BadAddress));
    }

    #[test]
    fn stack_switch_checks_the_stack_and_its_room() {
        let mut h = Harness::new();
        assert_eq!(h.call(Hypercall::StackSwitch, [DATA + 0x100, 0, 0, 0, 0, 0]), Disposition::Return(0));
        assert_eq!(h.domain.vcpus[0].entry.kernel_sp, DATA + 0x100);
        for bad in [
            DATA + 8,                          // not 16-byte aligned
            0x8000_0000_0000,                  // non-canonical
            0xffff_8000_0010_0000,             // in the hypervisor's range
            0xffff_8800_0000_0000 + 0x40,      // its frame would be
            0,                                 // wraps
            0x40,                              // wraps
        ] {
            assert_eq!(h.call(Hypercall::StackSwitch, [bad, 0, 0, 0, 0, 0]), err(Error::Invalid), "{bad:#x}");
        }
        assert_eq!(h.domain.vcpus[0].entry.kernel_sp, DATA + 0x100);
        assert_eq!(h.call(Hypercall::StackSwitch, [0xffff_8800_0000_0000 + 0x80, 0, 0, 0, 0, 0]), Disposition::Return(0), "just enough room");
    }

    #[test]
    fn set_callback_kinds_flags_and_addresses() {
        let mut h = Harness::new();
        assert_eq!(h.call(Hypercall::SetCallback, [2, HANDLER, 1, 0, 0, 0]), Disposition::Return(0));
        assert_eq!((h.domain.vcpus[0].entry.syscall_entry, h.domain.vcpus[0].entry.syscall_masks_events), (HANDLER, 1));
        assert_eq!(h.call(Hypercall::SetCallback, [0, HANDLER + 4, 0, 0, 0, 0]), Disposition::Return(0));
        assert_eq!(h.domain.vcpus[0].event_callback, Callback { address: HANDLER + 4, masks_events: false });
        assert_eq!(h.call(Hypercall::SetCallback, [1, HANDLER + 8, 1, 0, 0, 0]), Disposition::Return(0));
        assert_eq!(h.domain.vcpus[0].failsafe_callback, Callback { address: HANDLER + 8, masks_events: true });
        for (a, what) in [
            ([3, HANDLER, 0], "unknown kind"),
            ([u64::MAX, HANDLER, 0], "absurd kind"),
            ([2, HANDLER, 2], "unknown flag"),
            ([2, 0xffff_8780_0020_0000, 0], "hypervisor text"),
            ([2, 0xffff_8000_0000_0000, 0], "direct map"),
            ([2, 0x8000_0000_0000, 0], "non-canonical"),
        ] {
            assert_eq!(h.call(Hypercall::SetCallback, [a[0], a[1], a[2], 0, 0, 0]), err(Error::Invalid), "{what}");
        }
        assert_eq!(h.domain.vcpus[0].entry.syscall_entry, HANDLER, "refused calls change nothing");
        assert_eq!(h.call(Hypercall::SetCallback, [2, 0, 0, 0, 0, 0]), Disposition::Return(0), "0 removes");
        assert_eq!(h.domain.vcpus[0].entry.syscall_entry, 0);
    }

    #[test]
    fn set_segment_base_reaches_the_right_base() {
        let mut h = Harness::new();
        assert_eq!(h.call(Hypercall::SetSegmentBase, [0, 0x1000, 0, 0, 0, 0]), Disposition::Return(0));
        assert_eq!(h.call(Hypercall::SetSegmentBase, [1, 0x2000, 0, 0, 0, 0]), Disposition::Return(0));
        assert_eq!(h.call(Hypercall::SetSegmentBase, [2, 0x3000, 0, 0, 0, 0]), Disposition::Return(0));
        assert_eq!((h.cpu.fs, h.cpu.gs, h.domain.vcpus[0].entry.inactive_gs_base), (0x1000, 0x2000, 0x3000));
        assert_eq!(h.call(Hypercall::SetSegmentBase, [3, USER_DS, 0, 0, 0, 0]), Disposition::Return(0));
        assert_eq!(h.domain.vcpus[0].entry.inactive_gs_base, 0);
        for a in [[4, 0], [u64::MAX, 0], [0, 0x8000_0000_0000], [1, 0xfff0_0000_0000_0000], [2, 1 << 63], [3, 0x1000], [3, 0x1018]] {
            assert_eq!(h.call(Hypercall::SetSegmentBase, [a[0], a[1], 0, 0, 0, 0]), err(Error::Invalid), "{a:?}");
        }
        assert_eq!((h.cpu.fs, h.cpu.gs), (0x1000, 0x2000));
    }

    fn mmuext(cmd: u32, reserved: u32, arg1: u64, arg2: u64) -> Vec<u8> {
        [&cmd.to_le_bytes()[..], &reserved.to_le_bytes(), &arg1.to_le_bytes(), &arg2.to_le_bytes()].concat()
    }

    #[test]
    fn base_pointers_need_an_l4_frame() {
        let mut h = Harness::new();
        let l4 = h.domain.space.l4.0;
        h.write(DATA, &[mmuext(6, 0, l4, 0), mmuext(6, 0, l4 + 1, 0), mmuext(6, 0, 0, 0)].concat());
        let done = DATA + 0x200;
        assert_eq!(h.call(Hypercall::MmuextOp, [DATA, 3, done, 0, 0, 0]), err(Error::Invalid));
        assert_eq!(h.read(done, 4), 1u32.to_le_bytes(), "one op took effect");
        assert_eq!(h.domain.vcpus[0].entry.user_l4, Mfn(l4).phys());
        assert_eq!(h.call(Hypercall::MmuextOp, [DATA + 48, 1, done, 0, 0, 0]), Disposition::Return(0));
        assert_eq!(h.domain.vcpus[0].entry.user_l4, 0, "0 removes the user base");
        h.write(DATA, &[mmuext(5, 0, l4, 0)].concat());
        assert_eq!(h.call(Hypercall::MmuextOp, [DATA, 1, 0, 0, 0, 0]), Disposition::Return(0));
        assert_eq!(h.cpu.loads, vec![(Mfn(l4).phys(), Mode::Kernel)]);
        for bad in [mmuext(6, 1, l4, 0), mmuext(6, 0, l4, 1), mmuext(5, 0, 0, 0), mmuext(13, 0, l4, 0), mmuext(3, 0, l4, 0)] {
            h.write(DATA, &bad);
            assert_eq!(h.call(Hypercall::MmuextOp, [DATA, 1, done, 0, 0, 0]), err(Error::Invalid));
            assert_eq!(h.read(done, 4), 0u32.to_le_bytes());
        }
        assert_eq!(h.call(Hypercall::MmuextOp, [DATA, 129, 0, 0, 0, 0]), err(Error::TooBig));
        assert_eq!(h.call(Hypercall::MmuextOp, [DATA, 1, TEXT, 0, 0, 0]), err(Error::BadAddress), "read-only done");
        assert_eq!(h.call(Hypercall::MmuextOp, [u64::MAX - 8, 1, 0, 0, 0, 0]), err(Error::BadAddress), "wrapping ops");
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
        assert_eq!(h.call(Hypercall::EvtchnSend, [5, 0, 0, 0, 0, 0]), Disposition::Defer(Call::EvtchnSend { port: 5 }));
        assert_eq!(h.call(Hypercall::SchedPoll, [DATA, 3, 77, 0, 0, 0]), Disposition::Defer(Call::SchedPoll { ports: DATA, nr: 3, deadline: 77 }));
        for (nr, a, e) in [
            (Hypercall::EvtchnSend, [0, 0], Error::Invalid),
            (Hypercall::EvtchnSend, [4096, 0], Error::Invalid),
            (Hypercall::EvtchnUnmask, [1 << 32, 0], Error::Invalid),
            (Hypercall::SchedPoll, [DATA, 0], Error::Invalid),
            (Hypercall::SchedPoll, [DATA, 129], Error::TooBig),
            (Hypercall::EvtchnAllocUnbound, [1 << 32, 0], Error::Invalid),
            (Hypercall::WallclockSet, [0, 1 << 32], Error::Invalid),
        ] {
            assert_eq!(h.call(nr, [a[0], a[1], 0, 0, 0, 0]), err(e), "{nr:?} {a:?}");
        }
    }
}
