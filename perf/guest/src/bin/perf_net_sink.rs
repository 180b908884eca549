//! The other end of `perf_net` (`net_bench::sink`).
#![no_std]
#![no_main]

veneer_guest::entry!(main);
veneer_guest::devices!(b"net netback mac=02:00:00:00:00:02");

fn main(start: &veneer_guest::StartInfo) -> ! {
    veneer_perf_guest::net_bench::sink(start, [2, 0, 0, 0, 0, 1])
}
