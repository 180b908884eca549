//! `make bench`: every workload run natively and on Veneer in the same run,
//! interleaved (native, Veneer, native, ...), several runs each.
//!
//! The native side is one kernel (`perf/native`, booted directly by QEMU
//! through Veneer's own PVH entry) that does every operation the native
//! way; the Veneer side is one boot of each benchmark guest. Both use the
//! same timing loop (`perf/measure`) and print `bench <metric>` lines; each
//! row pairs a native metric with a Veneer one. For each row the harness
//! reports the median of the runs' medians, their spread, and the ratio
//! Veneer/native; it warns when the spread is too wide to trust a ratio. Results go to
//! `target/veneer/bench/results.{json,csv}` with the machine, QEMU and
//! software versions and every sample, and `ratios.png` is plotted from them.
//!
//! The I/O rows (block throughput and latency for both backend placements,
//! network packet rate and round trip) set each Veneer figure beside the
//! native `memcpy` of the same bytes on the same machine: the physical
//! ceiling of any I/O path that copies. Both are measured in TSC cycles and
//! shown in MB/s, operations per second or µs at the TSC frequency the
//! hypervisor reports; `io.png` plots those ratios.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::artifacts;
use crate::bundle;
use crate::qemu::{self, Qemu, RunStatus};
use crate::Result;

/// The native kernel: every native metric comes from one boot of it.
const NATIVE_KERNEL: &str = "native_bench";

/// One operation measured on both sides.
struct Row {
    label: &'static str,
    native: &'static str,
    veneer: &'static str,
    /// The guest that prints the Veneer metric; the guests booted beside
    /// it (the other ends of its operation) are its `peers!`.
    guest: &'static str,
}

const fn row(label: &'static str, native: &'static str, veneer: &'static str, guest: &'static str) -> Row {
    Row { label, native, veneer, guest }
}

const ROWS: &[Row] = &[
    row("syscall / hypercall round trip", "native_syscall_round_trip", "hypercall_round_trip", "perf_hypercall"),
    row("guest-user syscall round trip", "native_syscall_round_trip", "user_syscall_round_trip", "perf_user_syscall"),
    row("exception bounce round trip", "native_exception_round_trip", "exception_round_trip", "perf_exception"),
    row("event ping-pong, two domains", "native_ipi_ping_pong", "event_ping_pong", "perf_event_ping"),
    row("timer interrupt latency", "native_timer_latency", "timer_latency", "perf_timer"),
    row("vCPU context switch", "native_context_switch", "vcpu_context_switch", "perf_switch"),
    row("PTE update, batch 1, per entry", "native_pte_write_1", "mmu_update_1", "perf_mmu"),
    row("PTE update, batch 16, per entry", "native_pte_write_16", "mmu_update_16", "perf_mmu"),
    row("PTE update, batch 512, per entry", "native_pte_write_512", "mmu_update_512", "perf_mmu"),
    row("full L1: pin vs native fill", "native_l1_fill", "pin_l1_full", "perf_mmu"),
    row("new base pointer vs mov cr3", "native_cr3_write", "new_baseptr", "perf_mmu"),
];

/// How an I/O row shows its figures, from cycles per operation and the TSC
/// frequency.
#[derive(Clone, Copy, Debug, PartialEq)]
enum IoUnit {
    /// Throughput of operations moving this many bytes: MB/s.
    MBps(u64),
    /// Operations per second.
    PerSecond,
    /// Time per operation: µs.
    Micros,
}

impl IoUnit {
    fn name(self) -> &'static str {
        match self {
            IoUnit::MBps(_) => "MB/s",
            IoUnit::PerSecond => "/s",
            IoUnit::Micros => "us",
        }
    }

    /// The figure for `cycles` per operation at `mhz` TSC cycles per µs.
    fn of(self, cycles: u64, mhz: f64) -> f64 {
        let c = cycles.max(1) as f64;
        match self {
            IoUnit::MBps(bytes) => bytes as f64 * mhz / c,
            IoUnit::PerSecond => mhz * 1e6 / c,
            IoUnit::Micros => c / mhz,
        }
    }
}

