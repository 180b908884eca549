//! The conformance runner: one boot of the hypervisor per test.
//!
//! A test is a guest in `tests/conformance/src/bin/` that declares its
//! expectation with `veneer_guest::expect!`, or a deliberately broken image
//! made here from the `hello` guest. The expectation forms:
//!
//! - `pass`: the guest prints `Test result: SUCCESS`, powers off with 0, and
//!   the hypervisor reports a clean run (QEMU status 33);
//! - `stopped <fault>`: the hypervisor stops the domain for `<fault>`;
//! - `ended <how>`: the domain ends as `<how>` (e.g. `crashed (code 7)`);
//! - `refused <reason>`: the builder refuses the domain for `<reason>`;
//! - hypervisor self-tests (made here, booted with a `veneer.selftest=`
//!   command line): the hypervisor's own fault is reported with every
//!   register and QEMU stops with "hypervisor failed" (status 35).
//!
//! A guest may also name peers (`veneer_guest::peers!`): helper guests
//! booted beside it as domains 2, 3, ..., the other ends of a test between
//! domains; every peer must power off cleanly too. Any of them may ask for
//! split devices (`devices!`, `device` lines of `domains.conf`) and a
//! ramdisk (`ramdisk!`); disk images named `pattern-<size>.img` are made
//! here (`bundle::disk_image`). A guest may list lines the log must hold
//! (`expect_lines!`), and its verdict may reach the log through a console
//! ring the hypervisor serves (prefixed `(dN) `).
//!
//! In the last three the bundle carries a further domain, `witness` (the
//! `hello` guest), which must still run and power off cleanly: the
//! hypervisor and other domains go on. QEMU must then report "some domain
//! failed" (status 37).
//!
//! Every run must end with the hypervisor's `frames: all N free again`
//! line: every domain's teardown returned every frame it took. In every
//! case a missing line, a timeout, a hypervisor failure or a reset is a
//! failure. Every line of the serial log must be whole: the hypervisor's
//! begin `(veneer) `, a domain's `(dN) ` (SPEC 11.2), so output of
//! different CPUs and domains never mixed within a line. Serial logs are
//! kept in `target/veneer/conformance/`.
//!
//! The machine has `qemu::DEFAULT_CPUS` CPUs; a guest may ask for another
//! number (`veneer_guest::host_cpus!`), for a test of domains sharing one
//! CPU. A guest may also declare how many `whole` lines its run prints
//! (`veneer_guest::whole_lines!`): each must read `whole <c> ` and then
//! `WHOLE_LEN` copies of the character `<c>`, which its writer printed a
//! byte at a time.

use std::path::Path;

use elf::endian::AnyEndian;
use elf::ElfBytes;

use crate::artifacts::{self, Built};
use crate::bundle::{self, devices_of, section_text, DomainEntry};
use crate::qemu::{self, describe, Qemu, RunStatus};
use crate::Result;

#[derive(Clone, Copy, Debug, Default)]
pub struct Tally {
    pub passed: u32,
    pub failed: u32,
}

impl Tally {
    /// Counts and prints the outcome of the test `name` (its log at `log`).
    pub fn record(&mut self, name: &str, outcome: Result<()>, log: &Path) {
        match outcome {
            Ok(()) => {
                self.passed += 1;
                println!("PASS {name}");
            }
            Err(why) => {
                self.failed += 1;
                println!("FAIL {name}: {why} (log: {})", log.display());
            }
        }
    }
}

const WITNESS: &str = "witness";
const MEMORY: &str = "16M";
/// Characters after `whole <c> ` in a whole line.
const WHOLE_LEN: usize = 48;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    Pass,
    /// The text after `d1 "<name>": ` in the hypervisor's end line.
    Ended(String),
    Refused(String),
    /// Lines the hypervisor's fatal report must contain.
    HypervisorFatal(Vec<String>),
}

