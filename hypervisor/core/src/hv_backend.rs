//! Backends inside the hypervisor (`HYPERVISOR_BACKENDS`, SPEC §19): the
//! monolithic model, where the frontend's ring is served by the hypervisor
//! itself instead of a driver domain. It serves block devices (a RAM disk it
//! holds) and consoles (lines on the hypervisor console).
//!
//! The hypervisor is the grantee `DOMID_HYPERVISOR`: it pins the frontend's
//! ring for as long as the slot is connected, and each data page for the
//! duration of one request, exactly as a grantee domain would
//! (`grant_table::pin`), reaching both through machine memory. It serves
//! when the frontend notifies its port — inside the frontend's
//! `evtchn_send` — and then at most one ring's worth of requests per pass:
//! a frontend that lies about its indices gets garbage answered, never an
//! unbounded amount of the hypervisor's time at once. A pass that stops at
//! its bound with requests waiting says so ([`Kick::more`]); the
//! hypervisor continues at its next scheduling point, since the frontend
//! will not notify for requests it has already announced.
//!
//! Requests are checked whole before any data moves: every segment's grant
//! is pinned before the first byte is copied, so a malformed or unauthorised
//! request is answered with an error and has touched nothing.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::sync::atomic::{fence, Ordering};

use hypercall_abi::blk::{blk_consts, BlkRequest, BlkResponse, BlkRing, BlkStatus, BlkWork};
use hypercall_abi::console::{console_consts, ConsoleOp, ConsoleRing, ConsoleSlot};
use hypercall_abi::device::{device_features, DeviceParams};
use hypercall_abi::domid::domid;
use hypercall_abi::layout::{u32_of, usize_of};
use hypercall_abi::ring::{BackRing, Protocol, SharedPage};
use hypercall_abi::Error;

use crate::addr::{Mfn, PAGE_SIZE};
use crate::domain::Domain;
use crate::grant_table::{self, Pin};
use crate::machine::MachineMemory;
use crate::phys::PhysMemory;

const SECTOR: usize = usize_of(blk_consts::SECTOR_SIZE);
const SEGMENTS_MAX: usize = usize_of(blk_consts::SEGMENTS_MAX);

/// A ring page in machine memory, as the hypervisor reaches it.
pub struct FramePage<'a, M: PhysMemory> {
    pub mem: &'a mut M,
    pub mfn: Mfn,
}

impl<M: PhysMemory> SharedPage for FramePage<'_, M> {
    fn load_u32(&self, offset: usize) -> u32 {
        let v = u32::from_le_bytes(self.mem.frame(self.mfn)[offset..offset + 4].try_into().expect("4 bytes"));
        fence(Ordering::Acquire);
        v
    }
    fn store_u32(&mut self, offset: usize, value: u32) {
        fence(Ordering::Release);
        self.mem.frame_mut(self.mfn)[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    }
    fn fence(&mut self) {
        fence(Ordering::SeqCst);
    }
    fn read(&self, offset: usize, out: &mut [u8]) {
        out.copy_from_slice(&self.mem.frame(self.mfn)[offset..offset + out.len()]);
    }
    fn write(&mut self, offset: usize, bytes: &[u8]) {
        self.mem.frame_mut(self.mfn)[offset..offset + bytes.len()].copy_from_slice(bytes);
    }
}

/// A RAM disk the hypervisor holds for a block device it serves: whole
/// frames taken from the allocator, given back when the slot goes.
#[derive(Debug)]
pub struct RamDisk {
    frames: Vec<Mfn>,
    nr_sectors: u64,
}

impl RamDisk {
    /// A disk of `frames`, holding `image` and zeros after it; its size is
    /// the image's, rounded up to whole sectors.
    pub fn new<M: PhysMemory>(frames: Vec<Mfn>, image: &[u8], mem: &mut M) -> RamDisk {
        assert!(image.len() <= frames.len() * PAGE_SIZE, "frames for the whole image");
        for (i, &mfn) in frames.iter().enumerate() {
            let page = mem.frame_mut(mfn);
            page.fill(0);
            let chunk = image.get(i * PAGE_SIZE..).unwrap_or(&[]);
            let n = chunk.len().min(PAGE_SIZE);
            page[..n].copy_from_slice(&chunk[..n]);
        }
        RamDisk { frames, nr_sectors: image.len().div_ceil(SECTOR) as u64 }
    }

