//! Block I/O through a backend domain (the thin model): the workload of
//! `blk_workload` — a sweep that checks the boot module's pattern, 440
//! random reads, writes and flushes of 1–64 sectors with up to 32 requests
//! in flight, a checking sweep with checksums — against `blkback`, which
//! serves its ramdisk. Passes if every byte is what it must be and both
//! sides close cleanly.
#![no_std]
#![no_main]

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::peers!(b"blkback");
veneer_guest::devices!(b"block blkback");

fn main(start: &veneer_guest::StartInfo) -> ! {
    veneer_conformance::blk_workload::run(start)
}
