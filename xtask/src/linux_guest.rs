//! Linux on Veneer: `xtask run linux` (a busybox shell on the console) and
//! the Linux system tests of `xtask test`.
//!
//! Each test boots the Veneer kernel (built and cached by `linux::build`)
//! with an initramfs whose `/init` is `tests/linux/init-test.sh`: it
//! exercises the port (proc and sysfs, fork/exec, page faults over most of
//! memory, a segfaulting process, sleep accuracy) and prints one verdict
//! line, `linux-test: PASS` or `linux-test: FAIL <why>`, then powers off.
//! A test passes when every Linux domain printed the PASS line, the
//! hypervisor reported that every domain powered off cleanly (QEMU status
//! 33), and every frame came back. A missing line, a timeout or any other
//! end is a failure. Serial logs are kept in `target/veneer/linux/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::artifacts::{self, Built};
use crate::bundle::{self, DomainEntry};
use crate::conformance::Tally;
use crate::linux::{self, Flavour};
use crate::qemu::{self, Qemu, RunStatus};
use crate::Result;

/// The guest's command line: its console is hvc0 over `console_write`, and
/// the 8250 driver must not probe ports ring 3 cannot reach.
pub const CMDLINE: &str = "console=hvc0 8250.nr_uarts=0";
/// Memory of each Linux domain.
pub const MEMORY: &str = "64M";
const VERDICT_PASS: &str = "linux-test: PASS";
const VERDICT_FAIL: &str = "linux-test: FAIL";

fn tests_dir() -> PathBuf {
    artifacts::root().join("tests/linux")
}

/// `tests/linux/segv.c`, built static without libc.
fn segv_binary() -> Result<Vec<u8>> {
    let out = artifacts::out_dir().join("linux-segv");
    let status = Command::new("gcc")
        .args(["-O2", "-static", "-nostdlib", "-fno-pie", "-no-pie", "-o"])
        .arg(&out)
        .arg(tests_dir().join("segv.c"))
        .status()
        .map_err(|e| format!("gcc: {e}"))?;
    if !status.success() {
        return Err("building tests/linux/segv.c failed".into());
    }
    std::fs::read(&out).map_err(|e| e.to_string())
}

/// A bundle of Linux domains named `names`, each with the initramfs made
/// of `init` and `files`; the first owns the console if `console_owner`.
fn bundle(bundle_name: &str, names: &[&str], init: &str, files: &[(&str, Vec<u8>, u32)], console_owner: bool) -> Result<PathBuf> {
    let initrd = std::fs::read(linux::initramfs(bundle_name, init, files)?).map_err(|e| e.to_string())?;
    bundle_with_initramfs(bundle_name, names, initrd, MEMORY, CMDLINE, console_owner)
}

/// A bundle of Linux domains named `names`, each with `memory`, the
/// command line `cmdline` and the initramfs `initrd`; the first reads
/// what is typed on the console if `console_owner`.
pub fn bundle_with_initramfs(bundle_name: &str, names: &[&str], initrd: Vec<u8>, memory: &str, cmdline: &str, console_owner: bool) -> Result<PathBuf> {
    let vmlinux = std::fs::read(linux::build(Flavour::Veneer)?).map_err(|e| e.to_string())?;
    let domains: Vec<DomainEntry> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let mut d = DomainEntry::new(n, vmlinux.clone(), memory);
            d.kernel_name = "vmlinux".into();
            d.cmdline = cmdline.into();
            d.ramdisk = Some(format!("{bundle_name}.initramfs.cpio"));
            d.ramdisk_data = Some(initrd.clone());
            d.console_owner = console_owner && i == 0;
            d
        })
        .collect();
    bundle::write(bundle_name, &domains)
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// `make run linux`: one Linux domain whose console is this terminal.
pub fn run_interactive(built: &Built) -> Result<std::process::ExitStatus> {
    let inittab = "::sysinit:/bin/echo Linux on Veneer: type poweroff to end.\nhvc0::respawn:-/bin/sh\n::shutdown:/bin/umount -a -r\n";
    let b = bundle("linux-shell", &["linux"], &read(&tests_dir().join("init-shell.sh"))?, &[("etc/inittab", inittab.as_bytes().to_vec(), 0o644)], true)?;
    Qemu::new(&built.hypervisor, &b).interactive().run_interactive()
}

struct Case {
    name: &'static str,
    domains: &'static [&'static str],
    /// Host CPUs of the machine.
    cpus: u32,
}