    /// Frames a disk of `bytes` needs.
    pub fn frames_for(bytes: usize) -> usize {
        bytes.div_ceil(PAGE_SIZE)
    }

    pub fn frames(&self) -> &[Mfn] {
        &self.frames
    }

    pub fn nr_sectors(&self) -> u64 {
        self.nr_sectors
    }

    /// Copies `len` bytes between the disk at byte `at` and `page` at byte
    /// `off`, in the direction `to_disk` says, in as many pieces as the
    /// disk's frames cut it into.
    fn transfer<M: PhysMemory>(&self, mem: &mut M, at: u64, page: Mfn, off: usize, len: usize, to_disk: bool) {
        let mut done = 0;
        while done < len {
            let pos = at + done as u64;
            let frame = self.frames[usize::try_from(pos / PAGE_SIZE as u64).expect("inside the disk")];
            let in_frame = usize::try_from(pos % PAGE_SIZE as u64).expect("below a page");
            let n = (PAGE_SIZE - in_frame).min(len - done);
            if to_disk {
                mem.copy_between(page, off + done, frame, in_frame, n);
            } else {
                mem.copy_between(frame, in_frame, page, off + done, n);
            }
            done += n;
        }
    }
}

/// What a pass over a ring leaves to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Kick {
    /// The frontend asked to be notified of the responses.
    pub notify: bool,
    /// The pass stopped at its bound with requests still waiting: serve
    /// again later (the frontend will not notify for them).
    pub more: bool,
}

/// After a pass that answered `served` requests: publish, and either
/// stop (at the bound, noting whether more wait) or rearm and say whether
/// to go on.
fn end_of_pass<P: Protocol, M: PhysMemory>(ring: &mut BackRing<P>, page: &mut FramePage<'_, M>, served: u32, kick: &mut Kick) -> bool {
    kick.notify |= ring.publish(page);
    if served >= P::NR_SLOTS {
        // At the bound: ask to hear of the next request either way, so a
        // frontend that has nothing more now notifies when it has.
        kick.more = ring.pending(page) > 0 || ring.rearm(page);
        return false;
    }
    ring.rearm(page)
}

/// A console's partial line, kept until its newline.
#[derive(Debug, Default)]
pub struct LineBuffer {
    bytes: Vec<u8>,
}

/// Longest line the console keeps before it writes it out anyway.
const LINE_MAX: usize = 200;

impl LineBuffer {
    /// Takes `bytes` of domain `dom`'s output, writing each complete line
    /// (and any overlong partial one) to `out` as `(dN) line`.
    pub fn take(&mut self, dom: u32, bytes: &[u8], out: &mut dyn FnMut(&[u8])) {
        for &b in bytes {
            if b == b'\n' {
                self.flush(dom, out);
            } else if b != b'\r' {
                self.bytes.push(b);
                if self.bytes.len() == LINE_MAX {
                    self.flush(dom, out);
                }
            }
        }
    }

