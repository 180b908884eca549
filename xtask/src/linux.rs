//! Linux guests: Debian's `linux-source-6.12`, the patch series in
//! `guest-patches/linux/`, and config fragments, built in a cache outside
//! the clone.
//!
//! Layout of the cache (`$VENEER_CACHE`, else `$XDG_CACHE_HOME/veneer`, else
//! `~/.cache/veneer`), per Debian source version:
//! - `linux/<version>/pristine/`: the unpacked source, never modified;
//! - `linux/<version>/<flavour>/src/`: the source with the series applied,
//!   re-synced from `pristine/` (mtimes kept) only when the key changes, so
//!   make rebuilds just what the patches touch;
//! - `linux/<version>/<flavour>/build/`: the `O=` object tree, with a stamp
//!   holding the key of the inputs it was built from.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::artifacts;
use crate::Result;

const SOURCE_PACKAGE: &str = "linux-source-6.12";
const SOURCE_TARBALL: &str = "/usr/src/linux-source-6.12.tar.xz";

/// Which kernel: the same tree and base configuration either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// No Veneer platform: booted directly by QEMU, the benchmarks' baseline.
    Native,
}

impl Flavour {
    fn name(self) -> &'static str {
        match self {
            Flavour::Native => "native",
        }
    }

    /// Fragments merged over tinyconfig, in order.
    fn fragments(self) -> Vec<PathBuf> {
        let dir = patches_dir();
        match self {
            Flavour::Native => vec![dir.join("base.config")],
        }
    }

    /// Whether the series is applied.
    fn patched(self) -> bool {
        match self {
            Flavour::Native => false,
        }
    }
}

fn patches_dir() -> PathBuf {
    artifacts::root().join("guest-patches/linux")
}

pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("VENEER_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into())).join(".cache"));
    base.join("veneer")
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd.status().map_err(|e| format!("{what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

fn source_version() -> Result<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", SOURCE_PACKAGE])
        .output()
        .map_err(|e| format!("dpkg-query: {e}"))?;
    let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || v.is_empty() {
        return Err(format!("{SOURCE_PACKAGE} is not installed (make installs it)"));
    }
    Ok(v)
}

/// The patches named by `series`, in order.
fn series() -> Result<Vec<PathBuf>> {
    let dir = patches_dir();
    let text = std::fs::read_to_string(dir.join("series")).map_err(|e| format!("series: {e}"))?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| dir.join(l))
        .collect())
}

/// Hash of everything the kernel is built from.
fn key(version: &str, flavour: Flavour, patches: &[PathBuf]) -> Result<String> {
    let mut h = DefaultHasher::new();
    version.hash(&mut h);
    flavour.name().hash(&mut h);
    for f in patches.iter().chain(&flavour.fragments()) {
        f.file_name().hash(&mut h);
        std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?.hash(&mut h);
    }
    Ok(format!("{:016x}", h.finish()))
}

