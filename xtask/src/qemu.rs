//! The one place the QEMU command line is built.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::Result;

/// How the hypervisor ended the run (see `arch::x86_64::qemu_exit`): the
/// value written to `isa-debug-exit` is `v`, QEMU exits `(v << 1) | 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStatus {
    Clean,
    HypervisorFailed,
    DomainFailed,
}

impl RunStatus {
    pub fn from_exit(status: ExitStatus) -> Option<RunStatus> {
        match status.code()? {
            33 => Some(RunStatus::Clean),
            35 => Some(RunStatus::HypervisorFailed),
            37 => Some(RunStatus::DomainFailed),
            _ => None,
        }
    }
}

pub fn describe(status: ExitStatus, run: Option<RunStatus>) -> String {
    match run {
        Some(r) => format!("{r:?}"),
        None if status.code() == Some(0) => "QEMU exited 0: the machine reset (a triple fault under -no-reboot)".into(),
        None => format!("QEMU ended with {status} without the hypervisor reporting"),
    }
}

/// The accelerator every boot of this run uses, chosen once by
/// [`select_accel`].
static ACCEL: OnceLock<Accel> = OnceLock::new();

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

/// Whether this run boots under KVM (else TCG).
pub fn kvm_usable() -> bool {
    ACCEL.get() == Some(&Accel::Kvm)
}

/// Chooses KVM when `/dev/kvm` opens read-write *and* really runs a ring-3
/// kernel: the native benchmark kernel (ring 3 `syscall` into ring 0 and
/// back) must finish cleanly under it. Some nested KVMs (kvm-pvm, which only
/// runs guests written for it) fail that, and then TCG is used.
/// `VENEER_ACCEL=kvm|tcg` forces the choice.
pub fn select_accel(probe_kernel: &Path, probe_initrd: &Path) -> Accel {
    *ACCEL.get_or_init(|| {
        let forced = std::env::var("VENEER_ACCEL").ok();
        let accel = match forced.as_deref() {
            Some("kvm") => Accel::Kvm,
            Some("tcg") => Accel::Tcg,
            _ => {
                let opens = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok();
                if opens && probe_kvm(probe_kernel, probe_initrd) {
                    Accel::Kvm
                } else {
                    if opens {
                        eprintln!("xtask: /dev/kvm cannot run a ring-3 kernel here (nested KVM?); using TCG");
                    }
                    Accel::Tcg
                }
            }
        };
        accel
    })
}