    /// Writes out what is buffered, if anything, as a line.
    pub fn flush(&mut self, dom: u32, out: &mut dyn FnMut(&[u8])) {
        out(alloc::format!("(d{dom}) ").as_bytes());
        out(&self.bytes);
        out(b"\n");
        self.bytes.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// What a backend serves.
#[derive(Debug)]
pub enum Service {
    Block(RamDisk),
    Console(LineBuffer),
}

/// A connected ring: the pins the hypervisor holds and its side's indices.
#[derive(Debug)]
enum Ring {
    Block(BackRing<BlkRing>),
    Console(BackRing<ConsoleRing>),
}

#[derive(Debug)]
struct Attached {
    ring_pin: Pin,
    /// The frontend's port (bound to the hypervisor).
    port: u32,
    /// Features the frontend accepted.
    features: u32,
    ring: Ring,
}

/// One device the hypervisor serves.
#[derive(Debug)]
pub struct HvBackend {
    pub slot: usize,
    pub frontend: u32,
    pub service: Service,
    attached: Option<Attached>,
}

impl HvBackend {
    pub fn new(slot: usize, frontend: u32, service: Service) -> HvBackend {
        HvBackend { slot, frontend, service, attached: None }
    }

    /// The parameters it publishes.
    pub fn params(&self) -> DeviceParams {
        match &self.service {
            Service::Block(d) => DeviceParams {
                nr_sectors: d.nr_sectors,
                sector_size: u32_of(blk_consts::SECTOR_SIZE),
                features: device_features::BLK_FLUSH,
                ..DeviceParams::default()
            },
            Service::Console(_) => DeviceParams::default(),
        }
    }

    /// The frontend's port while attached.
    pub fn port(&self) -> Option<u32> {
        self.attached.as_ref().map(|a| a.port)
    }

    /// Attaches to the ring the frontend handed over: pins its page for
    /// writing (the frontend must have granted it to `DOMID_HYPERVISOR`)
    /// and binds its port to the hypervisor. On failure nothing is held.
    pub fn attach<M: PhysMemory>(
        &mut self,
        domains: &mut BTreeMap<u32, Domain>,
        ring_gref: u32,
        port: u32,
        features: u32,
        machine: &mut MachineMemory,
        mem: &mut M,
    ) -> Result<(), Error> {
        assert!(self.attached.is_none(), "attached once");
        let ring_pin = grant_table::pin(domains, self.frontend, ring_gref, domid::HYPERVISOR, true, machine, mem)?;
        let events = &mut domains.get_mut(&self.frontend).expect("pinned from it").events;
        events.connect(port, domid::HYPERVISOR, 0);
        let ring = match self.service {
            Service::Block(_) => Ring::Block(BackRing::new()),
            Service::Console(_) => Ring::Console(BackRing::new()),
        };
        self.attached = Some(Attached { ring_pin, port, features, ring });
        Ok(())
    }

    /// Lets go of the ring: unpins its page, and leaves the frontend's port
    /// (if it still exists and is bound to the hypervisor) unbound for the
    /// hypervisor again. A console's partial line is written out.
    pub fn detach<M: PhysMemory>(&mut self, domains: &mut BTreeMap<u32, Domain>, machine: &mut MachineMemory, mem: &mut M, console: &mut dyn FnMut(&[u8])) {
        if let Service::Console(line) = &mut self.service {
            if !line.is_empty() {
                line.flush(self.frontend, console);
            }
        }
        let Some(a) = self.attached.take() else { return };
        grant_table::unpin(domains, &a.ring_pin, machine, mem);
        if let Some(d) = domains.get_mut(&self.frontend) {
            if d.events.get(a.port).binding == (crate::event_channel::Binding::Interdomain { remote: domid::HYPERVISOR, remote_port: 0 }) {
                d.events.peer_closed(a.port);
            }
        }
    }

    /// The frontend notified (or a pass left more): serves at most one
    /// ring's worth of requests, and says whether to notify the frontend
    /// and whether requests are still waiting.
    pub fn kick<M: PhysMemory>(
        &mut self,
        domains: &mut BTreeMap<u32, Domain>,
        machine: &mut MachineMemory,
        mem: &mut M,
        console: &mut dyn FnMut(&[u8]),
    ) -> Kick {
        let Some(a) = self.attached.as_mut() else { return Kick::default() };
        let frame = a.ring_pin.frame;
        match (&mut a.ring, &mut self.service) {
            (Ring::Block(ring), Service::Block(disk)) => serve(ring, frame, mem, |mem, req| {
                let status = block_request(disk, &req, a.features, self.frontend, domains, machine, mem);
                BlkResponse { id: req.id, operation: req.operation, reserved0: 0, status: status as i16, reserved1: 0 }
            }),
            (Ring::Console(ring), Service::Console(line)) => serve_console(ring, frame, mem, self.frontend, line, console),
            _ => unreachable!("a ring of the service's kind"),
        }
    }
}

/// The common loop: answers what is waiting, publishes, rearms and looks
/// again, up to one ring's worth of requests.
fn serve<P: Protocol, M: PhysMemory>(ring: &mut BackRing<P>, frame: Mfn, mem: &mut M, mut answer: impl FnMut(&mut M, P::Request) -> P::Response) -> Kick {
    let (mut served, mut kick) = (0, Kick::default());
    loop {
        while served < P::NR_SLOTS {
            let Some(req) = ring.pop(&FramePage { mem: &mut *mem, mfn: frame }) else { break };
            let rsp = answer(mem, req);
            ring.push(&mut FramePage { mem: &mut *mem, mfn: frame }, &rsp).expect("a request was consumed");
            served += 1;
        }
        if !end_of_pass(ring, &mut FramePage { mem: &mut *mem, mfn: frame }, served, &mut kick) {
            return kick;
        }
    }
}

/// The console: `Write`s go out (and are answered with the length taken);
/// `Read`s wait for input, which the hypervisor's console does not offer
/// guests, so they are never answered while the ring is up.
fn serve_console<M: PhysMemory>(ring: &mut BackRing<ConsoleRing>, frame: Mfn, mem: &mut M, dom: u32, line: &mut LineBuffer, out: &mut dyn FnMut(&[u8])) -> Kick {
    let mut kick = Kick::default();
    let mut seen = 0;
    loop {
        while seen < ConsoleRing::NR_SLOTS {
            let Some(req) = ring.pop(&FramePage { mem: &mut *mem, mfn: frame }) else { break };
            seen += 1;
            if ConsoleOp::from_value(req.op) == Some(ConsoleOp::Read) {
                continue;
            }
            // A malformed write is answered as taking nothing.
            let ok = req.op == ConsoleOp::Write as u8 && req.reserved0 == 0 && usize::from(req.len) <= usize_of(console_consts::DATA_MAX);
            let taken = if ok { req.len } else { 0 };
            line.take(dom, &req.data[..usize::from(taken)], out);
            let rsp = ConsoleSlot { op: ConsoleOp::Write as u8, reserved0: 0, len: taken, id: req.id, data: [0; 56] };
            ring.push(&mut FramePage { mem: &mut *mem, mfn: frame }, &rsp).expect("a request was consumed");
        }
        if !end_of_pass(ring, &mut FramePage { mem: &mut *mem, mfn: frame }, seen, &mut kick) {
            return kick;
        }
    }
}

/// Serves one block request of `frontend` on `disk`; `features` are those
/// the frontend accepted. Returns the status; data moves only if it is
/// `Ok`.
fn block_request<M: PhysMemory>(
    disk: &mut RamDisk,
    req: &BlkRequest,
    features: u32,
    frontend: u32,
    domains: &mut BTreeMap<u32, Domain>,
    machine: &mut MachineMemory,
    mem: &mut M,
) -> BlkStatus {
    let write = match req.check(disk.nr_sectors, features) {
        Err(status) => return status,
        // Memory holds every completed write already.
        Ok(BlkWork::Flush) => return BlkStatus::Ok,
        Ok(BlkWork::Transfer { write, .. }) => write,
    };
    let segs = &req.segments[..usize::from(req.nr_segments)];
    // Every grant first: a request either moves all its data or none. A
    // read writes the frontend's pages.
    let mut pins: [Option<Pin>; SEGMENTS_MAX] = [None; SEGMENTS_MAX];
    for (i, s) in segs.iter().enumerate() {
        match grant_table::pin(domains, frontend, s.gref, domid::HYPERVISOR, !write, machine, mem) {
            Ok(p) => pins[i] = Some(p),
            Err(_) => {
                for p in pins.iter().flatten() {
                    grant_table::unpin(domains, p, machine, mem);
                }
                return BlkStatus::IoError;
            }
        }
    }
    let mut at = req.sector * SECTOR as u64;
    for (s, p) in segs.iter().zip(pins.iter().flatten()) {
        let len = s.bytes().expect("checked") as usize;
        disk.transfer(mem, at, p.frame, usize::from(s.first_sect) * SECTOR, len, write);
        at += len as u64;
    }
    for p in pins.iter().flatten() {
        grant_table::unpin(domains, p, machine, mem);
    }
    BlkStatus::Ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{TestDomain as T, World};
    use hypercall_abi::blk::{BlkOp, BlkSegment};
    use hypercall_abi::grant::{grant_flags, GrantEntry};
    use hypercall_abi::layout::Wire;
    use hypercall_abi::ring::FrontRing;

    const TABLE_PFN: u64 = 20;
    const RING_PFN: u64 = 21;
    /// Data pages: frames 22.. of the frontend.
    const DATA_PFN: u64 = 22;

    /// Domain 1 is the frontend: a grant table (frame 20), its ring (21,
    /// grant 1) and data pages (22.., grants 2..) granted to the
    /// hypervisor, all mapped writable at their usual addresses.
    fn frontend(disk_image: &[u8]) -> (World, HvBackend) {
        let mut w = World::new(1);
        for pfn in [TABLE_PFN, RING_PFN].into_iter().chain(DATA_PFN..DATA_PFN + 8) {
            w.map(1, pfn, true);
        }
        let list = w.mfn(1, TABLE_PFN).0.to_le_bytes();
        w.write(1, T::DATA, &list);
        let d = w.domains.get_mut(&1).unwrap();
        grant_table::set_table(d, 0, &mut w.machine, &mut w.mem, T::DATA, 1).unwrap();
        for (gref, pfn) in (1..).zip([RING_PFN].into_iter().chain(DATA_PFN..DATA_PFN + 8)) {
            grant(&mut w, gref, pfn, grant_flags::PERMIT);
        }
        let frames = w.machine.allocator.alloc_many(RamDisk::frames_for(disk_image.len()) as u64).unwrap();
        let disk = RamDisk::new(frames, disk_image, &mut w.mem);
        (w, HvBackend::new(0, 1, Service::Block(disk)))
    }

    fn grant(w: &mut World, gref: u32, pfn: u64, flags: u16) {
        let e = GrantEntry { flags, reserved0: 0, grantee: domid::HYPERVISOR, frame: w.mfn(1, pfn).0 };
        let mut b = [0u8; 16];
        e.encode(&mut b);
        w.write(1, T::TEXT + TABLE_PFN * 0x1000 + u64::from(gref) * 16, &b);
    }

    fn page(w: &mut World, pfn: u64) -> FramePage<'_, crate::test_support::VecMemory> {
        let mfn = w.mfn(1, pfn);
        FramePage { mem: &mut w.mem, mfn }
    }

    fn attach(w: &mut World, b: &mut HvBackend) -> FrontRing<BlkRing> {
        let front = FrontRing::<BlkRing>::init(&mut page(w, RING_PFN));
        let port = w.domains.get_mut(&1).unwrap().events.alloc_unbound(domid::HYPERVISOR).unwrap();
        b.attach(&mut w.domains, 1, port, device_features::BLK_FLUSH, &mut w.machine, &mut w.mem).unwrap();
        front
    }

    fn seg(gref: u32, first: u8, last: u8) -> BlkSegment {
        BlkSegment { gref, first_sect: first, last_sect: last, reserved0: 0 }
    }

    fn rw(op: BlkOp, id: u64, sector: u64, segs: &[BlkSegment]) -> BlkRequest {
        let nr_segments = u8::try_from(segs.len()).unwrap();
        let mut r = BlkRequest { operation: op as u8, nr_segments, id, sector, ..BlkRequest::default() };
        r.segments[..segs.len()].copy_from_slice(segs);
        r
    }

    /// Pushes `reqs`, kicks, and returns the responses in order.
    fn run(w: &mut World, b: &mut HvBackend, front: &mut FrontRing<BlkRing>, reqs: &[BlkRequest]) -> Vec<(u64, i16)> {
        for r in reqs {
            front.push(&mut page(w, RING_PFN), r).unwrap();
        }
        front.publish(&mut page(w, RING_PFN));
        assert!(!b.kick(&mut w.domains, &mut w.machine, &mut w.mem, &mut |_| {}).more);
        let mut out = Vec::new();
        while let Some(r) = front.pop(&page(w, RING_PFN)) {
            out.push((r.id, r.status));
        }
        out
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| u8::try_from(i * 31 % 251).unwrap()).collect()
    }

