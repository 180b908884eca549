//! Packets through the switch domain between two guests: the rate of
//! 1500-byte packets one way (a batch of 256, then a request the other side
//! answers once it has them all: in order, so they all arrived), and the
//! round trip of a 64-byte packet the other side echoes. The other side is
//! [`sink`].

use veneer_guest::device;
use veneer_guest::grant::Grants;
use veneer_guest::hypercall_abi::device::{DeviceKind, DeviceRole};
use veneer_guest::mmu::Memory;
use veneer_guest::net::NetFront;
use veneer_guest::{event, hypercall, println, StartInfo};
use veneer_perf_measure::{cycles_per_op, per_item, tsc, Line, BATCHES};

use crate::fail;

const ETHERTYPE: [u8; 2] = [0x88, 0xb6];
/// The packet kinds (byte 14).
const DATA: u8 = 0;
const ECHO: u8 = 1;
const ACK_REQUEST: u8 = 2;
const ACK: u8 = 3;
const QUIT: u8 = 4;
const BATCH: u64 = 256;

fn connect(start: &StartInfo) -> (NetFront, Grants, u32) {
    event::init(start);
    let mut mem = Memory::new(start);
    let virq = device::bind_device_virq();
    let mut grants = Grants::setup(&mut mem, 1).unwrap_or_else(|e| fail(format_args!("grant table: {e:?}")));
    let Some((handle, _)) = device::find(DeviceRole::Frontend, DeviceKind::Net, 0) else { fail(format_args!("no network interface")) };
    let net = NetFront::connect(virq, handle, &mut mem, &mut grants).unwrap_or_else(|e| fail(format_args!("handshake: {e:?}")));
    (net, grants, virq)
}

fn frame(buf: &mut [u8; 1514], dst: [u8; 6], src: [u8; 6], kind: u8) {
    buf[..6].copy_from_slice(&dst);
    buf[6..12].copy_from_slice(&src);
    buf[12..14].copy_from_slice(&ETHERTYPE);
    buf[14] = kind;
}

/// Sends `len` bytes of `buf`, waiting for room.
fn send(net: &mut NetFront, buf: &[u8]) {
    while !net.send(buf) {
        net.publish();
        net.reap();
        if !net.send(buf) {
            if net.wait().is_err() {
                fail(format_args!("cannot send"));
            }
            net.reap();
        } else {
            return;
        }
    }
}

/// Waits for a packet of `kind`, dropping data packets on the way.
fn expect(net: &mut NetFront, buf: &mut [u8; 1514], kind: u8) {
    loop {
        net.publish();
        net.reap();
        while let Some(got) = net.recv(buf) {
            if matches!(got, Ok(n) if n > 14) && buf[14] == kind {
                return;
            }
        }
        if net.wait().is_err() {
            fail(format_args!("no packet of kind {kind}"));
        }
    }
}

/// The measuring side: `peer` is the sink's MAC.
pub fn run(start: &StartInfo, peer: [u8; 6]) -> ! {
    println!("bench entered");
    let (mut net, mut grants, virq) = connect(start);
    let me = net.mac;
    let (mut buf, mut rx) = ([0u8; 1514], [0u8; 1514]);
    // Rate: a batch of 1500-byte packets, then an acknowledgement.
    let mut batch = || {
        frame(&mut buf, peer, me, DATA);
        for _ in 0..BATCH {
            send(&mut net, &buf[..1500]);
        }
        frame(&mut buf, peer, me, ACK_REQUEST);
        send(&mut net, &buf[..64]);
        expect(&mut net, &mut rx, ACK);
    };
    batch();
    let stats = cycles_per_op(1, &mut batch);
    println!("{}", Line { name: "net_1500_per_packet", stats: per_item(stats, BATCH) });
    // Round trip of a small packet.
    let mut samples = [0u64; BATCHES];
    for s in samples.iter_mut() {
        let t0 = tsc();
        frame(&mut buf, peer, me, ECHO);
        send(&mut net, &buf[..64]);
        expect(&mut net, &mut rx, ECHO);
        *s = tsc() - t0;
    }
    samples.sort_unstable();
    println!("{}", Line { name: "net_64_round_trip", stats: (samples[BATCHES / 2], samples[0], samples[BATCHES - 1]) });
    frame(&mut buf, peer, me, QUIT);
    send(&mut net, &buf[..64]);
    net.publish();
    while net.tx_outstanding() > 0 {
        net.reap();
        if net.tx_outstanding() > 0 && net.wait().is_err() {
            fail(format_args!("the last packet"));
        }
    }
    if net.close(virq, &mut grants).is_err() {
        fail(format_args!("closing the interface"));
    }
    hypercall::poweroff(0)
}

/// The other side: takes data, answers acknowledgement requests, echoes
/// echoes, and powers off on `QUIT`. `peer` is the measuring side's MAC.
pub fn sink(start: &StartInfo, peer: [u8; 6]) -> ! {
    let (mut net, mut grants, virq) = connect(start);
    let me = net.mac;
    let (mut buf, mut out) = ([0u8; 1514], [0u8; 1514]);
    loop {
        net.publish();
        net.reap();
        let mut any = false;
        while let Some(got) = net.recv(&mut buf) {
            any = true;
            let Ok(n) = got else { fail(format_args!("a receive failed")) };
            match buf[14] {
                DATA => {}
                ACK_REQUEST => {
                    frame(&mut out, peer, me, ACK);
                    send(&mut net, &out[..64]);
                }
                ECHO => {
                    out[..n].copy_from_slice(&buf[..n]);
                    out[..6].copy_from_slice(&peer);
                    out[6..12].copy_from_slice(&me);
                    send(&mut net, &out[..n]);
                }
                QUIT => {
                    net.publish();
                    while net.tx_outstanding() > 0 {
                        net.reap();
                        if net.tx_outstanding() > 0 && net.wait().is_err() {
                            fail(format_args!("the last packets"));
                        }
                    }
                    if net.close(virq, &mut grants).is_err() {
                        fail(format_args!("closing the interface"));
                    }
                    hypercall::poweroff(0)
                }
                k => fail(format_args!("a packet of kind {k}")),
            }
        }
        if !any {
            net.publish();
            if net.wait().is_err() {
                fail(format_args!("nothing arrived"));
            }
        }
    }
}