/// An I/O operation on Veneer beside the native `memcpy` of the bytes it
/// moves: the physical ceiling of the same machine.
struct IoRow {
    label: &'static str,
    native: &'static str,
    veneer: &'static str,
    guest: &'static str,
    unit: IoUnit,
}

const fn io(label: &'static str, native: &'static str, veneer: &'static str, guest: &'static str, unit: IoUnit) -> IoRow {
    IoRow { label, native, veneer, guest, unit }
}

const IO_ROWS: &[IoRow] = &[
    io("block read 4 KiB, QD 1, backend domain", "native_memcpy_4k", "blk_domain_4k_qd1", "perf_blk_domain", IoUnit::MBps(4096)),
    io("block read 4 KiB, QD 32, backend domain", "native_memcpy_4k", "blk_domain_4k_qd32", "perf_blk_domain", IoUnit::MBps(4096)),
    io("block read 64 KiB, QD 1, backend domain", "native_memcpy_64k", "blk_domain_64k_qd1", "perf_blk_domain", IoUnit::MBps(65536)),
    io("block read 64 KiB, QD 32, backend domain", "native_memcpy_64k", "blk_domain_64k_qd32", "perf_blk_domain", IoUnit::MBps(65536)),
    io("block read 4 KiB, QD 1, hypervisor", "native_memcpy_4k", "blk_hypervisor_4k_qd1", "perf_blk_hypervisor", IoUnit::MBps(4096)),
    io("block read 4 KiB, QD 32, hypervisor", "native_memcpy_4k", "blk_hypervisor_4k_qd32", "perf_blk_hypervisor", IoUnit::MBps(4096)),
    io("block read 64 KiB, QD 1, hypervisor", "native_memcpy_64k", "blk_hypervisor_64k_qd1", "perf_blk_hypervisor", IoUnit::MBps(65536)),
    io("block read 64 KiB, QD 32, hypervisor", "native_memcpy_64k", "blk_hypervisor_64k_qd32", "perf_blk_hypervisor", IoUnit::MBps(65536)),
    io("block 4 KiB read latency, backend domain", "native_memcpy_4k", "blk_domain_lat_4k", "perf_blk_domain", IoUnit::Micros),
    io("block 4 KiB read latency, hypervisor", "native_memcpy_4k", "blk_hypervisor_lat_4k", "perf_blk_hypervisor", IoUnit::Micros),
    io("network 1500 B packets, switch domain", "native_memcpy_1500", "net_1500_per_packet", "perf_net", IoUnit::PerSecond),
    io("network 64 B round trip, switch domain", "native_memcpy_1500", "net_64_round_trip", "perf_net", IoUnit::Micros),
];

/// The Veneer guests the rows need, each booted once per run.
fn guests() -> Vec<&'static str> {
    let mut g: Vec<&str> = Vec::new();
    for guest in ROWS.iter().map(|r| r.guest).chain(IO_ROWS.iter().map(|r| r.guest)) {
        if !g.contains(&guest) {
            g.push(guest);
        }
    }
    g
}

/// The metrics a boot of `guest` (or the native kernel) must print.
fn metrics(side: Side, guest: &str) -> Vec<&'static str> {
    let mut m: Vec<&'static str> = Vec::new();
    let micro = ROWS.iter().map(|r| (r.native, r.veneer, r.guest));
    let io = IO_ROWS.iter().map(|r| (r.native, r.veneer, r.guest));
    for (native, veneer, g) in micro.chain(io) {
        let want = match side {
            Side::Native => native,
            Side::Veneer if g == guest => veneer,
            Side::Veneer => continue,
        };
        if !m.contains(&want) {
            m.push(want);
        }
    }
    m
}

