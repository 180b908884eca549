//! The Linux table of `make bench`: lmbench's latency measurements and
//! macro workloads inside a Linux guest, each boot running them all.
//!
//! The guest's `/init` is `perf/linux/bench-init.sh` with this run's
//! workloads (the [`steps`]) filled in; its initramfs carries the project's
//! `latency` program (`perf/linux/latency.c`, the lmbench measurements
//! Debian has no tool for), Debian's `stress-ng`, `sysbench` and `tcc` with
//! the shared libraries they load, and for the build workload the sources of
//! Linux's kconfig with the headers and libraries `tcc` reads. Each
//! workload's output sits between `begin`/`end` marker lines; the harness
//! takes one figure per [`Row`] from it and notes when the markers reached
//! the serial log, so every macro figure, counted in the guest's TSC
//! cycles, also has the host's time beside it.
//!
//! "Native" is Debian's 6.12 source built with the project's configuration
//! and no Veneer platform (`linux::Flavour::Native`), booted directly by
//! QEMU; "Veneer" is the same source with the Veneer platform
//! (`linux::Flavour::Veneer`) as the one domain of a bundle. Both have one
//! CPU and [`GUEST_MEMORY`], and boot in turn (native, Veneer, native, ...).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::bench::{command_output, cpu_model, domain_text, json_str, Side, SPREAD_WARNING};
use crate::qemu::{self, Qemu, RunStatus};
use crate::{artifacts, linux, linux_guest, Result};

/// A macro workload fails the gate when it costs this much more on Veneer.
pub const GATE: f64 = 0.05;

/// The guest's RAM on both sides: the native machine's, and the Veneer
/// domain's (its machine has QEMU's default besides, for the hypervisor
/// and the boot bundle). The initramfs alone is about 50 MB.
const GUEST_MEMORY: &str = "384M";

/// `make bench` or `make bench-quick`: the quick run's workloads are shorter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Full,
    Quick,
}

impl Mode {
    fn pick<T>(self, full: T, quick: T) -> T {
        match self {
            Mode::Full => full,
            Mode::Quick => quick,
        }
    }

    fn name(self) -> &'static str {
        self.pick("full", "quick")
    }
}

/// A command the guest runs between markers.
struct Step {
    name: &'static str,
    command: String,
}

/// stress-ng's stressors in the table, each run alone on one instance: the
/// stressor, its step's name, its options. (stress-ng's `exec` refuses to
/// run as root, as the guest's init does; `latency`'s fork + exec row
/// stands for it.)
const STRESSORS: &[(&str, &str, &str)] = &[
    ("fork", "stress-fork", ""),
    ("switch", "stress-switch", ""),
    ("signal", "stress-signal", ""),
    ("fault", "stress-fault", ""),
    // Its default, 256 MiB a round, takes seconds a round under TCG.
    ("mmap", "stress-mmap", " --mmap-bytes 16M"),
];

/// The lmbench measurements `latency` makes, in its names.
const LATENCIES: &[&str] =
    &["null-syscall", "stat", "open-close", "signal-install", "signal-deliver", "fork", "exec", "sh", "ctx-2", "ctx-8", "ctx-16", "page-fault", "mmap"];

/// The macro workloads come first: a guest that fails a micro workload may
/// not get further, and the gated figures should not be lost to it.
fn steps(mode: Mode) -> Vec<Step> {
    let step = |name, command: String| Step { name, command };
    let mut s = vec![step("cpu", format!("/bin/latency time cpu sysbench cpu --cpu-max-prime=10000 --events={} --time=0 run", mode.pick(2000, 400)))];
    // Blocks of 64 MiB, larger than the host's caches: the writes go to memory.
    s.push(step("memory", format!("/bin/latency time memory sysbench memory --memory-block-size=64M --memory-total-size={}G run", mode.pick(16, 4))));
    s.push(step("build", format!("/bin/latency time build /bin/sh /bin/build-kconfig.sh {}", mode.pick(12, 3))));
    s.push(step("latency", format!("/bin/latency {} {}", mode.pick(1000, 250), LATENCIES.join(" "))));
    for (stressor, name, options) in STRESSORS {
        s.push(step(name, format!("stress-ng --{stressor} 1 --timeout {} --metrics --temp-path /tmp{options}", mode.pick(5, 2))));
    }
    s.push(step("threads", format!("sysbench threads --threads=4 --events={} --time=0 run", mode.pick(1000, 500))));
    s
}

/// Micro rows are reported; macro rows are gated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Micro,
    Macro,
}

