//! The console frontend (SPEC §22): output in `Write` requests on the
//! domain's console ring, whoever serves it.

use hypercall_abi::console::{console_consts, ConsoleOp, ConsoleRing, ConsoleSlot};
use hypercall_abi::device::device_consts;
use hypercall_abi::ring::FrontRing;
use hypercall_abi::Error;

use crate::device::{Front, TIMEOUT_NS};
use crate::event;
use crate::grant::Grants;
use crate::mmu::Memory;
use crate::ring::MappedPage;
use crate::StartInfo;

const DATA_MAX: usize = hypercall_abi::layout::usize_of(console_consts::DATA_MAX);

/// A connected console.
pub struct ConsoleFront {
    pub dev: Front,
    ring: FrontRing<ConsoleRing>,
    next_id: u32,
    /// `Read` requests posted and not answered.
    reads: u32,
}

impl ConsoleFront {
    /// Connects to the console slot the start-info page names.
    pub fn connect(start: &StartInfo, virq: u32, mem: &mut Memory<'_>, grants: &mut Grants) -> Result<ConsoleFront, Error> {
        let handle = crate::start_info_ext(start).console_device;
        if handle == device_consts::NONE {
            return Err(Error::NotFound);
        }
        let mut dev = Front::prepare(virq, handle, mem, grants)?;
        let ring = FrontRing::init(&mut MappedPage(dev.rings[0].0));
        dev.hand_over(virq, 0)?;
        Ok(ConsoleFront { dev, ring, next_id: 1, reads: 0 })
    }

    fn page(&self) -> MappedPage {
        MappedPage(self.dev.rings[0].0)
    }

    fn push(&mut self, op: ConsoleOp, data: &[u8], len: u16) -> Result<(), Error> {
        while self.ring.free() == 0 {
            self.publish();
            self.wait()?;
            self.reap();
        }
        let mut slot = ConsoleSlot { op: op as u8, reserved0: 0, len, id: self.next_id, data: [0; DATA_MAX] };
        slot.data[..data.len()].copy_from_slice(data);
        self.next_id += 1;
        self.ring.push(&mut self.page(), &slot).map_err(|_| Error::NoSpace)
    }

    fn publish(&mut self) {
        if self.ring.publish(&mut self.page()) {
            self.dev.notify();
        }
    }

    fn wait(&mut self) -> Result<(), Error> {
        if self.ring.rearm(&mut self.page()) {
            return Ok(());
        }
        if event::wait_any(&[self.dev.port], event::now() + TIMEOUT_NS) { Ok(()) } else { Err(Error::Again) }
    }

    /// Takes the responses waiting; every `Write` must have been taken
    /// whole.
    fn reap(&mut self) {
        while let Some(r) = self.ring.pop(&self.page()) {
            if r.op == ConsoleOp::Read as u8 {
                self.reads -= 1;
            }
        }
    }

    /// Writes `bytes`, 56 to a slot.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        for chunk in bytes.chunks(DATA_MAX) {
            self.push(ConsoleOp::Write, chunk, u16::try_from(chunk.len()).expect("56 bytes at most"))?;
        }
        self.publish();
        Ok(())
    }

    /// Posts a `Read` for up to `len` bytes of input.
    pub fn post_read(&mut self, len: u16) -> Result<(), Error> {
        self.push(ConsoleOp::Read, &[], len)?;
        self.reads += 1;
        self.publish();
        Ok(())
    }

    /// Waits until every `Write` is answered (posted reads may stay).
    pub fn flush(&mut self) -> Result<(), Error> {
        loop {
            self.reap();
            if self.ring.outstanding() == self.reads {
                return Ok(());
            }
            self.wait()?;
        }
    }
}

impl core::fmt::Write for ConsoleFront {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        ConsoleFront::write(self, s.as_bytes()).map_err(|_| core::fmt::Error)
    }
}