const CASES: &[Case] = &[
    Case { name: "linux_boots_and_runs_its_workload", domains: &["linux"], cpus: qemu::DEFAULT_CPUS },
    // One host CPU: on two, under TCG, the two domains' page-table calls
    // run a hundred times slower than alone (to be found in the hypervisor).
    Case { name: "linux_two_domains_side_by_side", domains: &["linux-a", "linux-b"], cpus: 1 },
];

fn run_case(built: &Built, case: &Case, init: &str, segv: &[u8], log: &Path) -> Result<()> {
    let b = bundle(case.name, case.domains, init, &[("bin/segv", segv.to_vec(), 0o755)], false)?;
    // Linux boots in seconds natively; TCG emulates every instruction.
    let timeout = qemu::boot_timeout() * 2;
    let prefixes: Vec<String> = (1..=case.domains.len()).map(|d| format!("(d{d}) ")).collect();
    let mut clocks: Vec<ClockLines> = prefixes.iter().map(|p| ClockLines::new(p)).collect();
    let machine = Qemu::new(&built.hypervisor, &b).cpus(case.cpus).serial_to(log);
    let status = machine.run_watched(timeout, || clocks.iter_mut().for_each(|c| c.follow(log)))?;
    let text = std::fs::read_to_string(log).unwrap_or_default();
    for ((name, prefix), clock) in case.domains.iter().zip(&prefixes).zip(&clocks) {
        judge(&text, prefix, clock).map_err(|e| format!("{name}: {e}"))?;
    }
    let Some(status) = status else { return Err(format!("timed out after {} s", timeout.as_secs())) };
    if RunStatus::from_exit(status) != Some(RunStatus::Clean) {
        return Err(format!("QEMU: {}", qemu::describe(status, RunStatus::from_exit(status))));
    }
    if !text.lines().any(|l| l.starts_with("(veneer) frames: all ") && l.contains("free again")) {
        return Err("the hypervisor did not report every frame free again".into());
    }
    Ok(())
}

/// The verdict of the guest whose serial lines start with `prefix`: its
/// PASS line, and its clock against the host's across the long sleep.
fn judge(text: &str, prefix: &str, clock: &ClockLines) -> Result<()> {
    // The guest's tty ends its lines with CR LF.
    let verdict = text
        .lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(str::trim_end)
        .find(|l| l.starts_with(VERDICT_PASS) || l.starts_with(VERDICT_FAIL));
    match verdict {
        Some(v) if v == VERDICT_PASS => {}
        Some(v) => return Err(v.to_string()),
        None => return Err("no verdict line".into()),
    }
    let [(guest_start, host_start), (guest_end, host_end)] = clock.seen[..] else {
        return Err(format!("{} clock lines, not 2", clock.seen.len()));
    };
    let guest = (guest_end - guest_start) as f64 / 100.0;
    let host = host_end.duration_since(host_start).as_secs_f64();
    let allowed = host * CLOCK_TOLERANCE + CLOCK_SLACK.as_secs_f64();
    if (guest - host).abs() > allowed {
        return Err(format!("the guest's clock ran {guest:.2} s in {host:.2} s of host time"));
    }
    Ok(())
}

/// The guest may count this fraction of the host's time more or less
/// across the sleep, plus `CLOCK_SLACK` for the host noticing a line late
/// (it looks every 20 ms, and a loaded host delays QEMU's serial output).
const CLOCK_TOLERANCE: f64 = 0.15;
const CLOCK_SLACK: Duration = Duration::from_millis(400);
const CLOCK: &str = "linux-test: clock ";

/// One guest's clock lines (uptime in cs), with when the host first saw
/// each in the serial log.
struct ClockLines {
    prefix: String,
    seen: Vec<(u64, Instant)>,
}

impl ClockLines {
    fn new(prefix: &str) -> ClockLines {
        ClockLines { prefix: prefix.into(), seen: Vec::new() }
    }

    fn follow(&mut self, log: &Path) {
        let now = Instant::now();
        let Ok(text) = std::fs::read_to_string(log) else { return };
        let uptimes = text
            .lines()
            .filter_map(|l| l.strip_prefix(self.prefix.as_str())?.strip_prefix(CLOCK)?.trim_end().parse::<u64>().ok());
        for uptime in uptimes.skip(self.seen.len()).collect::<Vec<_>>() {
            self.seen.push((uptime, now));
        }
    }
}

