//! Block throughput and latency (`blk_bench`) with device 0 served by the
//! hypervisor, from a RAM disk it holds: the metrics `blk_hypervisor_*`.
#![no_std]
#![no_main]

veneer_guest::entry!(main);
veneer_guest::devices!(b"block hypervisor image=pattern-512K.img");

fn main(start: &veneer_guest::StartInfo) -> ! {
    veneer_perf_guest::blk_bench::run(start, "blk_hypervisor")
}
