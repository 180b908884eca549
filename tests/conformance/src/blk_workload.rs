//! The block workload: connects to block device 0 and checks every byte of
//! it, through random reads and writes of many sizes with up to a ring's
//! worth of requests in flight, and flushes.
//!
//! The device is 512 KiB of a `pattern-*.img` disk (`rand::disk_byte`,
//! generation 0). The workload remembers, for each sector, the generation
//! of the pattern it last wrote there, so every byte any read returns is
//! checked against what must be there: first a sweep that reads the whole
//! device, then writes and reads at random (never two requests in flight on
//! one sector, since requests complete in any order), then a sweep again,
//! whose per-sector checksums must add up to the expected ones.

use veneer_guest::blk::{BlkFront, Pool, RING_SLOTS};
use veneer_guest::device::{self, TIMEOUT_NS};
use veneer_guest::grant::Grants;
use veneer_guest::hypercall_abi::blk::{BlkOp, BlkRequest, BlkSegment, BlkStatus};
use veneer_guest::hypercall_abi::device::{device_features, DeviceKind, DeviceRole};
use veneer_guest::mmu::Memory;
use veneer_guest::rand::{disk_byte, Rng};
use veneer_guest::{check, event, println, StartInfo, StaticCell};

/// Sectors of the device: what every backend here serves.
pub const DEV_SECTORS: u64 = 1024;
const SECTORS: usize = DEV_SECTORS as usize;
const POOL: usize = 64;
const IN_FLIGHT: usize = RING_SLOTS as usize;

#[derive(Clone, Copy, Default)]
struct Inflight {
    id: u64,
    op: u8,
    sector: u64,
    nsect: u64,
    seed: u32,
    nseg: usize,
    /// Per segment: pool page, first sector in the page, sectors.
    segs: [(usize, u8, u8); 8],
}

/// Per sector: the generation it holds, and whether a request in flight
/// covers it; too big for the stack.
static SEEDS: StaticCell<[u32; SECTORS]> = StaticCell::new([0; SECTORS]);
static BUSY: StaticCell<[bool; SECTORS]> = StaticCell::new([false; SECTORS]);
static INFLIGHT: StaticCell<[Option<Inflight>; IN_FLIGHT]> = StaticCell::new([None; IN_FLIGHT]);

/// The workload's state.
pub struct Workload {
    pub front: BlkFront,
    pool: Pool<POOL>,
    seeds: &'static mut [u32; SECTORS],
    busy: &'static mut [bool; SECTORS],
    inflight: &'static mut [Option<Inflight>; IN_FLIGHT],
    rng: Rng,
    next_id: u64,
    next_seed: u32,
    pub reads: u64,
    pub writes: u64,
    pub flushes: u64,
    pub sectors_checked: u64,
}

