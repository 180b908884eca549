//! Lines the conformance runner checks came out whole
//! (`veneer_guest::whole_lines!`): `whole <c> ` and then `LEN` copies of
//! `<c>`, written one byte per `console_write`.

use crate::hypercall;

/// Characters after `whole <c> ` (the runner's `WHOLE_LEN`).
pub const LEN: usize = 48;

/// Prints `count` whole lines of character `c`, a byte at a time.
pub fn print_lines(c: u8, count: usize) {
    for _ in 0..count {
        for &b in b"whole ".iter().chain(&[c, b' ']).chain(core::iter::repeat_n(&c, LEN)).chain(b"\n") {
            hypercall::console_write(&[b]).expect("console_write");
        }
    }
}
