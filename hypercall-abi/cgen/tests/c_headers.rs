//! The checked-in C headers compile cleanly as C and C++ and describe the
//! same layout as the Rust crate: a generated C file asserts every size,
//! offset and constant with the Rust values.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use veneer_abi_cgen::{abi_dir, c_layout_check, headers};

fn work_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    fs::create_dir_all(&d).unwrap();
    d
}

/// Compiles `source` with `compiler` and `flags` against the checked-in
/// include directory; panics with the compiler's output on failure.
fn compile(compiler: &str, flags: &[&str], source: &Path) {
    let include = abi_dir().join("include");
    let out = Command::new(compiler)
        .args(flags)
        .arg("-I")
        .arg(&include)
        .arg("-c")
        .arg(source)
        .arg("-o")
        .arg(source.with_extension(format!("{}.o", flags.join("").replace(['-', '=', '+'], ""))))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {compiler} (install gcc/g++): {e}"));
    assert!(
        out.status.success(),
        "{compiler} {flags:?} rejected {}:\n{}{}",
        source.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const DIALECTS: &[(&str, &[&str])] = &[
    ("gcc", &["-std=gnu11", "-Wall", "-Wextra", "-Werror"]),
    ("gcc", &["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror"]),
    ("gcc", &["-std=c11", "-pedantic", "-Wall", "-Wextra", "-Werror"]),
    ("g++", &["-x", "c++", "-std=c++11", "-pedantic", "-Wall", "-Wextra", "-Werror"]),
];

#[test]
fn layout_check_compiles_in_every_dialect() {
    let dir = work_dir("c-layout");
    let src = dir.join("layout_check.c");
    fs::write(&src, c_layout_check()).unwrap();
    for (cc, flags) in DIALECTS {
        compile(cc, flags, &src);
    }
}

#[test]
fn every_header_compiles_on_its_own() {
    // Each header includes what it needs: a file that includes only it
    // compiles.
    let dir = work_dir("c-alone");
    for (name, _) in headers() {
        let src = dir.join(format!("alone_{}.c", name.trim_end_matches(".h")));
        fs::write(&src, format!("#include \"veneer/{name}\"\n#include \"veneer/{name}\"\nint veneer_alone;\n")).unwrap();
        compile("gcc", &["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror"], &src);
    }
}

#[test]
fn a_wrong_layout_is_caught() {
    // The check must be able to fail: a C file asserting a wrong offset
    // against the same headers is rejected.
    let dir = work_dir("c-negative");
    let src = dir.join("wrong.c");
    fs::write(
        &src,
        "#include \"veneer/veneer.h\"\nVENEER_STATIC_ASSERT(offsetof(struct veneer_start_info, cmdline) == 120, \"x\");\n",
    )
    .unwrap();
    let out = Command::new("gcc")
        .args(["-std=gnu11", "-Wall", "-Werror", "-I"])
        .arg(abi_dir().join("include"))
        .arg("-c")
        .arg(&src)
        .arg("-o")
        .arg(dir.join("wrong.o"))
        .output()
        .expect("gcc");
    assert!(!out.status.success(), "gcc accepted a false layout assertion");
}