    #[test]
    fn reads_and_writes_move_exactly_the_sectors_named() {
        let image = pattern(64 * 1024);
        let (mut w, mut b) = frontend(&image);
        let mut front = attach(&mut w, &mut b);
        assert_eq!(b.params().nr_sectors, 128);
        // Read sectors 9..=11 into page 2 at sector 5, and 12..=19 into page 3.
        let got = run(&mut w, &mut b, &mut front, &[rw(BlkOp::Read, 7, 9, &[seg(2, 5, 7), seg(3, 0, 7)])]);
        assert_eq!(got, [(7, 0)]);
        assert_eq!(w.read(1, T::TEXT + DATA_PFN * 0x1000 + 5 * 512, 3 * 512), &image[9 * 512..12 * 512]);
        assert_eq!(w.read(1, T::TEXT + (DATA_PFN + 1) * 0x1000, 4096), &image[12 * 512..20 * 512]);
        assert_eq!(w.read(1, T::TEXT + DATA_PFN * 0x1000, 5 * 512), vec![0; 5 * 512], "the rest of the page untouched");
        // Write them back elsewhere, across a disk frame boundary.
        let got = run(&mut w, &mut b, &mut front, &[rw(BlkOp::Write, 8, 6, &[seg(2, 5, 7), seg(3, 0, 7)])]);
        assert_eq!(got, [(8, 0)]);
        // Read them back from there into another page.
        assert_eq!(run(&mut w, &mut b, &mut front, &[rw(BlkOp::Read, 10, 6, &[seg(6, 0, 7)])]), [(10, 0)]);
        assert_eq!(w.read(1, T::TEXT + (DATA_PFN + 4) * 0x1000, 4096), &image[9 * 512..17 * 512]);
        assert_eq!(run(&mut w, &mut b, &mut front, &[BlkRequest { operation: BlkOp::Flush as u8, id: 9, ..BlkRequest::default() }]), [(9, 0)]);
        // No pin outlives a request; the ring's stays while attached.
        w.audit(&[b.attached.as_ref().unwrap().ring_pin]);
        b.detach(&mut w.domains, &mut w.machine, &mut w.mem, &mut |_| {});
        w.audit(&[]);
    }

