//! A block backend domain (the thin, driver-domain model): serves its
//! ramdisk — its boot module — to the frontend of every block slot it
//! backs, slot k the k-th 512 KiB of it.
//!
//! Each request is checked whole (`BlkRequest::check`) before any data
//! moves. Data moves with `grant_copy` between the frontend's granted pages
//! and this domain's own frames; a write lands in bounce pages first and
//! reaches the disk only if every copy of the request succeeded, so a
//! request naming a revoked or foreign grant fails without touching the
//! disk. Each pass serves at most one ring's worth per slot, round robin,
//! so a frontend that lies about its indices cannot starve the others; a
//! frontend that goes away (closes, or dies mid-request) is let go of and
//! its slot closed. The domain powers off when its last slot is gone.
#![no_std]
#![no_main]

use veneer_guest::blk::RING_SLOTS;
use veneer_guest::device::{self, Back, Step};
use veneer_guest::hypercall_abi::blk::{BlkRequest, BlkResponse, BlkRing, BlkStatus, BlkWork};
use veneer_guest::hypercall_abi::device::{device_features, DeviceKind, DeviceParams, DeviceRole};
use veneer_guest::hypercall_abi::domid::domid;
use veneer_guest::hypercall_abi::grant::{grant_op_flags, GrantCopyOp, GrantCopySeg};
use veneer_guest::hypercall_abi::ring::BackRing;
use veneer_guest::mmu::{Memory, PAGE, RW};
use veneer_guest::{check, event, grant, hypercall, println, StartInfo, StaticCell, IMAGE_BASE};

veneer_guest::entry!(main);
veneer_guest::ramdisk!(b"pattern-1M.img");

/// Sectors of each device: 512 KiB.
const DEV_SECTORS: u64 = 1024;
const SLOTS: usize = 4;
/// Requests per `grant_copy` call: 8 segments each, each at most two
/// copies (a segment may straddle two disk frames), 128 in all.
const BATCH: usize = 8;
const SECTOR: u64 = 512;

struct Slot {
    back: Back,
    ring: BackRing<BlkRing>,
    /// The device's first sector in the ramdisk.
    base: u64,
    serving: bool,
}

/// The copy ops of one batch: too big for the stack.
static OPS: StaticCell<[GrantCopyOp; 128]> = StaticCell::new([GrantCopyOp {
    src: GrantCopySeg { gref_or_frame: 0, domid: 0, offset: 0, reserved0: 0 },
    dst: GrantCopySeg { gref_or_frame: 0, domid: 0, offset: 0, reserved0: 0 },
    len: 0,
    flags: 0,
    status: 0,
}; 128]);

struct Disk {
    /// The ramdisk's first frame and its address.
    pfn: u64,
    va: u64,
    /// Bounce pages: `BATCH` requests of 8 segments.
    bounce: [(u64, u64); BATCH * 8],
    ops: &'static mut [GrantCopyOp; 128],
}

fn main(start: &StartInfo) -> ! {
    event::init(start);
    let mut mem = Memory::new(start);
    let virq = device::bind_device_virq();
    let mut slots: [Option<Slot>; SLOTS] = [None, None, None, None];
    let (mut n, mut from) = (0, 0);
    while let Some((h, info)) = device::find(DeviceRole::Backend, DeviceKind::Block, from) {
        check!(n < SLOTS, "more block slots than this backend serves");
        slots[n] = Some(Slot { back: Back::new(h, &info, &mut mem), ring: BackRing::new(), base: n as u64 * DEV_SECTORS, serving: false });
        n += 1;
        from = h + 1;
    }
    check!(start.ramdisk_len >= n as u64 * DEV_SECTORS * SECTOR, "a ramdisk of {} bytes for {} devices", start.ramdisk_len, n);
    let mut disk = Disk { pfn: (start.ramdisk_base - IMAGE_BASE) / PAGE, va: start.ramdisk_base, bounce: [(0, 0); BATCH * 8], ops: OPS.take() };
    for b in disk.bounce.iter_mut() {
        let pfn = mem.alloc();
        mem.map(pfn, RW).expect("a bounce page");
        *b = (Memory::va(pfn), mem.mfn(pfn));
    }
    println!("blkback: serving {} devices of {} sectors", n, DEV_SECTORS);
    let params = DeviceParams { nr_sectors: DEV_SECTORS, sector_size: SECTOR as u32, features: device_features::BLK_FLUSH, ..DeviceParams::default() };
    loop {
        let (mut live, mut busy) = (0, false);
        let mut ports = [virq; SLOTS + 1];
        for (i, entry) in slots.iter_mut().enumerate() {
            let Some(s) = entry else { continue };
            match s.back.step(&params).expect("the backend handshake") {
                Step::Gone => {
                    *entry = None;
                    continue;
                }
                Step::Idle => s.serving = false,
                Step::Serving => {
                    if !s.serving {
                        // A new connection: a fresh ring.
                        s.ring = BackRing::new();
                        s.serving = true;
                    }
                    busy |= serve(s, &mut disk, &mem);
                    ports[i + 1] = s.back.port.expect("connected");
                }
            }
            live += 1;
        }
        if live == 0 {
            println!("blkback: every slot is gone");
            hypercall::poweroff(0);
        }
        if !busy {
            event::wait_any(&ports, u64::MAX);
        }
    }
}

