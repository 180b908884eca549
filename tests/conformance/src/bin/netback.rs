//! A software switch in a backend domain (the thin model): serves every
//! network slot it backs as a port of a switch that forwards by
//! destination MAC address (the configured MACs of the ports; broadcast
//! and unknown destinations go to every other port).
//!
//! A packet is copied (`grant_copy`) from the sender's granted page into a
//! bounce page of this domain, the sender's transmit request answered at
//! once, and queued on the sender's port; queues are delivered in order
//! into pages the receivers posted, and a packet waits while its receiver
//! has none posted, so nothing is lost and each sender's packets arrive in
//! the order sent. Copies are batched: one `grant_copy` for every packet
//! taken in a pass, one for every packet delivered. Malformed requests
//! (flags not offered, a packet outside its page or outside 14–1514
//! bytes, reserved fields) are answered `Error` and go nowhere. Each pass
//! takes at most a ring's worth from each port, so a sender that lies about
//! its indices cannot keep the switch from the others. A port whose
//! frontend goes away still delivers what it had queued. The domain powers
//! off when its last port is gone.
#![no_std]
#![no_main]

use veneer_guest::device::{self, Back, Step};
use veneer_guest::hypercall_abi::device::{DeviceKind, DeviceParams, DeviceRole};
use veneer_guest::hypercall_abi::domid::domid;
use veneer_guest::hypercall_abi::grant::{grant_op_flags, GrantCopyOp, GrantCopySeg};
use veneer_guest::hypercall_abi::net::{net_flags, NetRxResponse, NetRxRing, NetStatus, NetTxRequest, NetTxResponse, NetTxRing};
use veneer_guest::hypercall_abi::ring::{BackRing, Protocol};
use veneer_guest::mmu::{Memory, RW};
use veneer_guest::{check, event, grant, hypercall, println, StartInfo, StaticCell};

veneer_guest::entry!(main);

const PORTS: usize = 4;
/// Bounce pages per port: the packets it may have queued.
const QUEUE: usize = 16;
const FRAME_MIN: u16 = 14;
const FRAME_MAX: u16 = 1514;

struct Port {
    back: Back,
    tx: BackRing<NetTxRing>,
    rx: BackRing<NetRxRing>,
    mac: [u8; 6],
    serving: bool,
    /// The slot is gone: the port lives on until its queue is delivered.
    gone: bool,
    bounce: [(u64, u64); QUEUE],
    busy: [bool; QUEUE],
    /// Queued packets in order: (bounce page, length).
    queue: [(usize, u16); QUEUE],
    head: usize,
    count: usize,
}

impl Port {
    fn free_page(&self) -> Option<usize> {
        self.busy.iter().position(|b| !b)
    }
    fn front(&self) -> Option<(usize, u16)> {
        (self.count > 0).then(|| self.queue[self.head])
    }
    fn pop_front(&mut self) {
        self.head = (self.head + 1) % QUEUE;
        self.count -= 1;
    }
    fn push_back(&mut self, page: usize, len: u16) {
        self.queue[(self.head + self.count) % QUEUE] = (page, len);
        self.count += 1;
    }
    fn dst_mac(&self, page: usize) -> [u8; 6] {
        // SAFETY: the bounce page is mapped here and holds a whole packet
        // (at least 14 bytes) copied in; nobody else writes it.
        unsafe { core::ptr::read_volatile(self.bounce[page].0 as *const [u8; 6]) }
    }
}

static OPS: StaticCell<[GrantCopyOp; 128]> = StaticCell::new([GrantCopyOp {
    src: GrantCopySeg { gref_or_frame: 0, domid: 0, offset: 0, reserved0: 0 },
    dst: GrantCopySeg { gref_or_frame: 0, domid: 0, offset: 0, reserved0: 0 },
    len: 0,
    flags: 0,
    status: 0,
}; 128]);