/// FNV-1a of one sector, salted with its number: the per-sector checksum.
fn sector_sum(sector: u64, bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ sector;
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

impl Workload {
    /// Connects to block device 0 and lends the backend a pool of pages.
    pub fn connect(virq: u32, mem: &mut Memory<'_>, grants: &mut Grants, seed: u64) -> Workload {
        let Some((handle, _)) = device::find(DeviceRole::Frontend, DeviceKind::Block, 0) else {
            veneer_guest::failure(format_args!("no block device"))
        };
        let front = match BlkFront::connect(virq, handle, mem, grants) {
            Ok(f) => f,
            Err(e) => veneer_guest::failure(format_args!("block handshake: {e:?}")),
        };
        check!(front.nr_sectors == DEV_SECTORS, "a device of {} sectors", front.nr_sectors);
        check!(front.features & device_features::BLK_FLUSH != 0, "flush offered and accepted");
        let pool = Pool::new(mem, grants, front.info().backend_domid).expect("data pages");
        Workload {
            front,
            pool,
            seeds: SEEDS.take(),
            busy: BUSY.take(),
            inflight: INFLIGHT.take(),
            rng: Rng::new(seed),
            next_id: 1,
            next_seed: 1,
            reads: 0,
            writes: 0,
            flushes: 0,
            sectors_checked: 0,
        }
    }

    /// Submits a read or write of up to `max` sectors from `sector` (fewer
    /// if pages run short, a busy sector comes first or 8 segments are
    /// used up). Returns the sectors covered, 0 if nothing was submitted.
    fn submit(&mut self, write: bool, sector: u64, max: u64) -> u64 {
        let Some(slot) = self.inflight.iter().position(Option::is_none) else { return 0 };
        let mut n = max.min(DEV_SECTORS - sector);
        if let Some(b) = (sector..sector + n).position(|s| self.busy[s as usize]) {
            n = b as u64;
        }
        if n == 0 || self.front.free() == 0 {
            return 0;
        }
        let mut req = Inflight::default();
        let mut left = n;
        // The first segment starts anywhere in its page; the others at 0.
        let mut first = self.rng.range(0, 8) as u8;
        while left > 0 && req.nseg < 8 {
            let Some(page) = self.pool.take() else { break };
            let count = left.min(u64::from(8 - first)) as u8;
            req.segs[req.nseg] = (page, first, count);
            req.nseg += 1;
            left -= u64::from(count);
            first = 0;
        }
        if req.nseg == 0 {
            return 0;
        }
        let n = n - left;
        let seed = self.next_seed;
        self.next_seed += 1;
        let id = self.next_id;
        self.next_id += 1;
        let mut r = BlkRequest { operation: if write { BlkOp::Write } else { BlkOp::Read } as u8, nr_segments: req.nseg as u8, id, sector, ..BlkRequest::default() };
        let mut s = sector;
        for (i, &(page, first, count)) in req.segs[..req.nseg].iter().enumerate() {
            r.segments[i] = BlkSegment { gref: self.pool.pages[page].gref, first_sect: first, last_sect: first + count - 1, reserved0: 0 };
            let bytes = self.pool.bytes(page);
            for k in 0..usize::from(count) {
                let at = (usize::from(first) + k) * 512;
                for (b, byte) in bytes[at..at + 512].iter_mut().enumerate() {
                    *byte = if write { disk_byte(seed, s, b) } else { 0xaa };
                }
                s += 1;
            }
        }
        self.front.push(&r).expect("a free slot");
        for s in sector..sector + n {
            self.busy[s as usize] = true;
        }
        self.inflight[slot] = Some(Inflight { id, op: r.operation, sector, nsect: n, seed, nseg: req.nseg, segs: req.segs });
        n
    }

    /// Submits a flush.
    fn flush(&mut self) -> bool {
        let Some(slot) = self.inflight.iter().position(Option::is_none) else { return false };
        if self.front.free() == 0 {
            return false;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.front.push(&BlkRequest { operation: BlkOp::Flush as u8, id, ..BlkRequest::default() }).expect("a free slot");
        self.inflight[slot] = Some(Inflight { id, op: BlkOp::Flush as u8, ..Inflight::default() });
        true
    }

    /// Handles every response waiting: checks each read's bytes, records
    /// each write's generation. Returns how many completed and the sum of
    /// the per-sector checksums of what was read.
    fn complete(&mut self) -> (usize, u64) {
        let (mut done, mut sum) = (0, 0u64);
        while let Some(rsp) = self.front.pop() {
            let Some(slot) = self.inflight.iter().position(|f| f.is_some_and(|f| f.id == rsp.id)) else {
                veneer_guest::failure(format_args!("a response for request {}, which is not in flight", rsp.id))
            };
            let f = self.inflight[slot].take().expect("found");
            check!(rsp.status == BlkStatus::Ok as i16 && rsp.operation == f.op, "request {} ({}) answered {} for op {}", f.id, f.op, rsp.status, rsp.operation);
            let mut s = f.sector;
            for &(page, first, count) in &f.segs[..f.nseg] {
                for k in 0..usize::from(count) {
                    let at = (usize::from(first) + k) * 512;
                    if f.op == BlkOp::Read as u8 {
                        let want = self.seeds[s as usize];
                        let bytes = &self.pool.bytes(page)[at..at + 512];
                        for (b, &got) in bytes.iter().enumerate() {
                            check!(got == disk_byte(want, s, b), "sector {} byte {}: {:#x}, expected generation {} ({:#x})", s, b, got, want, disk_byte(want, s, b));
                        }
                        sum = sum.wrapping_add(sector_sum(s, bytes));
                        self.sectors_checked += 1;
                    } else {
                        self.seeds[s as usize] = f.seed;
                    }
                    s += 1;
                }
                self.pool.give_back(page);
            }
            for s in f.sector..f.sector + f.nsect {
                self.busy[s as usize] = false;
            }
            match BlkOp::from_value(f.op) {
                Some(BlkOp::Read) => self.reads += 1,
                Some(BlkOp::Write) => self.writes += 1,
                _ => self.flushes += 1,
            }
            done += 1;
        }
        (done, sum)
    }

    fn in_flight(&self) -> usize {
        self.inflight.iter().filter(|f| f.is_some()).count()
    }

    /// Publishes, then sleeps until something completes.
    fn wait(&mut self) {
        self.front.publish();
        if self.front.wait().is_err() {
            veneer_guest::failure(format_args!("no response within {} s, {} requests in flight", TIMEOUT_NS / 1_000_000_000, self.in_flight()));
        }
    }

    /// Reads the whole device in random-sized requests, up to `depth` in
    /// flight; returns the sum of the per-sector checksums.
    pub fn sweep(&mut self, depth: usize) -> u64 {
        let (mut next, mut sum) = (0u64, 0u64);
        while next < DEV_SECTORS || self.in_flight() > 0 {
            while next < DEV_SECTORS && self.in_flight() < depth {
                let max = self.rng.range(1, 65);
                let n = self.submit(false, next, max);
                if n == 0 {
                    break;
                }
                next += n;
            }
            self.wait();
            sum = sum.wrapping_add(self.complete().1);
        }
        sum
    }

    /// `ops` reads and writes at random places, of 1 to 64 sectors, up to
    /// `depth` in flight, with a flush every 64.
    pub fn random(&mut self, ops: u64, depth: usize) {
        let mut issued = 0;
        while issued < ops || self.in_flight() > 0 {
            while issued < ops && self.in_flight() < depth {
                let ok = if issued % 64 == 63 {
                    self.flush()
                } else {
                    let write = self.rng.range(0, 10) < 6;
                    let sector = self.rng.range(0, DEV_SECTORS);
                    let max = self.rng.range(1, 65);
                    self.submit(write, sector, max) > 0
                };
                if !ok {
                    break;
                }
                issued += 1;
            }
            self.wait();
            self.complete();
        }
    }

    /// The sum of the per-sector checksums the device must hold now.
    pub fn expected_sum(&self) -> u64 {
        let mut sum = 0u64;
        let mut bytes = [0u8; 512];
        for s in 0..DEV_SECTORS {
            for (b, byte) in bytes.iter_mut().enumerate() {
                *byte = disk_byte(self.seeds[s as usize], s, b);
            }
            sum = sum.wrapping_add(sector_sum(s, &bytes));
        }
        sum
    }

    /// Shuts the device down from this side and takes the pool back.
    pub fn close(self, virq: u32, grants: &mut Grants) {
        let Workload { front, pool, .. } = self;
        if let Err(e) = front.close(virq, grants) {
            veneer_guest::failure(format_args!("closing the block device: {e:?}"));
        }
        check!(pool.revoke_all(grants).is_ok(), "the backend let go of every data page");
    }
}


/// The whole workload: handshake, sweep, `ops` random requests at depth 32
/// and `ops / 10` at depth 1, sweep, checksums, close. Fails the domain on
/// any difference.
pub fn check_device(start: &StartInfo, ops: u64) {
    event::init(start);
    let mut mem = Memory::new(start);
    let virq = device::bind_device_virq();
    let mut grants = Grants::setup(&mut mem, 2).expect("a grant table");
    let mut w = Workload::connect(virq, &mut mem, &mut grants, 0x5eed_0000 + u64::from(start.domain_id));
    let backend = w.front.info().backend_domid;
    w.sweep(IN_FLIGHT);
    let initial = w.sectors_checked;
    w.random(ops, IN_FLIGHT);
    w.random(ops / 10, 1);
    let sum = w.sweep(IN_FLIGHT);
    let want = w.expected_sum();
    check!(sum == want, "checksum {:#x}, expected {:#x}", sum, want);
    println!(
        "blk (backend {:#x}): {} sectors checked ({} of the image), {} reads, {} writes, {} flushes, checksum {:#018x}",
        backend, w.sectors_checked, initial, w.reads, w.writes, w.flushes, sum
    );
    w.close(virq, &mut grants);
}

/// The block test: [`check_device`] with 400 random requests, then the
/// verdict.
pub fn run(start: &StartInfo) -> ! {
    check_device(start, 400);
    veneer_guest::success()
}
