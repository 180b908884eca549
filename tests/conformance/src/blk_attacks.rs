//! Misbehaving block frontends (SPEC §18, §20): each attack is made by the
//! domain under test against its own device, while an honest frontend
//! (`blk_honest`, `blk_honest_hv`) uses another device of the same backend
//! and must see every byte it expects. The attacker checks that the
//! backend answers with errors (or, for lies about the ring, answers no
//! more than the ring bounds allow), that nothing it must not change has
//! changed, and — where it keeps living — that after reconnecting its
//! device works again.

use veneer_guest::blk::{BlkFront, Pool};
use veneer_guest::device::{self, TIMEOUT_NS};
use veneer_guest::grant::Grants;
use veneer_guest::hypercall_abi::blk::{BlkOp, BlkRequest, BlkResponse, BlkRing, BlkSegment, BlkStatus};
use veneer_guest::hypercall_abi::device::{DeviceKind, DeviceRole, DeviceState};
use veneer_guest::hypercall_abi::domid::domid;
use veneer_guest::hypercall_abi::layout::Wire;
use veneer_guest::hypercall_abi::ring::{slot_offset, Protocol, SharedPage};
use veneer_guest::mmu::{Memory, RW};
use veneer_guest::rand::disk_byte;
use veneer_guest::ring::MappedPage;
use veneer_guest::{check, event, println, StartInfo};

/// Which attack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attack {
    LyingIndices,
    OverfullRing,
    ForeignGrant,
    SectorPastEnd,
    RevokeMidRequest,
    FrontendDies,
}

const REQ_PROD: usize = 0;
const RSP_PROD: usize = 64;
const NR: u32 = BlkRing::NR_SLOTS;
const OK: i16 = BlkStatus::Ok as i16;
const IO: i16 = BlkStatus::IoError as i16;
const NS: i16 = BlkStatus::NotSupported as i16;

struct Attacker<'a> {
    mem: Memory<'a>,
    grants: Grants,
    virq: u32,
    handle: u32,
    front: Option<BlkFront>,
    pool: Pool<8>,
    next_id: u64,
    /// Whether the hypervisor serves the device.
    hypervisor: bool,
}

