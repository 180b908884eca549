//! Split-device slots and the handshake (SPEC §19): how a frontend and its
//! backend find each other and hand over rings, without a store daemon.
//!
//! The hypervisor keeps one table of slots. A slot joins a frontend domain
//! and a backend — another domain, or the hypervisor itself — for one device
//! of one kind; each side names it by a handle of its own (the lowest free,
//! `0 .. DEVICE_SLOTS_MAX`). Each call here is decode-then-commit: it checks
//! everything, then changes the slot and reports a [`Change`] naming the
//! domains to tell (`VIRQ_DEVICE`), which the hypervisor raises.
//!
//! A slot the hypervisor serves has no backend handle: the hypervisor moves
//! the backend side itself ([`DeviceTable::set_backend_state`]), as its
//! backends (`hv_backend`) attach and detach.
//!
//! When a side's domain ends, its side becomes `Closed` and the slot is
//! marked `REMOVING`: the other side closes too, and the slot is freed once
//! both are `Closed`.

use alloc::vec::Vec;

use hypercall_abi::device::{
    device_consts, device_features, transition_allowed, DeviceConnect, DeviceInfo, DeviceKind, DeviceParams, DeviceRole,
    DeviceState,
};
use hypercall_abi::domid::domid;
use hypercall_abi::Error;

use crate::event_channel::{Binding, EventChannels};

/// Who serves a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Domain(u32),
    Hypervisor,
}

impl Backend {
    /// The backend's domain id as the ABI spells it.
    pub fn domid(self) -> u32 {
        match self {
            Backend::Domain(d) => d,
            Backend::Hypervisor => domid::HYPERVISOR,
        }
    }
}

/// What the configuration (or hot-plug) asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotSpec {
    pub kind: DeviceKind,
    pub frontend: u32,
    pub backend: Backend,
    /// Per-kind index among the frontend's devices.
    pub index: u32,
    /// Parameters the configuration fixes (net: the MAC); the rest zero.
    pub params: DeviceParams,
}

/// One slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub spec: SlotSpec,
    pub frontend_handle: u32,
    /// `None` when the hypervisor is the backend.
    pub backend_handle: Option<u32>,
    pub frontend_state: DeviceState,
    pub backend_state: DeviceState,
    pub removing: bool,
    pub connect: DeviceConnect,
    pub params: DeviceParams,
}

/// The domains a change concerns: each gets `VIRQ_DEVICE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    pub slot: usize,
    pub notify: [Option<u32>; 2],
}

/// Every slot of the machine.
#[derive(Debug, Default)]
pub struct DeviceTable {
    slots: Vec<Option<Slot>>,
}

const SLOTS_MAX: u32 = device_consts::SLOTS_MAX;

impl Slot {
    fn role_of(&self, dom: u32, handle: u32) -> Option<DeviceRole> {
        if self.spec.frontend == dom && self.frontend_handle == handle {
            Some(DeviceRole::Frontend)
        } else if self.spec.backend == Backend::Domain(dom) && self.backend_handle == Some(handle) {
            Some(DeviceRole::Backend)
        } else {
            None
        }
    }

    fn change(&self, slot: usize) -> Change {
        let back = match self.spec.backend {
            Backend::Domain(d) => Some(d),
            Backend::Hypervisor => None,
        };
        Change { slot, notify: [Some(self.spec.frontend), back] }
    }
}

impl DeviceTable {
    pub fn new() -> DeviceTable {
        DeviceTable::default()
    }

    pub fn get(&self, slot: usize) -> Option<&Slot> {
        self.slots.get(slot)?.as_ref()
    }

