//! `console_write` returns the number of bytes written, accepts exactly
//! `CONSOLE_WRITE_MAX` bytes and an empty write, and the runner sees the
//! text on the serial console.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::hypercall::CONSOLE_WRITE_MAX;
use veneer_guest::{check, hypercall, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");

static BIG: [u8; CONSOLE_WRITE_MAX] = [b'='; CONSOLE_WRITE_MAX];

fn main(_: &StartInfo) -> ! {
    let n = hypercall::console_write(b"console check: 0123456789\n");
    check!(n == Ok(26), "short write returned {:?}", n);
    check!(hypercall::console_write(b"") == Ok(0), "empty write");
    let n = hypercall::console_write(&BIG);
    check!(n == Ok(CONSOLE_WRITE_MAX), "maximal write returned {:?}", n);
    check!(hypercall::console_write(b"\n") == Ok(1), "newline");
    veneer_guest::success()
}
