//! A misbehaving network frontend on the switch while two honest domains
//! (`net_honest_a`, `net_honest_b`) exchange 1200 packets through it: this
//! domain transmits malformed requests — an empty packet, one over 1514
//! bytes, one that runs off its page, flags the switch did not offer
//! (`MORE_DATA`, `CSUM_BLANK`), a reserved field set — each answered
//! `Error`, then lies about its transmit ring: `req_prod` 1000 ahead (every
//! garbage slot answered `Error`), then behind what the switch consumed.
//! The switch takes at most a ring's worth of it per pass and keeps
//! forwarding the honest pair's packets, all intact and in order; this
//! domain then closes its interface.
#![no_std]
#![no_main]

use veneer_guest::device::{self, TIMEOUT_NS};
use veneer_guest::grant::Grants;
use veneer_guest::hypercall_abi::device::{DeviceKind, DeviceRole};
use veneer_guest::hypercall_abi::net::{net_flags, NetTxRequest};
use veneer_guest::hypercall_abi::ring::SharedPage;
use veneer_guest::mmu::Memory;
use veneer_guest::net::NetFront;
use veneer_guest::{check, event, println, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"netback net_honest_a net_honest_b");
veneer_guest::devices!(b"net netback mac=02:00:00:00:00:0f");

const REQ_PROD: usize = 0;
const RSP_PROD: usize = 64;

fn wait_answered(net: &NetFront, at_least: u32) -> u32 {
    let page = net.tx_page();
    let deadline = event::now() + TIMEOUT_NS;
    loop {
        let now = page.load_u32(RSP_PROD);
        if now.wrapping_sub(at_least) as i32 >= 0 {
            return now;
        }
        check!(event::now() < deadline, "the switch stopped answering at {}", now);
        event::sched_yield().expect("yield");
    }
}

fn main(start: &StartInfo) -> ! {
    event::init(start);
    let mut mem = Memory::new(start);
    let virq = device::bind_device_virq();
    let mut grants = Grants::setup(&mut mem, 1).expect("a grant table");
    let (handle, _) = device::find(DeviceRole::Frontend, DeviceKind::Net, 0).expect("a network interface");
    let mut net = NetFront::connect(virq, handle, &mut mem, &mut grants).expect("the handshake");
    let frame = [0u8; 64];
    let bad: [fn(NetTxRequest) -> NetTxRequest; 6] = [
        |r| NetTxRequest { size: 0, ..r },
        |r| NetTxRequest { size: 2000, ..r },
        |r| NetTxRequest { offset: 4000, size: 200, ..r },
        |r| NetTxRequest { flags: net_flags::MORE_DATA, ..r },
        |r| NetTxRequest { flags: net_flags::CSUM_BLANK, ..r },
        |r| NetTxRequest { reserved0: 1, ..r },
    ];
    for adjust in bad {
        check!(net.send_raw(&frame, adjust), "room to send");
    }
    net.publish();
    while net.tx_outstanding() > 0 {
        net.reap();
        if net.tx_outstanding() > 0 {
            check!(net.wait().is_ok(), "no answer to the malformed requests");
        }
    }
    check!(net.tx_errors == 6, "{} of 6 malformed requests refused", net.tx_errors);
    // Lies about the transmit ring.
    let mut page = net.tx_page();
    let p = page.load_u32(REQ_PROD);
    page.store_u32(REQ_PROD, p + 1000);
    net.dev.notify();
    let got = wait_answered(&net, p + 1000);
    check!(got == p + 1000, "the switch answered {} of 1000", got.wrapping_sub(p));
    page.store_u32(REQ_PROD, p.wrapping_sub(5));
    net.dev.notify();
    let later = wait_answered(&net, got.wrapping_add(128));
    println!("net: 6 malformed requests and {} garbage slots answered with errors", later.wrapping_sub(p));
    check!(net.close(virq, &mut grants).is_ok(), "closing the interface");
    veneer_guest::success()
}
