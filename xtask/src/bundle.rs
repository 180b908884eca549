//! Boot bundles: `domains.conf` plus the guest kernels, as a cpio archive
//! written with the same code the hypervisor reads it with.

use std::path::PathBuf;

use veneer_core::bundle::{write_newc, Member, CONFIG_NAME};

use crate::artifacts::{out_dir, Built};
use crate::Result;

/// One domain of a bundle.
pub struct DomainEntry {
    pub name: String,
    /// Name of the kernel in the bundle (may name a missing file on purpose).
    pub kernel_name: String,
    pub kernel: Option<Vec<u8>>,
    pub memory: String,
    pub cmdline: String,
    pub vcpus: u32,
}

impl DomainEntry {
    pub fn new(name: &str, kernel: Vec<u8>, memory: &str) -> DomainEntry {
        DomainEntry {
            name: name.into(),
            kernel_name: format!("{name}.elf"),
            kernel: Some(kernel),
            memory: memory.into(),
            cmdline: String::new(),
            vcpus: 1,
        }
    }
}

pub fn path_for(name: &str) -> PathBuf {
    out_dir().join(format!("{name}.bundle.cpio"))
}

/// Writes the bundle `name` holding `domains`, in order.
pub fn write(name: &str, domains: &[DomainEntry]) -> Result<PathBuf> {
    let mut conf = String::from("# written by xtask\n");
    for d in domains {
        conf += &format!("[domain]\nname = {}\nkernel = {}\nmemory = {}\n", d.name, d.kernel_name, d.memory);
        if !d.cmdline.is_empty() {
            conf += &format!("cmdline = {}\n", d.cmdline);
        }
        if d.vcpus != 1 {
            conf += &format!("vcpus = {}\n", d.vcpus);
        }
    }
    let mut members = vec![Member { name: CONFIG_NAME, data: conf.as_bytes() }];
    for d in domains {
        if let Some(k) = &d.kernel {
            members.push(Member { name: &d.kernel_name, data: k });
        }
    }
    let path = path_for(name);
    std::fs::create_dir_all(out_dir()).map_err(|e| e.to_string())?;
    std::fs::write(&path, write_newc(&members)).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

pub fn read_guest(built: &Built, guest: &str) -> Result<Vec<u8>> {
    let p = built.guest(guest);
    std::fs::read(&p).map_err(|e| format!("{}: {e} (is `{guest}` a guest binary?)", p.display()))
}

/// A bundle with one domain running `guest`.
pub fn single(built: &Built, guest: &str, memory: &str, cmdline: &str) -> Result<PathBuf> {
    let mut d = DomainEntry::new(guest, read_guest(built, guest)?, memory);
    d.cmdline = cmdline.into();
    write(guest, &[d])
}

/// A bundle with `guest` as domain 1 and `peers` as domains 2, ... .
pub fn with_peers(built: &Built, guest: &str, peers: &[&str], memory: &str) -> Result<PathBuf> {
    let mut domains = vec![DomainEntry::new(guest, read_guest(built, guest)?, memory)];
    for peer in peers {
        domains.push(DomainEntry::new(peer, read_guest(built, peer)?, memory));
    }
    write(guest, &domains)
}
