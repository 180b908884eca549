//! The block protocol: one ring of 96-byte slots (32 per page). Each
//! request reads or writes up to 8 segments, each a part of a granted page.

crate::abi_enum! {
    /// `BlkRequest::operation`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum BlkOp: u8, c_prefix = "BLK_OP" {
        /// Read sectors into the segments.
        Read = 0,
        /// Write sectors from the segments.
        Write = 1,
        /// Make every completed write durable (needs `BLK_FLUSH`); no segments.
        Flush = 2,
        /// Discard `nr_sectors` from `sector` (needs `BLK_DISCARD`); no segments.
        Discard = 3,
    }
}

crate::abi_consts! {
    /// Block protocol constants.
    pub mod blk_consts: u64, c_prefix = "BLK" {
        /// Bytes per slot: `size_of(BlkRequest)`.
        SLOT_SIZE = 96;
        /// Segments per request.
        SEGMENTS_MAX = 8;
        /// Sector unit of `sector`, `first_sect`, `last_sect`: 512 bytes,
        /// whatever the device's logical sector size.
        SECTOR_SIZE = 512;
    }
}

crate::abi_enum! {
    /// `BlkResponse::status`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum BlkStatus: i16, c_prefix = "BLK_STATUS" {
        /// Done.
        Ok = 0,
        /// The device failed the request.
        IoError = -1,
        /// The operation is not supported (not offered, or a malformed request).
        NotSupported = -2,
    }
}

crate::abi_struct! {
    /// One segment: sectors `first_sect ..= last_sect` (512-byte units) of
    /// the granted page `gref`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct BlkSegment(size = 8) {
        /// Grant of the data page (writable for `Read`).
        @0 gref: u32,
        /// First sector within the page, 0–7.
        @4 first_sect: u8,
        /// Last sector within the page, `first_sect`–7.
        @5 last_sect: u8,
        /// Must be zero.
        @6 reserved0: u16,
    }
}

crate::abi_struct! {
    /// A block request.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct BlkRequest(size = 96) {
        /// A `BlkOp`.
        @0 operation: u8,
        /// Segments used, 1–8 for `Read`/`Write`, 0 otherwise.
        @1 nr_segments: u8,
        /// Must be zero.
        @2 reserved0: u16,
        /// Must be zero.
        @4 reserved1: u32,
        /// Echoed in the response.
        @8 id: u64,
        /// First 512-byte sector.
        @16 sector: u64,
        /// `Discard`: sectors to discard; else zero.
        @24 nr_sectors: u64,
        /// The data.
        @32 segments: [BlkSegment; 8],
    }
}

crate::abi_struct! {
    /// A block response.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct BlkResponse(size = 16) {
        /// The request's `id`.
        @0 id: u64,
        /// The request's `operation`.
        @8 operation: u8,
        /// Must be zero.
        @9 reserved0: u8,
        /// A `BlkStatus`.
        @10 status: i16,
        /// Must be zero.
        @12 reserved1: u32,
    }
}

impl BlkSegment {
    /// Bytes the segment covers, or `None` if the sector range is malformed.
    pub const fn bytes(&self) -> Option<u32> {
        if self.first_sect > self.last_sect || self.last_sect > 7 {
            return None;
        }
        Some((self.last_sect - self.first_sect + 1) as u32 * crate::layout::u32_of(blk_consts::SECTOR_SIZE))
    }
}

/// What a well-formed request asks of the device (see [`BlkRequest::check`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlkWork {
    /// Move the segments' data, `sectors` in all, from (`write`) or to the
    /// device starting at the request's `sector`.
    Transfer {
        /// A `Write`.
        write: bool,
        /// Sectors the segments cover.
        sectors: u64,
    },
    /// A `Flush`.
    Flush,
}

