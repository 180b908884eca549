//! The console protocol: one ring of 64-byte slots (32 per page). Output
//! travels in `Write` requests; input comes back in the responses to `Read`
//! requests the frontend keeps posted.

crate::abi_enum! {
    /// `ConsoleSlot::op`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum ConsoleOp: u8, c_prefix = "CONSOLE_OP" {
        /// Request: `data[..len]` is output. Response: `len` bytes were taken.
        Write = 0,
        /// Request: up to `len` bytes of input wanted. Response: `data[..len]`
        /// is input (the backend answers when it has at least one byte).
        Read = 1,
    }
}

crate::abi_consts! {
    /// Console protocol constants.
    pub mod console_consts: u64, c_prefix = "CONSOLE" {
        /// Bytes per slot.
        SLOT_SIZE = 64;
        /// Data bytes per slot.
        DATA_MAX = 56;
    }
}

crate::abi_struct! {
    /// A console request or response (same layout both ways).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct ConsoleSlot(size = 64) {
        /// A `ConsoleOp`.
        @0 op: u8,
        /// Must be zero.
        @1 reserved0: u8,
        /// Bytes of `data` used (request: wanted, for `Read`).
        @2 len: u16,
        /// Echoed in the response.
        @4 id: u32,
        /// The bytes.
        @8 data: [u8; 56],
    }
}

/// The console protocol on its ring: requests and responses share a layout.
#[derive(Debug)]
pub struct ConsoleRing;

impl crate::ring::Protocol for ConsoleRing {
    type Request = ConsoleSlot;
    type Response = ConsoleSlot;
    const SLOT_SIZE: usize = crate::layout::usize_of(console_consts::SLOT_SIZE);
}