    #[test]
    fn bad_requests_are_answered_with_errors_and_touch_nothing() {
        let image = pattern(16 * 1024);
        let (mut w, mut b) = frontend(&image);
        let mut front = attach(&mut w, &mut b);
        w.write(1, T::TEXT + DATA_PFN * 0x1000, &[0xee; 4096]);
        grant(&mut w, 8, DATA_PFN + 6, grant_flags::PERMIT | grant_flags::READONLY);
        let e = GrantEntry { flags: grant_flags::PERMIT, reserved0: 0, grantee: 5, frame: w.mfn(1, DATA_PFN + 7).0 };
        let mut eb = [0u8; 16];
        e.encode(&mut eb);
        w.write(1, T::TEXT + TABLE_PFN * 0x1000 + 9 * 16, &eb);
        let mut reserved = rw(BlkOp::Read, 10, 0, &[seg(2, 0, 0)]);
        reserved.reserved1 = 1;
        let mut seg_reserved = rw(BlkOp::Read, 11, 0, &[seg(2, 0, 0)]);
        seg_reserved.segments[0].reserved0 = 1;
        let mut discard = rw(BlkOp::Read, 12, 0, &[]);
        discard.operation = BlkOp::Discard as u8;
        let mut undefined = rw(BlkOp::Read, 13, 0, &[seg(2, 0, 0)]);
        undefined.operation = 9;
        let mut nr_sectors = rw(BlkOp::Read, 14, 0, &[seg(2, 0, 0)]);
        nr_sectors.nr_sectors = 1;
        let mut nine = rw(BlkOp::Read, 15, 0, &[seg(2, 0, 0); 8]);
        nine.nr_segments = 9;
        let ns = BlkStatus::NotSupported as i16;
        let io = BlkStatus::IoError as i16;
        let cases = [
            (reserved, ns),
            (seg_reserved, ns),
            (discard, ns),
            (undefined, ns),
            (nr_sectors, ns),
            (nine, ns),
            (rw(BlkOp::Read, 16, 0, &[]), ns),                             // no segments
            (rw(BlkOp::Read, 17, 0, &[seg(2, 4, 3)]), ns),                 // backwards
            (rw(BlkOp::Read, 18, 0, &[seg(2, 0, 8)]), ns),                 // past the page
            (rw(BlkOp::Read, 19, 31, &[seg(2, 0, 1)]), io),                // past the end of the disk
            (rw(BlkOp::Read, 20, u64::MAX, &[seg(2, 0, 0)]), io),          // wraps
            (rw(BlkOp::Read, 21, 0, &[seg(3, 0, 0), seg(99, 0, 0)]), io),  // a reference past the table
            (rw(BlkOp::Read, 22, 0, &[seg(3, 0, 0), seg(8, 0, 0)]), io),   // read into a read-only grant
            (rw(BlkOp::Read, 23, 0, &[seg(3, 0, 0), seg(9, 0, 0)]), io),   // granted to another domain
            (rw(BlkOp::Read, 24, 0, &[seg(0, 0, 0)]), io),                 // reference 0
        ];
        let reqs: Vec<BlkRequest> = cases.iter().map(|c| c.0).collect();
        let got = run(&mut w, &mut b, &mut front, &reqs);
        let want: Vec<(u64, i16)> = cases.iter().map(|c| (c.0.id, c.1)).collect();
        assert_eq!(got, want);
        assert_eq!(w.read(1, T::TEXT + DATA_PFN * 0x1000, 4096), vec![0xee; 4096]);
        assert_eq!(w.read(1, T::TEXT + (DATA_PFN + 1) * 0x1000, 4096), vec![0; 4096], "the first segment of a refused request moved nothing");
        // A flush the frontend did not accept.
        b.detach(&mut w.domains, &mut w.machine, &mut w.mem, &mut |_| {});
        let mut front = FrontRing::<BlkRing>::init(&mut page(&mut w, RING_PFN));
        let port = w.domains.get_mut(&1).unwrap().events.alloc_unbound(domid::HYPERVISOR).unwrap();
        b.attach(&mut w.domains, 1, port, 0, &mut w.machine, &mut w.mem).unwrap();
        let flush = BlkRequest { operation: BlkOp::Flush as u8, id: 30, ..BlkRequest::default() };
        assert_eq!(run(&mut w, &mut b, &mut front, &[flush]), [(30, ns)]);
        w.audit(&[b.attached.as_ref().unwrap().ring_pin]);
    }

