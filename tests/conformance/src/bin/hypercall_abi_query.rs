//! `abi_query` reports the version the hypervisor implements and agrees with
//! the start-info page.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::start_info::START_INFO_MAGIC;
use veneer_guest::hypercall_abi::version::{ABI_MAJOR, ABI_MINOR};
use veneer_guest::{check, hypercall, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");

fn main(start: &StartInfo) -> ! {
    check!(start.magic == START_INFO_MAGIC, "start info magic {:#x}", start.magic);
    let info = hypercall::abi_query().unwrap_or_else(|e| veneer_guest::failure(format_args!("abi_query: {:?}", e)));
    check!(info.major == ABI_MAJOR && info.minor >= ABI_MINOR, "version {}.{}", info.major, info.minor);
    check!(info.major == start.abi_major && info.minor == start.abi_minor, "start info says {}.{}", start.abi_major, start.abi_minor);
    check!(info.reserved0 == 0, "reserved field {:#x}", info.reserved0);
    check!(info.features == start.features, "features {:#x} vs start info {:#x}", info.features, start.features);
    veneer_guest::success()
}