/// The system test on the native kernel, booted directly by QEMU: the
/// control that shows the test itself passes without Veneer.
pub fn native() -> Result<()> {
    let vmlinux = linux::build(Flavour::Native)?;
    let init = read(&tests_dir().join("init-test.sh"))?;
    let initrd = linux::initramfs("linux-native", &init, &[("bin/segv", segv_binary()?, 0o755)])?;
    let log = artifacts::out_dir().join("linux-native.log");
    let _ = std::fs::remove_file(&log);
    let mut clock = ClockLines::new("");
    let machine = Qemu::new(&vmlinux, &initrd).append(Some("console=ttyS0 linux-test.native")).serial_to(&log);
    let timeout = qemu::boot_timeout() * 2;
    let status = machine.run_watched(timeout, || clock.follow(&log))?;
    if status.is_none() {
        return Err(format!("timed out after {} s (log: {})", timeout.as_secs(), log.display()));
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    judge(&text, "", &clock).map_err(|e| format!("{e} (log: {})", log.display()))
}


/// The Linux system tests whose name contains `filter` (all without one).
pub fn tests(filter: Option<&str>) -> Result<Tally> {
    let built = artifacts::build_all()?;
    let init = read(&tests_dir().join("init-test.sh"))?;
    let segv = segv_binary()?;
    let logs = artifacts::out_dir().join("linux");
    std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
    let cases: Vec<&Case> = CASES.iter().filter(|c| filter.is_none_or(|f| c.name.contains(f))).collect();
    println!("linux: {} tests ({})", cases.len(), if qemu::kvm_usable() { "KVM" } else { "TCG" });
    let mut tally = Tally::default();
    for case in cases {
        let log = logs.join(format!("{}.log", case.name));
        tally.record(case.name, run_case(&built, case, &init, &segv, &log), &log);
    }
    Ok(tally)
}

/// Boots one Linux domain running `init` with the serial log in a file and
/// prints the log, for working on the port.
pub fn boot(init: &str, timeout: Duration) -> Result<Option<RunStatus>> {
    let built = artifacts::build_all()?;
    let segv = segv_binary()?;
    let b = bundle("linux-boot", &["linux"], init, &[("bin/segv", segv, 0o755)], true)?;
    let log = artifacts::out_dir().join("linux-boot.log");
    let status = Qemu::new(&built.hypervisor, &b).serial_to(&log).run_with_timeout(timeout)?;
    print!("{}", std::fs::read_to_string(&log).unwrap_or_default());
    Ok(status.and_then(RunStatus::from_exit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(seen: &[(u64, f64)]) -> ClockLines {
        let t = Instant::now();
        ClockLines { prefix: "(d1) ".into(), seen: seen.iter().map(|&(cs, s)| (cs, t + Duration::from_secs_f64(s))).collect() }
    }

    const RUN: &str = "(d1) linux-test: clock 400\r\n(d2) linux-test: FAIL d2's\n(d1) linux-test: clock 700\n(d1) linux-test: PASS\r\n";

    #[test]
    fn a_pass_with_a_true_clock_passes() {
        assert_eq!(judge(RUN, "(d1) ", &clock(&[(400, 0.0), (700, 3.2)])), Ok(()));
    }

    #[test]
    fn a_clock_off_by_a_third_fails() {
        let e = judge(RUN, "(d1) ", &clock(&[(400, 0.0), (700, 4.5)])).unwrap_err();
        assert!(e.contains("clock ran 3.00 s in 4.50 s"), "{e}");
    }

    #[test]
    fn each_domain_has_its_own_verdict() {
        assert_eq!(judge(RUN, "(d2) ", &clock(&[(400, 0.0), (700, 3.0)])), Err("linux-test: FAIL d2's".into()));
        assert_eq!(judge(RUN, "(d3) ", &clock(&[])), Err("no verdict line".into()));
    }

    #[test]
    fn a_pass_without_both_clock_lines_fails() {
        assert!(judge(RUN, "(d1) ", &clock(&[(400, 0.0)])).unwrap_err().contains("1 clock lines"));
    }

    #[test]
    fn clock_lines_are_timed_once_as_they_appear() {
        let log = std::env::temp_dir().join(format!("veneer-clock-lines-{}", std::process::id()));
        let mut c = ClockLines::new("(d1) ");
        std::fs::write(&log, "(d1) linux-test: clock 150\r\n(d2) linux-test: clock 9\n").unwrap();
        c.follow(&log);
        std::fs::write(&log, "(d1) linux-test: clock 150\r\n(d2) linux-test: clock 9\n(d1) linux-test: clock 450\n").unwrap();
        c.follow(&log);
        c.follow(&log);
        let _ = std::fs::remove_file(&log);
        assert_eq!(c.seen.iter().map(|s| s.0).collect::<Vec<_>>(), vec![150, 450]);
        assert!(c.seen[0].1 <= c.seen[1].1);
    }
}
