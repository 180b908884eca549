//! Packets per second and round trips through the switch domain
//! (`net_bench`): this domain (`02:00:00:00:00:01`) measures against
//! `perf_net_sink` (`02:00:00:00:00:02`), both ports of `netback`.
#![no_std]
#![no_main]

veneer_guest::entry!(main);
veneer_guest::peers!(b"perf_net_sink netback");
veneer_guest::devices!(b"net netback mac=02:00:00:00:00:01");

fn main(start: &veneer_guest::StartInfo) -> ! {
    veneer_perf_guest::net_bench::run(start, [2, 0, 0, 0, 0, 2])
}
