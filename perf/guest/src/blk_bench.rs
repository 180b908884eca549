//! Block throughput and latency, whichever backend serves device 0:
//! reads of 4 KiB (one request of one 8-sector segment) and of 64 KiB (two
//! requests of eight full segments, the most a request carries), each
//! reported as cycles per I/O — at queue depth 1 (one I/O in flight) and
//! 32 (32 requests in flight, a full ring: 32 I/Os of 4 KiB, 16 of 64 KiB);
//! and the latency of one 4 KiB read, each request timed alone. Data pages
//! are granted once (persistent grants); reads walk the 512 KiB device in
//! order.

use veneer_guest::blk::{BlkFront, Pool, RING_SLOTS};
use veneer_guest::device;
use veneer_guest::grant::Grants;
use veneer_guest::hypercall_abi::blk::{BlkOp, BlkRequest, BlkSegment, BlkStatus};
use veneer_guest::hypercall_abi::device::{DeviceKind, DeviceRole};
use veneer_guest::mmu::Memory;
use veneer_guest::{event, hypercall, println, StartInfo, StaticCell};
use veneer_perf_measure::{cycles_per_op, per_item, tsc, Line, BATCHES};

use crate::fail;

const SLOTS: usize = RING_SLOTS as usize;
const DEV_SECTORS: u64 = 1024;

static POOL: StaticCell<Option<Pool<{ SLOTS * 8 }>>> = StaticCell::new(None);

struct Bench {
    front: BlkFront,
    pool: &'static mut Pool<{ SLOTS * 8 }>,
    /// Which of the 32 request slots (each with its 8 pages) are in flight.
    busy: [bool; SLOTS],
    next_sector: u64,
}

impl Bench {
    /// Submits a read of `segments` full pages at the next sectors.
    fn submit(&mut self, segments: usize) {
        let slot = self.busy.iter().position(|b| !b).expect("a free request slot");
        self.busy[slot] = true;
        let sectors = 8 * segments as u64;
        if self.next_sector + sectors > DEV_SECTORS {
            self.next_sector = 0;
        }
        let mut r = BlkRequest { operation: BlkOp::Read as u8, nr_segments: segments as u8, id: slot as u64, sector: self.next_sector, ..BlkRequest::default() };
        for (i, s) in r.segments[..segments].iter_mut().enumerate() {
            *s = BlkSegment { gref: self.pool.pages[slot * 8 + i].gref, first_sect: 0, last_sect: 7, reserved0: 0 };
        }
        self.next_sector += sectors;
        if self.front.push(&r).is_err() {
            fail(format_args!("the ring is full"));
        }
    }

    /// Takes the responses waiting; returns how many.
    fn complete(&mut self) -> usize {
        let mut n = 0;
        while let Some(rsp) = self.front.pop() {
            if rsp.status != BlkStatus::Ok as i16 {
                fail(format_args!("request {} failed: {}", rsp.id, rsp.status));
            }
            self.busy[rsp.id as usize] = false;
            n += 1;
        }
        n
    }

    fn wait(&mut self) {
        self.front.publish();
        if self.front.wait().is_err() {
            fail(format_args!("no response"));
        }
    }

    /// `ios` I/Os of `segments` × 8 sectors (in `per_io` requests each),
    /// at most `depth` requests in flight.
    fn run(&mut self, ios: usize, per_io: usize, segments: usize, depth: usize) {
        let (mut submitted, mut done) = (0, 0);
        let total = ios * per_io;
        while done < total {
            let mut pushed = false;
            while submitted < total && submitted - done < depth {
                self.submit(segments);
                submitted += 1;
                pushed = true;
            }
            if pushed {
                self.front.publish();
            }
            let n = self.complete();
            done += n;
            if n == 0 {
                self.wait();
            }
        }
    }
}

/// `<prefix>_<what>`, in `buf`.
fn metric<'b>(buf: &'b mut [u8; 48], prefix: &str, what: &str) -> &'b str {
    let n = prefix.len() + 1 + what.len();
    buf[..prefix.len()].copy_from_slice(prefix.as_bytes());
    buf[prefix.len()] = b'_';
    buf[prefix.len() + 1..n].copy_from_slice(what.as_bytes());
    core::str::from_utf8(&buf[..n]).expect("ASCII")
}

/// Runs every block measurement, naming each metric `<prefix>_<what>`.
pub fn run(start: &StartInfo, prefix: &str) -> ! {
    println!("bench entered");
    event::init(start);
    let mut mem = Memory::new(start);
    let virq = device::bind_device_virq();
    let mut grants = Grants::setup(&mut mem, 2).unwrap_or_else(|e| fail(format_args!("grant table: {e:?}")));
    let Some((handle, _)) = device::find(DeviceRole::Frontend, DeviceKind::Block, 0) else { fail(format_args!("no block device")) };
    let front = BlkFront::connect(virq, handle, &mut mem, &mut grants).unwrap_or_else(|e| fail(format_args!("handshake: {e:?}")));
    let backend = front.info().backend_domid;
    let slot = POOL.take();
    *slot = Some(Pool::new(&mut mem, &mut grants, backend).unwrap_or_else(|e| fail(format_args!("pool: {e:?}"))));
    let mut b = Bench { front, pool: slot.as_mut().expect("just set"), busy: [false; SLOTS], next_sector: 0 };
    let mut name = [0u8; 48];
    // (what, I/Os per batch, requests per I/O, segments per request, depth)
    for (what, ios, per_io, segments, depth) in [
        ("4k_qd1", 8, 1, 1, 1),
        ("4k_qd32", 64, 1, 1, 32),
        ("64k_qd1", 4, 2, 8, 2),
        ("64k_qd32", 16, 2, 8, 32),
    ] {
        b.run(ios, per_io, segments, depth);
        let stats = cycles_per_op(1, || b.run(ios, per_io, segments, depth));
        println!("{}", Line { name: metric(&mut name, prefix, what), stats: per_item(stats, ios as u64) });
    }
    // Latency: each 4 KiB read alone, from submission to its response.
    let mut samples = [0u64; BATCHES];
    for s in samples.iter_mut() {
        let t0 = tsc();
        b.run(1, 1, 1, 1);
        *s = tsc() - t0;
    }
    samples.sort_unstable();
    println!("{}", Line { name: metric(&mut name, prefix, "lat_4k"), stats: (samples[BATCHES / 2], samples[0], samples[BATCHES - 1]) });
    let Bench { front, pool, .. } = b;
    if front.close(virq, &mut grants).is_err() || pool.revoke_all(&mut grants).is_err() {
        fail(format_args!("closing the device"));
    }
    hypercall::poweroff(0)
}
