//! Event channels: a domain's ports, what each is bound to, and raising an
//! event in the shared-info page (section 8.1 and 16 of the ABI).
//!
//! A port table changes only through the calls here, each of which checks
//! everything before it changes anything. Operations that join two domains
//! (interdomain binding, sending, closing) are split into a check on each
//! side and a commit the hypervisor does once both checks pass.

use alloc::vec;
use alloc::vec::Vec;
use core::mem::offset_of;

use hypercall_abi::domid::domid;
use hypercall_abi::event::{EvtchnState, EvtchnStatus, Virq};
use hypercall_abi::shared_info::{port_word_bit, SharedInfo, VcpuInfo, EVTCHN_PORTS};
use hypercall_abi::Error;

use crate::addr::Mfn;
use crate::phys::PhysMemory;
use crate::vcpu::vcpu_info_offset;

/// Virtual IRQs a domain may bind (`Virq` values `0 .. VIRQS`).
pub const VIRQS: usize = 4;

/// What a port is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    Closed,
    /// Allocated for `remote` to bind to.
    Unbound { remote: u32 },
    Interdomain { remote: u32, remote_port: u32 },
    Virq(Virq),
    Ipi,
}

/// One port: its binding and the vCPU it notifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Port {
    pub binding: Binding,
    pub vcpu: u32,
}

const CLOSED: Port = Port { binding: Binding::Closed, vcpu: 0 };

/// What a domain may bind beyond the common case (E3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Privileges {
    pub console_owner: bool,
    pub privileged: bool,
}

/// A domain's ports.
#[derive(Clone, Debug)]
pub struct EventChannels {
    ports: Vec<Port>,
    nr_vcpus: u32,
    /// Port of each global VIRQ.
    global_virqs: [Option<u32>; VIRQS],
    /// Port of the timer VIRQ of each vCPU.
    timer_virqs: Vec<Option<u32>>,
    privileges: Privileges,
}

impl EventChannels {
    /// What the domain may bind (and, for the console, read).
    pub fn privileges(&self) -> Privileges {
        self.privileges
    }

    pub fn new(nr_vcpus: u32, privileges: Privileges) -> EventChannels {
        EventChannels {
            ports: vec![CLOSED; EVTCHN_PORTS],
            nr_vcpus,
            global_virqs: [None; VIRQS],
            timer_virqs: vec![None; nr_vcpus as usize],
            privileges,
        }
    }

    /// A port argument (E1): `1 .. EVTCHN_PORTS`, else `Invalid`.
    pub fn port_arg(arg: u64) -> Result<u32, Error> {
        match u32::try_from(arg) {
            Ok(p) if p != 0 && (p as usize) < EVTCHN_PORTS => Ok(p),
            _ => Err(Error::Invalid),
        }
    }

    /// A vCPU argument: one the domain has, else `NotFound` (or `Invalid`
    /// for high bits set).
    pub fn vcpu_arg(&self, arg: u64) -> Result<u32, Error> {
        let v = u32::try_from(arg).map_err(|_| Error::Invalid)?;
        if v < self.nr_vcpus {
            Ok(v)
        } else {
            Err(Error::NotFound)
        }
    }

    pub fn get(&self, port: u32) -> Port {
        self.ports[port as usize]
    }

    /// A port that is bound to something, else `NotFound`.
    pub fn open_port(&self, arg: u64) -> Result<(u32, Port), Error> {
        let p = Self::port_arg(arg)?;
        match self.get(p) {
            Port { binding: Binding::Closed, .. } => Err(Error::NotFound),
            port => Ok((p, port)),
        }
    }

    /// The lowest free port.
    pub fn free_port(&self) -> Result<u32, Error> {
        (1..EVTCHN_PORTS).find(|&p| self.ports[p].binding == Binding::Closed).and_then(|p| u32::try_from(p).ok()).ok_or(Error::NoSpace)
    }

    fn bind(&mut self, binding: Binding, vcpu: u32) -> Result<u32, Error> {
        let p = self.free_port()?;
        self.ports[p as usize] = Port { binding, vcpu };
        Ok(p)
    }

    /// `evtchn_alloc_unbound`: `remote` is checked by the caller to exist.
    pub fn alloc_unbound(&mut self, remote: u32) -> Result<u32, Error> {
        self.bind(Binding::Unbound { remote }, 0)
    }

