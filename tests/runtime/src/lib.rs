//! A tiny runtime for Veneer guests: the entry point, typed hypercalls, a
//! console, a panic handler that crashes the domain, and the verdict line of
//! the conformance suite.
//!
//! A guest binary says `veneer_guest::entry!(main);` and defines
//! `fn main(start: &StartInfo) -> !`. A conformance test also declares what
//! the runner should expect with [`expect!`].
#![no_std]

pub mod event;
pub mod hypercall;
pub mod mmu;
pub mod note;
pub mod print;
pub mod smp;
pub mod trap;
pub mod vectors;
pub mod whole;

pub use hypercall_abi;
pub use hypercall_abi::start_info::StartInfo;
use hypercall_abi::start_info::{StartInfoExt, START_INFO_EXT_OFFSET};

/// The second part of the start-info page.
pub fn start_info_ext(start: &StartInfo) -> &StartInfoExt {
    // SAFETY: the start-info page holds a StartInfoExt at this offset
    // (section 7.2 of the ABI), inside the same mapped page, 8-byte aligned.
    unsafe { &*((start as *const StartInfo as *const u8).add(START_INFO_EXT_OFFSET) as *const StartInfoExt) }
}

/// Where `guest.ld` links every guest: pseudo-physical frame 0.
pub const IMAGE_BASE: u64 = 0xffff_ffff_8000_0000;

/// Ends the test with the one verdict line the runner looks for, then
/// powers off.
pub fn success() -> ! {
    println!("Test result: SUCCESS");
    hypercall::poweroff(0)
}

/// Ends the test as failed, saying why.
pub fn failure(why: core::fmt::Arguments<'_>) -> ! {
    println!("Test result: FAILURE: {}", why);
    hypercall::crash(1)
}

/// Fails the test unless `cond` holds.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            $crate::failure(format_args!($($why)+));
        }
    };
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("Test result: FAILURE: panic: {}", info);
    hypercall::crash(2)
}

/// Defines the entry point: aligns the boot stack and calls `$main` with the
/// start-info page. `abi = (major, minor)` overrides the ABI version the
/// guest note claims (for tests of the builder's refusal).
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        $crate::entry!($main, abi = ($crate::hypercall_abi::version::ABI_MAJOR, $crate::hypercall_abi::version::ABI_MINOR));
    };
    ($main:path, abi = ($major:expr, $minor:expr)) => {
        #[used]
        #[link_section = ".note.veneer"]
        static VENEER_GUEST_NOTE: $crate::note::GuestNoteRecord = $crate::note::GuestNoteRecord::new($major, $minor, 0);

        core::arch::global_asm!(
            ".section .text.start, \"ax\"",
            ".global _start",
            "_start:",
            "and rsp, -16",
            "call {main}",
            "ud2",
            main = sym __veneer_main,
        );

        extern "C" fn __veneer_main(start: &'static $crate::StartInfo) -> ! {
            $main(start)
        }
    };
}

/// Names other guest binaries the conformance runner boots beside this
/// one, as domains 2, 3, ... in order (space-separated): the other ends of
/// a test between domains. Each must power off cleanly.
#[macro_export]
macro_rules! peers {
    ($names:literal) => {
        #[used]
        #[link_section = ".veneer.peers"]
        static VENEER_PEERS: [u8; $names.len()] = *$names;
    };
}

/// Asks the conformance runner for a domain with this many vCPUs (a
/// decimal string, `b"2"`); the default is one.
#[macro_export]
macro_rules! vcpus {
    ($n:literal) => {
        #[used]
        #[link_section = ".veneer.vcpus"]
        static VENEER_VCPUS: [u8; $n.len()] = *$n;
    };
}

/// Asks the conformance runner for a machine with this many CPUs (a
/// decimal string); the default is `qemu::DEFAULT_CPUS` (2). One CPU makes
/// the domains of a test share it.
#[macro_export]
macro_rules! host_cpus {
    ($n:literal) => {
        #[used]
        #[link_section = ".veneer.host_cpus"]
        static VENEER_HOST_CPUS: [u8; $n.len()] = *$n;
    };
}

/// Tells the conformance runner how many `whole` lines (`whole <c> ` and
/// then a run of `<c>`) the run prints in all, every domain included; it
/// checks each came out intact.
#[macro_export]
macro_rules! whole_lines {
    ($n:literal) => {
        #[used]
        #[link_section = ".veneer.whole_lines"]
        static VENEER_WHOLE_LINES: [u8; $n.len()] = *$n;
    };
}

/// Declares what the conformance runner expects of this guest:
/// `"pass"`, `"stopped #GP"`, `"ended crashed (code 7)"`,
/// `"refused <reason text>"`. See `xtask/src/conformance.rs`.
#[macro_export]
macro_rules! expect {
    ($what:literal) => {
        #[used]
        #[link_section = ".veneer.expect"]
        static VENEER_EXPECT: [u8; $what.len()] = *$what;
    };
}
