//! Linux on Veneer: the bundles that boot the Veneer kernel with a busybox
//! initramfs, for `xtask run linux` and the Linux system tests.

use std::path::PathBuf;
use std::time::Duration;

use crate::bundle::{self, DomainEntry};
use crate::linux::{self, Flavour};
use crate::qemu::{Qemu, RunStatus};
use crate::artifacts;
use crate::Result;

/// The guest's command line: its console is the hvc console over
/// `console_write`; the 8250 driver must not probe ports ring 3 cannot reach.
pub const CMDLINE: &str = "console=hvc0 8250.nr_uarts=0";
/// Memory of each Linux domain.
pub const MEMORY: &str = "64M";

/// A bundle of Linux domains named `names`, each with `init` as `/init`.
pub fn bundle(bundle_name: &str, names: &[&str], init: &str) -> Result<PathBuf> {
    let vmlinux = std::fs::read(linux::build(Flavour::Veneer)?).map_err(|e| e.to_string())?;
    let initrd = std::fs::read(linux::initramfs(bundle_name, init)?).map_err(|e| e.to_string())?;
    let domains: Vec<DomainEntry> = names
        .iter()
        .map(|n| {
            let mut d = DomainEntry::new(n, vmlinux.clone(), MEMORY);
            d.kernel_name = "vmlinux".into();
            d.cmdline = CMDLINE.into();
            d.ramdisk = Some(format!("{bundle_name}.initramfs.cpio"));
            d.ramdisk_data = Some(initrd.clone());
            d
        })
        .collect();
    bundle::write(bundle_name, &domains)
}

/// Boots one Linux domain running `init` with the serial log in a file;
/// prints the log. For development of the port.
pub fn boot(init: &str, timeout: Duration) -> Result<Option<RunStatus>> {
    let built = artifacts::build_all()?;
    let b = bundle("linux-boot", &["linux"], init)?;
    let log = artifacts::out_dir().join("linux-boot.log");
    let status = Qemu::new(&built.hypervisor, &b).serial_to(&log).run_with_timeout(timeout)?;
    print!("{}", std::fs::read_to_string(&log).unwrap_or_default());
    Ok(status.and_then(RunStatus::from_exit))
}