    /// `evtchn_bind_virq` (E3).
    pub fn bind_virq(&mut self, virq_arg: u64, vcpu_arg: u64) -> Result<u32, Error> {
        let virq = u32::try_from(virq_arg).ok().and_then(Virq::from_value).ok_or(Error::Invalid)?;
        let vcpu = self.vcpu_arg(vcpu_arg)?;
        match virq {
            Virq::Console if !self.privileges.console_owner => return Err(Error::NotPermitted),
            Virq::DomainException if !self.privileges.privileged => return Err(Error::NotPermitted),
            _ => {}
        }
        if virq.is_per_vcpu() {
            if self.timer_virqs[vcpu as usize].is_some() {
                return Err(Error::Exists);
            }
            let p = self.bind(Binding::Virq(virq), vcpu)?;
            self.timer_virqs[vcpu as usize] = Some(p);
            Ok(p)
        } else {
            if vcpu != 0 {
                return Err(Error::Invalid);
            }
            if self.global_virqs[virq as usize].is_some() {
                return Err(Error::Exists);
            }
            let p = self.bind(Binding::Virq(virq), 0)?;
            self.global_virqs[virq as usize] = Some(p);
            Ok(p)
        }
    }

    /// The port a VIRQ fires on (for a per-vCPU VIRQ, `vcpu`'s).
    pub fn virq_port(&self, virq: Virq, vcpu: u32) -> Option<u32> {
        if virq.is_per_vcpu() {
            self.timer_virqs.get(vcpu as usize).copied().flatten()
        } else {
            self.global_virqs[virq as usize]
        }
    }

    /// `evtchn_bind_ipi`.
    pub fn bind_ipi(&mut self, vcpu_arg: u64) -> Result<u32, Error> {
        let vcpu = self.vcpu_arg(vcpu_arg)?;
        self.bind(Binding::Ipi, vcpu)
    }

    /// `evtchn_bind_vcpu`: IPI and per-vCPU VIRQ ports stay where bound.
    pub fn bind_vcpu(&mut self, port_arg: u64, vcpu_arg: u64) -> Result<(), Error> {
        let (p, port) = self.open_port(port_arg)?;
        let vcpu = self.vcpu_arg(vcpu_arg)?;
        match port.binding {
            Binding::Ipi => Err(Error::Invalid),
            Binding::Virq(v) if v.is_per_vcpu() => Err(Error::Invalid),
            _ => {
                self.ports[p as usize].vcpu = vcpu;
                Ok(())
            }
        }
    }

    /// Checks that `port` may be bound by `caller` (E2): `Unbound` for it.
    pub fn check_remote_unbound(&self, port_arg: u64, caller: u32) -> Result<u32, Error> {
        let p = Self::port_arg(port_arg)?;
        match self.get(p).binding {
            Binding::Unbound { remote } if remote == caller => Ok(p),
            Binding::Unbound { .. } => Err(Error::NotPermitted),
            _ => Err(Error::Busy),
        }
    }

    /// Makes `port` one end of a channel to `remote`'s `remote_port`.
    pub fn connect(&mut self, port: u32, remote: u32, remote_port: u32) {
        self.ports[port as usize].binding = Binding::Interdomain { remote, remote_port };
    }

    /// Takes a free port for a new interdomain channel (the caller then
    /// connects both ends).
    pub fn connect_new(&mut self, remote: u32, remote_port: u32) -> Result<u32, Error> {
        self.bind(Binding::Interdomain { remote, remote_port }, 0)
    }

    /// After the peer of an interdomain channel closed its end: this end
    /// waits to be bound again by the same domain.
    pub fn peer_closed(&mut self, port: u32) {
        if let Binding::Interdomain { remote, .. } = self.ports[port as usize].binding {
            self.ports[port as usize].binding = Binding::Unbound { remote };
        }
    }

    /// `evtchn_close`: frees the port and returns what it was bound to, for
    /// the caller to update the peer and clear the pending bit.
    pub fn close(&mut self, port_arg: u64) -> Result<(u32, Binding), Error> {
        let (p, port) = self.open_port(port_arg)?;
        match port.binding {
            Binding::Virq(v) if v.is_per_vcpu() => self.timer_virqs[port.vcpu as usize] = None,
            Binding::Virq(v) => self.global_virqs[v as usize] = None,
            _ => {}
        }
        self.ports[p as usize] = CLOSED;
        Ok((p, port.binding))
    }

    /// `evtchn_status`.
    pub fn status(&self, port_arg: u64) -> Result<EvtchnStatus, Error> {
        let p = Self::port_arg(port_arg)?;
        let port = self.get(p);
        let mut s = EvtchnStatus { vcpu: port.vcpu, ..EvtchnStatus::default() };
        s.state = match port.binding {
            Binding::Closed => {
                s.vcpu = 0;
                EvtchnState::Closed
            }
            Binding::Unbound { remote } => {
                s.remote_domid = remote;
                EvtchnState::Unbound
            }
            Binding::Interdomain { remote, remote_port } => {
                s.remote_domid = remote;
                s.remote_port = remote_port;
                EvtchnState::Interdomain
            }
            Binding::Virq(v) => {
                s.virq = v as u32;
                EvtchnState::Virq
            }
            Binding::Ipi => EvtchnState::Ipi,
        } as u32;
        Ok(s)
    }
}

