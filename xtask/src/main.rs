//! `cargo xtask` — the project's front door behind the root Makefile.
//!
//! ```text
//! xtask build                 build the hypervisor and every guest
//! xtask run [GUEST]           boot GUEST (default: hello; `linux`: Linux to a shell) on Veneer, serial on the terminal
//! xtask test                  host unit tests, then the conformance suite
//! xtask conformance [FILTER]  the booted conformance guests alone
//! xtask bench                 every workload on Veneer and natively, interleaved (7 runs),
//!                             then the Linux table; fails when a Linux macro workload
//!                             costs 5% or more on Veneer
//! xtask bench-quick           the same with 3 runs and shorter Linux workloads
//! xtask bench-linux [quick]   the Linux table alone
//! xtask linux [veneer|native]  build a Linux kernel (cached outside the clone; default veneer)
//! xtask linux-native          the Linux system test on the native kernel: the control
//! xtask linux-test [FILTER]   the Linux system tests alone (also part of `test`)
//! xtask linux-boot [INIT] [S] boot Linux on Veneer with INIT as /init, print the log
//! xtask qemu-command GUEST    print the QEMU command line `run` uses
//! ```

mod artifacts;
mod bench;
mod bundle;
mod conformance;
mod linux;
mod linux_bench;
mod linux_guest;
mod qemu;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("build") => artifacts::build_all().map(|_| ExitCode::SUCCESS),
        Some("run") => run(args.get(1).map(String::as_str).unwrap_or("hello")),
        Some("test") => test(),
        Some("conformance") => conformance::run(args.get(1).map(String::as_str)).map(verdict),
        Some("linux-test") => linux_guest::tests(args.get(1).map(String::as_str)).map(verdict),
        Some("bench") => bench::run(7).and_then(|_| linux_bench(linux_bench::Mode::Full)),
        Some("bench-quick") => bench::run(3).and_then(|_| linux_bench(linux_bench::Mode::Quick)),
        Some("bench-linux") if args.get(1).is_none() => linux_bench(linux_bench::Mode::Full),
        Some("bench-linux") if args.get(1).is_some_and(|a| a == "quick") => linux_bench(linux_bench::Mode::Quick),
        Some("linux") => linux::Flavour::from_arg(args.get(1).map(String::as_str)).and_then(linux::build).map(|p| {
            println!("{}", p.display());
            ExitCode::SUCCESS
        }),
        Some("linux-native") => linux_native(),
        Some("linux-boot") => {
            let secs = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(300);
            let init = match args.get(1) {
                Some(path) => std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}")),
                None => Ok("#!/bin/sh\nmount -t proc proc /proc\necho init: up\npoweroff -f\n".to_string()),
            };
            init.and_then(|init| linux_guest::boot(&init, std::time::Duration::from_secs(secs))).map(|s| {
                println!("xtask: linux-boot ended: {s:?}");
                ExitCode::SUCCESS
            })
        }
        Some("qemu-command") => qemu_command(args.get(1).map(String::as_str).unwrap_or("hello")),
        _ => {
            eprintln!("usage: xtask build | run [GUEST|linux] | test | conformance [FILTER] | linux [veneer|native] | linux-test [FILTER] | linux-native | linux-boot [INIT] [SECS] | bench | bench-quick | bench-linux [quick] | qemu-command [GUEST]");
            return ExitCode::from(2);
        }
    };
    result.unwrap_or_else(|e| {
        eprintln!("xtask: {e}");
        ExitCode::FAILURE
    })
}

type Result<T> = std::result::Result<T, String>;

fn verdict(t: conformance::Tally) -> ExitCode {
    println!("{} passed, {} failed", t.passed, t.failed);
    if t.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run(guest: &str) -> Result<ExitCode> {
    let built = artifacts::build_all()?;
    let status = if guest == "linux" {
        linux_guest::run_interactive(&built)?
    } else {
        let bundle = bundle::single(&built, guest, "16M", "demo")?;
        qemu::Qemu::new(&built.hypervisor, &bundle).interactive().run_interactive()?
    };
    Ok(match qemu::RunStatus::from_exit(status) {
        Some(qemu::RunStatus::Clean) => ExitCode::SUCCESS,
        other => {
            eprintln!("xtask: run ended: {}", qemu::describe(status, other));
            ExitCode::FAILURE
        }
    })
}

fn qemu_command(guest: &str) -> Result<ExitCode> {
    let built = artifacts::built_paths();
    let bundle = bundle::path_for(guest);
    println!("{}", qemu::Qemu::new(&built.hypervisor, &bundle).interactive().command_line());
    Ok(ExitCode::SUCCESS)
}

/// The Linux table; fails, naming them, when macro workloads reach the gate.
fn linux_bench(mode: linux_bench::Mode) -> Result<ExitCode> {
    let runs = match mode {
        linux_bench::Mode::Full => 7,
        linux_bench::Mode::Quick => 3,
    };
    let rows = linux_bench::run(mode, runs)?;
    let over = linux_bench::gate(&rows);
    if over.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for why in over {
        println!("FAIL (the {:.0}% gate on Linux macro workloads): {why}", linux_bench::GATE * 100.0);
    }
    Ok(ExitCode::FAILURE)
}

/// The Linux system test on the native kernel: the control.
fn linux_native() -> Result<ExitCode> {
    match linux_guest::native() {
        Ok(()) => {
            println!("PASS linux system test, native");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("FAIL linux system test, native: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn test() -> Result<ExitCode> {
    let host = artifacts::host_tests()?;
    let t = conformance::run(None)?;
    let l = linux_guest::tests(None)?;
    let tally = conformance::Tally { passed: t.passed + host.passed + l.passed, failed: t.failed + host.failed + l.failed };
    Ok(verdict(tally))
}