/// Where a row's figure is in its step's output.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Figure {
    /// `latency NAME cycles=N ...`: TSC cycles per operation.
    Latency(&'static str),
    /// stress-ng's `--metrics` line for the stressor: bogo ops per second
    /// of real time.
    StressNg(&'static str),
    /// sysbench's `total time:` for a fixed amount of work, in seconds.
    SysbenchTime,
    /// `latency-time STEP cycles=N`: the step's command, in TSC cycles
    /// shown as seconds at the host's TSC rate, the same for both sides.
    Elapsed,
}

impl Figure {
    fn unit(self) -> &'static str {
        match self {
            Figure::Latency(_) => "cycles",
            Figure::StressNg(_) => "bogo ops/s",
            Figure::SysbenchTime | Figure::Elapsed => "s",
        }
    }

    /// Whether a bigger figure is better (a rate) rather than worse (a time).
    fn higher_is_better(self) -> bool {
        matches!(self, Figure::StressNg(_))
    }

    /// The figure in `output`, a step's lines, with TSC cycles counted
    /// at `tsc_khz`.
    fn find(self, step: &str, output: &[String], tsc_khz: f64) -> Option<f64> {
        output.iter().find_map(|line| {
            let line = line.trim();
            match self {
                Figure::Latency(name) => {
                    let rest = line.strip_prefix("latency ")?.strip_prefix(name)?.strip_prefix(' ')?;
                    field(rest, "cycles")
                }
                Figure::Elapsed => {
                    let rest = line.strip_prefix("latency-time ")?.strip_prefix(step)?.strip_prefix(' ')?;
                    Some(field(rest, "cycles")? / (tsc_khz * 1e3))
                }
                Figure::SysbenchTime => line.strip_prefix("total time:")?.trim().strip_suffix('s')?.parse().ok(),
                Figure::StressNg(stressor) => {
                    // stress-ng: metrc: [PID] STRESSOR OPS REAL USR SYS RATE_REAL RATE_CPU ...
                    let (_, cols) = line.strip_prefix("stress-ng: metrc: [")?.split_once("] ")?;
                    let cols: Vec<&str> = cols.split_whitespace().collect();
                    if cols.first() != Some(&stressor) || cols.get(1)?.parse::<u64>().is_err() {
                        return None;
                    }
                    cols.get(5)?.parse().ok()
                }
            }
        })
    }
}

