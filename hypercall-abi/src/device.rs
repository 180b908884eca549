//! Split devices: how a frontend finds its backend and hands over its
//! rings, without a store daemon.
//!
//! The hypervisor keeps, per domain, a table of device slots. A slot joins
//! one frontend domain and one backend (a domain, or the hypervisor) for a
//! device of one [`DeviceKind`]. Slots come from the domain configuration at
//! build time or from `domain_device_create` at run time (hot-plug). Each
//! side names a slot by its own handle and sees the same [`DeviceInfo`].
//! Every change of a slot raises `VIRQ_DEVICE` in both domains.
//!
//! The handshake, each step a state change the other side is told of:
//!
//! 1. slot created: both sides `Initialising`;
//! 2. backend: `device_set_params`, then `InitWait`;
//! 3. frontend: grants its ring pages to the backend, allocates an unbound
//!    port for it, then `device_connect` (its state becomes `Initialised`);
//! 4. backend: maps the rings, binds the port, then `Connected`;
//! 5. frontend: `Connected`.
//!
//! Either side may then go `Closing` → `Closed`; removal
//! (`domain_device_destroy`) asks both to, and the slot disappears once
//! both are `Closed`.

crate::abi_enum! {
    /// What a device slot carries.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum DeviceKind: u16, c_prefix = "DEVICE_KIND" {
        /// A console: the `console` protocol on one ring.
        Console = 1,
        /// A block device: the `blk` protocol on one ring.
        Block = 2,
        /// A network interface: the `net` protocol on two rings (tx, rx).
        Net = 3,
    }
}

impl DeviceKind {
    /// Rings the protocol uses.
    pub const fn nr_rings(self) -> usize {
        match self {
            DeviceKind::Net => 2,
            _ => 1,
        }
    }
}

crate::abi_enum! {
    /// Which side of a slot the caller is.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum DeviceRole: u8, c_prefix = "DEVICE_ROLE" {
        /// The side that uses the device.
        Frontend = 0,
        /// The side that provides it.
        Backend = 1,
    }
}

crate::abi_enum! {
    /// The state of one side of a slot.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum DeviceState: u32, c_prefix = "DEVICE_STATE" {
        /// Setting up; nothing published yet.
        Initialising = 1,
        /// Backend: parameters published, waiting for the frontend's rings.
        InitWait = 2,
        /// Frontend: rings and port handed over (`device_connect`).
        Initialised = 3,
        /// In service.
        Connected = 4,
        /// Shutting down; finish or fail outstanding requests.
        Closing = 5,
        /// Down; rings unmapped, port closed.
        Closed = 6,
    }
}

/// Whether `role` may move its side of a slot from `from` to `to` with
/// `device_set_state`, given the other side's state `peer`. `Initialised`
/// is reached only through `device_connect`.
pub const fn transition_allowed(role: DeviceRole, from: DeviceState, to: DeviceState, peer: DeviceState) -> bool {
    use DeviceState::*;
    match (role, from, to) {
        (_, Initialising | InitWait | Initialised | Connected, Closing) => true,
        (_, Closing, Closed) => true,
        (DeviceRole::Backend, Initialising, InitWait) => true,
        (DeviceRole::Backend, InitWait, Connected) => matches!(peer, Initialised),
        (DeviceRole::Backend, Closed, InitWait) => true,
        (DeviceRole::Frontend, Initialised, Connected) => matches!(peer, Connected),
        (DeviceRole::Frontend, Closed, Initialising) => true,
        _ => false,
    }
}

crate::abi_consts! {
    /// Device-slot limits and flags.
    pub mod device_consts: u32, c_prefix = "DEVICE" {
        /// Handles per domain: 0 .. `SLOTS_MAX`.
        SLOTS_MAX = 64;
        /// Rings a slot can carry.
        RINGS_MAX = 2;
        /// "No device" (`StartInfoExt::console_device`).
        NONE = 0xffff_ffff;
        /// `DeviceInfo::flags`: removal was requested; move to `Closing`.
        REMOVING = 1 << 0;
    }
}

crate::abi_consts! {
    /// `DeviceParams::features` and `DeviceConnect::features` bits: the
    /// backend offers, the frontend accepts a subset.
    pub mod device_features: u32, c_prefix = "DEVF" {
        /// Block: the device is read-only.
        BLK_READONLY = 1 << 0;
        /// Block: `Flush` requests are honoured.
        BLK_FLUSH = 1 << 1;
        /// Block: `Discard` requests are honoured.
        BLK_DISCARD = 1 << 2;
        /// Block: removable medium.
        BLK_REMOVABLE = 1 << 3;
        /// Net: the tx side accepts packets with a blank checksum
        /// (`NET_TX_CSUM_BLANK`), and rx may deliver them.
        NET_CSUM_OFFLOAD = 1 << 8;
        /// Net: a packet may span several slots (`NET_MORE_DATA`).
        NET_SCATTER_GATHER = 1 << 9;
    }
}