fn main(start: &StartInfo) -> ! {
    event::init(start);
    let mut mem = Memory::new(start);
    let virq = device::bind_device_virq();
    let mut ports: [Option<Port>; PORTS] = [None, None, None, None];
    let (mut n, mut from) = (0, 0);
    while let Some((h, info)) = device::find(DeviceRole::Backend, DeviceKind::Net, from) {
        check!(n < PORTS, "more network slots than this switch has ports");
        let mut bounce = [(0, 0); QUEUE];
        for b in bounce.iter_mut() {
            let pfn = mem.alloc();
            mem.map(pfn, RW).expect("a bounce page");
            *b = (Memory::va(pfn), mem.mfn(pfn));
        }
        let back = Back::new(h, &info, &mut mem);
        ports[n] = Some(Port {
            back,
            tx: BackRing::new(),
            rx: BackRing::new(),
            mac: info.params.mac,
            serving: false,
            gone: false,
            bounce,
            busy: [false; QUEUE],
            queue: [(0, 0); QUEUE],
            head: 0,
            count: 0,
        });
        n += 1;
        from = h + 1;
    }
    println!("netback: a switch of {} ports", n);
    let ops = OPS.take();
    let params = DeviceParams { mtu: 1500, ..DeviceParams::default() };
    loop {
        let mut ports_to_watch = [virq; PORTS + 1];
        let mut live = 0;
        for (i, entry) in ports.iter_mut().enumerate() {
            let Some(p) = entry else { continue };
            if !p.gone {
                match p.back.step(&params).expect("the backend handshake") {
                    Step::Gone => {
                        p.gone = true;
                        p.serving = false;
                    }
                    Step::Idle => p.serving = false,
                    Step::Serving => {
                        if !p.serving {
                            p.tx = BackRing::new();
                            p.rx = BackRing::new();
                            p.serving = true;
                        }
                        ports_to_watch[i + 1] = p.back.port.expect("connected");
                    }
                }
            }
            if p.gone && p.count == 0 {
                *entry = None;
                continue;
            }
            live += 1;
        }
        if live == 0 {
            println!("netback: every port is gone");
            hypercall::poweroff(0);
        }
        let (taken, bounded) = take_in(&mut ports, ops);
        let moved = taken + deliver(&mut ports, ops);
        let mut more = false;
        for p in ports.iter_mut().flatten().filter(|p| p.serving) {
            let (mut tx, mut rx) = (p.back.ring(0), p.back.ring(1));
            let a = p.tx.publish(&mut tx);
            let b = p.rx.publish(&mut rx);
            if a || b {
                p.back.notify();
            }
            more |= p.tx.rearm(&mut tx) | p.rx.rearm(&mut rx);
        }
        if moved == 0 && !more && !bounded {
            event::wait_any(&ports_to_watch, u64::MAX);
        }
    }
}

/// A transmit request this switch accepts: a whole packet of 14–1514
/// bytes inside its page, no flags it did not offer, reserved fields zero.
fn acceptable(r: &NetTxRequest) -> bool {
    r.flags & !net_flags::DATA_VALIDATED == 0
        && r.reserved0 == 0
        && (FRAME_MIN..=FRAME_MAX).contains(&r.size)
        && usize::from(r.offset) + usize::from(r.size) <= 4096
}

/// Copies every packet the senders have (and the queues have room for)
/// into bounce pages, answering each transmit request, at most a ring's
/// worth per port. Returns the packets taken, and whether a port hit that
/// bound (requests may be left).
fn take_in(ports: &mut [Option<Port>; PORTS], ops: &mut [GrantCopyOp; 128]) -> (usize, bool) {
    // (port, request id, bounce page, length) per op.
    let mut meta = [(0usize, 0u16, 0usize, 0u16); 128];
    let (mut k, mut bounded) = (0, false);
    for (i, entry) in ports.iter_mut().enumerate() {
        let Some(p) = entry.as_mut().filter(|p| p.serving) else { continue };
        let page = p.back.ring(0);
        // At most a ring's worth per port and pass, answered or not: a
        // sender that lies about its indices gets no more of this domain.
        let mut popped = 0;
        while k < ops.len() && popped < NetTxRing::NR_SLOTS {
            let Some(slot) = p.free_page() else { break };
            let Some(r) = p.tx.pop(&page) else { break };
            popped += 1;
            if !acceptable(&r) {
                let rsp = NetTxResponse { id: r.id, status: NetStatus::Error as i16, reserved0: 0 };
                p.tx.push(&mut p.back.ring(0), &rsp).expect("a consumed request");
                continue;
            }
            p.busy[slot] = true;
            let src = GrantCopySeg { gref_or_frame: u64::from(r.gref), domid: p.back.frontend, offset: r.offset, reserved0: 0 };
            let dst = GrantCopySeg { gref_or_frame: p.bounce[slot].1, domid: domid::SELF, offset: 0, reserved0: 0 };
            ops[k] = GrantCopyOp { src, dst, len: r.size, flags: grant_op_flags::COPY_SRC_GREF as u16, status: 1 };
            meta[k] = (i, r.id, slot, r.size);
            k += 1;
        }
        bounded |= popped == NetTxRing::NR_SLOTS;
    }
    if k == 0 {
        return (0, bounded);
    }
    grant::copy(&mut ops[..k]).expect("the copy ops are readable and writable");
    for (op, &(i, id, slot, len)) in ops[..k].iter().zip(&meta[..k]) {
        let p = ports[i].as_mut().expect("a port of this pass");
        let status = if op.status == 0 {
            p.push_back(slot, len);
            NetStatus::Ok
        } else {
            p.busy[slot] = false;
            NetStatus::Error
        };
        let rsp = NetTxResponse { id, status: status as i16, reserved0: 0 };
        p.tx.push(&mut p.back.ring(0), &rsp).expect("a consumed request");
    }
    (k, bounded)
}

