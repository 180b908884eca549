//! The demo guest `make run` boots, and the witness of negative tests: it
//! runs after the domain under test and shows the hypervisor went on.
#![no_std]
#![no_main]

use veneer_guest::{hypercall, println, StartInfo};

veneer_guest::entry!(main);

fn main(start: &StartInfo) -> ! {
    let info = hypercall::abi_query().expect("abi_query");
    let cmdline = start.cmdline.split(|&b| b == 0).next().unwrap_or(&[]);
    println!("Hello from domain {} on Veneer (ABI {}.{}).", start.domain_id, info.major, info.minor);
    println!(
        "  {} pages of memory, {} bootstrap page tables at {:#x}, command line \"{}\"",
        start.nr_pages,
        start.nr_pt_frames,
        start.pt_base,
        core::str::from_utf8(cmdline).unwrap_or("?")
    );
    println!("Powering off.");
    hypercall::poweroff(0)
}
