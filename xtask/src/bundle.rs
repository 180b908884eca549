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
    /// `device = ...` lines (without the key).
    pub devices: Vec<String>,
    /// The ramdisk's member name, made by [`disk_image`] unless
    /// `ramdisk_data` gives its bytes.
    pub ramdisk: Option<String>,
    pub ramdisk_data: Option<Vec<u8>>,
    /// `console = owner`: the domain reads the console's input.
    pub console_owner: bool,
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
            devices: Vec::new(),
            ramdisk: None,
            ramdisk_data: None,
            console_owner: false,
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
        if d.console_owner {
            conf += "console = owner\n";
        }
        if d.vcpus != 1 {
            conf += &format!("vcpus = {}\n", d.vcpus);
        }
        if let Some(r) = &d.ramdisk {
            conf += &format!("ramdisk = {r}\n");
        }
        for dev in &d.devices {
            conf += &format!("device = {dev}\n");
        }
    }
    // Disk images: ramdisks and `image=` options, each made once.
    let mut images: Vec<(String, Vec<u8>)> = Vec::new();
    let wanted = domains.iter().flat_map(|d| {
        d.ramdisk.iter().cloned().chain(d.devices.iter().flat_map(|l| l.split_whitespace().filter_map(|w| w.strip_prefix("image=")).map(String::from).collect::<Vec<_>>()))
    });
    for name in wanted {
        if !images.iter().any(|(n, _)| *n == name) {
            let given = domains.iter().find(|d| d.ramdisk.as_deref() == Some(name.as_str())).and_then(|d| d.ramdisk_data.clone());
            let data = given.or_else(|| disk_image(&name)).ok_or_else(|| format!("no way to make disk image `{name}`"))?;
            images.push((name, data));
        }
    }
    let mut members = vec![Member { name: CONFIG_NAME, data: conf.as_bytes() }];
    for d in domains {
        if let Some(k) = &d.kernel {
            members.push(Member { name: &d.kernel_name, data: k });
        }
    }
    for (name, data) in &images {
        members.push(Member { name, data });
    }
    let path = path_for(name);
    std::fs::create_dir_all(out_dir()).map_err(|e| e.to_string())?;
    std::fs::write(&path, write_newc(&members)).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// Reads section `name` of a guest as text, if the guest has it.
pub fn section_text(elf_bytes: &[u8], name: &str) -> Result<Option<String>> {
    use elf::endian::AnyEndian;
    use elf::ElfBytes;
    let file = ElfBytes::<AnyEndian>::minimal_parse(elf_bytes).map_err(|e| e.to_string())?;
    let Some(sh) = file.section_header_by_name(name).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let (data, _) = file.section_data(&sh).map_err(|e| e.to_string())?;
    Ok(Some(String::from_utf8_lossy(data).into_owned()))
}

/// A guest's `devices!` lines.
pub fn devices_of(elf: &[u8]) -> Result<Vec<String>> {
    Ok(section_text(elf, ".veneer.devices")?.unwrap_or_default().split(';').map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect())
}

/// A domain for `guest` as its own sections describe it: its devices and
/// ramdisk.
pub fn entry_for(built: &Built, guest: &str, memory: &str) -> Result<DomainEntry> {
    let image = read_guest(built, guest)?;
    let mut d = DomainEntry::new(guest, image, memory);
    let image = d.kernel.as_deref().expect("just read");
    d.devices = devices_of(image)?;
    d.ramdisk = section_text(image, ".veneer.ramdisk")?;
    Ok(d)
}

/// A bundle for `guest` and the peers it names, each with its devices
/// and ramdisk (what the benchmarks boot).
pub fn with_peers(built: &Built, guest: &str, memory: &str) -> Result<PathBuf> {
    let main = entry_for(built, guest, memory)?;
    let peers = section_text(main.kernel.as_deref().expect("read"), ".veneer.peers")?.unwrap_or_default();
    let mut domains = vec![main];
    for p in peers.split_whitespace() {
        domains.push(entry_for(built, p, memory)?);
    }
    write(guest, &domains)
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

/// Byte `byte` of sector `sector` of generation `seed` of the disk
/// pattern: the same function as `veneer_guest::rand::disk_byte`, which
/// the block tests check every byte of these images against when they
/// boot (a change on one side only fails them all).
pub fn disk_byte(seed: u32, sector: u64, byte: usize) -> u8 {
    let mut x = (sector << 20) ^ (u64::from(seed) << 40) ^ 0x51_7cc1_b727_220a;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    let word = x.wrapping_add(byte as u64 / 8).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    (word >> ((byte % 8) * 8)).to_le_bytes()[0] ^ byte.to_le_bytes()[0]
}

/// Sectors after which the pattern repeats: one 512 KiB device.
const PATTERN_SECTORS: u64 = 1024;

/// A disk image by name: `pattern-<n>K.img` or `pattern-<n>M.img` is
/// generation 0 of the pattern, repeating every 512 KiB (so each 512 KiB
/// device carved out of it reads the same).
pub fn disk_image(name: &str) -> Option<Vec<u8>> {
    let size = name.strip_prefix("pattern-")?.strip_suffix(".img")?;
    let bytes = if let Some(k) = size.strip_suffix('K') {
        k.parse::<usize>().ok()? << 10
    } else {
        size.strip_suffix('M')?.parse::<usize>().ok()? << 20
    };
    Some((0..bytes).map(|o| disk_byte(0, (o as u64 / 512) % PATTERN_SECTORS, o % 512)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_the_pattern_guests_check() {
        // Pinned, so the pattern does not drift unnoticed.
        assert_eq!([disk_byte(0, 0, 0), disk_byte(0, 0, 1), disk_byte(0, 5, 511), disk_byte(3, 1023, 8)], [7, 222, 145, 47]);
        let img = disk_image("pattern-1M.img").unwrap();
        assert_eq!(img.len(), 1 << 20);
        assert_eq!(img[..512 * 1024], img[512 * 1024..], "repeats every 512 KiB");
        assert_eq!(img[7 * 512 + 3], disk_byte(0, 7, 3));
        assert_eq!(disk_image("pattern-512K.img").unwrap().len(), 512 << 10);
        assert_eq!(disk_image("pattern-1G"), None);
        assert_eq!(disk_image("other.img"), None);
    }
}