impl Expect {
    fn parse(s: &str) -> Result<Expect> {
        let (kind, rest) = s.split_once(' ').unwrap_or((s, ""));
        match kind {
            "pass" if rest.is_empty() => Ok(Expect::Pass),
            "stopped" => Ok(Expect::Ended(format!("stopped: {rest}"))),
            "ended" => Ok(Expect::Ended(rest.into())),
            "refused" => Ok(Expect::Refused(rest.into())),
            _ => Err(format!("unknown expectation `{s}`")),
        }
    }
}

/// A helper guest booted beside a test.
struct Peer {
    name: String,
    image: Vec<u8>,
    devices: Vec<String>,
    ramdisk: Option<String>,
}

struct Case {
    name: String,
    /// Helper guests booted beside it.
    peers: Vec<Peer>,
    /// vCPUs of the domain under test.
    vcpus: u32,
    /// Its `device` lines and ramdisk.
    devices: Vec<String>,
    ramdisk: Option<String>,
    /// Lines the log must hold.
    lines: Vec<String>,
    /// CPUs of the machine.
    host_cpus: u32,
    /// `whole` lines the run must print.
    whole_lines: Option<usize>,
    /// The hypervisor's command line.
    hypervisor_cmdline: Option<&'static str>,
    kernel: Option<Vec<u8>>,
    kernel_name: Option<String>,
    expect: Expect,
}

impl Case {
    /// A case of one domain running `kernel`, on the default machine.
    fn new(name: &str, kernel: Option<Vec<u8>>, expect: Expect) -> Case {
        Case {
            name: name.into(),
            peers: Vec::new(),
            vcpus: 1,
            devices: Vec::new(),
            ramdisk: None,
            lines: Vec::new(),
            host_cpus: qemu::DEFAULT_CPUS,
            whole_lines: None,
            hypervisor_cmdline: None,
            kernel,
            kernel_name: None,
            expect,
        }
    }
}

fn guest_cases(built: &Built) -> Result<Vec<Case>> {
    let dir = artifacts::root().join("tests/conformance/src/bin");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".rs").map(String::from))
        .collect();
    names.sort();
    let mut cases = Vec::new();
    for name in names {
        let bytes = bundle::read_guest(built, &name)?;
        if let Some(e) = section_text(&bytes, ".veneer.expect")? {
            let mut peers = Vec::new();
            for peer in section_text(&bytes, ".veneer.peers")?.unwrap_or_default().split_whitespace() {
                let image = bundle::read_guest(built, peer)?;
                let (devices, ramdisk) = (devices_of(&image)?, section_text(&image, ".veneer.ramdisk")?);
                peers.push(Peer { name: peer.to_string(), image, devices, ramdisk });
            }
            let number = |section: &str| -> Result<Option<u32>> {
                match section_text(&bytes, section)? {
                    Some(n) => n.trim().parse().map(Some).map_err(|_| format!("{name}: {section} `{n}` is not a number")),
                    None => Ok(None),
                }
            };
            let devices = devices_of(&bytes)?;
            let ramdisk = section_text(&bytes, ".veneer.ramdisk")?;
            let lines = section_text(&bytes, ".veneer.lines")?.unwrap_or_default().lines().map(String::from).collect();
            let vcpus = number(".veneer.vcpus")?.unwrap_or(1);
            let host_cpus = number(".veneer.host_cpus")?.unwrap_or(qemu::DEFAULT_CPUS);
            let whole_lines = number(".veneer.whole_lines")?.map(|n| n as usize);
            cases.push(Case {
                expect: Expect::parse(&e)?,
                name,
                peers,
                vcpus,
                devices,
                ramdisk,
                lines,
                host_cpus,
                whole_lines,
                hypervisor_cmdline: None,
                kernel: Some(bytes),
                kernel_name: None,
            });
        }
    }
    Ok(cases)
}