    #[test]
    fn a_lying_frontend_gets_one_ring_per_kick() {
        let (mut w, mut b) = frontend(&pattern(4096));
        attach(&mut w, &mut b);
        // req_prod far ahead: the slots hold zeros, read requests of no
        // segments, answered NotSupported — 32 of them, then the kick ends
        // saying more wait.
        page(&mut w, RING_PFN).store_u32(0, 1000);
        assert_eq!(b.kick(&mut w.domains, &mut w.machine, &mut w.mem, &mut |_| {}), Kick { notify: true, more: true });
        let rsp_prod = page(&mut w, RING_PFN).load_u32(64);
        assert_eq!(rsp_prod, 32);
        b.kick(&mut w.domains, &mut w.machine, &mut w.mem, &mut |_| {});
        assert_eq!(page(&mut w, RING_PFN).load_u32(64), 64, "the next kick, the next ring's worth");
        w.audit(&[b.attached.as_ref().unwrap().ring_pin]);
    }

    #[test]
    fn a_full_ring_answered_at_the_bound_still_hears_of_the_next_request() {
        let (mut w, mut b) = frontend(&pattern(64 * 1024));
        let mut front = attach(&mut w, &mut b);
        // Exactly a ring's worth: the pass ends at its bound with nothing
        // left, and must have asked to hear of the next request.
        let reqs: Vec<BlkRequest> = (0..32).map(|i| rw(BlkOp::Read, i, i, &[seg(2 + (i % 8) as u32, 0, 0)])).collect();
        assert_eq!(run(&mut w, &mut b, &mut front, &reqs).len(), 32);
        let r = rw(BlkOp::Read, 99, 0, &[seg(2, 0, 0)]);
        front.push(&mut page(&mut w, RING_PFN), &r).unwrap();
        assert!(front.publish(&mut page(&mut w, RING_PFN)), "the frontend is told to notify");
        assert!(!b.kick(&mut w.domains, &mut w.machine, &mut w.mem, &mut |_| {}).more);
        assert_eq!(page(&mut w, RING_PFN).load_u32(64), 33, "answered");
    }

