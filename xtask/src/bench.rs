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
    /// The guest that prints the Veneer metric, and the guests booted
    /// beside it (domains 2, ...: the other ends of its operation).
    guest: &'static str,
    peers: &'static [&'static str],
}

const fn row(label: &'static str, native: &'static str, veneer: &'static str, guest: &'static str) -> Row {
    Row { label, native, veneer, guest, peers: &[] }
}

const ROWS: &[Row] = &[
    row("syscall / hypercall round trip", "native_syscall_round_trip", "hypercall_round_trip", "perf_hypercall"),
    row("guest-user syscall round trip", "native_syscall_round_trip", "user_syscall_round_trip", "perf_user_syscall"),
    row("exception bounce round trip", "native_exception_round_trip", "exception_round_trip", "perf_exception"),
    Row {
        label: "event ping-pong, two domains",
        native: "native_ipi_ping_pong",
        veneer: "event_ping_pong",
        guest: "perf_event_ping",
        peers: &["perf_event_pong"],
    },
    row("timer interrupt latency", "native_timer_latency", "timer_latency", "perf_timer"),
    Row {
        label: "vCPU context switch",
        native: "native_context_switch",
        veneer: "vcpu_context_switch",
        guest: "perf_switch",
        peers: &["perf_switch_peer"],
    },
    row("PTE update, batch 1, per entry", "native_pte_write_1", "mmu_update_1", "perf_mmu"),
    row("PTE update, batch 16, per entry", "native_pte_write_16", "mmu_update_16", "perf_mmu"),
    row("PTE update, batch 512, per entry", "native_pte_write_512", "mmu_update_512", "perf_mmu"),
    row("full L1: pin vs native fill", "native_l1_fill", "pin_l1_full", "perf_mmu"),
    row("new base pointer vs mov cr3", "native_cr3_write", "new_baseptr", "perf_mmu"),
];

/// The Veneer guests the rows need, with their peers, each booted once per
/// run.
fn guests() -> Vec<(&'static str, &'static [&'static str])> {
    let mut g: Vec<_> = ROWS.iter().map(|r| (r.guest, r.peers)).collect();
    g.dedup();
    g
}

/// A ratio is not trusted when the runs' medians spread more than this
/// fraction around their median.
const SPREAD_WARNING: f64 = 0.10;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Native,
    Veneer,
}

impl Side {
    fn name(self) -> &'static str {
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
    Ok(Boot { guest: "", lines, entry: entry.ok_or_else(|| format!("no `bench entered` line (log {})", log.display()))? })
}

/// Strips the `(dN) ` prefix Veneer puts before a domain's console line.
fn domain_text(line: &str) -> &str {
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

fn command_output(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.lines().next().unwrap_or("").trim().to_string())
        .unwrap_or_default()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|x| x.1.trim().to_string())))
        .unwrap_or_default()
}

fn json_str(s: &str) -> String {
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

fn write_results(dir: &Path, runs: usize, samples: &[Sample], entries: &[(Side, usize, Duration)], rows: &[Summary]) -> Result<()> {
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
        Ok(s) if s.success() => println!("plot: {}", dir.join("ratios.png").display()),
        _ => eprintln!("xtask: plotting failed (is python3-matplotlib installed?)"),
    }
}

pub fn run(runs: usize) -> Result<()> {
    let built = artifacts::build_all()?;
    let dir: PathBuf = artifacts::out_dir().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut samples = Vec::new();
    let mut entries: Vec<(Side, usize, Duration)> = Vec::new();
    let mut record = |b: &Boot, side: Side, run: usize, log: &Path| -> Result<()> {
        for row in ROWS {
            let metric = match side {
                Side::Native => row.native,
                Side::Veneer if b.guest == row.guest => row.veneer,
                Side::Veneer => continue,
            };
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
        for (guest, peers) in guests() {
            let log = dir.join(format!("{guest}-{run}.log"));
            let mut b = boot(&built.hypervisor, &bundle::with_peers(&built, guest, peers, "16M")?, &log).map_err(|e| format!("{guest}: {e}"))?;
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
    write_results(&dir, runs, &samples, &entries, &rows)?;
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
    fn spread_and_ratio() {
        let r = summarize("t", "cycles", &[100, 110, 90], &[200, 200, 300]);
        assert_eq!((r.native, r.veneer), (100, 200));
        assert!((r.ratio() - 2.0).abs() < 1e-9);
        assert!((r.native_spread - 0.2).abs() < 1e-9);
        assert!((r.veneer_spread - 0.5).abs() < 1e-9);
    }
}
