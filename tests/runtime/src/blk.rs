//! The block frontend (SPEC §20) and the data pages it lends its backend.

use hypercall_abi::blk::{BlkRequest, BlkResponse, BlkRing};
use hypercall_abi::device::{device_features, DeviceInfo};
use hypercall_abi::ring::{FrontRing, Protocol, RingError};
use hypercall_abi::Error;

use crate::device::Front;
use crate::event;
use crate::grant::Grants;
use crate::mmu::{Memory, RW};
use crate::ring::MappedPage;

/// Slots of the block ring: the most requests in flight.
pub const RING_SLOTS: u32 = BlkRing::NR_SLOTS;

/// A connected block device.
pub struct BlkFront {
    pub dev: Front,
    ring: FrontRing<BlkRing>,
    /// Capacity in 512-byte sectors.
    pub nr_sectors: u64,
    /// Features accepted (of those offered, `BLK_FLUSH`).
    pub features: u32,
}

impl BlkFront {
    /// Connects to slot `handle` (waiting on `virq`, the `VIRQ_DEVICE`
    /// port): the whole frontend handshake.
    pub fn connect(virq: u32, handle: u32, mem: &mut Memory<'_>, grants: &mut Grants) -> Result<BlkFront, Error> {
        let mut dev = Front::prepare(virq, handle, mem, grants)?;
        let ring = FrontRing::init(&mut MappedPage(dev.rings[0].0));
        let features = dev.info.params.features & device_features::BLK_FLUSH;
        dev.hand_over(virq, features)?;
        Ok(BlkFront { nr_sectors: dev.info.params.nr_sectors, dev, ring, features })
    }

    pub fn info(&self) -> &DeviceInfo {
        &self.dev.info
    }

    /// Slots free for requests.
    pub fn free(&self) -> u32 {
        self.ring.free()
    }

    pub fn push(&mut self, req: &BlkRequest) -> Result<(), RingError> {
        self.ring.push(&mut MappedPage(self.dev.rings[0].0), req)
    }

    /// Publishes what was pushed, notifying the backend if it asked to be.
    pub fn publish(&mut self) {
        if self.ring.publish(&mut MappedPage(self.dev.rings[0].0)) {
            self.dev.notify();
        }
    }

    pub fn pop(&mut self) -> Option<BlkResponse> {
        self.ring.pop(&MappedPage(self.dev.rings[0].0))
    }

    /// Sleeps until a response may be waiting. `Again` on the timeout.
    pub fn wait(&mut self) -> Result<(), Error> {
        if self.ring.rearm(&mut MappedPage(self.dev.rings[0].0)) {
            return Ok(());
        }
        let deadline = event::now() + crate::device::TIMEOUT_NS;
        if event::wait_any(&[self.dev.port], deadline) { Ok(()) } else { Err(Error::Again) }
    }

    /// Shuts the device down (see `Front::close`).
    pub fn close(self, virq: u32, grants: &mut Grants) -> Result<(), Error> {
        self.dev.close(virq, grants)
    }
}

/// Pages a frontend lends its backend for data, each granted to it
/// (writable) once for the life of the connection, as persistent grants.
pub struct Pool<const N: usize> {
    pub pages: [Page; N],
    free: [bool; N],
}

/// One page of a [`Pool`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Page {
    pub va: u64,
    pub mfn: u64,
    pub gref: u32,
}

impl<const N: usize> Pool<N> {
    /// Takes `N` pages from `mem`, maps them writable and grants them to
    /// `backend`.
    pub fn new(mem: &mut Memory<'_>, grants: &mut Grants, backend: u32) -> Result<Pool<N>, Error> {
        let mut pages = [Page::default(); N];
        for p in pages.iter_mut() {
            let pfn = mem.alloc();
            mem.map(pfn, RW)?;
            let mfn = mem.mfn(pfn);
            *p = Page { va: Memory::va(pfn), mfn, gref: grants.grant(backend, mfn, false).ok_or(Error::NoSpace)? };
        }
        Ok(Pool { pages, free: [true; N] })
    }

    /// A free page's index, now taken.
    pub fn take(&mut self) -> Option<usize> {
        let i = self.free.iter().position(|&f| f)?;
        self.free[i] = false;
        Some(i)
    }

    pub fn give_back(&mut self, i: usize) {
        assert!(!self.free[i], "page {i} given back twice");
        self.free[i] = true;
    }

    /// The bytes of page `i`.
    pub fn bytes(&mut self, i: usize) -> &mut [u8; 4096] {
        // SAFETY: the page is mapped writable at `va` for the pool's life;
        // the backend writes it only while a request naming it is in flight,
        // when the caller does not look at it.
        unsafe { &mut *(self.pages[i].va as *mut [u8; 4096]) }
    }

    /// Revokes every grant (the backend must have let go).
    pub fn revoke_all(&self, grants: &mut Grants) -> Result<(), crate::grant::InUse> {
        self.pages.iter().try_for_each(|p| grants.end(p.gref))
    }
}
