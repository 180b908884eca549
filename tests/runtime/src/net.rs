//! The network frontend (SPEC §21): a transmit ring whose requests lend
//! the backend a page holding a packet (read-only), and a receive ring
//! where pages are posted for the backend to fill.

use hypercall_abi::device::DeviceInfo;
use hypercall_abi::net::{NetRxRequest, NetRxRing, NetStatus, NetTxRequest, NetTxRing};
use hypercall_abi::ring::{FrontRing, Protocol};
use hypercall_abi::Error;

use crate::device::{Front, TIMEOUT_NS};
use crate::event;
use crate::grant::Grants;
use crate::mmu::{Memory, RW};
use crate::ring::MappedPage;

/// Pages lent for transmitting and posted for receiving.
pub const TX_PAGES: usize = 32;
pub const RX_PAGES: usize = 64;

#[derive(Clone, Copy, Debug, Default)]
struct Buf {
    va: u64,
    gref: u32,
    busy: bool,
}

/// A connected network interface.
pub struct NetFront {
    pub dev: Front,
    tx: FrontRing<NetTxRing>,
    rx: FrontRing<NetRxRing>,
    tx_bufs: [Buf; TX_PAGES],
    rx_bufs: [Buf; RX_PAGES],
    /// This interface's MAC address (from the configuration).
    pub mac: [u8; 6],
    /// Transmit responses that were not `Ok`.
    pub tx_errors: u64,
}

impl NetFront {
    /// Connects to slot `handle`: the handshake, then every receive page
    /// posted.
    pub fn connect(virq: u32, handle: u32, mem: &mut Memory<'_>, grants: &mut Grants) -> Result<NetFront, Error> {
        let mut dev = Front::prepare(virq, handle, mem, grants)?;
        let tx = FrontRing::init(&mut MappedPage(dev.rings[0].0));
        let rx = FrontRing::init(&mut MappedPage(dev.rings[1].0));
        let backend = dev.info.backend_domid;
        let mut buf = |readonly| -> Result<Buf, Error> {
            let pfn = mem.alloc();
            mem.map(pfn, RW)?;
            Ok(Buf { va: Memory::va(pfn), gref: grants.grant(backend, mem.mfn(pfn), readonly).ok_or(Error::NoSpace)?, busy: false })
        };
        let mut tx_bufs = [Buf::default(); TX_PAGES];
        for b in tx_bufs.iter_mut() {
            *b = buf(true)?;
        }
        let mut rx_bufs = [Buf::default(); RX_PAGES];
        for b in rx_bufs.iter_mut() {
            *b = buf(false)?;
        }
        dev.hand_over(virq, 0)?;
        let mac = dev.info.params.mac;
        let mut net = NetFront { dev, tx, rx, tx_bufs, rx_bufs, mac, tx_errors: 0 };
        for i in 0..RX_PAGES {
            net.post(i);
        }
        net.publish();
        Ok(net)
    }

    pub fn info(&self) -> &DeviceInfo {
        &self.dev.info
    }

    fn post(&mut self, i: usize) {
        let b = &mut self.rx_bufs[i];
        b.busy = true;
        let req = NetRxRequest { id: u16::try_from(i).expect("few pages"), reserved0: 0, gref: b.gref };
        self.rx.push(&mut MappedPage(self.dev.rings[1].0), &req).expect("a slot per receive page");
    }

    /// Publishes both rings, notifying the backend if either asks.
    pub fn publish(&mut self) {
        let a = self.tx.publish(&mut MappedPage(self.dev.rings[0].0));
        let b = self.rx.publish(&mut MappedPage(self.dev.rings[1].0));
        if a || b {
            self.dev.notify();
        }
    }

    /// Takes transmit responses, freeing their pages; returns how many.
    pub fn reap(&mut self) -> usize {
        let mut taken = 0;
        while let Some(r) = self.tx.pop(&MappedPage(self.dev.rings[0].0)) {
            taken += 1;
            let b = &mut self.tx_bufs[usize::from(r.id)];
            assert!(b.busy, "a response for a page not lent");
            b.busy = false;
            if r.status != NetStatus::Ok as i16 {
                self.tx_errors += 1;
            }
        }
        taken
    }

