//! Writes `include/veneer/*.h` and refreshes the generated tables of
//! `SPEC.md`. Usage: `cargo run -p veneer-abi-cgen` (from anywhere in the
//! workspace).

use std::fs;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = veneer_abi_cgen::abi_dir();
    let include = dir.join("include").join("veneer");
    if let Err(e) = fs::create_dir_all(&include) {
        eprintln!("cannot create {}: {e}", include.display());
        return ExitCode::FAILURE;
    }
    let wanted: Vec<String> = veneer_abi_cgen::headers().into_iter().map(|(n, _)| n).collect();
    // Remove headers of modules that no longer exist, so the directory is
    // exactly what the catalog says.
    if let Ok(entries) = fs::read_dir(&include) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".h") && !wanted.contains(&name) {
                let _ = fs::remove_file(e.path());
                println!("removed include/veneer/{name}");
            }
        }
    }
    for (name, text) in veneer_abi_cgen::headers() {
        let path = include.join(&name);
        if fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            if let Err(e) = fs::write(&path, text) {
                eprintln!("cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            println!("wrote include/veneer/{name}");
        }
    }
    let spec_path = dir.join("SPEC.md");
    let spec = match fs::read_to_string(&spec_path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot read {}: {e}", spec_path.display());
            return ExitCode::FAILURE;
        }
    };
    match veneer_abi_cgen::update_spec(&spec) {
        Ok((new, _)) => {
            if new != spec {
                if let Err(e) = fs::write(&spec_path, new) {
                    eprintln!("cannot write {}: {e}", spec_path.display());
                    return ExitCode::FAILURE;
                }
                println!("refreshed the tables of SPEC.md");
            }
        }
        Err(e) => {
            eprintln!("SPEC.md: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