/// One pass over a slot's ring: at most one ring's worth of requests.
/// Returns true if requests may still be waiting (the pass hit its bound).
fn serve(s: &mut Slot, disk: &mut Disk, mem: &Memory<'_>) -> bool {
    let mut page = s.back.ring(0);
    let features = s.back.info.connect.features;
    let mut served = 0;
    loop {
        let mut reqs = [BlkRequest::default(); BATCH];
        let mut n = 0;
        while n < BATCH && served + (n as u32) < RING_SLOTS {
            match s.ring.pop(&page) {
                Some(r) => reqs[n] = r,
                None => break,
            }
            n += 1;
        }
        if n > 0 {
            let statuses = transfer(&reqs[..n], s.back.frontend, s.base, features, disk, mem);
            for (r, st) in reqs[..n].iter().zip(statuses) {
                let rsp = BlkResponse { id: r.id, operation: r.operation, reserved0: 0, status: st as i16, reserved1: 0 };
                s.ring.push(&mut page, &rsp).expect("a consumed request");
            }
            served += n as u32;
        }
        if s.ring.publish(&mut page) {
            s.back.notify();
        }
        if served >= RING_SLOTS {
            return true;
        }
        if n == BATCH {
            continue;
        }
        if !s.ring.rearm(&mut page) {
            return false;
        }
    }
}

/// Carries out `reqs` of `frontend` on the device at sector `base`, with
/// one `grant_copy`, and returns each one's status.
fn transfer(reqs: &[BlkRequest], frontend: u32, base: u64, features: u32, disk: &mut Disk, mem: &Memory<'_>) -> [BlkStatus; BATCH] {
    let mut status = [BlkStatus::Ok; BATCH];
    let ops = &mut *disk.ops;
    // Per request: the range of its ops, and whether it writes.
    let mut spans = [(0usize, 0usize, false); BATCH];
    let mut k = 0;
    for (i, r) in reqs.iter().enumerate() {
        let write = match r.check(DEV_SECTORS, features) {
            Err(st) => {
                status[i] = st;
                continue;
            }
            Ok(BlkWork::Flush) => continue,
            Ok(BlkWork::Transfer { write, .. }) => write,
        };
        let first = k;
        let mut at = (base + r.sector) * SECTOR;
        for (j, seg) in r.segments[..usize::from(r.nr_segments)].iter().enumerate() {
            let off = u64::from(seg.first_sect) * SECTOR;
            let len = u64::from(seg.bytes().expect("checked"));
            let theirs = GrantCopySeg { gref_or_frame: u64::from(seg.gref), domid: frontend, offset: off as u16, reserved0: 0 };
            if write {
                // Into the bounce page at the same offset, whole.
                let bounce = GrantCopySeg { gref_or_frame: disk.bounce[i * 8 + j].1, domid: domid::SELF, offset: off as u16, reserved0: 0 };
                ops[k] = GrantCopyOp { src: theirs, dst: bounce, len: len as u16, flags: grant_op_flags::COPY_SRC_GREF as u16, status: 1 };
                k += 1;
            } else {
                // From the disk's frames, cut where they end.
                let mut done = 0;
                while done < len {
                    let pos = at + done;
                    let n = (PAGE - pos % PAGE).min(len - done);
                    let mine = GrantCopySeg { gref_or_frame: mem.mfn(disk.pfn + pos / PAGE), domid: domid::SELF, offset: (pos % PAGE) as u16, reserved0: 0 };
                    let dst = GrantCopySeg { offset: (off + done) as u16, ..theirs };
                    ops[k] = GrantCopyOp { src: mine, dst, len: n as u16, flags: grant_op_flags::COPY_DST_GREF as u16, status: 1 };
                    k += 1;
                    done += n;
                }
            }
            at += len;
        }
        spans[i] = (first, k, write);
    }
    if k > 0 {
        grant::copy(&mut ops[..k]).expect("the copy ops are readable and writable");
    }
    for (i, r) in reqs.iter().enumerate() {
        let (first, end, write) = spans[i];
        if status[i] != BlkStatus::Ok || first == end {
            continue;
        }
        if ops[first..end].iter().any(|o| o.status != 0) {
            status[i] = BlkStatus::IoError;
            continue;
        }
        if write {
            // Every copy in: now the disk.
            let mut at = (base + r.sector) * SECTOR;
            for (j, seg) in r.segments[..usize::from(r.nr_segments)].iter().enumerate() {
                let off = u64::from(seg.first_sect) * SECTOR;
                let len = u64::from(seg.bytes().expect("checked"));
                // SAFETY: the bounce page is mapped writable by this domain
                // and the disk range lies inside its ramdisk, mapped
                // writable by the builder; they do not overlap.
                unsafe {
                    core::ptr::copy_nonoverlapping((disk.bounce[i * 8 + j].0 + off) as *const u8, (disk.va + at) as *mut u8, len as usize);
                }
                at += len;
            }
        }
    }
    status
}