    /// Queues `frame` for transmission (publish to send it); false if no
    /// page or slot is free.
    pub fn send(&mut self, frame: &[u8]) -> bool {
        self.send_raw(frame, |r| r)
    }

    /// As [`send`](Self::send), with `adjust` changing the request first
    /// (tests of bad input).
    pub fn send_raw(&mut self, frame: &[u8], adjust: impl FnOnce(NetTxRequest) -> NetTxRequest) -> bool {
        assert!(frame.len() <= 4096);
        if self.tx.free() == 0 {
            return false;
        }
        let Some(i) = self.tx_bufs.iter().position(|b| !b.busy) else { return false };
        let b = &mut self.tx_bufs[i];
        // SAFETY: the page is mapped writable here; the backend reads it only
        // while the request below is outstanding, and it is not yet.
        unsafe { core::ptr::copy_nonoverlapping(frame.as_ptr(), b.va as *mut u8, frame.len()) };
        b.busy = true;
        let (id, size) = (u16::try_from(i).expect("few pages"), u16::try_from(frame.len()).expect("a page at most"));
        let req = adjust(NetTxRequest { gref: b.gref, offset: 0, flags: 0, id, size, reserved0: 0 });
        self.tx.push(&mut MappedPage(self.dev.rings[0].0), &req).expect("checked free");
        true
    }

    /// The next packet received, copied into `out`: its length, or the
    /// negative status of a failed receive. The page is posted again.
    pub fn recv(&mut self, out: &mut [u8]) -> Option<Result<usize, i16>> {
        let r = self.rx.pop(&MappedPage(self.dev.rings[1].0))?;
        let i = usize::from(r.id);
        assert!(i < RX_PAGES && self.rx_bufs[i].busy, "a response for a page not posted");
        let got = if r.status < 0 {
            Err(r.status)
        } else {
            let (off, len) = (usize::from(r.offset), r.status as usize);
            assert!(off + len <= 4096 && len <= out.len(), "a packet inside its page");
            // SAFETY: the page is mapped here and the backend is done with it
            // (it answered).
            unsafe { core::ptr::copy_nonoverlapping((self.rx_bufs[i].va + off as u64) as *const u8, out.as_mut_ptr(), len) };
            Ok(len)
        };
        self.post(i);
        Some(got)
    }

    /// The transmit ring page, for tests that write it behind the ring
    /// library's back.
    pub fn tx_page(&self) -> MappedPage {
        MappedPage(self.dev.rings[0].0)
    }

    /// Transmit pages lent and not yet answered.
    pub fn tx_outstanding(&self) -> u32 {
        self.tx.outstanding()
    }

    /// Sleeps until either ring may have responses. `Again` on the timeout.
    pub fn wait(&mut self) -> Result<(), Error> {
        let a = self.tx.rearm(&mut MappedPage(self.dev.rings[0].0));
        let b = self.rx.rearm(&mut MappedPage(self.dev.rings[1].0));
        if a || b {
            return Ok(());
        }
        if event::wait_any(&[self.dev.port], event::now() + TIMEOUT_NS) { Ok(()) } else { Err(Error::Again) }
    }

    /// Shuts the interface down and revokes every page.
    pub fn close(self, virq: u32, grants: &mut Grants) -> Result<(), Error> {
        let bufs: [Buf; TX_PAGES + RX_PAGES] = core::array::from_fn(|i| if i < TX_PAGES { self.tx_bufs[i] } else { self.rx_bufs[i - TX_PAGES] });
        self.dev.close(virq, grants)?;
        for b in bufs {
            grants.end(b.gref).map_err(|_| Error::Busy)?;
        }
        Ok(())
    }
}

const _: () = assert!(NetRxRing::NR_SLOTS as usize >= RX_PAGES && NetTxRing::NR_SLOTS as usize >= TX_PAGES);
