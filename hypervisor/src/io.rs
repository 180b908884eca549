//! Grants and split devices as the running hypervisor carries them out
//! (SPEC §17–22): the grant calls that reach other domains, the device
//! slots and their handshake, the backends the hypervisor serves itself,
//! and what a domain's end does to all of them. The logic is in
//! `veneer_core::{grant_table, device, hv_backend}`; this module routes
//! calls there and raises the events they ask for.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::mem::size_of;

use hypercall_abi::device::{DeviceConnect, DeviceKind, DeviceParams, DeviceState};
use hypercall_abi::event::Virq;
use hypercall_abi::layout::Wire;
use hypercall_abi::Error;
use veneer_core::device::{Backend, Change, DeviceTable};
use veneer_core::grant_table;
use veneer_core::hv_backend::HvBackend;
use veneer_core::hypercall::Call;

use crate::arch::x86_64::serial;
use crate::hypervisor::Hypervisor;

/// The device slots of the machine and the backends the hypervisor serves,
/// by slot.
#[derive(Default)]
pub struct Io {
    pub devices: DeviceTable,
    pub backends: BTreeMap<usize, HvBackend>,
    /// Slots whose last pass stopped at its bound with requests waiting.
    deferred: Vec<usize>,
}

impl Io {
    /// Whether a backend has requests waiting for another pass.
    pub fn has_deferred(&self) -> bool {
        !self.deferred.is_empty()
    }
}

fn console(bytes: &[u8]) {
    serial::write_bytes(bytes);
}

/// Carries out a grant or device call of the running vCPU.
pub fn carry_out(hv: &mut Hypervisor, call: Call) -> Result<u64, Error> {
    let me = hv.loaded_here().expect("a vCPU is running");
    let (caller, vcpu) = (me.domain, me.vcpu as usize);
    match call {
        Call::GrantMap { ops, count } => grant_table::map(&mut hv.domains, caller, vcpu, &mut hv.machine, &mut hv.mem, ops, count),
        Call::GrantUnmap { ops, count } => grant_table::unmap(&mut hv.domains, caller, vcpu, &mut hv.machine, &mut hv.mem, ops, count),
        Call::GrantCopy { ops, count } => grant_table::copy(&mut hv.domains, caller, vcpu, &mut hv.machine, &mut hv.mem, ops, count),
        Call::DeviceQuery { handle, out } => {
            let info = hv.io.devices.info(caller, handle)?;
            let mut bytes = [0u8; size_of::<hypercall_abi::device::DeviceInfo>()];
            info.encode(&mut bytes);
            hv.domains[&caller].space(vcpu).copy_to(&mut hv.mem, out, &bytes)?;
            Ok(0)
        }
        Call::DeviceSetParams { handle, params } => {
            let mut bytes = [0u8; size_of::<DeviceParams>()];
            hv.domains[&caller].space(vcpu).copy_from(&hv.mem, params, &mut bytes)?;
            let change = hv.io.devices.set_params(caller, handle, &DeviceParams::decode(&bytes))?;
            notify(hv, change);
            Ok(0)
        }
        Call::DeviceConnect { handle, args } => {
            let mut bytes = [0u8; size_of::<DeviceConnect>()];
            hv.domains[&caller].space(vcpu).copy_from(&hv.mem, args, &mut bytes)?;
            let c = DeviceConnect::decode(&bytes);
            let change = hv.io.devices.connect(caller, handle, &c, &hv.domains[&caller].events)?;
            notify(hv, change);
            if let Some(backend) = hv.io.backends.get_mut(&change.slot) {
                let attached = backend.attach(&mut hv.domains, c.ring_gref[0], c.port, c.features, &mut hv.machine, &mut hv.mem);
                if let Err(e) = attached {
                    log::info!("d{caller}: the hypervisor cannot attach device slot {}: {e:?}", change.slot);
                }
                let state = if attached.is_ok() { DeviceState::Connected } else { DeviceState::Closed };
                let change = hv.io.devices.set_backend_state(change.slot, state);
                notify(hv, change);
            }
            Ok(0)
        }
        Call::DeviceSetState { handle, state } => {
            let change = hv.io.devices.set_state(caller, handle, state)?;
            notify(hv, change);
            follow_frontend(hv, change.slot);
            release_if_freed(hv, change.slot);
            Ok(0)
        }
        other => unreachable!("{other:?} is not a grant or device call"),
    }
}

/// The hypervisor's side of a slot it serves follows the frontend's: down
/// when the frontend goes down, waiting again when it starts over.
fn follow_frontend(hv: &mut Hypervisor, slot: usize) {
    let Some(s) = hv.io.devices.get(slot).copied() else { return };
    let Some(backend) = hv.io.backends.get_mut(&slot) else { return };
    let to = match s.frontend_state {
        DeviceState::Closing | DeviceState::Closed => {
            backend.detach(&mut hv.domains, &mut hv.machine, &mut hv.mem, &mut console);
            DeviceState::Closed
        }
        DeviceState::Initialising if s.backend_state == DeviceState::Closed && !s.removing => {
            hv.io.devices.set_backend_params(slot, backend.params());
            DeviceState::InitWait
        }
        _ => return,
    };
    if to != s.backend_state {
        let change = hv.io.devices.set_backend_state(slot, to);
        notify(hv, change);
    }
    release_if_freed(hv, slot);
}

