//! `make bench`: micro-benchmarks on Veneer beside the same operation run
//! natively, in one run, interleaved (native, Veneer, native, ...).
//!
//! The native side is one boot of `perf/native`, a tiny kernel QEMU boots
//! directly; the Veneer side is one boot of each benchmark guest. Rows:
//!
//! - the hypercall round trip (`perf_hypercall`) against a native
//!   `syscall`/`sysret` round trip;
//! - page-table updates (`perf_mmu`): cycles per entry of `mmu_update`
//!   batches of 1, 16 and 512 against the native kernel storing the same
//!   number of entries into its own live L1; pinning a full L1 against the
//!   native kernel writing a full L1 (what it does where a PV kernel also
//!   pins); `NewBaseptr` against `mov cr3`;
//! - the time from QEMU's start to the first line of the guest (host wall
//!   clock).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::artifacts;
use crate::bundle;
use crate::qemu::{self, Qemu, RunStatus};
use crate::Result;

/// Runs of each side; the figure is the median over runs of each run's
/// median.
const RUNS: usize = 5;
/// Batches each run times (`perf/measure`'s `BATCHES`).
const BATCHES: usize = 101;

/// One row of the table: a name on each side, and on which Veneer guest.
struct Row {
    label: &'static str,
    native: &'static str,
    veneer: &'static str,
    guest: &'static str,
}

const ROWS: &[Row] = &[
    Row { label: "syscall/hypercall", native: "native_syscall_round_trip", veneer: "hypercall_round_trip", guest: "perf_hypercall" },
    Row { label: "PTE update, batch 1 /entry", native: "native_pte_write_1", veneer: "mmu_update_1", guest: "perf_mmu" },
    Row { label: "PTE update, batch 16 /entry", native: "native_pte_write_16", veneer: "mmu_update_16", guest: "perf_mmu" },
    Row { label: "PTE update, batch 512 /entry", native: "native_pte_write_512", veneer: "mmu_update_512", guest: "perf_mmu" },
    Row { label: "full L1: pin vs native fill", native: "native_l1_fill", veneer: "pin_l1_full", guest: "perf_mmu" },
    Row { label: "new base pointer / mov cr3", native: "native_cr3_write", veneer: "new_baseptr", guest: "perf_mmu" },
];

#[derive(Clone, Copy)]
struct Sample {
    cycles: u64,
    spread: (u64, u64),
}

/// What one boot yields: every `bench <name> ...` line, and when the
/// first `bench entered` line appeared.
struct Boot {
    samples: HashMap<String, Sample>,
    entry: Duration,
}

fn parse_line(line: &str) -> Option<(String, Sample)> {
    let rest = line.trim_end().strip_prefix("bench ")?;
    let (name, fields) = rest.split_once(' ')?;
    let field = |k: &str| -> Option<u64> { fields.split(' ').find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))?.parse().ok() };
    Some((name.to_string(), Sample { cycles: field("median")?, spread: (field("min")?, field("max")?) }))
}

/// Boots `kernel` with `initrd`, times the first `bench entered` line and
/// reads every result line.
fn boot_and_measure(kernel: &Path, initrd: &Path, what: &str, log: &Path) -> Result<Boot> {
    let _ = std::fs::remove_file(log);
    let q = Qemu::new(kernel, initrd).serial_to(log);
    let start = Instant::now();
    let mut child = q.spawn_quiet()?;
    let mut entry = None;
    let deadline = start + qemu::boot_timeout();
    let status = loop {
        if entry.is_none() && std::fs::read_to_string(log).unwrap_or_default().contains("bench entered") {
            entry = Some(start.elapsed());
        }
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!("{what}: timed out (log {})", log.display()));
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    if RunStatus::from_exit(status) != Some(RunStatus::Clean) {
        return Err(format!("{what}: run ended {} (log {})", qemu::describe(status, RunStatus::from_exit(status)), log.display()));
    }
    let text = std::fs::read_to_string(log).map_err(|e| e.to_string())?;
    let samples: HashMap<String, Sample> = text.lines().filter_map(parse_line).collect();
    Ok(Boot { samples, entry: entry.unwrap_or_default() })
}

