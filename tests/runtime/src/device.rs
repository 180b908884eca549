//! Split devices from a guest (SPEC §19): the slot calls, typed, and the
//! two sides of the handshake.
//!
//! Guests here wait with events masked, in `sched_poll` on the ports that
//! matter ([`crate::event::wait_any`]): `VIRQ_DEVICE` for slot changes and
//! each device's own port for its rings.

use hypercall_abi::call::hypercall2;
use hypercall_abi::device::{DeviceConnect, DeviceInfo, DeviceKind, DeviceParams, DeviceRole, DeviceState, device_consts};
use hypercall_abi::event::Virq;
use hypercall_abi::{Error, Hypercall};

use crate::event;
use crate::grant::{self, Grants};
use crate::hypercall::result;
use crate::mmu::{poke, Memory, RW};

pub fn query(handle: u32) -> Result<DeviceInfo, Error> {
    let mut info = DeviceInfo::default();
    result(hypercall2(Hypercall::DeviceQuery.number(), u64::from(handle), &mut info as *mut DeviceInfo as u64))?;
    Ok(info)
}

pub fn set_params(handle: u32, params: &DeviceParams) -> Result<u64, Error> {
    result(hypercall2(Hypercall::DeviceSetParams.number(), u64::from(handle), params as *const DeviceParams as u64))
}

pub fn connect(handle: u32, c: &DeviceConnect) -> Result<u64, Error> {
    result(hypercall2(Hypercall::DeviceConnect.number(), u64::from(handle), c as *const DeviceConnect as u64))
}

pub fn set_state(handle: u32, state: DeviceState) -> Result<u64, Error> {
    result(hypercall2(Hypercall::DeviceSetState.number(), u64::from(handle), state as u64))
}

/// A state as `DeviceInfo` holds it.
pub fn state(raw: u32) -> DeviceState {
    DeviceState::from_value(raw).expect("the hypervisor reports defined states")
}

/// The first handle at or after `from` where this domain has `role` for a
/// device of `kind`.
pub fn find(role: DeviceRole, kind: DeviceKind, from: u32) -> Option<(u32, DeviceInfo)> {
    (from..device_consts::SLOTS_MAX).find_map(|h| {
        let info = query(h).ok()?;
        (info.role == role as u8 && info.kind == kind as u16).then_some((h, info))
    })
}

/// Nanoseconds a wait gives up after: generous, for emulated CPUs.
pub const TIMEOUT_NS: u64 = 60_000_000_000;

/// Binds `VIRQ_DEVICE`: slot changes wake whoever waits on it.
pub fn bind_device_virq() -> u32 {
    event::bind_virq(Virq::Device as u32, 0).expect("VIRQ_DEVICE binds once")
}

/// Waits (on `virq`, the `VIRQ_DEVICE` port) until slot `handle`
/// satisfies `ready`. Errors: `NotFound` if the slot goes away, `Again` on
/// the timeout.
pub fn wait_until(virq: u32, handle: u32, ready: impl Fn(&DeviceInfo) -> bool) -> Result<DeviceInfo, Error> {
    let deadline = event::now() + TIMEOUT_NS;
    loop {
        let info = query(handle)?;
        if ready(&info) {
            return Ok(info);
        }
        if !event::wait_any(&[virq], deadline) {
            return Err(Error::Again);
        }
    }
}

/// The frontend's side of a connected slot: its ring pages (mapped at
/// `va`, granted as `gref`) and its port to the backend.
#[derive(Clone, Copy, Debug)]
pub struct Front {
    pub handle: u32,
    pub info: DeviceInfo,
    pub port: u32,
    pub rings: [(u64, u32); 2],
    pub nr_rings: usize,
}

impl Front {
    /// Step 3 of the handshake, first half: waits for the backend to
    /// publish its parameters, then takes zeroed ring pages, maps them and
    /// grants them to the backend. The caller initialises the rings before
    /// [`hand_over`](Self::hand_over).
    pub fn prepare(virq: u32, handle: u32, mem: &mut Memory<'_>, grants: &mut Grants) -> Result<Front, Error> {
        let info = wait_until(virq, handle, |i| state(i.backend_state) == DeviceState::InitWait)?;
        let nr_rings = DeviceKind::from_value(info.kind).expect("a defined kind").nr_rings();
        let mut rings = [(0, 0); 2];
        for r in rings.iter_mut().take(nr_rings) {
            let pfn = mem.alloc();
            mem.map(pfn, RW)?;
            for w in 0..512 {
                poke(Memory::va(pfn) + w * 8, 0);
            }
            let gref = grants.grant(info.backend_domid, mem.mfn(pfn), false).ok_or(Error::NoSpace)?;
            *r = (Memory::va(pfn), gref);
        }
        Ok(Front { handle, info, port: 0, rings, nr_rings })
    }

    /// Step 3, second half, and step 5: a port for the backend,
    /// `device_connect`, then `Connected` once the backend is.
    pub fn hand_over(&mut self, virq: u32, features: u32) -> Result<(), Error> {
        self.port = event::alloc_unbound(self.info.backend_domid)?;
        let mut c = DeviceConnect { ring_gref: [0; 2], port: self.port, features };
        for (g, r) in c.ring_gref.iter_mut().zip(&self.rings[..self.nr_rings]) {
            *g = r.1;
        }
        connect(self.handle, &c)?;
        let info = wait_until(virq, self.handle, |i| matches!(state(i.backend_state), DeviceState::Connected | DeviceState::Closed))?;
        if state(info.backend_state) != DeviceState::Connected {
            return Err(Error::Busy);
        }
        set_state(self.handle, DeviceState::Connected)?;
        self.info = query(self.handle)?;
        Ok(())
    }