fn probe_kvm(kernel: &Path, initrd: &Path) -> bool {
    let mut c = Command::new("qemu-system-x86_64");
    c.args(base_args(Accel::Kvm, "128M", 1));
    c.args(["-display", "none", "-serial", "null", "-monitor", "none", "-kernel"]).arg(kernel).arg("-initrd").arg(initrd);
    let Ok(mut child) = c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn() else { return false };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return RunStatus::from_exit(status) == Some(RunStatus::Clean),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

/// CPUs a machine has unless its user says otherwise: more than one, so
/// every boot runs the hypervisor's SMP paths.
pub const DEFAULT_CPUS: u32 = 2;

/// Machine, CPU and exit-device arguments shared by every boot.
fn base_args(accel: Accel, memory: &str, cpus: u32) -> Vec<String> {
    let cpu = match accel {
        // QEMU 7.2 cannot set ARCH_CAPABILITIES on newer host kernels.
        Accel::Kvm => "-accel kvm -cpu host,arch-capabilities=off",
        Accel::Tcg => "-accel tcg -cpu max",
    };
    format!("{cpu} -machine q35 -m {memory} -smp {cpus} -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04")
        .split(' ')
        .map(String::from)
        .collect()
}

pub struct Qemu {
    kernel: PathBuf,
    initrd: PathBuf,
    serial: Serial,
    memory: &'static str,
    /// The hypervisor's command line (`-append`).
    append: Option<String>,
    /// Run QEMU on one CPU of its own (benchmarks).
    pinned: bool,
    /// CPUs of the machine (`-smp`).
    cpus: u32,
}

enum Serial {
    Terminal,
    File(PathBuf),
}

impl Qemu {
    pub fn new(kernel: &Path, initrd: &Path) -> Qemu {
        Qemu { kernel: kernel.into(), initrd: initrd.into(), serial: Serial::Terminal, memory: "512M", append: None, pinned: false, cpus: DEFAULT_CPUS }
    }

    /// A machine with `memory` of RAM (QEMU's `-m`).
    pub fn memory(self, memory: &'static str) -> Qemu {
        Qemu { memory, ..self }
    }

    /// A machine with `cpus` CPUs.
    pub fn cpus(self, cpus: u32) -> Qemu {
        Qemu { cpus, ..self }
    }

    pub fn interactive(self) -> Qemu {
        Qemu { serial: Serial::Terminal, ..self }
    }

    pub fn serial_to(self, log: &Path) -> Qemu {
        Qemu { serial: Serial::File(log.into()), ..self }
    }

    /// Pins QEMU (and so the vCPU thread of a one-CPU machine) to the last
    /// CPU, away from the harness, where `taskset` exists and there is more
    /// than one CPU.
    pub fn pinned(self) -> Qemu {
        Qemu { pinned: true, ..self }
    }

    pub fn append(self, cmdline: Option<&str>) -> Qemu {
        Qemu { append: cmdline.map(String::from), ..self }
    }

    pub fn args(&self) -> Vec<String> {
        let accel = if kvm_usable() { Accel::Kvm } else { Accel::Tcg };
        let mut a = base_args(accel, self.memory, self.cpus);
        let mut push = |s: &str| a.extend(s.split(' ').map(String::from));
        match &self.serial {
            Serial::Terminal => push("-display none -serial mon:stdio"),
            Serial::File(p) => {
                push("-display none -monitor none");
                a.push("-serial".into());
                a.push(format!("file:{}", p.display()));
            }
        }
        a.push("-kernel".into());
        a.push(self.kernel.display().to_string());
        a.push("-initrd".into());
        a.push(self.initrd.display().to_string());
        if let Some(cmdline) = &self.append {
            a.push("-append".into());
            a.push(cmdline.clone());
        }
        a
    }

    pub fn command_line(&self) -> String {
        std::iter::once("qemu-system-x86_64".to_string()).chain(self.args()).collect::<Vec<_>>().join(" ")
    }

    fn command(&self) -> Command {
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let mut c = if self.pinned && cpus > 1 && Path::new("/usr/bin/taskset").exists() {
            let mut t = Command::new("/usr/bin/taskset");
            t.args(["-c", &(cpus - 1).to_string(), "qemu-system-x86_64"]);
            t
        } else {
            Command::new("qemu-system-x86_64")
        };
        c.args(self.args());
        c
    }

    /// Runs with the serial console on this terminal.
    pub fn run_interactive(&self) -> Result<ExitStatus> {
        self.command().status().map_err(|e| format!("cannot start QEMU: {e}"))
    }

    /// Starts with no terminal.
    pub fn spawn_quiet(&self) -> Result<Child> {
        self.command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start QEMU: {e}"))
    }

    /// Runs with no terminal; `None` if it outlived `timeout` (then killed).
    pub fn run_with_timeout(&self, timeout: Duration) -> Result<Option<ExitStatus>> {
        self.run_watched(timeout, || {})
    }

    /// `run_with_timeout`, calling `watch` every 20 ms while QEMU runs and
    /// once after it ends (to follow the serial log as it grows).
    pub fn run_watched(&self, timeout: Duration, mut watch: impl FnMut()) -> Result<Option<ExitStatus>> {
        let mut child = self.spawn_quiet()?;
        let deadline = Instant::now() + timeout;
        loop {
            watch();
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                watch();
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Per-boot timeout: generous under TCG, which emulates every instruction.
pub fn boot_timeout() -> Duration {
    if kvm_usable() {
        Duration::from_secs(30)
    } else {
        Duration::from_secs(180)
    }
}
