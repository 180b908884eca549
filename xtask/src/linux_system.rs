//! The Linux system test: a kernel boots with `tests/linux/system-test.sh`
//! as `/init`, which exercises processes, memory, faults and timers and
//! prints a verdict. The runner reads that verdict, and holds the guest's
//! clock against the host's: the script prints its uptime before and after
//! a long sleep, and the runner notes when each line reached the serial
//! log. A guest clock that runs fast or slow fails here even when the
//! guest's own sleeps look right by it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{artifacts, linux, qemu, Result};

const VERDICT: &str = "linux-system-test: ";
const CLOCK: &str = "linux-system-test: clock ";

/// The guest's clock may differ from the host's by this fraction of the
/// interval, plus `CLOCK_SLACK` for the host noticing a line late (it polls
/// every 20 ms, and a loaded host delays QEMU's serial output).
const CLOCK_TOLERANCE: f64 = 0.15;
const CLOCK_SLACK: Duration = Duration::from_millis(400);

/// How long a boot of the test may take: TCG on a loaded host is slow.
const TIMEOUT: Duration = Duration::from_secs(600);

/// The initramfs of the test: busybox, the script as `/init`, and the
/// faulting program.
pub fn initramfs() -> Result<PathBuf> {
    let dir = artifacts::root().join("tests/linux");
    let init = std::fs::read_to_string(dir.join("system-test.sh")).map_err(|e| format!("system-test.sh: {e}"))?;
    let segfault = artifacts::out_dir().join("segfault");
    let status = Command::new("gcc")
        .args(["-static", "-nostdlib", "-O2", "-o"])
        .arg(&segfault)
        .arg(dir.join("segfault.c"))
        .status()
        .map_err(|e| format!("gcc: {e}"))?;
    if !status.success() {
        return Err(format!("gcc segfault.c failed ({status})"));
    }
    let segfault = std::fs::read(&segfault).map_err(|e| e.to_string())?;
    linux::initramfs("linux-system-test", &init, &[("bin/segfault", segfault, 0o755)])
}

/// Boots `machine` (whose serial log is `log`) and judges the run.
pub fn run(machine: qemu::Qemu, log: &Path) -> Result<()> {
    let _ = std::fs::remove_file(log);
    let mut clock = ClockLines::default();
    let status = machine.serial_to(log).run_watched(TIMEOUT, || clock.follow(log))?;
    let text = std::fs::read_to_string(log).unwrap_or_default();
    for line in text.lines().filter(|l| l.contains(VERDICT)) {
        println!("  {}", line.trim_end());
    }
    if status.is_none() {
        return Err(format!("timed out after {TIMEOUT:?} (log: {})", log.display()));
    }
    judge(&text, &clock.seen)
}

/// The verdict of a finished run's serial `text`, with the host times at
/// which its clock lines appeared.
fn judge(text: &str, clock_seen: &[(f64, Instant)]) -> Result<()> {
    let verdicts: Vec<&str> = text.lines().filter_map(|l| l.split_once(VERDICT).map(|(_, v)| v.trim_end())).collect();
    if let Some(failure) = verdicts.iter().find(|v| v.starts_with("FAIL")) {
        return Err(format!("the guest reports: {failure}"));
    }
    if verdicts.last() != Some(&"PASS") {
        return Err("no verdict: the guest stopped before the end of the test".into());
    }
    let [(guest_start, host_start), (guest_end, host_end)] = clock_seen else {
        return Err(format!("{} clock lines, not 2", clock_seen.len()));
    };
    let guest = guest_end - guest_start;
    let host = host_end.duration_since(*host_start).as_secs_f64();
    let allowed = host * CLOCK_TOLERANCE + CLOCK_SLACK.as_secs_f64();
    println!("  guest clock {guest:.2} s over {host:.2} s of host time");
    if (guest - host).abs() > allowed {
        return Err(format!("the guest's clock ran {guest:.2} s in {host:.2} s of host time"));
    }
    Ok(())
}

/// The clock lines of a serial log, with when the host first saw each.
#[derive(Default)]
struct ClockLines {
    seen: Vec<(f64, Instant)>,
}

impl ClockLines {
    fn follow(&mut self, log: &Path) {
        let now = Instant::now();
        let Ok(text) = std::fs::read_to_string(log) else { return };
        let uptimes = text.lines().filter_map(|l| l.split_once(CLOCK)).filter_map(|(_, v)| v.trim().parse::<f64>().ok());
        for uptime in uptimes.skip(self.seen.len()) {
            self.seen.push((uptime, now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, secs: f64) -> Instant {
        start + Duration::from_secs_f64(secs)
    }

    const RUN: &str = "linux-system-test: clock 4.00\nlinux-system-test: clock 7.00\nlinux-system-test: PASS\n";

    #[test]
    fn a_clean_run_with_a_true_clock_passes() {
        let t = Instant::now();
        assert_eq!(judge(RUN, &[(4.0, t), (7.0, at(t, 3.1))]), Ok(()));
    }

    #[test]
    fn a_clock_off_by_a_third_fails() {
        let t = Instant::now();
        let e = judge(RUN, &[(4.0, t), (7.0, at(t, 4.5))]).unwrap_err();
        assert!(e.contains("clock ran 3.00 s in 4.50 s"), "{e}");
    }

    #[test]
    fn any_failed_check_fails_even_with_pass_after_it() {
        let text = "linux-system-test: FAIL sleep 3 took 2 ms\nlinux-system-test: PASS\n";
        assert!(judge(text, &[]).unwrap_err().contains("sleep 3 took 2 ms"));
    }

    #[test]
    fn a_run_that_stops_early_fails() {
        let t = Instant::now();
        assert!(judge("linux-system-test: clock 1.00\n", &[(1.0, t)]).unwrap_err().contains("no verdict"));
    }

    #[test]
    fn clock_lines_are_timed_once_as_they_appear() {
        let log = std::env::temp_dir().join(format!("veneer-clock-lines-{}", std::process::id()));
        let mut c = ClockLines::default();
        std::fs::write(&log, "boot\nlinux-system-test: clock 1.50\n").unwrap();
        c.follow(&log);
        std::fs::write(&log, "boot\nlinux-system-test: clock 1.50\nlinux-system-test: clock 4.50\n").unwrap();
        c.follow(&log);
        c.follow(&log);
        let _ = std::fs::remove_file(&log);
        assert_eq!(c.seen.iter().map(|s| s.0).collect::<Vec<_>>(), vec![1.5, 4.5]);
        assert!(c.seen[0].1 <= c.seen[1].1);
    }
}
