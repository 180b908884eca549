//! Every argument check of the first calls, attacked: pointers into the
//! hypervisor's range, non-canonical, unmapped, read-only for a write, the
//! guest's own (read-only) page tables as a destination, buffers that run
//! off the end of the mapping, lengths over the limit, unknown shutdown
//! reasons and codes wider than 32 bits. Each must fail with the documented
//! error and leave the domain running.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::hypercall::CONSOLE_WRITE_MAX;
use veneer_guest::hypercall_abi::{Error, Hypercall};
use veneer_guest::{check, hypercall, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");

fn main(start: &StartInfo) -> ! {
    let query = Hypercall::AbiQuery.number();
    let write = Hypercall::ConsoleWrite.number();
    let shutdown = Hypercall::SchedShutdown.number();
    let text = main as *const () as u64;
    let unmapped = 0x0000_1000_0000_0000;
    // Nothing is mapped after the bootstrap regions and the shared-info
    // page that follows them.
    let bootstrap_end = veneer_guest::start_info_ext(start).shared_info_va + 4096;

    let cases: [(&str, u64, [u64; 6], Error); 16] = [
        ("abi_query into the hypervisor", query, [0xffff_8000_0000_0000, 0, 0, 0, 0, 0], Error::BadAddress),
        ("abi_query into hypervisor text", query, [0xffff_8780_0020_0000, 0, 0, 0, 0, 0], Error::BadAddress),
        ("abi_query non-canonical", query, [0x0000_8000_0000_0000, 0, 0, 0, 0, 0], Error::BadAddress),
        ("abi_query null", query, [0, 0, 0, 0, 0, 0], Error::BadAddress),
        ("abi_query unmapped", query, [unmapped, 0, 0, 0, 0, 0], Error::BadAddress),
        ("abi_query into read-only text", query, [text, 0, 0, 0, 0, 0], Error::BadAddress),
        ("abi_query into own L4", query, [start.pt_base, 0, 0, 0, 0, 0], Error::BadAddress),
        ("abi_query past the mapping", query, [bootstrap_end - 8, 0, 0, 0, 0, 0], Error::BadAddress),
        ("console_write from the hypervisor", write, [0xffff_8780_0020_0000, 16, 0, 0, 0, 0], Error::BadAddress),
        ("console_write non-canonical", write, [0x0000_8000_0000_0000, 1, 0, 0, 0, 0], Error::BadAddress),
        ("console_write wrapping", write, [u64::MAX - 2, 8, 0, 0, 0, 0], Error::BadAddress),
        ("console_write unmapped", write, [unmapped, 4, 0, 0, 0, 0], Error::BadAddress),
        ("console_write too long", write, [text, CONSOLE_WRITE_MAX as u64 + 1, 0, 0, 0, 0], Error::TooBig),
        ("console_write absurd length", write, [text, u64::MAX, 0, 0, 0, 0], Error::TooBig),
        ("shutdown unknown reason", shutdown, [3, 0, 0, 0, 0, 0], Error::Invalid),
        ("shutdown code over 32 bits", shutdown, [0, 1 << 32, 0, 0, 0, 0], Error::Invalid),
    ];
    for (what, nr, args, want) in cases {
        let got = hypercall::raw(nr, args);
        check!(got == Err(want), "{}: got {:?}, want {:?}", what, got, want);
    }
    // The refused abi_query into the L4 wrote nothing: the image lives in
    // slot 511, so entries 0 and 1 are still empty.
    let l4 = start.pt_base as *const u64;
    // SAFETY: pt_base is the builder's read-only mapping of our own L4.
    let (e0, e1) = unsafe { (core::ptr::read_volatile(l4), core::ptr::read_volatile(l4.add(1))) };
    check!(e0 == 0 && e1 == 0, "L4 entries 0 and 1 are {:#x} and {:#x}", e0, e1);
    veneer_guest::success()
}