/// `(veneer) time: TSC <n> MHz`: the TSC frequency the hypervisor measured.
fn tsc_mhz(log: &str) -> Option<u64> {
    log.lines().find_map(|l| l.strip_prefix("(veneer) time: TSC ")?.split(' ').next()?.parse().ok())
}

/// A ratio is not trusted when the runs' medians spread more than this
/// fraction around their median.
pub const SPREAD_WARNING: f64 = 0.10;

/// Which side of a comparison a boot measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Native,
    Veneer,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Native => "native",
            Side::Veneer => "veneer",
        }
    }
}

/// One boot's result for one metric.
struct Sample {
    metric: &'static str,
    side: Side,
    run: usize,
    median: u64,
    min: u64,
    max: u64,
}

/// One boot: its metric lines and the time from QEMU's start to the
/// kernel's first line.
struct Boot {
    /// Which kernel or guest printed them.
    guest: &'static str,
    lines: Vec<(String, [u64; 3])>,
    entry: Duration,
    /// The hypervisor's TSC frequency (Veneer boots).
    tsc_mhz: Option<u64>,
}

fn boot(kernel: &Path, initrd: &Path, log: &Path) -> Result<Boot> {
    let _ = std::fs::remove_file(log);
    let start = Instant::now();
    // One CPU, as the native kernel uses: both sides of a ratio run alone.
    let mut child = Qemu::new(kernel, initrd).serial_to(log).pinned().cpus(1).spawn_quiet()?;
    let deadline = start + qemu::boot_timeout();
    let mut entry = None;
    let status = loop {
        if entry.is_none() && std::fs::read_to_string(log).unwrap_or_default().contains("bench entered") {
            entry = Some(start.elapsed());
        }
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out (log {})", log.display()));
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let run = RunStatus::from_exit(status);
    if run != Some(RunStatus::Clean) {
        return Err(format!("run ended {} (log {})", qemu::describe(status, run), log.display()));
    }
    let text = std::fs::read_to_string(log).map_err(|e| e.to_string())?;
    let lines = text.lines().filter_map(parse_line).collect();
    Ok(Boot { guest: "", lines, entry: entry.ok_or_else(|| format!("no `bench entered` line (log {})", log.display()))?, tsc_mhz: tsc_mhz(&text) })
}

/// Strips the `(dN) ` prefix Veneer puts before a domain's console line.
pub fn domain_text(line: &str) -> &str {
    line.strip_prefix("(d")
        .and_then(|rest| rest.split_once(") "))
        .filter(|(id, _)| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
        .map_or(line, |(_, text)| text)
}

/// Parses `bench <metric> median=<n> min=<n> max=<n> unit=cycles`, as the
/// native kernel prints it or a Veneer guest (behind its domain prefix).
fn parse_line(line: &str) -> Option<(String, [u64; 3])> {
    let mut words = domain_text(line.trim_end()).strip_prefix("bench ")?.split(' ');
    let metric = words.next()?.to_string();
    let mut v = [None; 3];
    for w in words {
        let (k, val) = w.split_once('=')?;
        let i = ["median", "min", "max"].iter().position(|x| *x == k);
        if let Some(i) = i {
            v[i] = val.parse().ok();
        }
    }
    Some((metric, [v[0]?, v[1]?, v[2]?]))
}

fn median(v: &mut [u64]) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

struct Summary {
    label: String,
    unit: &'static str,
    native: u64,
    veneer: u64,
    native_spread: f64,
    veneer_spread: f64,
}

impl Summary {
    fn ratio(&self) -> f64 {
        self.veneer as f64 / self.native.max(1) as f64
    }
}

/// An I/O row's figures, in its unit.
struct IoSummary {
    label: &'static str,
    unit: IoUnit,
    native: f64,
    veneer: f64,
    native_spread: f64,
    veneer_spread: f64,
}

impl IoSummary {
    fn ratio(&self) -> f64 {
        self.veneer / self.native.max(f64::MIN_POSITIVE)
    }
}

fn spread(v: &[u64]) -> f64 {
    let mut s = v.to_vec();
    let m = median(&mut s).max(1) as f64;
    (s[s.len() - 1] - s[0]) as f64 / m
}

fn summarize(label: &str, unit: &'static str, native: &[u64], veneer: &[u64]) -> Summary {
    Summary {
        label: label.into(),
        unit,
        native: median(&mut native.to_vec()),
        veneer: median(&mut veneer.to_vec()),
        native_spread: spread(native),
        veneer_spread: spread(veneer),
    }
}

pub fn command_output(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.lines().next().unwrap_or("").trim().to_string())
        .unwrap_or_default()
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|x| x.1.trim().to_string())))
        .unwrap_or_default()
}

