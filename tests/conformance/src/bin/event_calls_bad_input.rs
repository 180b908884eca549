//! Every event, timer and scheduler call refuses bad input with the
//! documented error (sections 15 and 16) and changes nothing: ports 0, out
//! of range or wider than 32 bits (E1), closed ports, vCPUs the domain does
//! not have, unknown VIRQs, VIRQs bound twice or to the wrong vCPU or
//! without the privilege they need (E3), remote ports that are not unbound
//! or allocated for another domain (E2), unknown domains, sends on VIRQ
//! ports, moving an IPI port, unwritable status buffers, polls of no ports,
//! too many, unbound or unreadable ones, and `wallclock_set` from an
//! unprivileged domain.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::event::{EvtchnState, Virq};
use veneer_guest::hypercall_abi::{Error, Hypercall};
use veneer_guest::{check, event, hypercall, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");

fn main(start: &StartInfo) -> ! {
    event::init(start);
    let me = start.domain_id;
    let raw = |call: Hypercall, a: [u64; 3]| hypercall::raw(call.number(), [a[0], a[1], a[2], 0, 0, 0]);
    let ipi = event::bind_ipi(0).unwrap();
    let timer = event::bind_virq(Virq::Timer as u32, 0).unwrap();
    let unbound = event::alloc_unbound(me).unwrap();
    let for_other = event::alloc_unbound(0x7ff1).unwrap(); // DOMID_HYPERVISOR may bind it
    let closed = 100u64;
    for port in [0u64, 4096, 4097, u64::from(u32::MAX), 1 << 32 | u64::from(ipi)] {
        for call in [Hypercall::EvtchnSend, Hypercall::EvtchnClose, Hypercall::EvtchnUnmask] {
            check!(raw(call, [port, 0, 0]) == Err(Error::Invalid), "{:?} on port {:#x}", call, port);
        }
        check!(raw(Hypercall::EvtchnBindVcpu, [port, 0, 0]) == Err(Error::Invalid), "bind_vcpu port {:#x}", port);
        let mut s = [0u8; 24];
        check!(raw(Hypercall::EvtchnStatus, [port, s.as_mut_ptr() as u64, 0]) == Err(Error::Invalid), "status port {:#x}", port);
    }
    for call in [Hypercall::EvtchnSend, Hypercall::EvtchnClose, Hypercall::EvtchnUnmask] {
        check!(raw(call, [closed, 0, 0]) == Err(Error::NotFound), "{:?} on a closed port", call);
    }
    check!(raw(Hypercall::EvtchnBindVcpu, [closed, 0, 0]) == Err(Error::NotFound), "bind_vcpu closed");
    check!(event::status(closed as u32).map(|s| s.state) == Ok(EvtchnState::Closed as u32), "a closed port's status");

    // vCPUs: this domain has one.
    check!(event::bind_ipi(1) == Err(Error::NotFound), "IPI to vCPU 1");
    check!(raw(Hypercall::EvtchnBindIpi, [1 << 32, 0, 0]) == Err(Error::Invalid), "IPI to a 64-bit vCPU");
    check!(event::bind_virq(Virq::Timer as u32, 1) == Err(Error::NotFound), "timer of vCPU 1");
    check!(event::bind_vcpu(ipi, 1) == Err(Error::NotFound), "bind_vcpu to vCPU 1");

    // VIRQs (E3).
    check!(event::bind_virq(Virq::Timer as u32, 0) == Err(Error::Exists), "timer bound twice");
    check!(event::bind_virq(4, 0) == Err(Error::Invalid), "unknown VIRQ");
    check!(raw(Hypercall::EvtchnBindVirq, [u64::MAX, 0, 0]) == Err(Error::Invalid), "absurd VIRQ");
    check!(event::bind_virq(Virq::Console as u32, 0) == Err(Error::NotPermitted), "console without owning it");
    check!(event::bind_virq(Virq::DomainException as u32, 0) == Err(Error::NotPermitted), "domain exceptions without privilege");
    let device = event::bind_virq(Virq::Device as u32, 0).unwrap();
    check!(event::bind_virq(Virq::Device as u32, 0) == Err(Error::Exists), "a global VIRQ bound twice");
    check!(event::send(timer) == Err(Error::Invalid) && event::send(device) == Err(Error::Invalid), "send on a VIRQ port");
    check!(event::bind_vcpu(timer, 0) == Err(Error::Invalid), "moving a per-vCPU VIRQ");
    check!(event::bind_vcpu(ipi, 0) == Err(Error::Invalid), "moving an IPI port");

    // Interdomain (E2): remote ports of this domain that are not unbound
    // for it, and unknown domains.
    check!(event::bind_interdomain(me, ipi) == Err(Error::Busy), "an IPI port as remote");
    check!(event::bind_interdomain(me, closed as u32) == Err(Error::Busy), "a closed port as remote");
    check!(event::bind_interdomain(me, for_other) == Err(Error::NotPermitted), "a port allocated for another domain");
    check!(event::bind_interdomain(me, 0) == Err(Error::Invalid), "remote port 0");
    check!(event::bind_interdomain(77, 1) == Err(Error::NotFound), "an unknown domain");
    check!(event::alloc_unbound(77) == Err(Error::NotFound), "unbound for an unknown domain");
    check!(event::alloc_unbound(0x7fff) == Err(Error::NotFound), "unbound for DOMID_INVALID");
    check!(raw(Hypercall::EvtchnAllocUnbound, [1 << 32, 0, 0]) == Err(Error::Invalid), "64-bit domid");

    // Status into memory the guest cannot write.
    check!(raw(Hypercall::EvtchnStatus, [u64::from(ipi), 0xffff_8000_0000_0000, 0]) == Err(Error::BadAddress), "status into the hypervisor");
    check!(raw(Hypercall::EvtchnStatus, [u64::from(ipi), main as *const () as u64, 0]) == Err(Error::BadAddress), "status into text");

    // sched_poll.
    let ports = [ipi, closed as u32, 0];
    check!(event::sched_poll(&ports[..0], 0) == Err(Error::Invalid), "poll of no ports");
    check!(raw(Hypercall::SchedPoll, [ports.as_ptr() as u64, 129, 0]) == Err(Error::TooBig), "poll of 129 ports");
    check!(event::sched_poll(&ports[..2], 0) == Err(Error::NotFound), "poll of a closed port");
    check!(event::sched_poll(&ports[2..], 0) == Err(Error::Invalid), "poll of port 0");
    check!(raw(Hypercall::SchedPoll, [0x1000, 1, 0]) == Err(Error::BadAddress), "poll list unmapped");
    check!(event::sched_poll(&ports[..1], 1) == Ok(0), "a passed deadline returns at once");

    check!(raw(Hypercall::WallclockSet, [1, 2, 3]) == Err(Error::NotPermitted), "wallclock_set unprivileged");

    // Nothing refused changed the ports.
    check!(event::status(ipi).map(|s| s.state) == Ok(EvtchnState::Ipi as u32), "IPI port intact");
    check!(event::status(unbound).map(|s| (s.state, s.remote_domid)) == Ok((EvtchnState::Unbound as u32, me)), "unbound port intact");
    // A loop-back channel to one's own unbound port works.
    let lo = event::bind_interdomain(me, unbound).unwrap();
    check!(event::status(unbound).map(|s| s.remote_port) == Ok(lo), "loop-back");
    // The table fills up: NoSpace.
    let mut n = 0;
    let full = loop {
        match event::bind_ipi(0) {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
    };
    check!(full == Error::NoSpace && n > 4000, "after {} ports: {:?}", n, full);
    veneer_guest::success()
}