impl BlkRequest {
    /// Checks a request for a device of `nr_sectors` whose frontend
    /// accepted `features`, as section 20 has every backend do before it
    /// touches any data: the operation is defined and accepted, reserved
    /// fields are zero, `Read`/`Write` have 1–8 segments with sane sector
    /// ranges and stay inside the device, other operations have none.
    /// `Err` is the status to answer: `NotSupported` for a malformed or
    /// refused request, `IoError` for a range beyond the device.
    pub fn check(&self, nr_sectors: u64, features: u32) -> Result<BlkWork, BlkStatus> {
        let nr = usize::from(self.nr_segments);
        if self.reserved0 != 0 || self.reserved1 != 0 {
            return Err(BlkStatus::NotSupported);
        }
        match BlkOp::from_value(self.operation) {
            Some(BlkOp::Flush) if nr == 0 && self.nr_sectors == 0 && features & crate::device::device_features::BLK_FLUSH != 0 => {
                Ok(BlkWork::Flush)
            }
            Some(op @ (BlkOp::Read | BlkOp::Write)) if (1..=crate::layout::usize_of(blk_consts::SEGMENTS_MAX)).contains(&nr) && self.nr_sectors == 0 => {
                let mut sectors = 0u64;
                for s in &self.segments[..nr] {
                    let bytes = s.bytes().filter(|_| s.reserved0 == 0).ok_or(BlkStatus::NotSupported)?;
                    sectors += u64::from(bytes) / blk_consts::SECTOR_SIZE;
                }
                if self.sector.checked_add(sectors).is_none_or(|end| end > nr_sectors) {
                    return Err(BlkStatus::IoError);
                }
                Ok(BlkWork::Transfer { write: op == BlkOp::Write, sectors })
            }
            _ => Err(BlkStatus::NotSupported),
        }
    }
}

const _: () = assert!(core::mem::size_of::<BlkRequest>() as u64 == blk_consts::SLOT_SIZE);
const _: () = assert!(core::mem::size_of::<BlkResponse>() as u64 <= blk_consts::SLOT_SIZE);

/// The block protocol on its ring (`ring::FrontRing<BlkRing>`, ...).
#[derive(Debug)]
pub struct BlkRing;

impl crate::ring::Protocol for BlkRing {
    type Request = BlkRequest;
    type Response = BlkResponse;
    const SLOT_SIZE: usize = crate::layout::usize_of(blk_consts::SLOT_SIZE);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_whole() {
        use crate::device::device_features::BLK_FLUSH;
        let seg = |f, l| BlkSegment { gref: 1, first_sect: f, last_sect: l, reserved0: 0 };
        let mut r = BlkRequest { operation: BlkOp::Write as u8, nr_segments: 2, sector: 10, ..BlkRequest::default() };
        r.segments[0] = seg(6, 7);
        r.segments[1] = seg(0, 7);
        r.segments[2] = seg(9, 9); // unused: not looked at
        assert_eq!(r.check(20, 0), Ok(BlkWork::Transfer { write: true, sectors: 10 }));
        assert_eq!(r.check(19, 0), Err(BlkStatus::IoError), "past the end");
        assert_eq!(BlkRequest { sector: u64::MAX - 3, ..r }.check(u64::MAX, 0), Err(BlkStatus::IoError), "wraps");
        for bad in [
            BlkRequest { nr_segments: 0, ..r },
            BlkRequest { nr_segments: 9, ..r },
            BlkRequest { nr_segments: 3, ..r },
            BlkRequest { reserved1: 1, ..r },
            BlkRequest { nr_sectors: 1, ..r },
            BlkRequest { operation: BlkOp::Discard as u8, ..r },
            BlkRequest { operation: 4, ..r },
        ] {
            assert_eq!(bad.check(1 << 20, BLK_FLUSH), Err(BlkStatus::NotSupported), "{bad:?}");
        }
        let mut res = r;
        res.segments[1].reserved0 = 1;
        assert_eq!(res.check(1 << 20, 0), Err(BlkStatus::NotSupported));
        let flush = BlkRequest { operation: BlkOp::Flush as u8, ..BlkRequest::default() };
        assert_eq!(flush.check(0, BLK_FLUSH), Ok(BlkWork::Flush));
        assert_eq!(flush.check(0, 0), Err(BlkStatus::NotSupported), "not accepted");
        assert_eq!(BlkRequest { nr_segments: 1, ..flush }.check(0, BLK_FLUSH), Err(BlkStatus::NotSupported));
    }

    #[test]
    fn segment_sizes() {
        let s = |f, l| BlkSegment { gref: 1, first_sect: f, last_sect: l, reserved0: 0 };
        assert_eq!(s(0, 7).bytes(), Some(4096));
        assert_eq!(s(3, 3).bytes(), Some(512));
        assert_eq!(s(4, 3).bytes(), None);
        assert_eq!(s(0, 8).bytes(), None);
        assert_eq!(crate::ring::slots_for(4096, crate::layout::usize_of(blk_consts::SLOT_SIZE)), 32);
    }
}