/// `key=value` among space-separated words.
fn field(words: &str, key: &str) -> Option<f64> {
    words.split(' ').find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

pub struct Row {
    pub label: &'static str,
    pub class: Class,
    step: &'static str,
    figure: Figure,
}

const fn micro(label: &'static str, step: &'static str, figure: Figure) -> Row {
    Row { label, class: Class::Micro, step, figure }
}

const fn macro_(label: &'static str, step: &'static str, figure: Figure) -> Row {
    Row { label, class: Class::Macro, step, figure }
}

pub const ROWS: &[Row] = &[
    micro("null syscall (getppid)", "latency", Figure::Latency("null-syscall")),
    micro("stat", "latency", Figure::Latency("stat")),
    micro("open/close", "latency", Figure::Latency("open-close")),
    micro("signal handler install", "latency", Figure::Latency("signal-install")),
    micro("signal handler delivery", "latency", Figure::Latency("signal-deliver")),
    micro("fork + exit + wait", "latency", Figure::Latency("fork")),
    micro("fork + exec", "latency", Figure::Latency("exec")),
    micro("sh -c PROGRAM", "latency", Figure::Latency("sh")),
    micro("context switch, 2 processes", "latency", Figure::Latency("ctx-2")),
    micro("context switch, 8 processes", "latency", Figure::Latency("ctx-8")),
    micro("context switch, 16 processes", "latency", Figure::Latency("ctx-16")),
    micro("page fault (anonymous)", "latency", Figure::Latency("page-fault")),
    micro("mmap + touch + munmap, 1 MiB file", "latency", Figure::Latency("mmap")),
    micro("stress-ng fork", "stress-fork", Figure::StressNg("fork")),
    micro("stress-ng switch", "stress-switch", Figure::StressNg("switch")),
    micro("stress-ng signal", "stress-signal", Figure::StressNg("signal")),
    micro("stress-ng fault", "stress-fault", Figure::StressNg("fault")),
    micro("stress-ng mmap", "stress-mmap", Figure::StressNg("mmap")),
    micro("sysbench threads (4 threads)", "threads", Figure::SysbenchTime),
    macro_("CPU: sysbench cpu (primes)", "cpu", Figure::Elapsed),
    macro_("memory: sysbench memory (64 MiB blocks)", "memory", Figure::Elapsed),
    macro_("build: tcc builds Linux's kconfig", "build", Figure::Elapsed),
];

/// One step's output in a boot's serial log.
#[derive(Debug, PartialEq)]
struct StepOutput {
    name: String,
    status: i32,
    lines: Vec<String>,
}

const MARK: &str = "linux-bench: ";

/// What a boot's log holds: its `kernel` line, the steps that ran to their
/// end, in order, and what went wrong with the others.
#[derive(Debug, PartialEq)]
struct Parsed {
    kernel: String,
    steps: Vec<StepOutput>,
    /// A step that failed or never ended, or a run that stopped early:
    /// those rows have no figure from this boot.
    failures: Vec<String>,
}

/// Parses a finished boot's log; an error when the guest's clock was its
/// timer ticks (no figure of it means anything) or the markers make no
/// sense.
fn parse_log(text: &str) -> Result<Parsed> {
    let mut p = Parsed { kernel: String::new(), steps: Vec::new(), failures: Vec::new() };
    let mut open: Option<StepOutput> = None;
    let mut done = false;
    // Veneer puts its `(dN) ` before a domain's lines, and `(veneer) `
    // before its own, which are no workload's output; the tty ends lines in
    // CR LF.
    for line in text.lines().filter(|l| !l.starts_with("(veneer) ")).map(|l| domain_text(l).trim_end_matches('\r')) {
        let Some(mark) = line.split_once(MARK).map(|(_, m)| m) else {
            if let Some(s) = open.as_mut() {
                s.lines.push(line.to_string());
            }
            continue;
        };
        if let Some(k) = mark.strip_prefix("kernel ") {
            p.kernel = k.to_string();
        } else if let Some(clock) = mark.strip_prefix("clocksource ").filter(|c| c.contains("jiffies")) {
            return Err(format!("the guest kept time with {clock}, a clock of timer ticks: its figures mean nothing"));
        } else if let Some(name) = mark.strip_prefix("begin ") {
            open = Some(StepOutput { name: name.to_string(), status: -1, lines: Vec::new() });
        } else if let Some(rest) = mark.strip_prefix("end ") {
            let (name, status) = rest.split_once(" status=").ok_or_else(|| format!("bad end line `{line}`"))?;
            let mut s = open.take().filter(|s| s.name == name).ok_or_else(|| format!("`end {name}` without its begin"))?;
            s.status = status.trim().parse().map_err(|_| format!("bad status in `{line}`"))?;
            if s.status == 0 {
                p.steps.push(s);
            } else {
                let last = s.lines.iter().rev().find(|l| !l.trim().is_empty()).map_or("", |l| l.trim());
                p.failures.push(format!("workload {name} exited with status {} ({last})", s.status));
            }
        } else if mark == "done" {
            done = true;
        }
    }
    if let Some(s) = open {
        // A panic says why; else the last thing the guest said.
        let panic = s.lines.iter().rev().find(|l| l.contains("Kernel panic"));
        let last = panic.or_else(|| s.lines.iter().rev().find(|l| !l.trim().is_empty())).map_or("", |l| l.trim());
        p.failures.push(format!("the guest stopped inside workload {} ({last})", s.name));
    } else if !done {
        p.failures.push("the guest stopped before the end of the run".into());
    }
    Ok(p)
}

/// When the host first saw each marker line of a growing serial log.
#[derive(Default)]
struct MarkerTimes {
    seen: Vec<(String, Instant)>,
}

impl MarkerTimes {
    fn follow(&mut self, log: &Path) {
        let now = Instant::now();
        let Ok(text) = std::fs::read_to_string(log) else { return };
        let marks = text.lines().filter_map(|l| l.split_once(MARK)).map(|(_, m)| m.trim_end());
        for mark in marks.skip(self.seen.len()) {
            self.seen.push((mark.to_string(), now));
        }
    }

    /// Seconds between `begin STEP` and `end STEP` reaching the log.
    fn span(&self, step: &str) -> Option<f64> {
        let begin = self.seen.iter().find(|(m, _)| *m == format!("begin {step}"))?.1;
        let end = self.seen.iter().find(|(m, _)| m.starts_with(&format!("end {step} ")))?.1;
        Some(end.duration_since(begin).as_secs_f64())
    }
}

/// One row's figure from one boot.
struct Sample {
    row: &'static str,
    side: Side,
    run: usize,
    value: f64,
    /// For macro rows: the step's time by the host's clock.
    host_seconds: Option<f64>,
}

/// The figures of the rows whose steps ran to their end; a step that ended
/// well without its figure is an error.
fn figures(steps: &[StepOutput], tsc_khz: f64) -> Result<Vec<(&'static Row, f64)>> {
    ROWS.iter()
        .filter_map(|row| Some((row, steps.iter().find(|s| s.name == row.step)?)))
        .map(|(row, step)| {
            let v = row.figure.find(row.step, &step.lines, tsc_khz).ok_or_else(|| format!("no figure for `{}` in the output of {}", row.label, row.step))?;
            Ok((row, v))
        })
        .collect()
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

/// (max - min) / median.
fn spread(v: &[f64]) -> f64 {
    let m = median(v);
    let (lo, hi) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
    if m > 0.0 {
        (hi - lo) / m
    } else {
        0.0
    }
}

/// One side's figure for a row: the median of its runs and their spread.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Figures {
    pub median: f64,
    pub spread: f64,
}

impl Figures {
    /// None when no boot gave a figure.
    fn of(v: &[f64]) -> Option<Figures> {
        (!v.is_empty()).then(|| Figures { median: median(v), spread: spread(v) })
    }
}

/// A row of the table: each side's figures, none where no boot of that
/// side ran the workload to its end.
pub struct Summary {
    pub row: &'static Row,
    pub native: Option<Figures>,
    pub veneer: Option<Figures>,
}

impl Summary {
    /// The cost on Veneer over the cost natively: a rate is inverted, so
    /// above 1 is always slower on Veneer.
    pub fn ratio(&self) -> Option<f64> {
        let (n, v) = (self.native?.median, self.veneer?.median);
        let (cost_veneer, cost_native) = if self.row.figure.higher_is_better() { (n, v) } else { (v, n) };
        Some(cost_veneer / cost_native.max(f64::MIN_POSITIVE))
    }

    fn wide(&self) -> bool {
        [self.native, self.veneer].iter().flatten().any(|f| f.spread > SPREAD_WARNING)
    }
}

/// The macro workloads that fail the gate, each with why: an overhead of
/// `GATE` or more, or no figure on a side (it never ran to its end there).
pub fn gate(rows: &[Summary]) -> Vec<String> {
    rows.iter()
        .filter(|s| s.row.class == Class::Macro)
        .filter_map(|s| match s.ratio() {
            Some(r) if r >= 1.0 + GATE => Some(format!("`{}` costs {:.1}% more on Veneer", s.row.label, (r - 1.0) * 100.0)),
            Some(_) => None,
            None => Some(format!("`{}` did not run to its end on {}", s.row.label, if s.native.is_none() { "the native kernel" } else { "Veneer" })),
        })
        .collect()
}

/// The guest's and the host's time for a macro step disagree by more than
/// this fraction, plus `CLOCK_SLACK` for the program's start (which the
/// guest's figure may leave out) and the host's polling.
const CLOCK_TOLERANCE: f64 = 0.10;
const CLOCK_SLACK: f64 = 1.0;

fn clock_disagrees(guest: f64, host: f64) -> bool {
    (guest - host).abs() > host * CLOCK_TOLERANCE + CLOCK_SLACK
}

/// Compiles `perf/linux/latency.c`, static, for the initramfs.
fn latency_program() -> Result<PathBuf> {
    let out = artifacts::out_dir().join("latency");
    let src = artifacts::root().join("perf/linux/latency.c");
    let status = Command::new("gcc").args(["-static", "-O2", "-Wall", "-Werror", "-o"]).arg(&out).arg(&src).status().map_err(|e| format!("gcc: {e}"))?;
    if !status.success() {
        return Err(format!("gcc latency.c failed ({status})"));
    }
    Ok(out)
}

/// The files `ldd` says `program` loads, with the program itself.
fn with_libraries(program: &str) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd").arg(program).output().map_err(|e| format!("ldd: {e}"))?;
    if !out.status.success() {
        return Err(format!("{program} is missing (make bench installs it)"));
    }
    let mut files = vec![PathBuf::from(program)];
    // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` or `/lib64/ld-linux-x86-64.so.2 (0x...)`.
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let path = line.split_once("=> ").map_or(line, |(_, p)| p).split_whitespace().next().unwrap_or("");
        if path.starts_with('/') {
            files.push(PathBuf::from(path));
        }
    }
    Ok(files)
}

