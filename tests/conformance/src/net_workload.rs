//! The network workload: two domains exchange packets through a switch,
//! both ways at once, and check that each arrives intact and, per flow, in
//! order.
//!
//! Each side sends `FLOWS` flows of `PER_FLOW` packets of 60–1514 bytes,
//! interleaved at random: an Ethernet header to the other side's MAC, then
//! the flow, its sequence number, the length and bytes that depend on all
//! three, and a checksum of everything before it. A receiver checks every
//! field and byte, and that each flow's sequence numbers arrive 0, 1, 2,
//! .... When a side has received everything it sends a last packet, `DONE`;
//! it closes its interface once it has the other side's.

use veneer_guest::device;
use veneer_guest::grant::Grants;
use veneer_guest::hypercall_abi::device::{DeviceKind, DeviceRole};
use veneer_guest::mmu::Memory;
use veneer_guest::net::NetFront;
use veneer_guest::rand::Rng;
use veneer_guest::{check, event, StartInfo};

pub const FLOWS: usize = 4;
pub const PER_FLOW: u32 = 150;
const ETHERTYPE: [u8; 2] = [0x88, 0xb5];
/// The flow of the last packet.
const DONE: u8 = 0xff;
/// Header, then flow (1), sequence (4), length (2); a checksum (4) ends it.
const HEADER: usize = 14 + 7;

fn fnv(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// Packet `seq` of `flow` from `src` to `dst`, `len` bytes, into `out`.
fn packet(out: &mut [u8], dst: [u8; 6], src: [u8; 6], flow: u8, seq: u32, len: usize) {
    out[..6].copy_from_slice(&dst);
    out[6..12].copy_from_slice(&src);
    out[12..14].copy_from_slice(&ETHERTYPE);
    out[14] = flow;
    out[15..19].copy_from_slice(&seq.to_le_bytes());
    out[19..21].copy_from_slice(&(len as u16).to_le_bytes());
    for (i, b) in out[HEADER..len - 4].iter_mut().enumerate() {
        *b = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seq).wrapping_add(u32::from(flow) << 24).to_le_bytes()[1];
    }
    let sum = fnv(&out[..len - 4]);
    out[len - 4..len].copy_from_slice(&sum.to_le_bytes());
}

/// Checks a received packet from `src` to `dst`; returns (flow, seq).
fn check_packet(p: &[u8], dst: [u8; 6], src: [u8; 6]) -> (u8, u32) {
    check!(p.len() >= HEADER + 4, "a runt of {} bytes", p.len());
    check!(p[..6] == dst && p[6..12] == src && p[12..14] == ETHERTYPE, "addressed {:02x?} from {:02x?}", &p[..6], &p[6..12]);
    let (flow, seq) = (p[14], u32::from_le_bytes(p[15..19].try_into().expect("4 bytes")));
    let len = usize::from(u16::from_le_bytes([p[19], p[20]]));
    check!(len == p.len(), "flow {} packet {}: {} bytes arrived of {}", flow, seq, p.len(), len);
    let mut want = [0u8; 1514];
    packet(&mut want, dst, src, flow, seq, len);
    check!(p == &want[..len], "flow {} packet {}: damaged (checksum {:#x})", flow, seq, fnv(&p[..len - 4]));
    (flow, seq)
}

/// Runs one side: `peer_mac` is the other side's address.
pub fn run(start: &StartInfo, peer_mac: [u8; 6]) -> (u64, u64) {
    event::init(start);
    let mut mem = Memory::new(start);
    let virq = device::bind_device_virq();
    let mut grants = Grants::setup(&mut mem, 1).expect("a grant table");
    let Some((handle, _)) = device::find(DeviceRole::Frontend, DeviceKind::Net, 0) else {
        veneer_guest::failure(format_args!("no network interface"))
    };
    let mut net = match NetFront::connect(virq, handle, &mut mem, &mut grants) {
        Ok(n) => n,
        Err(e) => veneer_guest::failure(format_args!("network handshake: {:?}", e)),
    };
    let me = net.mac;
    check!(me != [0; 6] && me != peer_mac, "the configured MAC {:02x?}", me);
    let mut rng = Rng::new(u64::from(start.domain_id) * 7919);
    let (mut sent, mut next_recv) = ([0u32; FLOWS], [0u32; FLOWS]);
    let (mut done_sent, mut done_received) = (false, false);
    let mut buf = [0u8; 1514];
    let total = FLOWS as u32 * PER_FLOW;
    let (mut bytes_out, mut bytes_in) = (0u64, 0u64);
    loop {
        let mut progress = false;
        // Send what fits: a random flow with packets left, a random size.
        loop {
            let left: usize = (0..FLOWS).filter(|&f| sent[f] < PER_FLOW).count();
            if left == 0 {
                break;
            }
            let mut f = rng.range(0, FLOWS as u64) as usize;
            while sent[f] == PER_FLOW {
                f = (f + 1) % FLOWS;
            }
            let len = rng.range(60, 1515) as usize;
            packet(&mut buf, peer_mac, me, f as u8, sent[f], len);
            if !net.send(&buf[..len]) {
                break;
            }
            sent[f] += 1;
            bytes_out += len as u64;
            progress = true;
        }
        let received: u32 = next_recv.iter().sum();
        if received == total && !done_sent {
            packet(&mut buf, peer_mac, me, DONE, 0, 64);
            if net.send(&buf[..64]) {
                done_sent = true;
                progress = true;
            }
        }
        net.publish();
        // Pages taken back are progress: the sends above may have stopped
        // for want of them, and with every answer reaped no event is owed.
        progress |= net.reap() > 0;
        while let Some(got) = net.recv(&mut buf) {
            let len = match got {
                Ok(len) => len,
                Err(status) => veneer_guest::failure(format_args!("a receive failed: {}", status)),
            };
            let (flow, seq) = check_packet(&buf[..len], me, peer_mac);
            if flow == DONE {
                check!(next_recv.iter().sum::<u32>() == total, "DONE before every packet");
                done_received = true;
            } else {
                check!(usize::from(flow) < FLOWS && seq == next_recv[usize::from(flow)], "flow {}: packet {} arrived, {} expected", flow, seq, next_recv[usize::from(flow) % FLOWS]);
                next_recv[usize::from(flow)] += 1;
                bytes_in += len as u64;
            }
            progress = true;
        }
        if done_sent && done_received && net.tx_outstanding() == 0 {
            break;
        }
        if !progress && net.wait().is_err() {
            veneer_guest::failure(format_args!("stalled: sent {:?}, received {:?}", sent, next_recv));
        }
    }
    check!(net.tx_errors == 0, "{} packets refused", net.tx_errors);
    if let Err(e) = net.close(virq, &mut grants) {
        veneer_guest::failure(format_args!("closing the interface: {:?}", e));
    }
    (bytes_out, bytes_in)
}
