//! A tiny runtime for Veneer guests: the entry point, typed hypercalls, a
//! console, a panic handler that crashes the domain, and the verdict line of
//! the conformance suite.
//!
//! A guest binary says `veneer_guest::entry!(main);` and defines
//! `fn main(start: &StartInfo) -> !`. A conformance test also declares what
//! the runner should expect with [`expect!`].
#![no_std]

pub mod blk;
pub mod console;
pub mod device;
pub mod event;
pub mod grant;
pub mod hypercall;
pub mod mmu;
pub mod net;
pub mod note;
pub mod print;
pub mod rand;
pub mod ring;
pub mod smp;
pub mod trap;
pub mod vectors;
pub mod whole;

pub use hypercall_abi;
pub use hypercall_abi::start_info::StartInfo;
use hypercall_abi::start_info::{StartInfoExt, START_INFO_EXT_OFFSET};

/// A static a guest takes, once, as `&'static mut`: room for state too big
/// for the boot stack (four pages), in the image's zeroed data instead.
pub struct StaticCell<T> {
    taken: core::sync::atomic::AtomicBool,
    value: core::cell::UnsafeCell<T>,
}

// SAFETY: the value is reached only through `take`, which hands out the
// one `&mut` there will ever be.
unsafe impl<T> Sync for StaticCell<T> {}

impl<T> StaticCell<T> {
    pub const fn new(value: T) -> StaticCell<T> {
        StaticCell { taken: core::sync::atomic::AtomicBool::new(false), value: core::cell::UnsafeCell::new(value) }
    }

    /// The value; panics if it was taken before.
    #[allow(clippy::mut_from_ref)] // unique: the flag lets this succeed once
    pub fn take(&'static self) -> &'static mut T {
        assert!(!self.taken.swap(true, core::sync::atomic::Ordering::SeqCst), "a StaticCell is taken once");
        // SAFETY: the swap above succeeds once, so this is the only
        // reference to the value, for the program's life.
        unsafe { &mut *self.value.get() }
    }
}

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

/// Gives this guest split devices: `domains.conf` `device` lines (without
/// `device = `), separated by `;`, as in `b"block blkback; console
/// hypervisor"`. Backends are named by the binary names of the test's
/// domains. Disk images named `pattern-<size>.img` (`512K`, `1M`) are made
/// by the runner (`rand::disk_byte`, generation 0, repeating every 512 KiB).
#[macro_export]
macro_rules! devices {
    ($lines:literal) => {
        #[used]
        #[link_section = ".veneer.devices"]
        static VENEER_DEVICES: [u8; $lines.len()] = *$lines;
    };
}

/// Gives this guest a ramdisk (its boot module): a `pattern-<size>.img`
/// the runner makes.
#[macro_export]
macro_rules! ramdisk {
    ($name:literal) => {
        #[used]
        #[link_section = ".veneer.ramdisk"]
        static VENEER_RAMDISK: [u8; $name.len()] = *$name;
    };
}

/// Lines the runner must find in the log besides the verdict (separated
/// by `\n`): output that reached the console some other way than this
/// guest's own `console_write`.
#[macro_export]
macro_rules! expect_lines {
    ($lines:literal) => {
        #[used]
        #[link_section = ".veneer.lines"]
        static VENEER_LINES: [u8; $lines.len()] = *$lines;
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