pub fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32).unwrap(),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn write_results(dir: &Path, runs: usize, samples: &[Sample], entries: &[(Side, usize, Duration)], rows: &[Summary], io_rows: &[IoSummary]) -> Result<()> {
    let accel = if qemu::kvm_usable() { "kvm" } else { "tcg" };
    let mut j = String::from("{\n");
    writeln!(j, "  \"machine\": {{\"cpu\": {}, \"cpus\": {}, \"accel\": {}}},", json_str(&cpu_model()), std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1), json_str(accel)).unwrap();
    writeln!(j, "  \"qemu\": {},", json_str(&command_output("qemu-system-x86_64", &["--version"]))).unwrap();
    writeln!(j, "  \"veneer\": {},", json_str(&command_output("git", &["-C", &artifacts::root().display().to_string(), "describe", "--always", "--dirty"]))).unwrap();
    writeln!(j, "  \"runs\": {runs},").unwrap();
    j += "  \"samples\": [\n";
    let body: Vec<String> = samples
        .iter()
        .map(|s| format!("    {{\"metric\": {}, \"side\": \"{}\", \"run\": {}, \"median\": {}, \"min\": {}, \"max\": {}, \"unit\": \"cycles\"}}", json_str(s.metric), s.side.name(), s.run, s.median, s.min, s.max))
        .chain(entries.iter().map(|(side, run, d)| format!("    {{\"metric\": \"qemu_start_to_entry\", \"side\": \"{}\", \"run\": {}, \"median\": {}, \"unit\": \"us\"}}", side.name(), run, d.as_micros())))
        .collect();
    j += &body.join(",\n");
    j += "\n  ],\n  \"summary\": [\n";
    let sum: Vec<String> = rows
        .iter()
        .map(|r| format!("    {{\"label\": {}, \"unit\": \"{}\", \"native\": {}, \"veneer\": {}, \"ratio\": {:.4}, \"native_spread\": {:.4}, \"veneer_spread\": {:.4}}}", json_str(&r.label), r.unit, r.native, r.veneer, r.ratio(), r.native_spread, r.veneer_spread))
        .collect();
    j += &sum.join(",\n");
    j += "\n  ],\n  \"io\": [\n";
    let io: Vec<String> = io_rows
        .iter()
        .map(|r| format!("    {{\"label\": {}, \"unit\": \"{}\", \"native\": {:.4}, \"veneer\": {:.4}, \"ratio\": {:.4}, \"native_spread\": {:.4}, \"veneer_spread\": {:.4}}}", json_str(r.label), r.unit.name(), r.native, r.veneer, r.ratio(), r.native_spread, r.veneer_spread))
        .collect();
    j += &io.join(",\n");
    j += "\n  ]\n}\n";
    std::fs::write(dir.join("results.json"), j).map_err(|e| e.to_string())?;

    let mut csv = String::from("metric,side,run,median,min,max,unit\n");
    for s in samples {
        writeln!(csv, "{},{},{},{},{},{},cycles", s.metric, s.side.name(), s.run, s.median, s.min, s.max).unwrap();
    }
    for (side, run, d) in entries {
        writeln!(csv, "qemu_start_to_entry,{},{},{},,,us", side.name(), run, d.as_micros()).unwrap();
    }
    std::fs::write(dir.join("results.csv"), csv).map_err(|e| e.to_string())?;
    Ok(())
}

