//! The hypercalls about events, time and the scheduler (sections 15 and 16
//! of the ABI): decoded by `veneer_core::hypercall`, carried out here
//! because they reach other vCPUs and domains. Each checks everything
//! through the core's port table and clock before it changes anything.

use core::mem::{offset_of, size_of};

use hypercall_abi::domid::domid;
use hypercall_abi::event::EvtchnStatus;
use hypercall_abi::shared_info::EVTCHN_PORTS;
use hypercall_abi::vcpu::{RunstateState, VcpuContext};
use hypercall_abi::Error;
use veneer_core::domain::DomainId;
use veneer_core::event_channel::{self, remote_domid_ok, Binding, EventChannels};
use veneer_core::hypercall::{Call, Disposition};
use veneer_core::scheduler::VcpuRef;
use veneer_core::vcpu::StartContext;

use crate::hypervisor::Hypervisor;

/// Carries out a deferred call for `me`, the vCPU running on this CPU.
pub fn carry_out(hv: &mut Hypervisor, me: VcpuRef, call: Call) -> Disposition {
    Disposition::Return(hypercall_abi::error::encode(do_call(hv, me, call)))
}

fn do_call(hv: &mut Hypervisor, me: VcpuRef, call: Call) -> Result<u64, Error> {
    let now = hv.now();
    match call {
        Call::SchedYield => {
            hv.sched.yield_now(me, now);
            Ok(0)
        }
        Call::SchedBlock => {
            let d = &hv.domains[&me.domain];
            let vcpu = &d.vcpus[me.vcpu as usize];
            vcpu.set_events_masked(&mut hv.mem, false);
            if !vcpu.upcall_pending(&hv.mem) {
                hv.sleep(me, RunstateState::Blocked);
            }
            Ok(0)
        }
        Call::SchedPoll { ports, nr, deadline } => {
            let d = &hv.domains[&me.domain];
            let vcpu = &d.vcpus[me.vcpu as usize];
            let mut bytes = [0u8; 4 * 128];
            vcpu.kernel_space().copy_from(&hv.mem, ports, &mut bytes[..4 * nr])?;
            let mut list = alloc::vec::Vec::with_capacity(nr);
            for chunk in bytes[..4 * nr].chunks_exact(4) {
                let p = u32::from_le_bytes(chunk.try_into().expect("4 bytes"));
                d.events.open_port(u64::from(p))?;
                list.push(p);
            }
            let pending = list.iter().any(|&p| event_channel::is_pending(&hv.mem, d.shared_info, p));
            if pending || (deadline != 0 && now >= deadline) {
                return Ok(0);
            }
            hv.vcpu_mut(me).expect("running").poll = Some((list, deadline));
            hv.sleep(me, RunstateState::Blocked);
            Ok(0)
        }
        Call::EvtchnAllocUnbound { remote } => {
            let remote = resolve(remote, me.domain);
            if !remote_domid_ok(remote) || (remote != domid::HYPERVISOR && !hv.domains.contains_key(&remote)) {
                return Err(Error::NotFound);
            }
            mine(hv, me.domain).alloc_unbound(remote).map(u64::from)
        }
        Call::EvtchnBindInterdomain { remote, remote_port } => {
            let remote = resolve(remote, me.domain);
            if remote == me.domain {
                // A loop-back channel: both ends in the caller's table.
                let rp = mine(hv, me.domain).check_remote_unbound(remote_port, me.domain)?;
                let events = mine(hv, me.domain);
                let local = events.connect_new(remote, rp)?;
                events.connect(rp, me.domain, local);
                return Ok(u64::from(local));
            }
            let theirs = &hv.domains.get(&remote).ok_or(Error::NotFound)?.events;
            let rp = theirs.check_remote_unbound(remote_port, me.domain)?;
            let local = mine(hv, me.domain).connect_new(remote, rp)?;
            hv.domains.get_mut(&remote).expect("checked").events.connect(rp, me.domain, local);
            Ok(u64::from(local))
        }
        Call::EvtchnBindVirq { virq, vcpu } => mine(hv, me.domain).bind_virq(virq, vcpu).map(u64::from),
        Call::EvtchnBindIpi { vcpu } => mine(hv, me.domain).bind_ipi(vcpu).map(u64::from),
        Call::EvtchnSend { port } => {
            let (_, p) = mine(hv, me.domain).open_port(u64::from(port))?;
            match p.binding {
                Binding::Interdomain { remote, .. } if remote == domid::HYPERVISOR => crate::io::kick(hv, me.domain, port),
                Binding::Interdomain { remote, remote_port } => hv.raise(remote, remote_port),
                Binding::Ipi => hv.raise(me.domain, port),
                Binding::Unbound { .. } => {}
                Binding::Virq(_) | Binding::Closed => return Err(Error::Invalid),
            }
            Ok(0)
        }
        Call::EvtchnClose { port } => {
            let (p, old) = mine(hv, me.domain).close(port)?;
            let shared_info = hv.domains[&me.domain].shared_info;
            event_channel::clear_pending(&mut hv.mem, shared_info, p);
            if let Binding::Interdomain { remote, remote_port } = old {
                if let Some(d) = hv.domains.get_mut(&remote) {
                    d.events.peer_closed(remote_port);
                }
            }
            Ok(0)
        }
        Call::EvtchnUnmask { port } => {
            let d = &hv.domains[&me.domain];
            let (_, p) = d.events.open_port(u64::from(port))?;
            let shared_info = d.shared_info;
            if event_channel::unmask(&mut hv.mem, shared_info, port, p.vcpu) {
                let target = VcpuRef { domain: me.domain, vcpu: p.vcpu };
                hv.wake(target);
                hv.kick(target);
            }
            Ok(0)
        }
        Call::EvtchnStatus { port, out } => {
            let status = mine(hv, me.domain).status(port)?;
            let mut bytes = [0u8; size_of::<EvtchnStatus>()];
            for (field, value) in [
                (offset_of!(EvtchnStatus, state), status.state),
                (offset_of!(EvtchnStatus, vcpu), status.vcpu),
                (offset_of!(EvtchnStatus, remote_domid), status.remote_domid),
                (offset_of!(EvtchnStatus, remote_port), status.remote_port),
                (offset_of!(EvtchnStatus, virq), status.virq),
                (offset_of!(EvtchnStatus, irq), status.irq),
            ] {
                bytes[field..field + 4].copy_from_slice(&value.to_le_bytes());
            }
            let space = hv.domains[&me.domain].vcpus[me.vcpu as usize].kernel_space();
            space.copy_to(&mut hv.mem, out, &bytes)?;
            Ok(0)
        }
        Call::EvtchnBindVcpu { port, vcpu } => mine(hv, me.domain).bind_vcpu(port, vcpu).map(|()| 0),
        Call::EvtchnDeliver => Ok(0),
        Call::TimerSet { deadline } => {
            hv.vcpu_mut(me).expect("running").timer_deadline = deadline;
            // A deadline passed already fires now; the next one is armed
            // on the way back to the guest.
            hv.expire_timers();
            hv.arm_timer();
            Ok(0)
        }
        Call::WallclockSet { sec, nsec, system_time } => {
            // Only the privileged domain, domain 0, may set it (P1).
            if me.domain != 0 {
                return Err(Error::NotPermitted);
            }
            if nsec >= 1_000_000_000 {
                return Err(Error::Invalid);
            }
            // Wall time at system time 0 is the given time minus
            // `system_time`.
            let given = u128::from(sec) * 1_000_000_000 + u128::from(nsec);
            let origin = given.saturating_sub(u128::from(system_time));
            let origin_sec = u64::try_from(origin / 1_000_000_000).unwrap_or(u64::MAX);
            let origin_nsec = u32::try_from(origin % 1_000_000_000).expect("below 10^9");
            hv.set_wallclock(origin_sec, origin_nsec);
            Ok(0)
        }
        vcpu_op @ (Call::VcpuInitialise { .. } | Call::VcpuUp { .. } | Call::VcpuDown { .. } | Call::VcpuIsUp { .. } | Call::VcpuRegisterRunstate { .. }) => {
            vcpu_call(hv, me, vcpu_op)
        }
        io_call @ (Call::GrantMap { .. }
        | Call::GrantUnmap { .. }
        | Call::GrantCopy { .. }
        | Call::DeviceQuery { .. }
        | Call::DeviceSetParams { .. }
        | Call::DeviceConnect { .. }
        | Call::DeviceSetState { .. }) => crate::io::carry_out(hv, io_call),
        other => unreachable!("{other:?} is not a deferred call"),
    }
}