/// Gives back what the hypervisor held for a slot that has been freed.
fn release_if_freed(hv: &mut Hypervisor, slot: usize) {
    if !hv.io.devices.is_free(slot) {
        return;
    }
    if let Some(mut backend) = hv.io.backends.remove(&slot) {
        backend.detach(&mut hv.domains, &mut hv.machine, &mut hv.mem, &mut console);
        if let veneer_core::hv_backend::Service::Block(disk) = &backend.service {
            for &mfn in disk.frames() {
                hv.machine.allocator.free(mfn).expect("a disk frame came from the allocator");
            }
        }
    }
}

/// Raises `VIRQ_DEVICE` in the domains a change concerns (those that
/// bound it).
fn notify(hv: &mut Hypervisor, change: Change) {
    for d in change.notify.into_iter().flatten() {
        if let Some(port) = hv.domains.get(&d).and_then(|dom| dom.events.virq_port(Virq::Device, 0)) {
            hv.raise(d, port);
        }
    }
}

/// `evtchn_send` on a port of `frontend` bound to the hypervisor: serves
/// the ring behind it, and notifies back if the ring asks for it.
pub fn kick(hv: &mut Hypervisor, frontend: u32, port: u32) {
    if let Some(slot) = hv.io.devices.hypervisor_slot_by_port(frontend, port) {
        serve(hv, slot);
    }
}

/// One pass over the ring of `slot`; notifies its frontend if asked, and
/// remembers the slot if requests are left for another pass.
fn serve(hv: &mut Hypervisor, slot: usize) {
    let Some(backend) = hv.io.backends.get_mut(&slot) else { return };
    let (frontend, port) = (backend.frontend, backend.port());
    let kick = backend.kick(&mut hv.domains, &mut hv.machine, &mut hv.mem, &mut console);
    if let (true, Some(port)) = (kick.notify, port) {
        hv.raise(frontend, port);
    }
    if kick.more && !hv.io.deferred.contains(&slot) {
        hv.io.deferred.push(slot);
    }
}

/// One more pass over each ring a pass left requests on. Called at every
/// scheduling decision: a frontend that keeps its ring full (or lies that
/// it does) gets one ring's worth of the hypervisor's time per decision.
pub fn continue_deferred(hv: &mut Hypervisor) {
    for slot in core::mem::take(&mut hv.io.deferred) {
        serve(hv, slot);
    }
}

/// Domain `id` is ending (it may never have been built): its grant
/// mappings go back, its side of every slot closes, the other sides are
/// told, and what the hypervisor served it is released. Called while the
/// domain is still in the table, before its teardown.
pub fn domain_ending(hv: &mut Hypervisor, id: u32) {
    grant_table::release_mappings(&mut hv.domains, id, &mut hv.machine, &mut hv.mem);
    let (changes, freed) = hv.io.devices.domain_ended(id);
    for c in changes {
        notify(hv, c);
        if hv.io.backends.contains_key(&c.slot) {
            follow_frontend(hv, c.slot);
        }
    }
    for (slot, _) in freed {
        release_if_freed(hv, slot);
    }
}

/// A slot to create at boot, resolved from the configuration.
pub struct BootDevice<'a> {
    pub kind: DeviceKind,
    pub frontend: u32,
    pub backend: Backend,
    pub index: u32,
    pub mac: [u8; 6],
    /// For a block device the hypervisor serves: its RAM disk's contents.
    pub image: Option<&'a [u8]>,
}

/// Creates a slot at boot; a backend the hypervisor serves is set up and
/// waiting (`InitWait`) before any domain runs.
pub fn create_boot_device(hv: &mut Hypervisor, d: &BootDevice<'_>) -> Result<(), Error> {
    use veneer_core::device::SlotSpec;
    use veneer_core::hv_backend::{LineBuffer, RamDisk, Service};
    let params = DeviceParams { mac: d.mac, ..DeviceParams::default() };
    let spec = SlotSpec { kind: d.kind, frontend: d.frontend, backend: d.backend, index: d.index, params };
    let service = match (d.backend, d.kind) {
        (Backend::Domain(_), _) => None,
        (Backend::Hypervisor, DeviceKind::Block) => {
            let image = d.image.expect("the configuration requires an image");
            let frames = hv.machine.allocator.alloc_many(RamDisk::frames_for(image.len()) as u64).ok_or(Error::NoMemory)?;
            Some(Service::Block(RamDisk::new(frames, image, &mut hv.mem)))
        }
        (Backend::Hypervisor, DeviceKind::Console) => Some(Service::Console(LineBuffer::default())),
        (Backend::Hypervisor, DeviceKind::Net) => unreachable!("the configuration refuses networks the hypervisor serves"),
    };
    let slot = match hv.io.devices.create(spec) {
        Ok(slot) => slot,
        Err(e) => {
            if let Some(Service::Block(disk)) = service {
                for &mfn in disk.frames() {
                    hv.machine.allocator.free(mfn).expect("just taken");
                }
            }
            return Err(e);
        }
    };
    if let Some(service) = service {
        let backend = HvBackend::new(slot, d.frontend, service);
        hv.io.devices.set_backend_params(slot, backend.params());
        hv.io.devices.set_backend_state(slot, DeviceState::InitWait);
        hv.io.backends.insert(slot, backend);
    }
    Ok(())
}