/// The kconfig sources of the native kernel's tree, with the parser and
/// lexer its build generated.
const KCONFIG_SOURCES: &[&str] =
    &["conf.c", "confdata.c", "expr.c", "menu.c", "preprocess.c", "symbol.c", "util.c", "expr.h", "internal.h", "lkc.h", "lkc_proto.h", "preprocess.h"];
const KCONFIG_GENERATED: &[&str] = &["parser.tab.c", "parser.tab.h", "lexer.lex.c"];

/// Copies kconfig into `root/src`, builds it there with the host's `tcc`
/// as the guest will, and returns every file outside `root` that build
/// read (headers, start files, libraries), as `tcc -vv` lists them.
fn stage_kconfig(vmlinux: &Path, root: &Path) -> Result<Vec<PathBuf>> {
    let build = vmlinux.parent().ok_or("vmlinux without a directory")?;
    let src = build.parent().ok_or("a build tree without a parent")?.join("src");
    let dir = root.join("src/kconfig");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(root.join("src/include")).map_err(|e| e.to_string())?;
    let copy = |from: PathBuf, to: PathBuf| std::fs::copy(&from, to).map(|_| ()).map_err(|e| format!("{}: {e}", from.display()));
    for f in KCONFIG_SOURCES {
        copy(src.join("scripts/kconfig").join(f), dir.join(f))?;
    }
    for f in KCONFIG_GENERATED {
        copy(build.join("scripts/kconfig").join(f), dir.join(f))?;
    }
    for e in std::fs::read_dir(src.join("scripts/include")).map_err(|e| e.to_string())?.filter_map(|e| e.ok()) {
        copy(e.path(), root.join("src/include").join(e.file_name()))?;
    }
    let script = std::fs::read_to_string(artifacts::root().join("perf/linux/build-kconfig.sh")).map_err(|e| e.to_string())?;
    let tcc_line = script.lines().map(str::trim).find(|l| l.starts_with("tcc ")).ok_or("build-kconfig.sh has no tcc line")?;
    let out = Command::new("tcc")
        .arg("-vv")
        .args(tcc_line.split_whitespace().skip(1))
        .current_dir(&dir)
        .output()
        .map_err(|e| format!("tcc (make bench installs it): {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("tcc cannot build kconfig on the host:\n{text}"));
    }
    let _ = std::fs::remove_file(dir.join("conf"));
    Ok(text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("->"))
        .map(str::trim)
        .filter(|p| p.starts_with('/'))
        .map(PathBuf::from)
        .collect())
}

/// `template` with its line `@WORKLOADS@` replaced by `lines`.
fn fill_template(template: &str, lines: &[String]) -> Result<String> {
    let mut out = Vec::new();
    let mut filled = false;
    for line in template.lines() {
        if line == "@WORKLOADS@" && !filled {
            out.extend(lines.iter().map(String::as_str));
            filled = true;
        } else {
            out.push(line);
        }
    }
    if !filled {
        return Err("bench-init.sh has no @WORKLOADS@ line".into());
    }
    Ok(out.join("\n") + "\n")
}

/// The benchmark initramfs of `mode`: busybox with the script and
/// `latency` (`linux::initramfs`), followed by a second cpio archive of the
/// tools and the build's files at their host paths (Linux unpacks
/// concatenated archives in order).
fn initramfs(mode: Mode, vmlinux: &Path) -> Result<PathBuf> {
    let template = std::fs::read_to_string(artifacts::root().join("perf/linux/bench-init.sh")).map_err(|e| format!("bench-init.sh: {e}"))?;
    let lines: Vec<String> = steps(mode).iter().map(|s| format!("workload {} {}", s.name, s.command)).collect();
    let init = fill_template(&template, &lines)?;
    let name = format!("linux-bench-{}", mode.name());
    let read = |p: PathBuf| std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()));
    let programs = [
        ("bin/latency", read(latency_program()?)?, 0o755),
        ("bin/build-kconfig.sh", read(artifacts::root().join("perf/linux/build-kconfig.sh"))?, 0o755),
    ];
    let base = linux::initramfs(&name, &init, &programs)?;

    let root = artifacts::out_dir().join("initramfs").join(format!("{name}-tools"));
    let _ = std::fs::remove_dir_all(&root);
    let mut files = stage_kconfig(vmlinux, &root)?;
    for program in ["/usr/bin/stress-ng", "/usr/bin/sysbench", "/usr/bin/tcc"] {
        files.extend(with_libraries(program)?);
    }
    files.sort();
    files.dedup();
    for f in &files {
        let to = root.join(f.strip_prefix("/").map_err(|e| e.to_string())?);
        std::fs::create_dir_all(to.parent().expect("a file")).map_err(|e| e.to_string())?;
        // Copies the file a link points at: the guest needs the bytes.
        std::fs::copy(f, &to).map_err(|e| format!("{}: {e}", f.display()))?;
    }
    let tools = artifacts::out_dir().join(format!("{name}-tools.cpio"));
    let script = format!("cd {} && find . | cpio --quiet -o -H newc --owner=0:0 > {}", root.display(), tools.display());
    let status = Command::new("sh").args(["-c", &script]).status().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("packing the tools' initramfs failed".into());
    }
    let mut bytes = std::fs::read(&base).map_err(|e| e.to_string())?;
    bytes.extend(std::fs::read(&tools).map_err(|e| e.to_string())?);
    let out = artifacts::out_dir().join(format!("{name}.initramfs.cpio"));
    std::fs::write(&out, bytes).map_err(|e| e.to_string())?;
    Ok(out)
}