/// Offsets of the ELF64 program headers, and a copy of the bytes to patch.
fn patch_first_load_vaddr(image: &[u8], vaddr: u64) -> Result<Vec<u8>> {
    let file = ElfBytes::<AnyEndian>::minimal_parse(image).map_err(|e| e.to_string())?;
    let (phoff, phentsize) = (file.ehdr.e_phoff as usize, file.ehdr.e_phentsize as usize);
    let segments = file.segments().ok_or("no program headers")?;
    let index = segments.iter().position(|p| p.p_type == elf::abi::PT_LOAD).ok_or("no PT_LOAD")?;
    let mut out = image.to_vec();
    let at = phoff + index * phentsize;
    out[at + 16..at + 24].copy_from_slice(&vaddr.to_le_bytes());
    out[at + 24..at + 32].copy_from_slice(&vaddr.to_le_bytes());
    Ok(out)
}

fn replace_bytes(image: &[u8], from: &[u8], to: &[u8]) -> Result<Vec<u8>> {
    let at = image.windows(from.len()).position(|w| w == from).ok_or("pattern not in image")?;
    let mut out = image.to_vec();
    out[at..at + to.len()].copy_from_slice(to);
    Ok(out)
}

/// Broken images made from the `hello` guest: each is refused by the
/// builder with the reason given, and the witness still runs.
fn broken_image_cases(built: &Built) -> Result<Vec<Case>> {
    let hello = bundle::read_guest(built, "hello")?;
    let case = |name: &str, kernel: Vec<u8>, reason: &str| Case::new(name, Some(kernel), Expect::Refused(reason.into()));
    Ok(vec![
        case("image_malformed_truncated", hello[..100].to_vec(), "malformed ELF"),
        case("image_malformed_not_elf", b"#!/bin/sh\necho not a kernel\n".repeat(8), "malformed ELF: bad magic"),
        case(
            "image_in_hypervisor_range",
            patch_first_load_vaddr(&hello, 0xffff_8000_0010_0000)?,
            "segment 0xffff800000100000",
        ),
        case(
            "image_in_hypervisor_image_slot",
            patch_first_load_vaddr(&hello, 0xffff_8780_0020_0000)?,
            "overlaps the hypervisor's range",
        ),
        case("image_without_guest_note", replace_bytes(&hello, b"Veneer\0", b"Venees\0")?, "no Veneer guest note"),
        Case {
            kernel_name: Some("missing.elf".into()),
            ..Case::new("bundle_missing_kernel", None, Expect::Refused("kernel `missing.elf` is not in the boot bundle".into()))
        },
        // A page fault in hypervisor context is reported with vector, error
        // code, RIP, CR2 and the registers, and the machine stops with the
        // hypervisor-failure status.
        Case {
            hypervisor_cmdline: Some("veneer.selftest=page-fault"),
            ..Case::new(
                "hypervisor_reports_its_own_fault",
                Some(hello.clone()),
                Expect::HypervisorFatal(
                    ["FATAL: #PF (vector 14) in hypervisor, error code 0x0", "cr2 0xffff840000000000", "rip 0xffff8780", "rax ", "r15 "]
                        .map(String::from)
                        .to_vec(),
                ),
            )
        },
        // A hypervisor stack that overflows runs into its guard page; the
        // double fault that follows (on the CPU's own IST stack) is reported
        // as an overflow of that stack.
        Case {
            hypervisor_cmdline: Some("veneer.selftest=stack-overflow"),
            ..Case::new(
                "hypervisor_stack_overflow_hits_guard",
                Some(hello),
                Expect::HypervisorFatal(["FATAL: #DF (vector 8) in hypervisor", "stack overflow: CPU 1's main stack"].map(String::from).to_vec()),
            )
        },
    ])
}

