//! The network protocol: a transmit ring (16-byte slots, 128 per page) and
//! a receive ring (8-byte slots, 256 per page). The frontend transmits by
//! granting pages holding packets; it receives by posting granted empty
//! pages, which the backend fills (by `grant_copy`) and returns.

crate::abi_consts! {
    /// Network protocol constants.
    pub mod net_consts: u64, c_prefix = "NET" {
        /// Bytes per tx slot.
        TX_SLOT_SIZE = 16;
        /// Bytes per rx slot.
        RX_SLOT_SIZE = 8;
        /// The most slots one packet spans (with `NET_SCATTER_GATHER`).
        SLOTS_PER_PACKET_MAX = 18;
    }
}

crate::abi_consts! {
    /// `NetTxRequest::flags` and `NetRxResponse::flags`.
    pub mod net_flags: u16, c_prefix = "NETF" {
        /// The packet's transport checksum is blank (partial); the other
        /// side computes it (needs `NET_CSUM_OFFLOAD`).
        CSUM_BLANK = 1 << 0;
        /// The packet's checksum was verified already.
        DATA_VALIDATED = 1 << 1;
        /// More slots of this packet follow.
        MORE_DATA = 1 << 2;
    }
}

crate::abi_enum! {
    /// Status of a network response.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum NetStatus: i16, c_prefix = "NET_STATUS" {
        /// Done.
        Ok = 0,
        /// The backend could not handle the packet.
        Error = -1,
        /// The packet was dropped (no room, filtered).
        Dropped = -2,
    }
}

crate::abi_struct! {
    /// A transmit request: one slot of a packet.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct NetTxRequest(size = 16) {
        /// Grant of the page holding the data (read-only suffices).
        @0 gref: u32,
        /// Offset of the data in the page.
        @4 offset: u16,
        /// `net_flags` bits.
        @6 flags: u16,
        /// Echoed in the response.
        @8 id: u16,
        /// First slot: the whole packet's length; later slots: this slot's.
        @10 size: u16,
        /// Must be zero.
        @12 reserved0: u32,
    }
}

crate::abi_struct! {
    /// A transmit response, one per request slot.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct NetTxResponse(size = 8) {
        /// The request's `id`.
        @0 id: u16,
        /// A `NetStatus`.
        @2 status: i16,
        /// Must be zero.
        @4 reserved0: u32,
    }
}

crate::abi_struct! {
    /// A receive request: an empty page for the backend to fill.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct NetRxRequest(size = 8) {
        /// Echoed in the response.
        @0 id: u16,
        /// Must be zero.
        @2 reserved0: u16,
        /// Grant of the page, writable.
        @4 gref: u32,
    }
}

crate::abi_struct! {
    /// A receive response: where the data landed.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct NetRxResponse(size = 8) {
        /// The request's `id`.
        @0 id: u16,
        /// Offset of the data in the page.
        @2 offset: u16,
        /// `net_flags` bits.
        @4 flags: u16,
        /// Bytes received (≥ 0) or a negative `NetStatus`.
        @6 status: i16,
    }
}

const _: () = assert!(core::mem::size_of::<NetTxRequest>() as u64 == net_consts::TX_SLOT_SIZE);
const _: () = assert!(core::mem::size_of::<NetRxRequest>() as u64 == net_consts::RX_SLOT_SIZE);
const _: () = assert!(core::mem::size_of::<NetRxResponse>() as u64 == net_consts::RX_SLOT_SIZE);

/// The transmit ring of the network protocol.
#[derive(Debug)]
pub struct NetTxRing;

impl crate::ring::Protocol for NetTxRing {
    type Request = NetTxRequest;
    type Response = NetTxResponse;
    const SLOT_SIZE: usize = crate::layout::usize_of(net_consts::TX_SLOT_SIZE);
}

/// The receive ring of the network protocol.
#[derive(Debug)]
pub struct NetRxRing;

impl crate::ring::Protocol for NetRxRing {
    type Request = NetRxRequest;
    type Response = NetRxResponse;
    const SLOT_SIZE: usize = crate::layout::usize_of(net_consts::RX_SLOT_SIZE);
}
