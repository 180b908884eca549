//! The builder refuses a guest whose ELF note asks for another ABI major
//! version, before taking any memory for it.
#![no_std]
#![no_main]

use veneer_guest::StartInfo;

veneer_guest::entry!(main, abi = (99, 0));
veneer_guest::expect!(b"refused guest needs ABI 99.0");

fn main(_: &StartInfo) -> ! {
    veneer_guest::failure(format_args!("a guest with ABI 99.0 was started"))
}