/// Boots one case and judges it; `Err` carries the reason it failed.
fn run_case(built: &Built, case: &Case, log: &Path) -> Result<()> {
    let mut domain = DomainEntry::new(&case.name, Vec::new(), MEMORY);
    domain.kernel = case.kernel.clone();
    domain.vcpus = case.vcpus;
    domain.devices = case.devices.clone();
    domain.ramdisk = case.ramdisk.clone();
    if let Some(k) = &case.kernel_name {
        domain.kernel_name = k.clone();
    }
    let mut domains = vec![domain];
    for p in &case.peers {
        let mut d = DomainEntry::new(&p.name, p.image.clone(), MEMORY);
        d.devices = p.devices.clone();
        d.ramdisk = p.ramdisk.clone();
        domains.push(d);
    }
    let witness_id = format!("d{}", domains.len() + 1);
    if case.expect != Expect::Pass {
        domains.push(DomainEntry::new(WITNESS, bundle::read_guest(built, "hello")?, MEMORY));
    }
    let bundle = bundle::write(&case.name, &domains)?;
    let _ = std::fs::remove_file(log);
    let status = Qemu::new(&built.hypervisor, &bundle)
        .cpus(case.host_cpus)
        .serial_to(log)
        .append(case.hypervisor_cmdline)
        .run_with_timeout(qemu::boot_timeout())?;
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let Some(status) = status else {
        return Err(format!("timed out after {:?}", qemu::boot_timeout()));
    };
    let run = RunStatus::from_exit(status);
    if let Expect::HypervisorFatal(wanted) = &case.expect {
        for w in wanted {
            if !text.lines().any(|l| l.contains(w.as_str())) {
                return Err(format!("the fatal report lacks `{w}`"));
            }
        }
        if run != Some(RunStatus::HypervisorFailed) {
            return Err(format!("run ended {}, expected HypervisorFailed", describe(status, run)));
        }
        return Ok(());
    }
    if let Some(fatal) = text.lines().find(|l| l.contains("FATAL")) {
        return Err(format!("hypervisor failed: {fatal}"));
    }
    if let Some(failure) = text.lines().find(|l| l.contains("Test result: FAILURE")) {
        return Err(failure.trim().into());
    }
    if let Some(broken) = text.lines().find(|l| !is_whole(l)) {
        return Err(format!("a line of mixed or unprefixed output: `{broken}`"));
    }
    if let Some(want) = case.whole_lines {
        check_whole_lines(&text, want)?;
    }
    if !text.lines().any(|l| l.starts_with("(veneer) frames: all ") && l.contains(" free again")) {
        return Err("no `frames: all N free again` line: teardown did not return every frame".into());
    }
    let line_for = |dom: &str, name: &str| {
        let prefix = format!("(veneer) {dom} \"{name}\": ");
        text.lines().filter_map(|l| l.trim_end().strip_prefix(&prefix)).filter(|l| !l.starts_with("starting") && !l.starts_with("built")).next_back().map(String::from)
    };
    let end = line_for("d1", &case.name).ok_or("no line from the hypervisor on how the domain ended")?;
    for line in &case.lines {
        if !text.lines().any(|l| l.trim_end() == line) {
            return Err(format!("the log lacks the line `{line}`"));
        }
    }
    for (i, name) in case.peers.iter().map(|p| &p.name).enumerate() {
        match line_for(&format!("d{}", i + 2), name) {
            Some(e) if e == "powered off (code 0)" => {}
            Some(e) => return Err(format!("peer {name} ended: {e}")),
            None => return Err(format!("peer {name} never ended")),
        }
    }
    match &case.expect {
        Expect::Pass => {
            if !text.lines().any(|l| l.trim_end() == "(d1) Test result: SUCCESS") {
                return Err("no `(d1) Test result: SUCCESS` line".into());
            }
            if end != "powered off (code 0)" {
                return Err(format!("domain ended: {end}"));
            }
            if run != Some(RunStatus::Clean) {
                return Err(format!("run ended {}, expected Clean", describe(status, run)));
            }
            return Ok(());
        }
        Expect::Ended(want) => {
            if !end.starts_with(want.as_str()) {
                return Err(format!("domain ended `{end}`, expected `{want}`"));
            }
        }
        Expect::HypervisorFatal(_) => unreachable!("judged above"),
        Expect::Refused(want) => {
            let reason = end.strip_prefix("refused: ").ok_or_else(|| format!("domain was not refused: {end}"))?;
            if !reason.contains(want.as_str()) {
                return Err(format!("refused for `{reason}`, expected `{want}`"));
            }
        }
    }
    match line_for(&witness_id, WITNESS) {
        Some(w) if w == "powered off (code 0)" => {}
        Some(w) => return Err(format!("the witness domain ended: {w}")),
        None => return Err("the witness domain never ended: the hypervisor did not go on".into()),
    }
    if run != Some(RunStatus::DomainFailed) {
        return Err(format!("run ended {}, expected DomainFailed", describe(status, run)));
    }
    Ok(())
}