/// Whether `remote` may be named as the other end of an unbound port.
pub fn remote_domid_ok(remote: u32) -> bool {
    remote == domid::HYPERVISOR || remote <= domid::MAX
}

fn pending_index(port: u32) -> (usize, u64) {
    let (word, bit) = port_word_bit(port);
    ((offset_of!(SharedInfo, evtchn_pending) / 8) + word, 1 << bit)
}

fn mask_index(port: u32) -> (usize, u64) {
    let (word, bit) = port_word_bit(port);
    ((offset_of!(SharedInfo, evtchn_mask) / 8) + word, 1 << bit)
}

/// Step 2 of section 8.1: port `port` is pending and unmasked, so `vcpu`
/// learns of it through `pending_sel` and `upcall_pending`.
fn mark_upcall(mem: &mut impl PhysMemory, shared_info: Mfn, port: u32, vcpu: u32) {
    let (word, _) = port_word_bit(port);
    let info = vcpu_info_offset(vcpu);
    mem.fetch_or_u64(shared_info, (info + offset_of!(VcpuInfo, pending_sel)) / 8, 1 << word);
    mem.frame_mut(shared_info)[info + offset_of!(VcpuInfo, upcall_pending)] = 1;
}

/// Raises `port`, bound to `vcpu` (section 8.1 steps 1–2). Returns whether
/// the port became pending (it was not already), so the caller wakes the
/// vCPU.
pub fn raise(mem: &mut impl PhysMemory, shared_info: Mfn, port: u32, vcpu: u32) -> bool {
    let (index, bit) = pending_index(port);
    if mem.fetch_or_u64(shared_info, index, bit) & bit != 0 {
        return false;
    }
    let (mask_word, mask_bit) = mask_index(port);
    if mem.read_u64(shared_info, mask_word) & mask_bit == 0 {
        mark_upcall(mem, shared_info, port, vcpu);
    }
    true
}

/// Whether `port` is pending, whatever its mask.
pub fn is_pending(mem: &impl PhysMemory, shared_info: Mfn, port: u32) -> bool {
    let (index, bit) = pending_index(port);
    mem.read_u64(shared_info, index) & bit != 0
}

/// Clears `port`'s pending bit (on close).
pub fn clear_pending(mem: &mut impl PhysMemory, shared_info: Mfn, port: u32) {
    let (index, bit) = pending_index(port);
    mem.fetch_and_u64(shared_info, index, !bit);
}

