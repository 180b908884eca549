//! `make bench`: micro-benchmarks on Veneer beside the same operation run
//! natively, in one run, interleaved (native, Veneer, native, ...).
//!
//! Rows so far: the hypercall round trip (a guest kernel's `syscall` into
//! Veneer and back) and the guest-user syscall round trip (a process's
//! `syscall` bounced to its guest kernel and the `iret` back), each against
//! a native `syscall`/`sysret` round trip in a tiny kernel QEMU boots
//! directly; and the time from QEMU's start to the first line of the guest
//! (host wall clock).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::artifacts::{self, Built};
use crate::bundle;
use crate::qemu::{self, Qemu, RunStatus};
use crate::Result;

/// Runs of each side; the figure is the median over runs of each run's
/// median.
const RUNS: usize = 5;

struct Sample {
    cycles: u64,
    spread: (u64, u64),
    entry: Duration,
}

/// Boots `kernel` with `initrd`, times the first `bench entered` line and
/// reads the `bench <name> ...` line.
fn boot_and_measure(built: &Built, kernel: &Path, initrd: &Path, name: &str, log: &Path) -> Result<Sample> {
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
            return Err(format!("{name}: timed out (log {})", log.display()));
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let _ = built;
    if RunStatus::from_exit(status) != Some(RunStatus::Clean) {
        return Err(format!("{name}: run ended {} (log {})", qemu::describe(status, RunStatus::from_exit(status)), log.display()));
    }
    let text = std::fs::read_to_string(log).map_err(|e| e.to_string())?;
    let line = text
        .lines()
        .find_map(|l| l.trim_end().strip_prefix(&format!("bench {name} ")))
        .ok_or_else(|| format!("{name}: no result line (log {})", log.display()))?;
    let field = |k: &str| -> Result<u64> {
        line.split(' ')
            .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name}: no {k} in `{line}`"))
    };
    Ok(Sample { cycles: field("median")?, spread: (field("min")?, field("max")?), entry: entry.unwrap_or_default() })
}

fn median<T: Copy + Ord>(mut v: Vec<T>) -> T {
    v.sort_unstable();
    v[v.len() / 2]
}

pub fn run() -> Result<()> {
    let built = artifacts::build_all()?;
    let guest_bundle = bundle::single(&built, "perf_hypercall", "16M", "")?;
    let user_bundle = bundle::single(&built, "perf_user_syscall", "16M", "")?;
    // QEMU's PVH loader wants an initrd argument; the native kernel ignores it.
    let native_kernel = built.guest("native_syscall");
    let dir = artifacts::out_dir().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;

    let (mut native, mut veneer, mut user) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..RUNS {
        native.push(boot_and_measure(&built, &native_kernel, &guest_bundle, "native_syscall_round_trip", &dir.join(format!("native-{i}.log")))?);
        veneer.push(boot_and_measure(&built, &built.hypervisor, &guest_bundle, "hypercall_round_trip", &dir.join(format!("veneer-{i}.log")))?);
        user.push(boot_and_measure(&built, &built.hypervisor, &user_bundle, "user_syscall_round_trip", &dir.join(format!("veneer-user-{i}.log")))?);
    }
    let n = median(native.iter().map(|s| s.cycles).collect());
    let v = median(veneer.iter().map(|s| s.cycles).collect());
    let spread = |s: &[Sample]| (s.iter().map(|x| x.spread.0).min().unwrap_or(0), s.iter().map(|x| x.spread.1).max().unwrap_or(0));
    let (nlo, nhi) = spread(&native);
    let (vlo, vhi) = spread(&veneer);
    let u = median(user.iter().map(|s| s.cycles).collect());
    let (ulo, uhi) = spread(&user);
    let entry_v = median(veneer.iter().map(|s| s.entry).collect());
    let entry_n = median(native.iter().map(|s| s.entry).collect());
    println!();
    println!("Micro-benchmarks: {} runs each, interleaved, {} ({} batches of 1000 per run)", RUNS, if qemu::kvm_usable() { "KVM" } else { "TCG" }, 101);
    println!("{:<28} {:>12} {:>18} {:>12} {:>18} {:>8}", "operation", "native", "native min..max", "veneer", "veneer min..max", "ratio");
    println!(
        "{:<28} {:>12} {:>18} {:>12} {:>18} {:>8.2}",
        "syscall/hypercall (cycles)",
        n,
        format!("{nlo}..{nhi}"),
        v,
        format!("{vlo}..{vhi}"),
        v as f64 / n.max(1) as f64
    );
    println!(
        "{:<28} {:>12} {:>18} {:>12} {:>18} {:>8.2}",
        "user syscall (cycles)",
        n,
        format!("{nlo}..{nhi}"),
        u,
        format!("{ulo}..{uhi}"),
        u as f64 / n.max(1) as f64
    );
    println!(
        "{:<28} {:>12} {:>18} {:>12} {:>18} {:>8.2}",
        "QEMU start to entry (ms)",
        entry_n.as_millis(),
        "",
        entry_v.as_millis(),
        "",
        entry_v.as_secs_f64() / entry_n.as_secs_f64().max(1e-9)
    );
    Ok(())
}