/// How long one boot may take: every workload of a full run under TCG on a
/// shared host.
fn timeout() -> Duration {
    if qemu::kvm_usable() {
        Duration::from_secs(300)
    } else {
        Duration::from_secs(1200)
    }
}

/// The host's TSC rate in kHz, measured against its monotonic clock.
///
/// The native kernel (tinyconfig, no ACPI) has no HPET or PM timer to
/// calibrate its TSC against, and calibration against the PIT fails now
/// and then under TCG: the kernel then keeps time in jiffies, a 4 ms clock.
/// QEMU's guest TSC runs at the host's rate (TCG reads the host's TSC; KVM
/// does not scale it), so the native kernel is told that rate
/// (`tsc_early_khz`) and keeps time with its TSC, as Veneer does. It is also
/// told the TSC is reliable (`tsc=reliable`): else its clocksource watchdog
/// checks the TSC against the only other clock, the timer ticks, which lag
/// on a loaded host, and in one boot of seven here it dropped the TSC for
/// them.
fn host_tsc_khz() -> f64 {
    let tsc = || {
        // SAFETY: rdtsc reads a counter; it touches no memory.
        unsafe { core::arch::x86_64::_rdtsc() }
    };
    let (t0, c0) = (Instant::now(), tsc());
    std::thread::sleep(Duration::from_millis(300));
    let (c1, t1) = (tsc(), Instant::now());
    (c1 - c0) as f64 / t1.duration_since(t0).as_secs_f64() / 1000.0
}

/// One boot of `machine`: what its log holds, with how QEMU ended among the
/// failures, and the host's marker times.
fn boot(machine: Qemu, side: Side, log: &Path) -> Result<(Parsed, MarkerTimes)> {
    let _ = std::fs::remove_file(log);
    let mut marks = MarkerTimes::default();
    let status = machine.serial_to(log).pinned().cpus(1).run_watched(timeout(), || marks.follow(log))?;
    let text = std::fs::read_to_string(log).map_err(|e| e.to_string())?;
    let mut parsed = parse_log(&text).map_err(|e| format!("{e} (log {})", log.display()))?;
    // The native kernel reboots (QEMU's -no-reboot exits 0); Veneer ends
    // cleanly when its domain has powered off.
    match status {
        None => parsed.failures.push(format!("timed out after {:?}", timeout())),
        Some(s) if side == Side::Native && s.success() => {}
        Some(s) if side == Side::Veneer && RunStatus::from_exit(s) == Some(RunStatus::Clean) => {}
        Some(s) => parsed.failures.push(format!("QEMU: {}", qemu::describe(s, RunStatus::from_exit(s)))),
    }
    Ok((parsed, marks))
}

/// Runs the Linux table `runs` times; returns its rows for the gate.
pub fn run(mode: Mode, runs: usize) -> Result<Vec<Summary>> {
    let built = artifacts::build_all()?;
    let native_kernel = linux::build(linux::Flavour::Native)?;
    let initrd = initramfs(mode, &native_kernel)?;
    let bundle = linux_guest::bundle_with_initramfs(
        &format!("linux-bench-{}", mode.name()),
        &["linux"],
        std::fs::read(&initrd).map_err(|e| e.to_string())?,
        GUEST_MEMORY,
        &format!("{} quiet", linux_guest::CMDLINE),
        false,
    )?;
    let dir = artifacts::out_dir().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut samples = Vec::new();
    let mut kernels = Vec::new();
    let mut clock_warnings = Vec::new();
    let mut failures = Vec::new();
    let tsc_khz = host_tsc_khz();
    let cmdline = format!("console=ttyS0 quiet tsc_early_khz={tsc_khz:.0} tsc=reliable linux-bench.end=reboot");
    for run in 0..runs {
        for side in [Side::Native, Side::Veneer] {
            let log = dir.join(format!("linux-{}-{run}.log", side.name()));
            let machine = match side {
                Side::Native => Qemu::new(&native_kernel, &initrd).memory(GUEST_MEMORY).append(Some(&cmdline)),
                Side::Veneer => Qemu::new(&built.hypervisor, &bundle),
            };
            let (parsed, marks) = boot(machine, side, &log).map_err(|e| format!("Linux, {}: {e}", side.name()))?;
            if !kernels.iter().any(|(s, _)| *s == side) {
                kernels.push((side, parsed.kernel.clone()));
            }
            for f in &parsed.failures {
                println!("linux bench: {} boot {run}: {f} (log {})", side.name(), log.display());
                failures.push(format!("{} boot {run}: {f}", side.name()));
            }
            for (row, value) in figures(&parsed.steps, tsc_khz)? {
                let host_seconds = if row.class == Class::Macro { marks.span(row.step) } else { None };
                if let Some(host) = host_seconds.filter(|h| clock_disagrees(value, *h)) {
                    clock_warnings.push(format!("{} boot {run}: `{}` took {value:.2} s by the guest's TSC, {host:.2} s by the host's clock", side.name(), row.label));
                }
                samples.push(Sample { row: row.label, side, run, value, host_seconds });
            }
        }
        println!("linux bench: boot {run} of each side done ({runs} in all)");
    }
    let pick = |row: &Row, side: Side| samples.iter().filter(|s| s.row == row.label && s.side == side).map(|s| s.value).collect::<Vec<_>>();
    let rows: Vec<Summary> = ROWS.iter().map(|row| Summary { row, native: Figures::of(&pick(row, Side::Native)), veneer: Figures::of(&pick(row, Side::Veneer)) }).collect();
    if !failures.is_empty() {
        println!("\nFailures (the rows of the workloads they stopped lack those boots' figures):");
        for f in &failures {
            println!("  {f}");
        }
    }
    let host = |row: &Row, side: Side| {
        let v: Vec<f64> = samples.iter().filter(|s| s.row == row.label && s.side == side).filter_map(|s| s.host_seconds).collect();
        (!v.is_empty()).then(|| median(&v))
    };
    let kernel = kernels.iter().map(|(s, k)| format!("{}: {k}", s.name())).collect::<Vec<_>>().join("; ");
    print_table(mode, runs, &kernel, &rows, host, &clock_warnings);
    write_results(&dir, mode, runs, &kernel, &cmdline, tsc_khz, &samples, &rows, &failures)?;
    println!("results: {}, {}", dir.join("linux.json").display(), dir.join("linux.csv").display());
    plot(&dir);
    Ok(rows)
}