    /// Every live slot with its id.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Slot)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| Some((i, s.as_ref()?)))
    }

    /// The handles domain `dom` uses now.
    fn handles_of(&self, dom: u32) -> impl Iterator<Item = u32> + '_ {
        self.iter().flat_map(move |(_, s)| {
            let f = (s.spec.frontend == dom).then_some(s.frontend_handle);
            let b = if s.spec.backend == Backend::Domain(dom) { s.backend_handle } else { None };
            f.into_iter().chain(b)
        })
    }

    fn free_handle(&self, dom: u32) -> Option<u32> {
        (0..SLOTS_MAX).find(|h| !self.handles_of(dom).any(|used| used == *h))
    }

    /// Creates a slot; both sides start `Initialising`. Returns the slot
    /// id. Errors: `Invalid` for a frontend that is its own backend;
    /// `Exists` for a second slot of the same kind and index in the
    /// frontend; `NoSpace` if a side has `DEVICE_SLOTS_MAX` handles.
    pub fn create(&mut self, spec: SlotSpec) -> Result<usize, Error> {
        if spec.backend == Backend::Domain(spec.frontend) {
            return Err(Error::Invalid);
        }
        if self.iter().any(|(_, s)| s.spec.frontend == spec.frontend && s.spec.kind == spec.kind && s.spec.index == spec.index) {
            return Err(Error::Exists);
        }
        let frontend_handle = self.free_handle(spec.frontend).ok_or(Error::NoSpace)?;
        let backend_handle = match spec.backend {
            Backend::Domain(d) => Some(self.free_handle(d).ok_or(Error::NoSpace)?),
            Backend::Hypervisor => None,
        };
        let slot = Slot {
            spec,
            frontend_handle,
            backend_handle,
            frontend_state: DeviceState::Initialising,
            backend_state: DeviceState::Initialising,
            removing: false,
            connect: DeviceConnect::default(),
            params: spec.params,
        };
        match self.slots.iter().position(Option::is_none) {
            Some(i) => {
                self.slots[i] = Some(slot);
                Ok(i)
            }
            None => {
                self.slots.push(Some(slot));
                Ok(self.slots.len() - 1)
            }
        }
    }

    /// The slot `dom` names `handle` and its role in it; `NotFound` if none.
    pub fn find(&self, dom: u32, handle: u64) -> Result<(usize, DeviceRole), Error> {
        let handle = u32::try_from(handle).map_err(|_| Error::NotFound)?;
        self.iter().find_map(|(i, s)| Some((i, s.role_of(dom, handle)?))).ok_or(Error::NotFound)
    }

    /// The handle of `dom`'s frontend slot of `kind` and `index`, if any.
    pub fn frontend_handle(&self, dom: u32, kind: DeviceKind, index: u32) -> Option<u32> {
        self.iter().find(|(_, s)| s.spec.frontend == dom && s.spec.kind == kind && s.spec.index == index).map(|(_, s)| s.frontend_handle)
    }

    /// The slot the hypervisor serves whose frontend `dom` connected with
    /// `port`.
    pub fn hypervisor_slot_by_port(&self, dom: u32, port: u32) -> Option<usize> {
        self.iter()
            .find(|(_, s)| {
                s.spec.backend == Backend::Hypervisor
                    && s.spec.frontend == dom
                    && s.connect.port == port
                    && matches!(s.frontend_state, DeviceState::Initialised | DeviceState::Connected)
            })
            .map(|(i, _)| i)
    }

    /// `device_query`: the slot as `dom` sees it.
    pub fn info(&self, dom: u32, handle: u64) -> Result<DeviceInfo, Error> {
        let (i, role) = self.find(dom, handle)?;
        let s = self.get(i).expect("found");
        Ok(DeviceInfo {
            handle: u32::try_from(handle).expect("found handles fit"),
            kind: s.spec.kind as u16,
            role: role as u8,
            reserved0: 0,
            frontend_domid: s.spec.frontend,
            backend_domid: s.spec.backend.domid(),
            frontend_state: s.frontend_state as u32,
            backend_state: s.backend_state as u32,
            flags: if s.removing { device_consts::REMOVING } else { 0 },
            index: s.spec.index,
            connect: s.connect,
            params: s.params,
        })
    }

    /// `device_set_params`: the backend publishes its parameters, while
    /// `Initialising` or `Closed`.
    pub fn set_params(&mut self, dom: u32, handle: u64, p: &DeviceParams) -> Result<Change, Error> {
        let (i, role) = self.find(dom, handle)?;
        if role != DeviceRole::Backend {
            return Err(Error::NotPermitted);
        }
        let s = self.slots[i].as_mut().expect("found");
        if !matches!(s.backend_state, DeviceState::Initialising | DeviceState::Closed) {
            return Err(Error::Busy);
        }
        let p = check_params(s.spec.kind, &s.spec.params, p)?;
        s.params = p;
        Ok(s.change(i))
    }

    /// `device_connect`: the frontend hands over its rings and port, when
    /// the backend waits (`InitWait`) and the frontend is `Initialising`.
    /// `events` is the frontend's port table: the port must be `Unbound` for
    /// the backend.
    pub fn connect(&mut self, dom: u32, handle: u64, c: &DeviceConnect, events: &EventChannels) -> Result<Change, Error> {
        let (i, role) = self.find(dom, handle)?;
        if role != DeviceRole::Frontend {
            return Err(Error::NotPermitted);
        }
        let s = self.slots[i].as_mut().expect("found");
        if s.backend_state != DeviceState::InitWait || s.frontend_state != DeviceState::Initialising {
            return Err(Error::Busy);
        }
        let rings = s.spec.kind.nr_rings();
        let grefs_ok = c.ring_gref.iter().enumerate().all(|(r, &g)| (g != 0) == (r < rings));
        let port_ok = matches!(
            EventChannels::port_arg(u64::from(c.port)).map(|p| events.get(p).binding),
            Ok(Binding::Unbound { remote }) if remote == s.spec.backend.domid()
        );
        if !grefs_ok || !port_ok || c.features & !s.params.features != 0 {
            return Err(Error::Invalid);
        }
        s.connect = *c;
        s.frontend_state = DeviceState::Initialised;
        Ok(s.change(i))
    }

    /// `device_set_state`: moves the caller's side as
    /// `device::transition_allowed` permits. A frontend that goes back to
    /// `Initialising` forgets what it handed over; a slot being removed is
    /// freed once both sides are `Closed`.
    pub fn set_state(&mut self, dom: u32, handle: u64, state: u64) -> Result<Change, Error> {
        let (i, role) = self.find(dom, handle)?;
        let to = u32::try_from(state).ok().and_then(DeviceState::from_value).ok_or(Error::Invalid)?;
        let s = self.slots[i].as_mut().expect("found");
        let (from, peer) = match role {
            DeviceRole::Frontend => (s.frontend_state, s.backend_state),
            DeviceRole::Backend => (s.backend_state, s.frontend_state),
        };
        // A slot being removed only goes down.
        if !transition_allowed(role, from, to, peer) || (s.removing && !matches!(to, DeviceState::Closing | DeviceState::Closed)) {
            return Err(Error::Invalid);
        }
        match role {
            DeviceRole::Frontend => {
                s.frontend_state = to;
                if to == DeviceState::Initialising {
                    s.connect = DeviceConnect::default();
                }
            }
            DeviceRole::Backend => s.backend_state = to,
        }
        let change = s.change(i);
        self.free_if_done(i);
        Ok(change)
    }

    /// Moves the backend side of a slot the hypervisor serves.
    pub fn set_backend_state(&mut self, slot: usize, state: DeviceState) -> Change {
        let s = self.slots[slot].as_mut().expect("a live slot");
        assert_eq!(s.spec.backend, Backend::Hypervisor, "only the hypervisor's own side");
        s.backend_state = state;
        let change = s.change(slot);
        self.free_if_done(slot);
        change
    }

    /// Publishes the parameters of a slot the hypervisor serves.
    pub fn set_backend_params(&mut self, slot: usize, params: DeviceParams) {
        let s = self.slots[slot].as_mut().expect("a live slot");
        assert_eq!(s.spec.backend, Backend::Hypervisor, "only the hypervisor's own side");
        s.params = params;
    }

    /// Domain `dom` has ended: its side of every slot is `Closed`, the
    /// slots are being removed, and those whose other side is `Closed` too
    /// are freed. Returns the changes (the dead domain need not be told)
    /// and the slots freed.
    pub fn domain_ended(&mut self, dom: u32) -> (Vec<Change>, Vec<(usize, Slot)>) {
        let (mut changes, mut freed) = (Vec::new(), Vec::new());
        for i in 0..self.slots.len() {
            let Some(s) = self.slots[i].as_mut() else { continue };
            let front = s.spec.frontend == dom;
            let back = s.spec.backend == Backend::Domain(dom);
            if !front && !back {
                continue;
            }
            if front {
                s.frontend_state = DeviceState::Closed;
            }
            if back {
                s.backend_state = DeviceState::Closed;
            }
            s.removing = true;
            let mut c = s.change(i);
            for n in c.notify.iter_mut() {
                if *n == Some(dom) {
                    *n = None;
                }
            }
            changes.push(c);
            if let Some(slot) = self.free_if_done(i) {
                freed.push((i, slot));
            }
        }
        (changes, freed)
    }

    /// Frees slot `i` if it is being removed and both sides are `Closed`.
    fn free_if_done(&mut self, i: usize) -> Option<Slot> {
        let s = self.slots[i].as_ref()?;
        if s.removing && s.frontend_state == DeviceState::Closed && s.backend_state == DeviceState::Closed {
            return self.slots[i].take();
        }
        None
    }

    /// Whether slot `i` was freed (its id may have been reused since only by
    /// a new `create`).
    pub fn is_free(&self, i: usize) -> bool {
        self.get(i).is_none()
    }
}