/// `DOMID_SELF` names the caller.
fn resolve(domid_arg: u32, me: u32) -> u32 {
    if domid_arg == domid::SELF {
        me
    } else {
        domid_arg
    }
}

fn mine(hv: &mut Hypervisor, domain: u32) -> &mut EventChannels {
    &mut hv.domains.get_mut(&domain).expect("the caller's domain exists").events
}

const _: () = assert!(EVTCHN_PORTS == 4096);

/// The vCPU calls (section 14) of `me`: `vcpu` of the caller's domain.
pub fn vcpu_call(hv: &mut Hypervisor, me: VcpuRef, call: Call) -> Result<u64, Error> {
    let vcpu_of = |hv: &Hypervisor, vcpu: u32| {
        let d = &hv.domains[&me.domain];
        if (vcpu as usize) < d.vcpus.len() {
            Ok(VcpuRef { domain: me.domain, vcpu })
        } else {
            Err(Error::NotFound)
        }
    };
    match call {
        Call::VcpuInitialise { vcpu, ctx } => {
            let target = vcpu_of(hv, vcpu)?;
            let d = &hv.domains[&me.domain];
            let mut bytes = [0u8; size_of::<VcpuContext>()];
            d.vcpus[me.vcpu as usize].kernel_space().copy_from(&hv.mem, ctx, &mut bytes)?;
            if hv.sched.state(target) != Some(RunstateState::Offline) {
                return Err(Error::Busy);
            }
            // Taken down from another CPU and not yet off it: its state is
            // still in that CPU, which would save it over the new one.
            if hv.is_resident(target) {
                return Err(Error::Again);
            }
            let id = DomainId(me.domain);
            let frames = &mut hv.machine.frames;
            let context = StartContext::decode(&bytes, &|mfn| frames.table_level(mfn, id) == Some(4))?;
            // The new base pointers take their uses (M6) before the old ones,
            // if any, give theirs up.
            frames.acquire_base(id, context.kernel_l4)?;
            if let Some(user) = context.user_l4 {
                if let Err(e) = frames.acquire_base(id, user) {
                    frames.release_base(context.kernel_l4, &mut hv.mem);
                    return Err(e);
                }
            }
            let from = (*d.vcpus[me.vcpu as usize]).clone();
            let d = hv.domains.get_mut(&me.domain).expect("the caller's domain");
            let target_vcpu = &mut d.vcpus[vcpu as usize];
            let old = target_vcpu.initialised.then(|| (target_vcpu.kernel_base(), target_vcpu.user_base()));
            target_vcpu.initialise(&context, &from, &mut hv.mem);
            if let Some((kernel, user)) = old {
                frames.release_base(kernel, &mut hv.mem);
                if let Some(user) = user {
                    frames.release_base(user, &mut hv.mem);
                }
            }
            Ok(0)
        }
        Call::VcpuUp { vcpu } => {
            let target = vcpu_of(hv, vcpu)?;
            if !hv.domains[&me.domain].vcpus[vcpu as usize].initialised {
                return Err(Error::Invalid);
            }
            if hv.sched.state(target) != Some(RunstateState::Offline) {
                return Err(Error::Exists);
            }
            hv.make_runnable(target);
            Ok(0)
        }
        Call::VcpuDown { vcpu } => {
            let target = vcpu_of(hv, vcpu)?;
            let online = (0..hv.domains[&me.domain].vcpus.len() as u32)
                .filter(|&v| hv.sched.state(VcpuRef { domain: me.domain, vcpu: v }) != Some(RunstateState::Offline))
                .count();
            if hv.sched.state(target) == Some(RunstateState::Offline) {
                return Ok(0);
            }
            if online <= 1 {
                return Err(Error::Busy);
            }
            // On itself, the call returns (with 0) when the vCPU is brought
            // up again: the scheduler takes it off the CPU on the way back.
            // Another CPU running it is prodded to do the same.
            hv.sleep(target, RunstateState::Offline);
            Ok(0)
        }
        Call::VcpuIsUp { vcpu } => {
            let target = vcpu_of(hv, vcpu)?;
            Ok(u64::from(hv.sched.state(target) != Some(RunstateState::Offline)))
        }
        Call::VcpuRegisterRunstate { vcpu, va } => {
            let target = vcpu_of(hv, vcpu)?;
            hv.vcpu_mut(target).expect("checked").runstate_area = va;
            hv.write_runstate(target);
            Ok(0)
        }
        other => unreachable!("{other:?} is not a vCPU call"),
    }
}
