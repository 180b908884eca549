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
use std::time::Duration;

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
/// of `init` and `files`.
fn bundle(bundle_name: &str, names: &[&str], init: &str, files: &[(&str, Vec<u8>, u32)], console_owner: bool) -> Result<PathBuf> {
    let vmlinux = std::fs::read(linux::build(Flavour::Veneer)?).map_err(|e| e.to_string())?;
    let initrd = std::fs::read(linux::initramfs(bundle_name, init, files)?).map_err(|e| e.to_string())?;
    let domains: Vec<DomainEntry> = names
        .iter()
        .map(|n| {
            let mut d = DomainEntry::new(n, vmlinux.clone(), MEMORY);
            d.kernel_name = "vmlinux".into();
            d.cmdline = CMDLINE.into();
            d.ramdisk = Some(format!("{bundle_name}.initramfs.cpio"));
            d.ramdisk_data = Some(initrd.clone());
            d
        })
        .enumerate()
        .map(|(i, mut d)| {
            // The first domain reads what is typed on the console.
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
    let status = Qemu::new(&built.hypervisor, &b).cpus(case.cpus).serial_to(log).run_with_timeout(timeout)?;
    let text = std::fs::read_to_string(log).unwrap_or_default();
    for (i, name) in case.domains.iter().enumerate() {
        let prefix = format!("(d{}) ", i + 1);
        // The guest's tty ends its lines with CR LF.
        let verdict = text
            .lines()
            .filter_map(|l| l.strip_prefix(prefix.as_str()))
            .map(str::trim_end)
            .find(|l| l.starts_with("linux-test: PASS") || l.starts_with("linux-test: FAIL"));
        match verdict {
            Some(v) if v == VERDICT_PASS => {}
            Some(v) => return Err(format!("{name}: {v}")),
            None => return Err(format!("{name}: no verdict line")),
        }
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
        match run_case(&built, case, &init, &segv, &log) {
            Ok(()) => {
                tally.passed += 1;
                println!("PASS {}", case.name);
            }
            Err(why) => {
                tally.failed += 1;
                println!("FAIL {}: {why} (log: {})", case.name, log.display());
            }
        }
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