/// A figure with the digits that mean something at its size.
fn figure(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// `host` gives a macro row's median time by the host's clock on a side.
fn print_table(mode: Mode, runs: usize, kernel: &str, rows: &[Summary], host: impl Fn(&Row, Side) -> Option<f64>, clock_warnings: &[String]) {
    println!();
    println!("Linux ({kernel})");
    println!("{} workloads, {runs} boots each side, interleaved, one CPU, {GUEST_MEMORY}, under {}:", mode.name(), if qemu::kvm_usable() { "KVM" } else { "TCG" });
    println!("{:<6} {:<52} {:>12} {:>7} {:>12} {:>7} {:>6} {:>16}", "class", "workload", "native", "spread", "veneer", "spread", "ratio", "host clock");
    for s in rows {
        let class = if s.row.class == Class::Macro { "macro" } else { "micro" };
        let label = format!("{} ({})", s.row.label, s.row.figure.unit());
        let host = match (host(s.row, Side::Native), host(s.row, Side::Veneer)) {
            (Some(n), Some(v)) => format!("{n:.2} / {v:.2} s"),
            _ => String::new(),
        };
        let side = |f: Option<Figures>| f.map_or(("failed".to_string(), String::new()), |f| (figure(f.median), format!("{:.1}%", f.spread * 100.0)));
        let ((n, ns), (v, vs)) = (side(s.native), side(s.veneer));
        let ratio = s.ratio().map_or(String::new(), |r| format!("{r:.2}"));
        println!("{class:<6} {label:<52} {n:>12} {ns:>7} {v:>12} {vs:>7} {ratio:>6} {host:>16}");
    }
    println!("(ratio: the cost on Veneer over the cost natively; a rate is inverted, so above 1 is slower on Veneer)");
    for s in rows.iter().filter(|s| s.wide()) {
        println!("warning: the spread of `{}` exceeds {:.0}%: do not trust its ratio", s.row.label, SPREAD_WARNING * 100.0);
    }
    for w in clock_warnings {
        println!("warning: the clocks disagree: {w}");
    }
}

/// A JSON number, or null for a figure no boot gave.
fn num(v: Option<f64>) -> String {
    v.map_or("null".into(), |v| format!("{v:.6}"))
}

#[allow(clippy::too_many_arguments)]
fn write_results(dir: &Path, mode: Mode, runs: usize, kernel: &str, cmdline: &str, tsc_khz: f64, samples: &[Sample], rows: &[Summary], failures: &[String]) -> Result<()> {
    let accel = if qemu::kvm_usable() { "kvm" } else { "tcg" };
    let mut j = String::from("{\n");
    writeln!(j, "  \"machine\": {{\"cpu\": {}, \"cpus\": {}, \"accel\": {}}},", json_str(&cpu_model()), std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1), json_str(accel)).unwrap();
    writeln!(j, "  \"qemu\": {},", json_str(&command_output("qemu-system-x86_64", &["--version"]))).unwrap();
    writeln!(j, "  \"kernel\": {},", json_str(kernel)).unwrap();
    writeln!(j, "  \"guest_memory\": \"{GUEST_MEMORY}\",").unwrap();
    writeln!(j, "  \"native_cmdline\": {},", json_str(cmdline)).unwrap();
    writeln!(j, "  \"host_tsc_khz\": {tsc_khz:.0},").unwrap();
    writeln!(j, "  \"failures\": [{}],", failures.iter().map(|f| json_str(f)).collect::<Vec<_>>().join(", ")).unwrap();
    writeln!(j, "  \"kernel_source\": {},", json_str(&command_output("dpkg-query", &["-W", "-f=${Package} ${Version}", "linux-source-6.12"]))).unwrap();
    let tools: Vec<String> = ["stress-ng", "sysbench", "tcc"].iter().map(|p| command_output("dpkg-query", &["-W", "-f=${Package} ${Version}", p])).collect();
    writeln!(j, "  \"tools\": {},", json_str(&tools.join(", "))).unwrap();
    writeln!(j, "  \"veneer\": {},", json_str(&command_output("git", &["-C", &artifacts::root().display().to_string(), "describe", "--always", "--dirty"]))).unwrap();
    writeln!(j, "  \"mode\": \"{}\",\n  \"runs\": {runs},\n  \"gate\": {GATE},", mode.name()).unwrap();
    j += "  \"samples\": [\n";
    let body: Vec<String> = samples
        .iter()
        .map(|s| {
            let host = s.host_seconds.map_or("null".to_string(), |h| format!("{h:.3}"));
            format!("    {{\"row\": {}, \"side\": \"{}\", \"run\": {}, \"value\": {}, \"host_seconds\": {host}}}", json_str(s.row), s.side.name(), s.run, s.value)
        })
        .collect();
    j += &body.join(",\n");
    j += "\n  ],\n  \"summary\": [\n";
    let sum: Vec<String> = rows
        .iter()
        .map(|s| {
            let class = if s.row.class == Class::Macro { "macro" } else { "micro" };
            format!(
                "    {{\"label\": {}, \"class\": \"{class}\", \"unit\": {}, \"higher_is_better\": {}, \"native\": {}, \"native_spread\": {}, \"veneer\": {}, \"veneer_spread\": {}, \"ratio\": {}}}",
                json_str(s.row.label),
                json_str(s.row.figure.unit()),
                s.row.figure.higher_is_better(),
                num(s.native.map(|f| f.median)),
                num(s.native.map(|f| f.spread)),
                num(s.veneer.map(|f| f.median)),
                num(s.veneer.map(|f| f.spread)),
                num(s.ratio())
            )
        })
        .collect();
    j += &sum.join(",\n");
    j += "\n  ]\n}\n";
    std::fs::write(dir.join("linux.json"), j).map_err(|e| e.to_string())?;

    let mut csv = String::from("row,side,run,value,unit,host_seconds\n");
    for s in samples {
        let unit = ROWS.iter().find(|r| r.label == s.row).map_or("", |r| r.figure.unit());
        writeln!(csv, "\"{}\",{},{},{},{unit},{}", s.row, s.side.name(), s.run, s.value, s.host_seconds.map_or(String::new(), |h| format!("{h:.3}"))).unwrap();
    }
    std::fs::write(dir.join("linux.csv"), csv).map_err(|e| e.to_string())
}