fn median<T: Copy + Ord>(mut v: Vec<T>) -> T {
    v.sort_unstable();
    v[v.len() / 2]
}

/// The median over runs of `name`'s medians, and the extremes seen.
fn summarise(boots: &[&Boot], name: &str) -> Result<(u64, u64, u64)> {
    let samples: Vec<Sample> = boots
        .iter()
        .map(|b| b.samples.get(name).copied().ok_or_else(|| format!("no result line for {name}")))
        .collect::<Result<_>>()?;
    let lo = samples.iter().map(|s| s.spread.0).min().unwrap_or(0);
    let hi = samples.iter().map(|s| s.spread.1).max().unwrap_or(0);
    Ok((median(samples.iter().map(|s| s.cycles).collect()), lo, hi))
}

pub fn run() -> Result<()> {
    let built = artifacts::build_all()?;
    let mut guests: Vec<&str> = Vec::new();
    for row in ROWS {
        if !guests.contains(&row.guest) {
            guests.push(row.guest);
        }
    }
    let bundles: Vec<_> = guests.iter().map(|g| bundle::single(&built, g, "16M", "").map(|b| (*g, b))).collect::<Result<_>>()?;
    // QEMU's PVH loader wants an initrd argument; the native kernel ignores it.
    let native_kernel = built.guest("native_bench");
    let dir = artifacts::out_dir().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;

    let mut native = Vec::new();
    let mut veneer: HashMap<&str, Vec<Boot>> = HashMap::new();
    for i in 0..RUNS {
        native.push(boot_and_measure(&native_kernel, &bundles[0].1, "native", &dir.join(format!("native-{i}.log")))?);
        for (guest, bundle) in &bundles {
            let boot = boot_and_measure(&built.hypervisor, bundle, guest, &dir.join(format!("{guest}-{i}.log")))?;
            veneer.entry(guest).or_default().push(boot);
        }
    }

    println!();
    println!(
        "Micro-benchmarks: {} runs each, interleaved, {} (TSC cycles; median of {} batches per run, median over runs)",
        RUNS,
        if qemu::kvm_usable() { "KVM" } else { "TCG" },
        BATCHES
    );
    println!("{:<30} {:>10} {:>18} {:>10} {:>20} {:>9}", "operation", "native", "native min..max", "veneer", "veneer min..max", "ratio");
    let native_refs: Vec<&Boot> = native.iter().collect();
    for row in ROWS {
        let (n, nlo, nhi) = summarise(&native_refs, row.native)?;
        let boots: Vec<&Boot> = veneer[row.guest].iter().collect();
        let (v, vlo, vhi) = summarise(&boots, row.veneer)?;
        println!(
            "{:<30} {:>10} {:>18} {:>10} {:>20} {:>9.1}",
            row.label,
            n,
            format!("{nlo}..{nhi}"),
            v,
            format!("{vlo}..{vhi}"),
            v as f64 / n.max(1) as f64
        );
    }
    let entry_n = median(native.iter().map(|b| b.entry).collect());
    let entry_v = median(veneer[guests[0]].iter().map(|b| b.entry).collect());
    println!(
        "{:<30} {:>10} {:>18} {:>10} {:>20} {:>9.2}",
        "QEMU start to entry (ms)",
        entry_n.as_millis(),
        "",
        entry_v.as_millis(),
        "",
        entry_v.as_secs_f64() / entry_n.as_secs_f64().max(1e-9)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_parse() {
        let (name, s) = parse_line("bench mmu_update_16 median=812 min=790 max=1400 unit=cycles").unwrap();
        assert_eq!((name.as_str(), s.cycles, s.spread), ("mmu_update_16", 812, (790, 1400)));
        assert!(parse_line("bench entered").is_none());
        assert!(parse_line("(veneer) d1 \"x\": built").is_none());
    }

    #[test]
    fn every_row_names_a_guest_that_exists() {
        let bin = artifacts::root().join("perf/guest/src/bin");
        for row in ROWS {
            assert!(bin.join(format!("{}.rs", row.guest)).exists(), "{}", row.guest);
        }
    }
}