crate::abi_struct! {
    /// What the backend publishes about the device (`device_set_params`).
    /// Fields of other kinds are zero.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct DeviceParams(size = 64) {
        /// Block: capacity in 512-byte sectors.
        @0 nr_sectors: u64,
        /// Block: logical sector size in bytes (512 or 4096).
        @8 sector_size: u32,
        /// `device_features` the backend offers.
        @12 features: u32,
        /// Net: the MAC address (set by the configuration; the backend may
        /// not change a non-zero one).
        @16 mac: [u8; 6],
        /// Net: MTU in bytes (0: 1500).
        @22 mtu: u16,
        /// Must be zero.
        @24 reserved0: [u64; 5],
    }
}

crate::abi_struct! {
    /// What the frontend hands over (`device_connect`).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct DeviceConnect(size = 16) {
        /// Grant references of the ring pages, granted writable to the
        /// backend (net: tx then rx; unused entries 0).
        @0 ring_gref: [u32; 2],
        /// A port allocated with `evtchn_alloc_unbound` for the backend.
        @8 port: u32,
        /// `device_features` the frontend accepts (a subset of the offer).
        @12 features: u32,
    }
}

crate::abi_struct! {
    /// What `device_query` writes: a slot as one side sees it.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct DeviceInfo(size = 112) {
        /// The caller's handle for the slot.
        @0 handle: u32,
        /// A `DeviceKind`.
        @4 kind: u16,
        /// The caller's `DeviceRole`.
        @6 role: u8,
        /// Must be zero.
        @7 reserved0: u8,
        /// The frontend domain.
        @8 frontend_domid: u32,
        /// The backend domain, or `DOMID_HYPERVISOR`.
        @12 backend_domid: u32,
        /// The frontend's `DeviceState`.
        @16 frontend_state: u32,
        /// The backend's `DeviceState`.
        @20 backend_state: u32,
        /// `device_consts` flags (`REMOVING`).
        @24 flags: u32,
        /// Per-kind index among the frontend's devices of this kind
        /// (`xvda` is block 0), fixed by the configuration.
        @28 index: u32,
        /// What the frontend handed over (zero before `device_connect`).
        @32 connect: DeviceConnect,
        /// What the backend published.
        @48 params: DeviceParams,
    }
}

crate::abi_struct! {
    /// Argument of `domain_device_create`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct DeviceCreate(size = 88) {
        /// The frontend domain.
        @0 frontend_domid: u32,
        /// The backend domain or `DOMID_HYPERVISOR`.
        @4 backend_domid: u32,
        /// A `DeviceKind`.
        @8 kind: u16,
        /// Must be zero.
        @10 reserved0: u16,
        /// Per-kind index in the frontend (see `DeviceInfo::index`).
        @12 index: u32,
        /// Out: the frontend's handle.
        @16 frontend_handle: u32,
        /// Out: the backend's handle (`DEVICE_NONE` for the hypervisor).
        @20 backend_handle: u32,
        /// Parameters fixed by the configuration (net: `mac`); the rest zero.
        @24 params: DeviceParams,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeviceRole::*;
    use DeviceState::*;

    #[test]
    fn handshake_in_order() {
        // Backend: Initialising -> InitWait, then Connected once the frontend is Initialised.
        assert!(transition_allowed(Backend, Initialising, InitWait, Initialising));
        assert!(!transition_allowed(Backend, InitWait, Connected, Initialising));
        assert!(transition_allowed(Backend, InitWait, Connected, Initialised));
        // Frontend: Initialised only through device_connect, Connected after the backend.
        assert!(!transition_allowed(Frontend, Initialising, Initialised, InitWait));
        assert!(!transition_allowed(Frontend, Initialised, Connected, InitWait));
        assert!(transition_allowed(Frontend, Initialised, Connected, Connected));
        // Either side may close from anywhere live, and reopen after Closed.
        for role in [Frontend, Backend] {
            for s in [Initialising, InitWait, Initialised, Connected] {
                assert!(transition_allowed(role, s, Closing, Connected));
            }
            assert!(transition_allowed(role, Closing, Closed, Connected));
            assert!(!transition_allowed(role, Closed, Connected, Connected));
        }
        assert!(transition_allowed(Backend, Closed, InitWait, Closed));
        assert!(transition_allowed(Frontend, Closed, Initialising, Closed));
        assert!(!transition_allowed(Frontend, Initialising, InitWait, Initialising), "InitWait is the backend's");
    }
}