/// Plots the ratios with Debian's matplotlib (`perf/plot.py`); a missing
/// matplotlib is reported, not fatal: the numbers are already written.
fn plot(dir: &Path) {
    let script = artifacts::root().join("perf/plot.py");
    let status = Command::new("/usr/bin/python3").arg(&script).arg(dir.join("results.json")).arg(dir.join("ratios.png")).status();
    match status {
        Ok(s) if s.success() => println!("plots: {}, {}", dir.join("ratios.png").display(), dir.join("io.png").display()),
        _ => eprintln!("xtask: plotting failed (is python3-matplotlib installed?)"),
    }
}

pub fn run(runs: usize) -> Result<()> {
    let built = artifacts::build_all()?;
    let dir: PathBuf = artifacts::out_dir().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut samples = Vec::new();
    let mut entries: Vec<(Side, usize, Duration)> = Vec::new();
    let mut mhz: Vec<u64> = Vec::new();
    let mut record = |b: &Boot, side: Side, run: usize, log: &Path| -> Result<()> {
        mhz.extend(b.tsc_mhz);
        for metric in metrics(side, b.guest) {
            let [median, min, max] = b
                .lines
                .iter()
                .find(|(m, _)| m == metric)
                .map(|x| x.1)
                .ok_or_else(|| format!("no `bench {metric}` line in {}", log.display()))?;
            samples.push(Sample { metric, side, run, median, min, max });
        }
        Ok(())
    };
    for run in 0..runs {
        let log = dir.join(format!("native-{run}.log"));
        let mut b = boot(&built.guest(NATIVE_KERNEL), &artifacts::empty_initrd()?, &log).map_err(|e| format!("native: {e}"))?;
        b.guest = NATIVE_KERNEL;
        record(&b, Side::Native, run, &log)?;
        entries.push((Side::Native, run, b.entry));
        for guest in guests() {
            let log = dir.join(format!("{guest}-{run}.log"));
            let mut b = boot(&built.hypervisor, &bundle::with_peers(&built, guest, "16M")?, &log).map_err(|e| format!("{guest}: {e}"))?;
            b.guest = guest;
            record(&b, Side::Veneer, run, &log)?;
            entries.push((Side::Veneer, run, b.entry));
        }
    }
    let mut rows = Vec::new();
    for row in ROWS {
        let pick = |side, metric| samples.iter().filter(|s| s.side == side && s.metric == metric).map(|s| s.median).collect::<Vec<_>>();
        rows.push(summarize(row.label, "cycles", &pick(Side::Native, row.native), &pick(Side::Veneer, row.veneer)));
    }
    let pick_entry = |side| entries.iter().filter(|e| e.0 == side).map(|e| e.2.as_micros() as u64).collect::<Vec<_>>();
    rows.push(summarize("QEMU start to first line", "us", &pick_entry(Side::Native), &pick_entry(Side::Veneer)));

    println!();
    println!("Micro-benchmarks: {runs} runs each side, interleaved, under {}", if qemu::kvm_usable() { "KVM" } else { "TCG (emulated: ratios show instruction counts more than hardware costs)" });
    println!("{:<42} {:>10} {:>8} {:>10} {:>8} {:>8}", "operation", "native", "spread", "veneer", "spread", "ratio");
    let mut wide = Vec::new();
    for r in &rows {
        println!(
            "{:<42} {:>10} {:>7.1}% {:>10} {:>7.1}% {:>8.2}",
            format!("{} ({})", r.label, r.unit),
            r.native,
            r.native_spread * 100.0,
            r.veneer,
            r.veneer_spread * 100.0,
            r.ratio()
        );
        if r.native_spread > SPREAD_WARNING || r.veneer_spread > SPREAD_WARNING {
            wide.push(r.label.clone());
        }
    }
    for w in wide {
        println!("warning: the spread of `{w}` exceeds {:.0}%: do not trust its ratio", SPREAD_WARNING * 100.0);
    }
    let mhz = median(&mut mhz).max(1) as f64;
    let mut io_rows = Vec::new();
    for row in IO_ROWS {
        let pick = |side, metric| samples.iter().filter(|s| s.side == side && s.metric == metric).map(|s| s.median).collect::<Vec<_>>();
        let (native, veneer) = (pick(Side::Native, row.native), pick(Side::Veneer, row.veneer));
        let s = summarize(row.label, "cycles", &native, &veneer);
        io_rows.push(IoSummary {
            label: row.label,
            unit: row.unit,
            native: row.unit.of(s.native, mhz),
            veneer: row.unit.of(s.veneer, mhz),
            native_spread: s.native_spread,
            veneer_spread: s.veneer_spread,
        });
    }
    println!();
    println!("I/O beside the native memcpy of the same bytes, the physical ceiling (TSC {mhz} MHz):");
    println!("{:<50} {:>12} {:>12} {:>10}", "operation", "native copy", "veneer", "veneer/native");
    for r in &io_rows {
        println!(
            "{:<50} {:>12.2} {:>12.2} {:>10.3}{}",
            format!("{} ({})", r.label, r.unit.name()),
            r.native,
            r.veneer,
            r.ratio(),
            if r.native_spread > SPREAD_WARNING || r.veneer_spread > SPREAD_WARNING { "  (spread > 10%)" } else { "" }
        );
    }
    println!("(throughput rows: the fraction of memcpy bandwidth reached; time rows: the multiple of the copy's time)");
    write_results(&dir, runs, &samples, &entries, &rows, &io_rows)?;
    println!("results: {}, {}", dir.join("results.json").display(), dir.join("results.csv").display());
    plot(&dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_result_lines() {
        assert_eq!(parse_line("bench x median=5 min=4 max=9 unit=cycles"), Some(("x".into(), [5, 4, 9])));
        assert_eq!(parse_line("(d1) bench x median=5 min=4 max=9 unit=cycles"), Some(("x".into(), [5, 4, 9])));
        assert_eq!(parse_line("bench x median=5 unit=cycles"), None);
        assert_eq!(parse_line("(veneer) bench x median=5 min=4 max=9"), None);
        assert_eq!(parse_line("(dx) bench x median=5 min=4 max=9"), None);
    }

    #[test]
    fn io_units_convert_cycles() {
        // 2000 cycles at 1000 MHz: 2 us; 4096 bytes in 2 us is 2048 MB/s.
        assert!((IoUnit::MBps(4096).of(2000, 1000.0) - 2048.0).abs() < 1e-9);
        assert!((IoUnit::PerSecond.of(2000, 1000.0) - 500_000.0).abs() < 1e-6);
        assert!((IoUnit::Micros.of(2000, 1000.0) - 2.0).abs() < 1e-9);
        assert_eq!(tsc_mhz("(veneer) x\n(veneer) time: TSC 2604 MHz (not invariant)\n"), Some(2604));
        assert_eq!(tsc_mhz("time: TSC 5 MHz"), None);
        let native = metrics(Side::Native, NATIVE_KERNEL);
        assert!(native.contains(&"native_memcpy_64k") && native.iter().filter(|m| **m == "native_memcpy_4k").count() == 1);
        assert_eq!(metrics(Side::Veneer, "perf_net"), ["net_1500_per_packet", "net_64_round_trip"]);
        assert!(guests().contains(&"perf_blk_hypervisor"));
    }

    #[test]
    fn spread_and_ratio() {
        let r = summarize("t", "cycles", &[100, 110, 90], &[200, 200, 300]);
        assert_eq!((r.native, r.veneer), (100, 200));
        assert!((r.ratio() - 2.0).abs() < 1e-9);
        assert!((r.native_spread - 0.2).abs() < 1e-9);
        assert!((r.veneer_spread - 0.5).abs() < 1e-9);
    }
}
