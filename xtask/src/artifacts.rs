//! Building: the bare-metal crates with Debian's Rust and -Zbuild-std, and
//! the host unit tests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::conformance::Tally;
use crate::Result;

pub const TARGET: &str = "x86_64-unknown-none";
/// Every crate that runs on the bare machine.
const BARE_METAL_PACKAGES: &[&str] = &["veneer", "veneer-conformance", "veneer-perf-guest", "veneer-native-bench"];

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

/// Where xtask writes bundles, logs and results.
pub fn out_dir() -> PathBuf {
    root().join("target").join("veneer")
}

/// Paths of what `build_all` produces.
pub struct Built {
    pub hypervisor: PathBuf,
    /// Directory of the guest and native-kernel ELFs, by binary name.
    pub bin_dir: PathBuf,
}

impl Built {
    pub fn guest(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }
}

pub fn built_paths() -> Built {
    let bin_dir = root().join("target").join(TARGET).join("release");
    Built { hypervisor: bin_dir.join("veneer"), bin_dir }
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

pub fn build_all() -> Result<Built> {
    let mut c = cargo();
    c.env("RUSTC_BOOTSTRAP", "1")
        .args(["build", "--release", "--target", TARGET])
        .args(["-Zbuild-std=core,alloc", "-Zbuild-std-features=compiler-builtins-mem"]);
    for p in BARE_METAL_PACKAGES {
        c.args(["-p", p]);
    }
    let status = c.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("building the hypervisor and guests failed".into());
    }
    std::fs::create_dir_all(out_dir()).map_err(|e| e.to_string())?;
    let built = built_paths();
    crate::qemu::select_accel(&built.guest("native_bench"), &empty_initrd()?);
    Ok(built)
}

/// QEMU's PVH loader wants an initrd argument; native kernels ignore it.
pub fn empty_initrd() -> Result<PathBuf> {
    let p = out_dir().join("empty.initrd");
    std::fs::write(&p, b"").map_err(|e| e.to_string())?;
    Ok(p)
}

/// Runs the host unit tests (the workspace's default members), echoing
/// their output, and counts tests from libtest's summary lines.
pub fn host_tests() -> Result<Tally> {
    // --no-fail-fast: a failing crate must not keep the others' tests from
    // running and being counted. xtask's own tests (the bench harness's
    // parsing, statistics and gate) are among them: cargo builds its test
    // binary apart from the running xtask.
    let mut child = cargo()
        .args(["test", "--no-fail-fast", "--workspace"])
        .args(BARE_METAL_PACKAGES.iter().flat_map(|p| ["--exclude", p]))
        .arg("--exclude")
        .arg("veneer-guest")
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run cargo test: {e}"))?;
    let mut tally = Tally::default();
    let stdout = child.stdout.take().expect("piped");
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| e.to_string())?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            tally.passed += count_before(rest, " passed");
            tally.failed += count_before(rest, " failed");
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() && tally.failed == 0 {
        // A build failure runs no test at all: count it as one failure.
        tally.failed += 1;
    }
    Ok(tally)
}

fn count_before(s: &str, marker: &str) -> u32 {
    s.split(';').find_map(|part| part.trim().strip_suffix(marker.trim_start())?.trim().split(' ').next_back()?.parse().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_libtest_summaries() {
        let s = "ok. 27 passed; 3 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.08s";
        assert_eq!(super::count_before(s, " passed"), 27);
        assert_eq!(super::count_before(s, " failed"), 3);
    }
}
