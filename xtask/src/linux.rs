//! Linux guests: Debian's `linux-source-6.12`, the patch series in
//! `guest-patches/linux/`, and config fragments, built in a cache outside
//! the clone.
//!
//! Layout of the cache (`$VENEER_CACHE`, else `$XDG_CACHE_HOME/veneer`, else
//! `~/.cache/veneer`), per Debian source version:
//! - `linux/<version>/pristine/`: the unpacked source, never modified;
//! - `linux/<version>/<flavour>/src/`: the source with the series applied
//!   (and, for Veneer, the generated ABI headers under
//!   `arch/x86/veneer/abi/veneer/`). When the key changes it is re-synced
//!   from `pristine/` with mtimes kept, and a file the series or the headers
//!   produce is rewritten only if its bytes change, so make rebuilds just
//!   what an edit of the series really changed;
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
    /// The series applied, with `veneer.config`: the guest kernel of Veneer.
    Veneer,
}

impl Flavour {
    /// The flavour an `xtask linux` argument names; none is Veneer's.
    pub fn from_arg(arg: Option<&str>) -> Result<Flavour> {
        match arg {
            None | Some("veneer") => Ok(Flavour::Veneer),
            Some("native") => Ok(Flavour::Native),
            Some(other) => Err(format!("no Linux flavour `{other}` (veneer, native)")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Flavour::Native => "native",
            Flavour::Veneer => "veneer",
        }
    }

    /// Fragments merged over tinyconfig, in order.
    fn fragments(self) -> Vec<PathBuf> {
        let dir = patches_dir();
        match self {
            Flavour::Native => vec![dir.join("base.config")],
            Flavour::Veneer => vec![dir.join("base.config"), dir.join("veneer.config")],
        }
    }

    /// Whether the series is applied.
    fn patched(self) -> bool {
        match self {
            Flavour::Native => false,
            Flavour::Veneer => true,
        }
    }
}

/// The generated C headers of the ABI, which the Veneer platform includes.
fn abi_headers_dir() -> PathBuf {
    artifacts::root().join("hypercall-abi/include/veneer")
}

/// Where the platform's Makefile finds them in the source tree.
const ABI_HEADERS_IN_TREE: &str = "arch/x86/veneer/abi/veneer";

/// The ABI headers, sorted by name.
fn abi_headers() -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(abi_headers_dir())
        .map_err(|e| format!("{}: {e}", abi_headers_dir().display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "h"))
        .collect();
    v.sort();
    Ok(v)
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
fn key(version: &str, flavour: Flavour, patches: &[PathBuf], headers: &[PathBuf]) -> Result<String> {
    let mut h = DefaultHasher::new();
    version.hash(&mut h);
    flavour.name().hash(&mut h);
    for f in patches.iter().chain(&flavour.fragments()).chain(headers) {
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

/// Files a patch creates, changes or deletes (its `+++` and `---` paths,
/// one leading component stripped as by `patch -p1`).
fn patched_files(patch: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(patch).map_err(|e| format!("{}: {e}", patch.display()))?;
    let mut files: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.strip_prefix("+++ ").or_else(|| l.strip_prefix("--- ")))
        .map(|l| l.split('\t').next().unwrap_or("").trim())
        .filter(|p| *p != "/dev/null")
        .filter_map(|p| p.split_once('/').map(|(_, rest)| PathBuf::from(rest)))
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

/// Brings `src` to `pristine` + series (+ headers) while keeping the mtime of
/// every file whose bytes do not change: the series is applied to a scratch
/// copy of the files it touches, and only differing results are written.
fn sync_source(pristine: &Path, src: &Path, scratch: &Path, patches: &[PathBuf], headers: &[PathBuf], version: &str) -> Result<()> {
    let mut touched = Vec::new();
    for p in patches {
        touched.extend(patched_files(p)?);
    }
    touched.sort();
    touched.dedup();
    // Everything else: rsync keeps mtimes, and leaves the touched files alone.
    let mut rsync = Command::new("rsync");
    rsync.args(["-a", "--delete"]);
    for f in &touched {
        rsync.arg(format!("--exclude=/{}", f.display()));
        // A directory the series creates is not deleted either.
        for dir in f.ancestors().skip(1).filter(|d| !d.as_os_str().is_empty() && !pristine.join(d).exists()) {
            rsync.arg(format!("--exclude=/{}/", dir.display()));
        }
    }
    rsync.arg(format!("--exclude=/{ABI_HEADERS_IN_TREE}/"));
    run(rsync.arg(format!("{}/", pristine.display())).arg(src), "syncing the source tree")?;

    let _ = std::fs::remove_dir_all(scratch);
    for f in &touched {
        if pristine.join(f).exists() {
            std::fs::create_dir_all(scratch.join(f).parent().expect("a file")).map_err(|e| e.to_string())?;
            std::fs::copy(pristine.join(f), scratch.join(f)).map_err(|e| e.to_string())?;
        }
    }
    std::fs::create_dir_all(scratch).map_err(|e| e.to_string())?;
    apply_series(scratch, patches, version)?;
    for f in &touched {
        update_if_changed(&scratch.join(f), &src.join(f))?;
    }
    let in_tree = src.join(ABI_HEADERS_IN_TREE);
    if in_tree.exists() {
        for e in std::fs::read_dir(&in_tree).map_err(|e| e.to_string())?.filter_map(|e| e.ok()) {
            if !headers.iter().any(|h| h.file_name() == Some(&e.file_name())) {
                std::fs::remove_file(e.path()).map_err(|e| e.to_string())?;
            }
        }
    }
    for h in headers {
        update_if_changed(h, &in_tree.join(h.file_name().expect("a file")))?;
    }
    Ok(())
}

/// Makes `to` hold the bytes of `from` (or not exist, if `from` does not),
/// writing only when they differ.
fn update_if_changed(from: &Path, to: &Path) -> Result<()> {
    match std::fs::read(from) {
        Ok(want) => {
            if std::fs::read(to).ok().as_deref() != Some(&want[..]) {
                std::fs::create_dir_all(to.parent().expect("a file")).map_err(|e| e.to_string())?;
                std::fs::write(to, want).map_err(|e| format!("{}: {e}", to.display()))?;
            }
        }
        Err(_) => {
            let _ = std::fs::remove_file(to);
        }
    }
    Ok(())
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
    let headers = if flavour.patched() { abi_headers()? } else { Vec::new() };
    let key = key(&version, flavour, &patches, &headers)?;
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
    sync_source(&pristine, &src, &top.join(flavour.name()).join("scratch"), &patches, &headers, &version)?;

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
    // At most two jobs: the machines this runs on are shared.
    let jobs = format!("-j{}", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(2));
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

/// An initramfs of Debian's busybox-static, every applet linked in `/bin`,
/// with `init` as `/init` and `files` (path, bytes, mode) added.
pub fn initramfs(name: &str, init: &str, files: &[(&str, Vec<u8>, u32)]) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dir = artifacts::out_dir().join("initramfs").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    for d in ["bin", "dev", "etc", "proc", "sys", "tmp"] {
        std::fs::create_dir_all(dir.join(d)).map_err(|e| e.to_string())?;
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).map_err(|e| format!("/bin/busybox (busybox-static): {e}"))?;
    let list = Command::new("/bin/busybox").arg("--list").output().map_err(|e| format!("busybox --list: {e}"))?;
    for applet in String::from_utf8_lossy(&list.stdout).lines().filter(|a| !a.is_empty() && *a != "busybox") {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).map_err(|e| e.to_string())?;
    }
    let mut all = vec![("init", init.as_bytes().to_vec(), 0o755)];
    all.extend(files.iter().cloned());
    for (path, bytes, mode) in &all {
        let at = dir.join(path);
        std::fs::write(&at, bytes).map_err(|e| format!("{}: {e}", at.display()))?;
        std::fs::set_permissions(&at, std::fs::Permissions::from_mode(*mode)).map_err(|e| e.to_string())?;
    }
    let out = artifacts::out_dir().join(format!("{name}.initramfs.cpio"));
    let script = format!("cd {} && find . | cpio --quiet -o -H newc --owner=0:0 > {}", dir.display(), out.display());
    run(Command::new("sh").args(["-c", &script]), "packing the initramfs")?;
    Ok(out)
}