/// `perf/plot_linux.py`: the rows' figures with their spread.
fn plot(dir: &Path) {
    let script = artifacts::root().join("perf/plot_linux.py");
    let status = Command::new("/usr/bin/python3").arg(&script).arg(dir.join("linux.json")).arg(dir.join("linux.png")).status();
    match status {
        Ok(s) if s.success() => println!("plot: {}", dir.join("linux.png").display()),
        _ => eprintln!("xtask: plotting the Linux table failed (is python3-matplotlib installed?)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(String::from).collect()
    }

    #[test]
    fn figures_are_found_in_each_tool_s_output() {
        let out = lines(
            "latency null-syscall cycles=246 min=195 max=666 batches=40 ops=16384\n\
             latency null-syscall-2 cycles=9 min=1 max=9 batches=5 ops=1\n\
             latency-time build ns=2400000000 cycles=5000000000 status=0\n\
             stress-ng: metrc: [3251] stressor       bogo ops real time  usr time  sys time   bogo ops/s     bogo ops/s\n\
             stress-ng: metrc: [3251] fork               4431      2.00      0.91      0.99      2215.15        2332.11\n\
             stress-ng: metrc: [7687] switch              4685.84 nanosecs per context switch (pipe method)\n\
             \x20   total time:                          0.3828s\n",
        );
        let khz = 2e6;
        assert_eq!(Figure::Latency("null-syscall").find("latency", &out, khz), Some(246.0));
        assert_eq!(Figure::Latency("stat").find("latency", &out, khz), None);
        // 5e9 cycles at 2 GHz, whatever the guest's own ns say.
        assert_eq!(Figure::Elapsed.find("build", &out, khz), Some(2.5));
        assert_eq!(Figure::Elapsed.find("bui", &out, khz), None);
        assert_eq!(Figure::StressNg("fork").find("stress-fork", &out, khz), Some(2215.15));
        // The miscellaneous metrics line of the same stressor is not a figure.
        assert_eq!(Figure::StressNg("switch").find("stress-switch", &out, khz), None);
        assert_eq!(Figure::SysbenchTime.find("cpu", &out, khz), Some(0.3828));
    }

    const LOG: &str = "boot noise\r\n\
        linux-bench: kernel Linux 6.12.117, 1 CPU, 499000 KiB\r\n\
        (d1) linux-bench: begin cpu\r\n\
        (d1)     total time:                          1.5000s\r\n\
        linux-bench: end cpu status=0\r\n\
        [    3.1] a kernel line between steps\r\n\
        linux-bench: done\r\n";

    #[test]
    fn a_finished_log_gives_each_step_its_lines() {
        let p = parse_log(LOG).unwrap();
        assert_eq!(p.kernel, "Linux 6.12.117, 1 CPU, 499000 KiB");
        assert_eq!(p.steps, [StepOutput { name: "cpu".into(), status: 0, lines: vec!["    total time:                          1.5000s".into()] }]);
        assert!(p.failures.is_empty());
    }

    #[test]
    fn a_failed_step_or_an_unfinished_run_is_a_failure_with_the_rest_kept() {
        let failed = LOG.replace("status=0", "status=127") + "linux-bench: begin memory\nlinux-bench: end memory status=0\n";
        let p = parse_log(&failed).unwrap();
        assert_eq!(p.failures, ["workload cpu exited with status 127 (total time:                          1.5000s)"]);
        assert_eq!(p.steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["memory"]);
        let cut = LOG[..LOG.find("linux-bench: end").unwrap()].to_string() + "(d1) [ 4.07] Kernel panic - not syncing: x\n(d1) [ 4.08] Kernel Offset: disabled\n(veneer) d1 crashed\n";
        let p = parse_log(&cut).unwrap();
        assert_eq!(p.failures, ["the guest stopped inside workload cpu ([ 4.07] Kernel panic - not syncing: x)"]);
        assert!(p.steps.is_empty());
        let no_done = LOG.replace("linux-bench: done", "");
        assert_eq!(parse_log(&no_done).unwrap().failures, ["the guest stopped before the end of the run"]);
        let ticks = LOG.replace("[    3.1] a kernel line between steps", "linux-bench: clocksource refined-jiffies");
        assert!(parse_log(&ticks).unwrap_err().contains("refined-jiffies"));
        let tsc = LOG.replace("[    3.1] a kernel line between steps", "linux-bench: clocksource tsc");
        assert!(parse_log(&tsc).unwrap().failures.is_empty());
    }

    #[test]
    fn every_row_has_a_step_and_every_latency_is_measured() {
        for mode in [Mode::Full, Mode::Quick] {
            let steps = steps(mode);
            for row in ROWS {
                assert!(steps.iter().any(|s| s.name == row.step), "{}", row.label);
            }
            let latency = &steps.iter().find(|s| s.name == "latency").unwrap().command;
            for row in ROWS {
                if let Figure::Latency(name) = row.figure {
                    assert!(latency.split(' ').any(|w| w == name), "{name}");
                }
            }
        }
        assert!(ROWS.iter().filter(|r| r.class == Class::Macro).count() == 3);
    }

    #[test]
    fn the_workloads_fill_their_own_line_only() {
        let t = "# where @WORKLOADS@ stands\nsetup\n@WORKLOADS@\nend\n";
        let filled = fill_template(t, &["workload a x".into(), "workload b y".into()]).unwrap();
        assert_eq!(filled, "# where @WORKLOADS@ stands\nsetup\nworkload a x\nworkload b y\nend\n");
        assert!(fill_template("no line\n", &[]).is_err());
    }

    #[test]
    fn statistics_take_the_median_and_its_spread() {
        let f = Figures::of(&[3.0, 1.0, 2.0, 100.0, 2.5]).unwrap();
        assert_eq!(f.median, 2.5);
        assert!((f.spread - 99.0 / 2.5).abs() < 1e-9);
        assert_eq!(Figures::of(&[4.0]).unwrap().spread, 0.0);
        assert_eq!(Figures::of(&[]), None);
    }

    fn summary(label: &'static str, class: Class, native: f64, veneer: Option<f64>) -> Summary {
        let row = ROWS.iter().find(|r| r.label == label && r.class == class).unwrap();
        Summary { row, native: Some(Figures { median: native, spread: 0.0 }), veneer: veneer.map(|median| Figures { median, spread: 0.2 }) }
    }

    #[test]
    fn a_ratio_is_a_cost_so_rates_are_inverted() {
        assert!((summary("fork + exec", Class::Micro, 100.0, Some(250.0)).ratio().unwrap() - 2.5).abs() < 1e-9);
        assert!((summary("stress-ng fork", Class::Micro, 300.0, Some(100.0)).ratio().unwrap() - 3.0).abs() < 1e-9);
        assert!(summary("stress-ng fork", Class::Micro, 300.0, Some(100.0)).wide());
        assert_eq!(summary("stat", Class::Micro, 300.0, None).ratio(), None);
    }

    #[test]
    fn the_gate_names_macro_workloads_at_five_percent_or_more() {
        let build = "build: tcc builds Linux's kconfig";
        let cpu = "CPU: sysbench cpu (primes)";
        let memory = "memory: sysbench memory (64 MiB blocks)";
        let rows = [
            summary(cpu, Class::Macro, 1000.0, Some(1049.0)),
            summary(build, Class::Macro, 2.0, Some(2.1)),
            summary("fork + exec", Class::Micro, 1.0, Some(3.0)),
            summary(memory, Class::Macro, 5.0, Some(4.0)),
            summary("stat", Class::Micro, 5.0, None),
        ];
        assert_eq!(gate(&rows), ["`build: tcc builds Linux's kconfig` costs 5.0% more on Veneer"]);
        assert!(gate(&rows[..1]).is_empty());
        // A macro workload that never finished on Veneer fails the gate too.
        assert_eq!(gate(&[summary(memory, Class::Macro, 5.0, None)]), [format!("`{memory}` did not run to its end on Veneer")]);
    }

    #[test]
    fn clocks_may_differ_by_start_up_and_ten_percent() {
        assert!(!clock_disagrees(10.0, 11.5));
        assert!(clock_disagrees(10.0, 12.5));
        assert!(clock_disagrees(2.0, 0.5));
    }

    #[test]
    fn marker_times_give_a_step_s_span() {
        let log = std::env::temp_dir().join(format!("veneer-linux-bench-marks-{}", std::process::id()));
        let mut m = MarkerTimes::default();
        std::fs::write(&log, "linux-bench: begin cpu\n").unwrap();
        m.follow(&log);
        std::fs::write(&log, "linux-bench: begin cpu\nx\nlinux-bench: end cpu status=0\n").unwrap();
        m.follow(&log);
        let _ = std::fs::remove_file(&log);
        assert!(m.span("cpu").is_some_and(|s| s >= 0.0));
        assert_eq!(m.span("cp"), None);
        assert_eq!(m.seen.len(), 2);
    }
}