    #[test]
    fn attach_needs_the_ring_granted_to_the_hypervisor() {
        let (mut w, mut b) = frontend(&pattern(4096));
        let port = w.domains.get_mut(&1).unwrap().events.alloc_unbound(domid::HYPERVISOR).unwrap();
        grant(&mut w, 1, RING_PFN, 0);
        assert_eq!(b.attach(&mut w.domains, 1, port, 0, &mut w.machine, &mut w.mem), Err(Error::NotPermitted));
        assert_eq!(b.port(), None, "not attached");
        assert_eq!(w.dom(1).events.get(port).binding, crate::event_channel::Binding::Unbound { remote: domid::HYPERVISOR });
        grant(&mut w, 1, RING_PFN, grant_flags::PERMIT);
        assert_eq!(b.attach(&mut w.domains, 1, port, 0, &mut w.machine, &mut w.mem), Ok(()));
        assert_eq!(b.port(), Some(port));
        assert_eq!(w.dom(1).events.get(port).binding, crate::event_channel::Binding::Interdomain { remote: domid::HYPERVISOR, remote_port: 0 });
        b.detach(&mut w.domains, &mut w.machine, &mut w.mem, &mut |_| {});
        assert_eq!(w.dom(1).events.get(port).binding, crate::event_channel::Binding::Unbound { remote: domid::HYPERVISOR });
    }