    /// Notifies the backend.
    pub fn notify(&self) {
        event::send(self.port).expect("the device's port");
    }

    /// Shuts the slot down from this side: `Closing`, waits for the backend
    /// to let go of the rings, revokes them, closes the port, `Closed`.
    pub fn close(self, virq: u32, grants: &mut Grants) -> Result<(), Error> {
        set_state(self.handle, DeviceState::Closing)?;
        let deadline = event::now() + TIMEOUT_NS;
        for &(_, gref) in &self.rings[..self.nr_rings] {
            while grants.end(gref).is_err() {
                if !event::wait_any(&[virq], deadline) {
                    return Err(Error::Again);
                }
            }
        }
        event::close(self.port)?;
        set_state(self.handle, DeviceState::Closed)?;
        Ok(())
    }
}

/// What a backend slot did in one [`Back::step`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing to serve yet (or any more, until the frontend reconnects).
    Idle,
    /// Connected: serve the rings.
    Serving,
    /// The slot is gone.
    Gone,
}

/// The backend's side of one slot, driven by [`step`](Self::step) each time
/// anything may have changed. Its rings are mapped at addresses it takes
/// once from `Memory` and keeps across reconnections.
#[derive(Clone, Copy, Debug)]
pub struct Back {
    pub handle: u32,
    pub frontend: u32,
    /// The local end of the frontend's port, while connected.
    pub port: Option<u32>,
    /// Where each ring is mapped, and the mapping's handle while mapped.
    pub rings: [(u64, Option<u32>); 2],
    pub nr_rings: usize,
    pub kind: DeviceKind,
    /// The slot as [`step`](Self::step) last saw it.
    pub info: DeviceInfo,
}

impl Back {
    pub fn new(handle: u32, info: &DeviceInfo, mem: &mut Memory<'_>) -> Back {
        let kind = DeviceKind::from_value(info.kind).expect("a defined kind");
        let mut rings = [(0, None); 2];
        for r in rings.iter_mut().take(kind.nr_rings()) {
            r.0 = Memory::va(mem.alloc());
        }
        Back { handle, frontend: info.frontend_domid, port: None, rings, nr_rings: kind.nr_rings(), kind, info: *info }
    }

    /// Moves the handshake along as the slot's states require: publish and
    /// wait; map and bind when the frontend has handed over; let go when
    /// it goes down or the slot is being removed. `params` is what to
    /// publish.
    pub fn step(&mut self, params: &DeviceParams) -> Result<Step, Error> {
        let info = match query(self.handle) {
            Ok(i) => i,
            Err(Error::NotFound) => return Ok(Step::Gone),
            Err(e) => return Err(e),
        };
        self.info = info;
        let (mine, theirs) = (state(info.backend_state), state(info.frontend_state));
        let removing = info.flags & device_consts::REMOVING != 0;
        let going = removing || matches!(theirs, DeviceState::Closing | DeviceState::Closed);
        match mine {
            DeviceState::Connected | DeviceState::InitWait if going => {
                self.detach();
                set_state(self.handle, DeviceState::Closing)?;
                set_state(self.handle, DeviceState::Closed)?;
                Ok(Step::Idle)
            }
            DeviceState::Initialising | DeviceState::Closed if !removing && theirs == DeviceState::Initialising => {
                set_params(self.handle, params)?;
                set_state(self.handle, DeviceState::InitWait)?;
                Ok(Step::Idle)
            }
            DeviceState::InitWait if theirs == DeviceState::Initialised => {
                if let Err(e) = self.attach(&info) {
                    // A handover that cannot be used: this side goes down
                    // and waits for the frontend to start over.
                    self.detach();
                    set_state(self.handle, DeviceState::Closing)?;
                    set_state(self.handle, DeviceState::Closed)?;
                    crate::println!("backend: slot {} of d{} refused: {:?}", self.handle, self.frontend, e);
                    return Ok(Step::Idle);
                }
                set_state(self.handle, DeviceState::Connected)?;
                Ok(Step::Serving)
            }
            DeviceState::Connected => Ok(Step::Serving),
            _ => Ok(Step::Idle),
        }
    }

    fn attach(&mut self, info: &DeviceInfo) -> Result<(), Error> {
        for (r, &gref) in self.rings.iter_mut().zip(&info.connect.ring_gref).take(self.nr_rings) {
            let (handle, _) = grant::map_one(self.frontend, gref, r.0, false)?;
            r.1 = Some(handle);
        }
        self.port = Some(event::bind_interdomain(self.frontend, info.connect.port)?);
        Ok(())
    }

    /// Unmaps the rings and closes the port, whatever is held.
    pub fn detach(&mut self) {
        for r in self.rings.iter_mut().take(self.nr_rings) {
            if let Some(h) = r.1.take() {
                grant::unmap_one(r.0, h).expect("a mapping this backend made");
            }
        }
        if let Some(p) = self.port.take() {
            event::close(p).expect("the port this backend bound");
        }
    }

    /// Notifies the frontend.
    pub fn notify(&self) {
        if let Some(p) = self.port {
            event::send(p).expect("the bound port");
        }
    }

    /// The ring page `r` while mapped.
    pub fn ring(&self, r: usize) -> crate::ring::MappedPage {
        crate::ring::MappedPage(self.rings[r].0)
    }
}