/// Delivers queued packets, each port's in order, into pages their
/// receivers posted; a unicast packet whose receiver has none posted, or
/// is not connected yet, waits (and its port's later packets behind it);
/// one whose receiver is gone is dropped. Returns the packets delivered.
fn deliver(ports: &mut [Option<Port>; PORTS], ops: &mut [GrantCopyOp; 128]) -> usize {
    // (receiving port, rx request id, length, sending port, bounce page) per op.
    let mut meta = [(0usize, 0u16, 0u16, 0usize, 0usize); 128];
    let mut k = 0;
    let mut freed = [[false; QUEUE]; PORTS];
    let mut packets = 0;
    for s in 0..PORTS {
        loop {
            let Some((page, len, mac)) = ports[s].as_ref().and_then(|p| p.front().map(|(pg, l)| (pg, l, p.dst_mac(pg)))) else { break };
            let exact = (0..PORTS).find(|&d| d != s && ports[d].as_ref().is_some_and(|p| p.mac == mac));
            let targets: [bool; PORTS] = core::array::from_fn(|d| match exact {
                Some(e) => d == e,
                None => d != s && ports[d].as_ref().is_some(),
            });
            // A unicast waits for its receiver's page; a flood goes where
            // there are pages now.
            if let Some(e) = exact {
                let p = ports[e].as_ref().expect("found");
                let waiting = if p.serving { p.rx.pending(&p.back.ring(1)) == 0 } else { !p.gone };
                if waiting {
                    break;
                }
            }
            if k + PORTS > ops.len() {
                break;
            }
            let from = ports[s].as_ref().expect("a sender").bounce[page].1;
            for d in (0..PORTS).filter(|&d| targets[d]) {
                let Some(r) = ports[d].as_mut().filter(|p| p.serving) else { continue };
                let Some(req) = r.rx.pop(&r.back.ring(1)) else { continue };
                let src = GrantCopySeg { gref_or_frame: from, domid: domid::SELF, offset: 0, reserved0: 0 };
                let dst = GrantCopySeg { gref_or_frame: u64::from(req.gref), domid: r.back.frontend, offset: 0, reserved0: 0 };
                ops[k] = GrantCopyOp { src, dst, len, flags: grant_op_flags::COPY_DST_GREF as u16, status: 1 };
                meta[k] = (d, req.id, len, s, page);
                k += 1;
            }
            let p = ports[s].as_mut().expect("a sender");
            p.pop_front();
            freed[s][page] = true;
            packets += 1;
        }
    }
    if k > 0 {
        grant::copy(&mut ops[..k]).expect("the copy ops are readable and writable");
    }
    for (op, &(d, id, len, _, _)) in ops[..k].iter().zip(&meta[..k]) {
        let r = ports[d].as_mut().expect("a receiver of this pass");
        let status = if op.status == 0 { len as i16 } else { NetStatus::Error as i16 };
        let rsp = NetRxResponse { id, offset: 0, flags: 0, status };
        r.rx.push(&mut r.back.ring(1), &rsp).expect("a consumed request");
    }
    for (s, pages) in freed.iter().enumerate() {
        if let Some(p) = ports[s].as_mut() {
            for (page, &f) in pages.iter().enumerate() {
                if f {
                    p.busy[page] = false;
                }
            }
        }
    }
    packets
}

const _: () = assert!(NetRxRing::NR_SLOTS as usize >= QUEUE);