    #[test]
    fn a_frontend_that_dies_attached_leaves_nothing_behind() {
        let (mut w, mut b) = frontend(&pattern(4096));
        attach(&mut w, &mut b);
        let free = w.machine.allocator.free_count();
        let d = w.domains.remove(&1).unwrap();
        let r = d.teardown(&mut w.machine, &mut w.mem).unwrap();
        assert_eq!(r.orphaned, 1, "the ring page");
        b.detach(&mut w.domains, &mut w.machine, &mut w.mem, &mut |_| {});
        assert_eq!(w.machine.allocator.free_count(), free + 257);
    }

    #[test]
    fn console_lines_carry_the_domain_and_reads_wait() {
        let mut w = World::new(1);
        for pfn in [TABLE_PFN, RING_PFN] {
            w.map(1, pfn, true);
        }
        let list = w.mfn(1, TABLE_PFN).0.to_le_bytes();
        w.write(1, T::DATA, &list);
        let d = w.domains.get_mut(&1).unwrap();
        grant_table::set_table(d, 0, &mut w.machine, &mut w.mem, T::DATA, 1).unwrap();
        grant(&mut w, 1, RING_PFN, grant_flags::PERMIT);
        let mut b = HvBackend::new(0, 1, Service::Console(LineBuffer::default()));
        let mut front = FrontRing::<ConsoleRing>::init(&mut page(&mut w, RING_PFN));
        let port = w.domains.get_mut(&1).unwrap().events.alloc_unbound(domid::HYPERVISOR).unwrap();
        b.attach(&mut w.domains, 1, port, 0, &mut w.machine, &mut w.mem).unwrap();
        let slot = |op: ConsoleOp, id: u32, text: &[u8]| {
            let mut data = [0u8; 56];
            data[..text.len()].copy_from_slice(text);
            ConsoleSlot { op: op as u8, reserved0: 0, len: u16::try_from(text.len()).unwrap(), id, data }
        };
        for s in [slot(ConsoleOp::Read, 1, b""), slot(ConsoleOp::Write, 2, b"hello "), slot(ConsoleOp::Write, 3, b"world\nnext")] {
            front.push(&mut page(&mut w, RING_PFN), &s).unwrap();
        }
        let mut bad = slot(ConsoleOp::Write, 4, b"x");
        bad.len = 57;
        front.push(&mut page(&mut w, RING_PFN), &bad).unwrap();
        front.publish(&mut page(&mut w, RING_PFN));
        let mut out = Vec::new();
        assert!(b.kick(&mut w.domains, &mut w.machine, &mut w.mem, &mut |bytes| out.extend_from_slice(bytes)).notify);
        assert_eq!(out, b"(d1) hello world\n");
        let mut answers = Vec::new();
        while let Some(r) = front.pop(&page(&mut w, RING_PFN)) {
            answers.push((r.id, r.len));
        }
        assert_eq!(answers, [(2, 6), (3, 10), (4, 0)], "the read waits; the malformed write took nothing");
        b.detach(&mut w.domains, &mut w.machine, &mut w.mem, &mut |bytes| out.extend_from_slice(bytes));
        assert_eq!(out, b"(d1) hello world\n(d1) next\n", "the partial line at disconnect");
        let mut long = LineBuffer::default();
        let mut o = Vec::new();
        long.take(123, &[b'a'; 250], &mut |b| o.extend_from_slice(b));
        assert_eq!(o.len(), 7 + 200 + 1, "an overlong line is cut");
        assert!(o.starts_with(b"(d123) aaa"));
    }
}