/// `evtchn_unmask`: clears the mask bit and, if the port is pending, redoes
/// step 2. Returns whether an upcall became pending.
pub fn unmask(mem: &mut impl PhysMemory, shared_info: Mfn, port: u32, vcpu: u32) -> bool {
    let (mask_word, mask_bit) = mask_index(port);
    mem.fetch_and_u64(shared_info, mask_word, !mask_bit);
    if is_pending(mem, shared_info, port) {
        mark_upcall(mem, shared_info, port, vcpu);
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::VecMemory;

    fn chans() -> EventChannels {
        EventChannels::new(2, Privileges::default())
    }

    #[test]
    fn ports_are_the_lowest_free_and_never_zero() {
        let mut e = chans();
        assert_eq!(e.bind_ipi(0), Ok(1));
        assert_eq!(e.alloc_unbound(5), Ok(2));
        assert_eq!(e.close(1), Ok((1, Binding::Ipi)));
        assert_eq!(e.bind_ipi(1), Ok(1));
        assert_eq!(e.get(1).vcpu, 1);
        for bad in [0, EVTCHN_PORTS as u64, u64::MAX, 1 << 32 | 1] {
            assert_eq!(e.close(bad), Err(Error::Invalid), "{bad}");
            assert_eq!(e.status(bad), Err(Error::Invalid));
        }
        assert_eq!(e.close(3), Err(Error::NotFound), "a closed port");
    }

    #[test]
    fn the_table_fills_up() {
        let mut e = chans();
        for p in 1..EVTCHN_PORTS as u32 {
            assert_eq!(e.bind_ipi(0), Ok(p));
        }
        assert_eq!(e.bind_ipi(0), Err(Error::NoSpace));
    }

    #[test]
    fn virqs_bind_once_where_allowed() {
        let mut e = chans();
        assert_eq!(e.bind_virq(0, 0), Ok(1));
        assert_eq!(e.bind_virq(0, 1), Ok(2), "the timer is per vCPU");
        assert_eq!(e.bind_virq(0, 1), Err(Error::Exists));
        assert_eq!(e.bind_virq(0, 2), Err(Error::NotFound));
        assert_eq!(e.bind_virq(3, 1), Err(Error::Invalid), "global VIRQs go to vCPU 0");
        assert_eq!(e.bind_virq(3, 0), Ok(3));
        assert_eq!(e.bind_virq(3, 0), Err(Error::Exists));
        assert_eq!(e.bind_virq(1, 0), Err(Error::NotPermitted), "console needs the console");
        assert_eq!(e.bind_virq(2, 0), Err(Error::NotPermitted), "domain exceptions need privilege");
        assert_eq!(e.bind_virq(4, 0), Err(Error::Invalid));
        assert_eq!(e.bind_virq(1 << 32, 0), Err(Error::Invalid));
        assert_eq!(e.virq_port(Virq::Timer, 1), Some(2));
        assert_eq!(e.bind_vcpu(2, 0), Err(Error::Invalid), "per-vCPU VIRQs stay");
        assert_eq!(e.bind_vcpu(3, 1), Ok(()));
        assert_eq!(e.close(2), Ok((2, Binding::Virq(Virq::Timer))));
        assert_eq!(e.virq_port(Virq::Timer, 1), None);
        assert_eq!(e.bind_virq(0, 1), Ok(2), "bindable again after close");
        let mut p = EventChannels::new(1, Privileges { console_owner: true, privileged: true });
        assert_eq!((p.bind_virq(1, 0), p.bind_virq(2, 0)), (Ok(1), Ok(2)));
    }

    #[test]
    fn interdomain_binding_needs_an_unbound_port_for_the_caller() {
        let (mut a, mut b) = (chans(), chans());
        let pa = a.alloc_unbound(2).unwrap();
        assert_eq!(a.check_remote_unbound(u64::from(pa), 3), Err(Error::NotPermitted));
        assert_eq!(a.check_remote_unbound(0, 2), Err(Error::Invalid));
        assert_eq!(a.check_remote_unbound(9, 2), Err(Error::Busy));
        assert_eq!(a.check_remote_unbound(u64::from(pa), 2), Ok(pa));
        let pb = b.connect_new(1, pa).unwrap();
        a.connect(pa, 2, pb);
        assert_eq!(a.check_remote_unbound(u64::from(pa), 2), Err(Error::Busy), "bound already");
        let s = a.status(u64::from(pa)).unwrap();
        assert_eq!((s.state, s.remote_domid, s.remote_port), (EvtchnState::Interdomain as u32, 2, pb));
        assert_eq!(b.close(u64::from(pb)), Ok((pb, Binding::Interdomain { remote: 1, remote_port: pa })));
        a.peer_closed(pa);
        assert_eq!(a.get(pa).binding, Binding::Unbound { remote: 2 });
    }

    const SI: Mfn = Mfn(3);

    #[test]
    fn raising_follows_section_8_1() {
        let mut mem = VecMemory::new(4);
        assert!(raise(&mut mem, SI, 70, 1));
        assert!(!raise(&mut mem, SI, 70, 1), "already pending");
        let f = mem.frame(SI);
        let sel = u64::from_le_bytes(f[vcpu_info_offset(1) + 8..][..8].try_into().unwrap());
        assert_eq!(sel, 1 << 1, "word 1 selected");
        assert_eq!(f[vcpu_info_offset(1)], 1, "upcall pending");
        assert_eq!(f[vcpu_info_offset(0)], 0, "not on the other vCPU");
        assert!(is_pending(&mem, SI, 70));
        clear_pending(&mut mem, SI, 70);
        assert!(!is_pending(&mem, SI, 70));
    }

    #[test]
    fn masked_ports_stay_pending_until_unmasked() {
        let mut mem = VecMemory::new(4);
        let (w, b) = mask_index(5);
        mem.write_u64(SI, w, b);
        assert!(raise(&mut mem, SI, 5, 0));
        assert_eq!(mem.frame(SI)[vcpu_info_offset(0)], 0, "masked: no upcall");
        assert!(unmask(&mut mem, SI, 5, 0));
        assert_eq!(mem.frame(SI)[vcpu_info_offset(0)], 1);
        assert_eq!(mem.read_u64(SI, w) & b, 0);
        assert!(!unmask(&mut mem, SI, 6, 0), "nothing pending");
    }
}
