//! Each domain's console is a ring the hypervisor serves, and the runner
//! reads it: this domain and its peer `console_peer` find their console
//! slot in the start-info page, connect, and write everything — lines split
//! across slots, several lines in one slot, more slots than the ring has,
//! this test's verdict — through their rings only. The runner finds every
//! line in the log, each prefixed with its domain (`(d1) `, `(d2) `). A
//! posted `Read` stays unanswered (the hypervisor's console gives guests no
//! input) without holding up the writes.
#![no_std]
#![no_main]

use core::fmt::Write;

use veneer_guest::console::ConsoleFront;
use veneer_guest::device;
use veneer_guest::grant::Grants;
use veneer_guest::hypercall_abi::device::{DeviceKind, DeviceRole};
use veneer_guest::hypercall_abi::domid::domid;
use veneer_guest::mmu::Memory;
use veneer_guest::{check, event, hypercall, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"console_peer");
veneer_guest::devices!(b"console hypervisor");
veneer_guest::expect_lines!(
    b"(d1) console ring: hello\n(d1) one\n(d1) two\n(d1) a line longer than a slot holds, so it spans three slots of the ring: ok\n(d1) line 39 of 40\n(d2) console peer: hello from the other domain"
);

fn main(start: &StartInfo) -> ! {
    event::init(start);
    let mut mem = Memory::new(start);
    let virq = device::bind_device_virq();
    let mut grants = Grants::setup(&mut mem, 1).expect("a grant table");
    let handle = veneer_guest::start_info_ext(start).console_device;
    let found = device::find(DeviceRole::Frontend, DeviceKind::Console, 0);
    check!(found.map(|f| f.0) == Some(handle), "the start-info page names console slot {} ({:?})", handle, found.map(|f| f.0));
    let info = found.expect("checked").1;
    check!(info.backend_domid == domid::HYPERVISOR && info.index == 0, "served by the hypervisor: {:?}", info);
    let mut con = match ConsoleFront::connect(start, virq, &mut mem, &mut grants) {
        Ok(c) => c,
        Err(e) => veneer_guest::failure(format_args!("console handshake: {:?}", e)),
    };
    con.post_read(56).expect("a read posted");
    con.write(b"console ring: hello\n").expect("write");
    con.write(b"one\ntwo\n").expect("write");
    con.write(b"a line longer than a slot holds, so it spans three slots of the ring: ok\n").expect("write");
    for i in 0..40 {
        writeln!(con, "line {} of 40", i).expect("write");
    }
    writeln!(con, "Test result: SUCCESS").expect("write");
    check!(con.flush().is_ok(), "every write answered");
    hypercall::poweroff(0)
}