fn unpack_pristine(dir: &Path) -> Result<()> {
    let stamp = dir.join(".veneer-unpacked");
    if stamp.exists() {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    println!("linux: unpacking {SOURCE_TARBALL}");
    run(Command::new("tar").args(["-xf", SOURCE_TARBALL, "--strip-components=1", "-C"]).arg(dir), "unpacking the Linux source")?;
    std::fs::write(stamp, b"").map_err(|e| e.to_string())
}

fn apply_series(src: &Path, patches: &[PathBuf], version: &str) -> Result<()> {
    for p in patches {
        let out = Command::new("patch")
            .args(["-p1", "--forward", "--batch", "--silent", "-d"])
            .arg(src)
            .arg("-i")
            .arg(p)
            .output()
            .map_err(|e| format!("patch: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "patch {} does not apply to {SOURCE_PACKAGE} {version}:\n{}{}",
                p.file_name().and_then(|n| n.to_str()).unwrap_or("?"),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(())
}

/// Builds (or finds up to date) the kernel of `flavour`; returns `vmlinux`.
pub fn build(flavour: Flavour) -> Result<PathBuf> {
    let version = source_version()?;
    let patches = if flavour.patched() { series()? } else { Vec::new() };
    let key = key(&version, flavour, &patches)?;
    let top = cache_root().join("linux").join(&version);
    let (src, obj) = (top.join(flavour.name()).join("src"), top.join(flavour.name()).join("build"));
    let vmlinux = obj.join("vmlinux");
    let stamp = obj.join(".veneer-key");
    if vmlinux.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(key.as_str()) {
        return Ok(vmlinux);
    }
    let pristine = top.join("pristine");
    unpack_pristine(&pristine)?;
    std::fs::create_dir_all(&src).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&obj).map_err(|e| e.to_string())?;
    run(Command::new("rsync").args(["-a", "--delete"]).arg(format!("{}/", pristine.display())).arg(&src), "syncing the source tree")?;
    apply_series(&src, &patches, &version)?;

    let make = |args: &[&str]| {
        let mut c = Command::new("nice");
        c.args(["make", "-s"]).arg("-C").arg(&src).arg(format!("O={}", obj.display())).args(args);
        c
    };
    run(&mut make(&["tinyconfig"]), "make tinyconfig")?;
    let mut merge = Command::new(src.join("scripts/kconfig/merge_config.sh"));
    merge.current_dir(&src).args(["-m", "-O"]).arg(&obj).arg(obj.join(".config")).args(flavour.fragments());
    merge.stdout(std::process::Stdio::null());
    run(&mut merge, "merging the config fragments")?;
    run(&mut make(&["olddefconfig"]), "make olddefconfig")?;
    check_fragments_applied(&obj.join(".config"), &flavour.fragments())?;
    let jobs = format!("-j{}", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    println!("linux: building the {} kernel ({SOURCE_PACKAGE} {version}) in {}", flavour.name(), obj.display());
    run(&mut make(&[&jobs, "vmlinux"]), "building Linux")?;
    std::fs::write(&stamp, &key).map_err(|e| e.to_string())?;
    Ok(vmlinux)
}

/// Every `CONFIG_X=y` a fragment asks for must survive olddefconfig: a
/// dropped option (an unmet dependency) is an error, not a surprise at boot.
fn check_fragments_applied(config: &Path, fragments: &[PathBuf]) -> Result<()> {
    let have = std::fs::read_to_string(config).map_err(|e| e.to_string())?;
    for f in fragments {
        let want = std::fs::read_to_string(f).map_err(|e| e.to_string())?;
        for line in want.lines().map(str::trim).filter(|l| l.starts_with("CONFIG_")) {
            if !have.lines().any(|l| l == line) {
                return Err(format!("{}: `{line}` did not survive olddefconfig (a missing dependency?)", f.display()));
            }
        }
    }
    Ok(())
}

/// An initramfs of Debian's busybox-static with `init` as `/init` and the
/// programs `bins` in `/bin`.
pub fn initramfs(name: &str, init: &str, bins: &[PathBuf]) -> Result<PathBuf> {
    let dir = artifacts::out_dir().join("initramfs").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    for d in ["bin", "dev", "proc", "sys", "tmp"] {
        std::fs::create_dir_all(dir.join(d)).map_err(|e| e.to_string())?;
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).map_err(|e| format!("/bin/busybox (busybox-static): {e}"))?;
    for applet in ["sh", "mount", "echo", "cat", "uname", "dmesg", "poweroff", "reboot", "sleep", "ls"] {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).map_err(|e| e.to_string())?;
    }
    for bin in bins {
        let to = dir.join("bin").join(bin.file_name().ok_or("a program without a name")?);
        std::fs::copy(bin, to).map_err(|e| format!("{}: {e}", bin.display()))?;
    }
    std::fs::write(dir.join("init"), init).map_err(|e| e.to_string())?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("init"), std::fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    let out = artifacts::out_dir().join(format!("{name}.initramfs.cpio"));
    let script = format!("cd {} && find . | cpio --quiet -o -H newc --owner=0:0 > {}", dir.display(), out.display());
    run(Command::new("sh").args(["-c", &script]), "packing the initramfs")?;
    Ok(out)
}