impl<'a> Attacker<'a> {
    fn new(start: &'a StartInfo) -> Attacker<'a> {
        event::init(start);
        let mut mem = Memory::new(start);
        let virq = device::bind_device_virq();
        let mut grants = Grants::setup(&mut mem, 2).expect("a grant table");
        let (handle, _) = device::find(DeviceRole::Frontend, DeviceKind::Block, 0).expect("a block device");
        let front = BlkFront::connect(virq, handle, &mut mem, &mut grants).expect("the handshake");
        let backend = front.info().backend_domid;
        let pool = Pool::new(&mut mem, &mut grants, backend).expect("data pages");
        Attacker { mem, grants, virq, handle, front: Some(front), pool, next_id: 1, hypervisor: backend == domid::HYPERVISOR }
    }

    fn front(&mut self) -> &mut BlkFront {
        self.front.as_mut().expect("connected")
    }

    fn page(&mut self) -> MappedPage {
        MappedPage(self.front().dev.rings[0].0)
    }

    fn seg(&self, page: usize, first: u8, last: u8) -> BlkSegment {
        BlkSegment { gref: self.pool.pages[page].gref, first_sect: first, last_sect: last, reserved0: 0 }
    }

    fn req(&mut self, op: BlkOp, sector: u64, segs: &[BlkSegment]) -> BlkRequest {
        let mut r = BlkRequest { operation: op as u8, nr_segments: segs.len() as u8, id: self.next_id, sector, ..BlkRequest::default() };
        self.next_id += 1;
        r.segments[..segs.len()].copy_from_slice(segs);
        r
    }

    /// Sends `r` and returns the status of its response.
    fn one(&mut self, r: BlkRequest) -> i16 {
        let f = self.front();
        f.push(&r).expect("room");
        f.publish();
        loop {
            if let Some(rsp) = f.pop() {
                check!(rsp.id == r.id, "answered {} for {}", rsp.id, r.id);
                return rsp.status;
            }
            check!(f.wait().is_ok(), "no answer within {} s", TIMEOUT_NS / 1_000_000_000);
        }
    }

    /// Reads `n` (≤ 8) sectors from `sector` and checks they hold
    /// generation `seed`.
    fn expect_data(&mut self, sector: u64, n: u8, seed: u32) {
        let s = self.seg(0, 0, n - 1);
        let r = self.req(BlkOp::Read, sector, &[s]);
        check!(self.one(r) == OK, "reading back sector {}", sector);
        let bytes = self.pool.bytes(0);
        for k in 0..u64::from(n) {
            for b in 0..512 {
                let at = k as usize * 512 + b;
                check!(bytes[at] == disk_byte(seed, sector + k, b), "sector {} byte {} changed", sector + k, b);
            }
        }
    }

    /// Writes generation `seed` of the pattern to `n` (≤ 8) sectors.
    fn write_data(&mut self, sector: u64, n: u8, seed: u32) {
        let bytes = self.pool.bytes(1);
        for k in 0..u64::from(n) {
            for b in 0..512 {
                bytes[k as usize * 512 + b] = disk_byte(seed, sector + k, b);
            }
        }
        let s = self.seg(1, 0, n - 1);
        let r = self.req(BlkOp::Write, sector, &[s]);
        check!(self.one(r) == OK, "writing sector {}", sector);
    }

    /// Waits until the backend has answered up to `at_least` (a domain
    /// answers in its own time; the hypervisor a ring's worth inside the
    /// notification and the rest at its next scheduling decisions).
    fn answered_up_to(&mut self, at_least: u32) -> u32 {
        let page = self.page();
        let deadline = event::now() + TIMEOUT_NS;
        loop {
            let now = page.load_u32(RSP_PROD);
            if now.wrapping_sub(at_least) as i32 >= 0 {
                return now;
            }
            check!(event::now() < deadline, "the backend stopped at {}", now);
            event::sched_yield().expect("yield");
        }
    }

    /// Shuts the device down and connects again: a fresh ring.
    fn reconnect(&mut self) {
        let front = self.front.take().expect("connected");
        check!(front.close(self.virq, &mut self.grants).is_ok(), "the backend let go of the ring");
        device::set_state(self.handle, DeviceState::Initialising).expect("start over");
        self.front = Some(BlkFront::connect(self.virq, self.handle, &mut self.mem, &mut self.grants).expect("the handshake again"));
        self.next_id = 1;
    }

    /// After an attack that left its ring unusable: reconnect and read and
    /// write as usual.
    fn works_again(&mut self) {
        self.reconnect();
        self.expect_data(0, 8, 0);
        self.write_data(16, 8, 77);
        self.expect_data(16, 8, 77);
    }

    /// The last response slots written: every status must be an error.
    fn check_garbage_answers(&mut self, from: u32, to: u32) {
        let page = self.page();
        for i in from.max(to.saturating_sub(NR))..to {
            let mut b = [0u8; 16];
            page.read(slot_offset(i, NR, BlkRing::SLOT_SIZE), &mut b);
            let rsp = BlkResponse::decode(&b);
            check!(rsp.status == NS || rsp.status == IO, "response {} to garbage: status {}", i, rsp.status);
        }
    }
}

/// Carries out `attack`; the domain then passes.
pub fn run(start: &StartInfo, attack: Attack) -> ! {
    let mut a = Attacker::new(start);
    a.expect_data(0, 8, 0);
    match attack {
        Attack::LyingIndices => {
            // Ahead: 1000 requests that were never written. Each is
            // garbage, answered with an error, a ring's worth at a time;
            // never more than were announced.
            let p = a.page().load_u32(REQ_PROD);
            a.page().store_u32(REQ_PROD, p + 1000);
            a.front().dev.notify();
            let got = a.answered_up_to(p + 1000);
            check!(got == p + 1000, "the backend answered {} of 1000", got.wrapping_sub(p));
            a.check_garbage_answers(p, got);
            // Behind what the backend consumed: as if 2^32 - 5 more were
            // announced. The backend's room bounds each pass; the device
            // is reset by reconnecting.
            a.page().store_u32(REQ_PROD, p.wrapping_sub(5));
            a.front().dev.notify();
            let later = a.answered_up_to(got.wrapping_add(NR));
            a.check_garbage_answers(got, later);
            println!("lying indices: answered {} garbage requests, each with an error", later.wrapping_sub(p));
            a.works_again();
        }
        Attack::OverfullRing => {
            // A full ring of good reads, then 16 more written over the
            // first 16 of them, and req_prod 48 past where it was.
            let p = a.page().load_u32(REQ_PROD);
            let first_id = a.next_id;
            for i in 0..NR {
                let s = a.seg((i % 8) as usize, 0, 0);
                let r = a.req(BlkOp::Read, u64::from(i), &[s]);
                a.front().push(&r).expect("room for 32");
            }
            let mut page = a.page();
            for i in 0..16u32 {
                let s = a.seg(0, 0, 0);
                let r = a.req(BlkOp::Read, 100 + u64::from(i), &[s]);
                let mut bytes = [0u8; 96];
                r.encode(&mut bytes);
                page.write(slot_offset(p + NR + i, NR, BlkRing::SLOT_SIZE), &bytes);
            }
            page.store_u32(REQ_PROD, p + NR + 16);
            a.front().dev.notify();
            let last = a.answered_up_to(p + NR + 16);
            check!(last == p + NR + 16, "the backend answered {} of 48", last.wrapping_sub(p));
            // Answers 16..32 still in the ring: to requests 17..=32, which
            // nothing overwrote.
            for i in 16..NR {
                let mut b = [0u8; 16];
                a.page().read(slot_offset(p + i, NR, BlkRing::SLOT_SIZE), &mut b);
                let rsp = BlkResponse::decode(&b);
                check!(rsp.status == OK && rsp.id == first_id + u64::from(i), "answer {}: id {} status {}", i, rsp.id, rsp.status);
            }
            a.check_garbage_answers(p + NR, p + NR + 16);
            a.works_again();
        }
        Attack::ForeignGrant => {
            // The honest frontend: domain 2 beside the hypervisor's backend,
            // 3 beside a backend domain.
            let honest = start.domain_id + if a.hypervisor { 1 } else { 2 };
            let pfn = a.mem.alloc();
            a.mem.map(pfn, RW).expect("map");
            let mfn = a.mem.mfn(pfn);
            let backend = a.front().info().backend_domid;
            let theirs = a.grants.grant(honest, mfn, false).expect("a grant to the other frontend");
            let never = a.grants.alloc().expect("a reference never granted");
            let ro = a.grants.grant(backend, mfn, true).expect("a read-only grant");
            for gref in [theirs, never, ro, 2000, 0] {
                let s = BlkSegment { gref, first_sect: 0, last_sect: 0, reserved0: 0 };
                let r = a.req(BlkOp::Read, 0, &[s]);
                check!(a.one(r) == IO, "a read into grant {} succeeded", gref);
            }
            // A write whose second segment is not the backend's: nothing of
            // it reaches the disk.
            let good = a.seg(1, 0, 7);
            let bad = BlkSegment { gref: theirs, first_sect: 0, last_sect: 7, reserved0: 0 };
            a.pool.bytes(1).fill(0x5a);
            let r = a.req(BlkOp::Write, 100, &[good, bad]);
            check!(a.one(r) == IO, "a write naming another domain's grant");
            a.expect_data(100, 8, 0);
            a.expect_data(108, 8, 0);
            // A read-only grant is enough for a write (the device reads it).
            // SAFETY: mapped writable above; granted read-only, the backend
            // only reads it.
            unsafe { core::ptr::write_bytes(veneer_guest::mmu::Memory::va(pfn) as *mut u8, 0, 512) };
            for b in 0..512 {
                // SAFETY: as above.
                unsafe { core::ptr::write_volatile((Memory::va(pfn) + b as u64) as *mut u8, disk_byte(9, 200, b)) };
            }
            let r = a.req(BlkOp::Write, 200, &[BlkSegment { gref: ro, first_sect: 0, last_sect: 0, reserved0: 0 }]);
            check!(a.one(r) == OK, "a write from a read-only grant");
            a.expect_data(200, 1, 9);
        }
        Attack::SectorPastEnd => {
            let s1 = a.seg(0, 0, 0);
            let s2 = a.seg(0, 0, 1);
            let s8 = a.seg(1, 0, 7);
            for (sector, segs, want) in [(1024, &[s1][..], IO), (1023, &[s2][..], IO), (u64::MAX, &[s1][..], IO), (1020, &[s8][..], IO), (1023, &[s1][..], OK)] {
                let r = a.req(BlkOp::Write, sector, segs);
                check!(a.one(r) == want, "a write at sector {} of {} segments", sector, segs.len());
            }
            a.expect_data(1016, 7, 0);
            let mut malformed = [a.req(BlkOp::Read, 0, &[s1]); 8];
            malformed[0].nr_segments = 0;
            malformed[1].nr_segments = 9;
            malformed[2].segments[0].first_sect = 3;
            malformed[3].segments[0].last_sect = 8;
            malformed[4].reserved1 = 1;
            malformed[5].operation = BlkOp::Discard as u8;
            malformed[6].operation = 7;
            malformed[7].nr_sectors = 1;
            for (i, mut r) in malformed.into_iter().enumerate() {
                r.id = 1000 + i as u64;
                check!(a.one(r) == NS, "malformed request {} answered otherwise", i);
            }
        }
        Attack::RevokeMidRequest => {
            // The request is in the ring naming the grant; the grant is
            // revoked before the backend looks; then it is told.
            let pfn = a.mem.alloc();
            a.mem.map(pfn, RW).expect("map");
            let backend = a.front().info().backend_domid;
            let g = a.grants.grant(backend, a.mem.mfn(pfn), false).expect("a grant");
            a.pool.bytes(1).fill(0x77);
            let good = a.seg(1, 0, 7);
            let w = a.req(BlkOp::Write, 300, &[good, BlkSegment { gref: g, first_sect: 0, last_sect: 7, reserved0: 0 }]);
            let r = a.req(BlkOp::Read, 0, &[BlkSegment { gref: g, first_sect: 0, last_sect: 0, reserved0: 0 }]);
            a.front().push(&w).expect("room");
            a.front().push(&r).expect("room");
            check!(a.grants.revoke(g).is_ok(), "revoking a grant nobody uses yet");
            a.front().publish();
            let mut seen = 0;
            while seen < 2 {
                while let Some(rsp) = a.front().pop() {
                    check!(rsp.status == IO, "request {} through a revoked grant: status {}", rsp.id, rsp.status);
                    seen += 1;
                }
                if seen < 2 {
                    check!(a.front().wait().is_ok(), "no answer");
                }
            }
            a.expect_data(300, 8, 0);
            a.expect_data(308, 8, 0);
        }
        Attack::FrontendDies => {
            // Requests in flight — some the backend was told of, some not —
            // and the domain ends.
            for i in 0..24u64 {
                let s = a.seg((i % 8) as usize, 0, 7);
                let r = a.req(if i % 2 == 0 { BlkOp::Write } else { BlkOp::Read }, 400 + 8 * i, &[s]);
                a.front().push(&r).expect("room");
                if i == 15 {
                    a.front().publish();
                }
            }
            let mut page = a.page();
            let published = page.load_u32(REQ_PROD);
            page.store_u32(REQ_PROD, published + 8);
            println!("frontend dies: 24 requests in the ring, 16 of them announced");
        }
    }
    veneer_guest::success()
}
