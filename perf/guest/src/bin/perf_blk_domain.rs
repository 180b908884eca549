//! Block throughput and latency (`blk_bench`) with device 0 served by the
//! backend domain `blkback` (conformance guests), serving its ramdisk: the
//! metrics `blk_domain_*`.
#![no_std]
#![no_main]

veneer_guest::entry!(main);
veneer_guest::peers!(b"blkback");
veneer_guest::devices!(b"block blkback");

fn main(start: &veneer_guest::StartInfo) -> ! {
    veneer_perf_guest::blk_bench::run(start, "blk_domain")
}