/// The text of a domain's console line (after `(dN) `), if it is one.
fn domain_text(line: &str) -> Option<&str> {
    let (id, text) = line.strip_prefix("(d")?.split_once(") ")?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then_some(text)
}

/// Whether a serial line is whole: the hypervisor's, or a domain's. The
/// hypervisor's fatal report starts with an empty line.
fn is_whole(line: &str) -> bool {
    let line = line.trim_end_matches('\r');
    line.is_empty() || line.starts_with("(veneer) ") || domain_text(line).is_some()
}

/// Checks the run printed `want` whole lines, each intact.
fn check_whole_lines(text: &str, want: usize) -> Result<()> {
    let mut seen = 0;
    for line in text.lines().filter_map(|l| domain_text(l.trim_end())) {
        let Some(rest) = line.strip_prefix("whole ") else { continue };
        let mut chars = rest.chars();
        let c = chars.next().ok_or("an empty whole line")?;
        let body: String = chars.collect();
        if body != format!(" {}", c.to_string().repeat(WHOLE_LEN)) {
            return Err(format!("a whole line came out broken: `{line}`"));
        }
        seen += 1;
    }
    if seen != want {
        return Err(format!("{seen} whole lines, expected {want}"));
    }
    Ok(())
}

pub fn run(filter: Option<&str>) -> Result<Tally> {
    let built = artifacts::build_all()?;
    let mut cases = guest_cases(&built)?;
    cases.extend(broken_image_cases(&built)?);
    cases.retain(|c| filter.is_none_or(|f| c.name.contains(f)));
    let logs = artifacts::out_dir().join("conformance");
    std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
    println!("conformance: {} tests ({})", cases.len(), if qemu::kvm_usable() { "KVM" } else { "TCG" });
    let mut tally = Tally::default();
    for case in &cases {
        let log = logs.join(format!("{}.log", case.name));
        tally.record(&case.name, run_case(&built, case, &log), &log);
    }
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_parse() {
        assert_eq!(Expect::parse("pass"), Ok(Expect::Pass));
        assert_eq!(Expect::parse("stopped #GP"), Ok(Expect::Ended("stopped: #GP".into())));
        assert_eq!(Expect::parse("ended crashed (code 7)"), Ok(Expect::Ended("crashed (code 7)".into())));
        assert_eq!(Expect::parse("refused no note"), Ok(Expect::Refused("no note".into())));
        assert!(Expect::parse("pass now").is_err());
        assert!(Expect::parse("maybe").is_err());
    }

    #[test]
    fn lines_must_be_whole() {
        assert!(is_whole("(veneer) d1 \"x\": built"));
        assert!(is_whole("(d12) Test result: SUCCESS\r"));
        assert!(is_whole(""));
        assert!(!is_whole("Test result: SUCCESS"), "no prefix");
        assert!(!is_whole("(d) x"));
        assert!(!is_whole("(dx) x"));
        let line = |c: char| format!("(d2) whole {c} {}\n", c.to_string().repeat(WHOLE_LEN));
        let good = format!("(veneer) x\n{}{}", line('a'), line('b'));
        assert_eq!(check_whole_lines(&good, 2), Ok(()));
        assert!(check_whole_lines(&good, 3).is_err(), "one missing");
        let mixed = good.replacen("aaaa", "abaa", 1);
        assert!(check_whole_lines(&mixed, 2).is_err(), "two writers in one line");
    }
}