/// Checks parameters a backend publishes for a device of `kind`, against
/// those the configuration fixed; returns what the slot will show.
/// `Invalid` for fields of another kind, reserved fields, undefined or
/// foreign feature bits, a sector size other than 512 or 4096, or a
/// change to a fixed MAC.
fn check_params(kind: DeviceKind, fixed: &DeviceParams, p: &DeviceParams) -> Result<DeviceParams, Error> {
    use device_features::*;
    if p.reserved0 != [0; 5] {
        return Err(Error::Invalid);
    }
    let blk = BLK_READONLY | BLK_FLUSH | BLK_DISCARD | BLK_REMOVABLE;
    let net = NET_CSUM_OFFLOAD | NET_SCATTER_GATHER;
    let ok = match kind {
        DeviceKind::Block => p.features & !blk == 0 && matches!(p.sector_size, 512 | 4096) && p.mac == [0; 6] && p.mtu == 0,
        DeviceKind::Net => p.features & !net == 0 && p.nr_sectors == 0 && p.sector_size == 0,
        DeviceKind::Console => *p == DeviceParams::default(),
    };
    if !ok {
        return Err(Error::Invalid);
    }
    let mut out = *p;
    if kind == DeviceKind::Net && fixed.mac != [0; 6] {
        if p.mac != [0; 6] && p.mac != fixed.mac {
            return Err(Error::Invalid);
        }
        out.mac = fixed.mac;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_channel::Privileges;
    use DeviceState::*;

    fn net(frontend: u32, backend: Backend, index: u32) -> SlotSpec {
        let params = DeviceParams { mac: [2, 0, 0, 0, 0, 1], ..DeviceParams::default() };
        SlotSpec { kind: DeviceKind::Net, frontend, backend, index, params }
    }

    fn blk(frontend: u32, backend: Backend) -> SlotSpec {
        SlotSpec { kind: DeviceKind::Block, frontend, backend, index: 0, params: DeviceParams::default() }
    }

    fn blk_params() -> DeviceParams {
        DeviceParams { nr_sectors: 2048, sector_size: 512, features: device_features::BLK_FLUSH, ..DeviceParams::default() }
    }

    #[test]
    fn handles_are_per_domain_and_lowest_free() {
        let mut t = DeviceTable::new();
        let a = t.create(blk(1, Backend::Domain(2))).unwrap();
        let b = t.create(net(2, Backend::Domain(3), 0)).unwrap();
        let c = t.create(net(1, Backend::Hypervisor, 0)).unwrap();
        assert_eq!((t.get(a).unwrap().frontend_handle, t.get(a).unwrap().backend_handle), (0, Some(0)));
        assert_eq!((t.get(b).unwrap().frontend_handle, t.get(b).unwrap().backend_handle), (1, Some(0)));
        assert_eq!((t.get(c).unwrap().frontend_handle, t.get(c).unwrap().backend_handle), (1, None));
        assert_eq!(t.find(2, 0), Ok((a, DeviceRole::Backend)));
        assert_eq!(t.find(2, 1), Ok((b, DeviceRole::Frontend)));
        assert_eq!(t.find(2, 2), Err(Error::NotFound));
        assert_eq!(t.find(1, 1 << 32), Err(Error::NotFound));
        assert_eq!(t.create(net(2, Backend::Domain(4), 0)), Err(Error::Exists), "a second net 0");
        assert_eq!(t.create(blk(5, Backend::Domain(5))), Err(Error::Invalid), "its own backend");
        for i in 1..63 {
            t.create(net(1, Backend::Hypervisor, i)).unwrap();
        }
        assert_eq!(t.create(net(1, Backend::Hypervisor, 99)), Err(Error::NoSpace), "64 handles");
        assert_eq!(t.frontend_handle(1, DeviceKind::Net, 0), Some(1));
        assert_eq!(t.frontend_handle(1, DeviceKind::Console, 0), None);
        let info = t.info(2, 1).unwrap();
        assert_eq!((info.kind, info.role, info.frontend_domid, info.backend_domid, info.params.mac), (3, 0, 2, 3, [2, 0, 0, 0, 0, 1]));
        assert_eq!(t.info(1, 1).unwrap().backend_domid, domid::HYPERVISOR);
    }

    #[test]
    fn the_handshake_in_order_and_nothing_out_of_it() {
        let mut t = DeviceTable::new();
        let mut ev = EventChannels::new(1, Privileges::default());
        let s = t.create(blk(1, Backend::Domain(2))).unwrap();
        let port = ev.alloc_unbound(2).unwrap();
        let other = ev.alloc_unbound(3).unwrap();
        let c = DeviceConnect { ring_gref: [5, 0], port, features: device_features::BLK_FLUSH };
        // The frontend cannot connect before the backend waits, nor publish.
        assert_eq!(t.connect(1, 0, &c, &ev), Err(Error::Busy));
        assert_eq!(t.set_params(1, 0, &blk_params()), Err(Error::NotPermitted));
        assert_eq!(t.set_state(1, 0, InitWait as u64), Err(Error::Invalid), "InitWait is the backend's");
        assert_eq!(t.set_state(2, 0, Connected as u64), Err(Error::Invalid));
        // Backend: parameters, then InitWait; each change tells both.
        assert_eq!(t.set_params(2, 0, &blk_params()), Ok(Change { slot: s, notify: [Some(1), Some(2)] }));
        assert_eq!(t.set_state(2, 0, InitWait as u64).map(|c| c.notify), Ok([Some(1), Some(2)]));
        assert_eq!(t.set_params(2, 0, &blk_params()), Err(Error::Busy), "only while initialising or closed");
        assert_eq!(t.connect(2, 0, &c, &ev), Err(Error::NotPermitted));
        // Bad handovers.
        for bad in [
            DeviceConnect { ring_gref: [0, 0], ..c },
            DeviceConnect { ring_gref: [5, 6], ..c },
            DeviceConnect { port: other, ..c },
            DeviceConnect { port: 0, ..c },
            DeviceConnect { port: 9, ..c },
            DeviceConnect { features: device_features::BLK_DISCARD, ..c },
        ] {
            assert_eq!(t.connect(1, 0, &bad, &ev), Err(Error::Invalid), "{bad:?}");
        }
        assert_eq!(t.info(1, 0).unwrap().connect, DeviceConnect::default(), "nothing handed over yet");
        assert!(t.connect(1, 0, &c, &ev).is_ok());
        assert_eq!(t.info(2, 0).unwrap().connect, c);
        assert_eq!(t.info(2, 0).unwrap().frontend_state, Initialised as u32);
        assert_eq!(t.connect(1, 0, &c, &ev), Err(Error::Busy), "once");
        assert_eq!(t.set_state(1, 0, Connected as u64), Err(Error::Invalid), "before the backend");
        assert!(t.set_state(2, 0, Connected as u64).is_ok());
        assert!(t.set_state(1, 0, Connected as u64).is_ok());
        assert_eq!(t.set_state(1, 0, 0), Err(Error::Invalid), "undefined state");
        assert_eq!(t.set_state(1, 0, 1 << 32 | 5), Err(Error::Invalid));
        // Down and up again: the frontend forgets its handover.
        assert!(t.set_state(1, 0, Closing as u64).is_ok());
        assert!(t.set_state(1, 0, Closed as u64).is_ok());
        assert!(t.set_state(1, 0, Initialising as u64).is_ok());
        assert_eq!(t.info(1, 0).unwrap().connect, DeviceConnect::default());
        assert!(!t.is_free(s), "only removal frees a slot");
    }

    #[test]
    fn parameters_fit_the_kind_and_keep_a_fixed_mac() {
        let mut t = DeviceTable::new();
        t.create(blk(1, Backend::Domain(2))).unwrap();
        t.create(net(1, Backend::Domain(2), 0)).unwrap();
        t.create(SlotSpec { kind: DeviceKind::Console, frontend: 1, backend: Backend::Domain(2), index: 0, params: DeviceParams::default() }).unwrap();
        let p = blk_params();
        for bad in [
            DeviceParams { sector_size: 1024, ..p },
            DeviceParams { features: device_features::NET_CSUM_OFFLOAD, ..p },
            DeviceParams { mac: [1; 6], ..p },
            DeviceParams { reserved0: [0, 0, 1, 0, 0], ..p },
        ] {
            assert_eq!(t.set_params(2, 0, &bad), Err(Error::Invalid), "{bad:?}");
        }
        let n = DeviceParams { mtu: 9000, features: device_features::NET_SCATTER_GATHER, ..DeviceParams::default() };
        assert!(t.set_params(2, 1, &n).is_ok());
        assert_eq!(t.info(1, 1).unwrap().params.mac, [2, 0, 0, 0, 0, 1], "the configured MAC stays");
        assert_eq!(t.set_params(2, 1, &DeviceParams { mac: [2, 0, 0, 0, 0, 9], ..n }), Err(Error::Invalid));
        assert_eq!(t.set_params(2, 1, &DeviceParams { nr_sectors: 1, ..n }), Err(Error::Invalid));
        assert_eq!(t.set_params(2, 2, &DeviceParams { mtu: 1, ..DeviceParams::default() }), Err(Error::Invalid));
        assert!(t.set_params(2, 2, &DeviceParams::default()).is_ok());
    }

    #[test]
    fn a_dead_side_closes_and_the_slot_goes_when_both_are_closed() {
        let mut t = DeviceTable::new();
        let s = t.create(blk(1, Backend::Domain(2))).unwrap();
        let h = t.create(blk(3, Backend::Hypervisor)).unwrap();
        t.set_state(2, 0, InitWait as u64).unwrap();
        let (changes, freed) = t.domain_ended(1);
        assert_eq!(changes, [Change { slot: s, notify: [None, Some(2)] }]);
        assert!(freed.is_empty());
        let info = t.info(2, 0).unwrap();
        assert_eq!((info.frontend_state, info.flags), (Closed as u32, device_consts::REMOVING));
        assert_eq!(t.set_state(2, 0, Connected as u64), Err(Error::Invalid));
        assert_eq!(t.set_state(2, 0, InitWait as u64), Err(Error::Invalid), "a slot being removed only goes down");
        t.set_state(2, 0, Closing as u64).unwrap();
        t.set_state(2, 0, Closed as u64).unwrap();
        assert!(t.is_free(s));
        assert_eq!(t.find(2, 0), Err(Error::NotFound));
        // The hypervisor's side follows at once when its frontend dies.
        let (changes, freed) = t.domain_ended(3);
        assert_eq!(changes, [Change { slot: h, notify: [None, None] }]);
        assert!(freed.is_empty(), "the hypervisor closes its side itself");
        t.set_backend_state(h, Closed);
        assert!(t.is_free(h));
        // Handles are reused.
        let again = t.create(blk(1, Backend::Domain(2))).unwrap();
        assert_eq!((t.get(again).unwrap().frontend_handle, t.get(again).unwrap().backend_handle), (0, Some(0)));
    }
}
