//! The builder refuses a guest built against a newer minor version than the
//! hypervisor implements (it may use calls the hypervisor lacks).
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::version::{ABI_MAJOR, ABI_MINOR};
use veneer_guest::StartInfo;

veneer_guest::entry!(main, abi = (ABI_MAJOR, ABI_MINOR + 1));
veneer_guest::expect!(b"refused guest needs ABI 1.1");

fn main(_: &StartInfo) -> ! {
    veneer_guest::failure(format_args!("a guest with a newer minor version was started"))
}
