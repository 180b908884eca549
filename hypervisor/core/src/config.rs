//! The domain configuration carried in the boot bundle (`domains.conf`).
//!
//! A line-oriented format: `[domain]` starts a domain, `key = value` sets a
//! property of the current one, `#` starts a comment.
//!
//! ```text
//! [domain]
//! name = hello
//! kernel = hello.elf      # a member of the bundle
//! memory = 16M            # K, M or G suffix; pages if none
//! cmdline = console=hvc0
//! ramdisk = initrd.cpio   # optional
//! vcpus = 2               # optional, 1 by default
//! device = console hypervisor
//! device = block disk                           # served by domain `disk`
//! device = block hypervisor image=disk.img      # served by the hypervisor
//! device = net switch mac=02:00:00:00:00:01
//! console = owner         # optional: this domain reads the physical console
//! ```
//!
//! `device = <kind> <backend> [options]`, any number of times, gives the
//! domain a split device (SPEC §19) as the frontend: `kind` is `console`,
//! `block` or `net`; `backend` is the name of another domain of the
//! configuration, which serves it, or `hypervisor`, which serves consoles
//! (on the hypervisor console, each line prefixed `(dN) `) and block devices
//! (a RAM disk the hypervisor holds) itself. Where a block device is served
//! is this one word: the same frontend runs against either backend. Options:
//! `image=<bundle member>` — the RAM disk's initial contents, required for a
//! block device the hypervisor serves (a domain serves its own ramdisk);
//! `mac=<six hex bytes>` — a network interface's fixed MAC address. Devices
//! of a kind are numbered in the order they are listed (`xvda` is block 0).
//! A backend domain needs no privilege: it serves with grants and event
//! channels only. `console = owner` makes the domain the console owner
//! (`SIF_CONSOLE_OWNER`, SPEC §7.2): it reads the hypervisor console's
//! input with `console_read`; at most one domain may own it.

use alloc::vec::Vec;
use core::fmt;

use hypercall_abi::device::DeviceKind;
use hypercall_abi::shared_info::VCPU_MAX;

/// The smallest and largest memory a domain may be given.
pub const MIN_MEMORY: u64 = 1 << 20;
pub const MAX_MEMORY: u64 = 1 << 40;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainConfig<'a> {
    pub name: &'a str,
    pub kernel: &'a str,
    pub memory_bytes: u64,
    pub cmdline: &'a str,
    pub ramdisk: Option<&'a str>,
    /// vCPUs the domain has, `1 ..= SHARED_INFO_VCPU_MAX` (default 1).
    pub vcpus: u32,
    /// Split devices it is the frontend of, in the order listed.
    pub devices: Vec<DeviceConfig<'a>>,
    /// It owns the physical console (`console = owner`).
    pub console_owner: bool,
}

/// Who serves a configured device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendName<'a> {
    Hypervisor,
    /// The domain of this name.
    Domain(&'a str),
}

/// One `device = ...` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceConfig<'a> {
    pub kind: DeviceKind,
    pub backend: BackendName<'a>,
    /// Block devices the hypervisor serves: the bundle member with the
    /// disk's contents.
    pub image: Option<&'a str>,
    /// Network interfaces: the fixed MAC address.
    pub mac: Option<[u8; 6]>,
}

fn parse_mac(v: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = v.split(':');
    for b in mac.iter_mut() {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Parses the value of a `device` key; the error says what is wrong.
fn parse_device(v: &str) -> Result<DeviceConfig<'_>, &'static str> {
    let mut words = v.split_whitespace();
    let kind = match words.next() {
        Some("console") => DeviceKind::Console,
        Some("block") => DeviceKind::Block,
        Some("net") => DeviceKind::Net,
        _ => return Err("the kind is not `console`, `block` or `net`"),
    };
    let backend = match words.next() {
        Some("hypervisor") => BackendName::Hypervisor,
        Some(name) => BackendName::Domain(name),
        None => return Err("no backend"),
    };
    let mut d = DeviceConfig { kind, backend, image: None, mac: None };
    for option in words {
        match option.split_once('=') {
            Some(("image", member)) if kind == DeviceKind::Block && backend == BackendName::Hypervisor && d.image.is_none() => {
                d.image = Some(member);
            }
            Some(("mac", mac)) if kind == DeviceKind::Net && d.mac.is_none() => {
                d.mac = Some(parse_mac(mac).ok_or("the MAC is not six hex bytes `xx:xx:xx:xx:xx:xx`")?);
            }
            _ => return Err("an option this kind and backend do not take (or take once)"),
        }
    }
    match (kind, backend) {
        (DeviceKind::Net, BackendName::Hypervisor) => Err("the hypervisor serves consoles and block devices, not networks"),
        (DeviceKind::Block, BackendName::Hypervisor) if d.image.is_none() => Err("a block device the hypervisor serves needs `image=`"),
        _ => Ok(d),
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError<'a> {
    pub line: usize,
    pub kind: ConfigErrorKind<'a>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ConfigErrorKind<'a> {
    NotUtf8,
    OutsideDomain,
    Syntax,
    UnknownKey(&'a str),
    Duplicate(&'a str),
    Missing(&'static str),
    BadMemory(&'a str),
    BadVcpus(&'a str),
    BadDevice(&'a str, &'static str),
    BadConsole(&'a str),
    /// A second domain says `console = owner`.
    SecondConsoleOwner,
    NoDomains,
}

impl fmt::Display for ConfigError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "domains.conf line {}: ", self.line)?;
        match &self.kind {
            ConfigErrorKind::NotUtf8 => write!(f, "not UTF-8"),
            ConfigErrorKind::OutsideDomain => write!(f, "setting before any [domain]"),
            ConfigErrorKind::Syntax => write!(f, "expected `[domain]` or `key = value`"),
            ConfigErrorKind::UnknownKey(k) => write!(f, "unknown key `{k}`"),
            ConfigErrorKind::Duplicate(k) => write!(f, "`{k}` set twice"),
            ConfigErrorKind::Missing(k) => write!(f, "domain has no `{k}`"),
            ConfigErrorKind::BadMemory(v) => {
                write!(f, "memory `{v}` is not a size between {MIN_MEMORY} and {MAX_MEMORY} bytes")
            }
            ConfigErrorKind::BadVcpus(v) => write!(f, "vcpus `{v}` is not a number from 1 to {}", VCPU_MAX),
            ConfigErrorKind::BadDevice(v, why) => write!(f, "device `{v}`: {why}"),
            ConfigErrorKind::BadConsole(v) => write!(f, "console `{v}`: the only value is `owner`"),
            ConfigErrorKind::SecondConsoleOwner => write!(f, "a second domain owns the console"),
            ConfigErrorKind::NoDomains => write!(f, "no [domain] section"),
        }
    }
}

fn parse_memory(v: &str) -> Option<u64> {
    let (digits, unit) = match v.as_bytes().last()? {
        b'K' | b'k' => (&v[..v.len() - 1], 1 << 10),
        b'M' | b'm' => (&v[..v.len() - 1], 1 << 20),
        b'G' | b'g' => (&v[..v.len() - 1], 1 << 30),
        _ => (v, 4096),
    };
    let bytes = digits.trim().parse::<u64>().ok()?.checked_mul(unit)?;
    (MIN_MEMORY..=MAX_MEMORY).contains(&bytes).then_some(bytes)
}

#[derive(Default)]
struct Partial<'a> {
    start_line: usize,
    name: Option<&'a str>,
    kernel: Option<&'a str>,
    memory: Option<u64>,
    cmdline: Option<&'a str>,
    ramdisk: Option<&'a str>,
    vcpus: Option<u32>,
    devices: Vec<DeviceConfig<'a>>,
    console_owner: Option<bool>,
}

impl<'a> Partial<'a> {
    fn finish(self) -> Result<DomainConfig<'a>, ConfigError<'a>> {
        let missing = |k| ConfigError { line: self.start_line, kind: ConfigErrorKind::Missing(k) };
        Ok(DomainConfig {
            name: self.name.ok_or_else(|| missing("name"))?,
            kernel: self.kernel.ok_or_else(|| missing("kernel"))?,
            memory_bytes: self.memory.ok_or_else(|| missing("memory"))?,
            cmdline: self.cmdline.unwrap_or(""),
            ramdisk: self.ramdisk,
            vcpus: self.vcpus.unwrap_or(1),
            devices: self.devices,
            console_owner: self.console_owner.unwrap_or(false),
        })
    }
}

/// Parses the whole configuration: one entry per `[domain]`.
pub fn parse(text: &[u8]) -> Result<Vec<DomainConfig<'_>>, ConfigError<'_>> {
    let text = core::str::from_utf8(text).map_err(|_| ConfigError { line: 0, kind: ConfigErrorKind::NotUtf8 })?;
    let mut domains = Vec::new();
    let mut current: Option<Partial<'_>> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let err = |kind| ConfigError { line: line_no, kind };
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if line == "[domain]" {
            if let Some(done) = current.take() {
                domains.push(done.finish()?);
            }
            current = Some(Partial { start_line: line_no, ..Partial::default() });
            continue;
        }
        let (key, value) = line.split_once('=').ok_or(err(ConfigErrorKind::Syntax))?;
        let (key, value) = (key.trim(), value.trim());
        let d = current.as_mut().ok_or(err(ConfigErrorKind::OutsideDomain))?;
        let slot_was_set = match key {
            "name" => d.name.replace(value).is_some(),
            "kernel" => d.kernel.replace(value).is_some(),
            "cmdline" => d.cmdline.replace(value).is_some(),
            "ramdisk" => d.ramdisk.replace(value).is_some(),
            "vcpus" => {
                let n = value.parse::<u32>().ok().filter(|n| (1..=VCPU_MAX as u32).contains(n));
                d.vcpus.replace(n.ok_or(err(ConfigErrorKind::BadVcpus(value)))?).is_some()
            }
            "memory" => {
                let bytes = parse_memory(value).ok_or(err(ConfigErrorKind::BadMemory(value)))?;
                d.memory.replace(bytes).is_some()
            }
            "device" => {
                d.devices.push(parse_device(value).map_err(|why| err(ConfigErrorKind::BadDevice(value, why)))?);
                false
            }
            "console" if value == "owner" => {
                let earlier = domains.iter().any(|o: &DomainConfig<'_>| o.console_owner);
                if earlier {
                    return Err(err(ConfigErrorKind::SecondConsoleOwner));
                }
                d.console_owner.replace(true).is_some()
            }
            "console" => return Err(err(ConfigErrorKind::BadConsole(value))),
            _ => return Err(err(ConfigErrorKind::UnknownKey(key))),
        };
        if slot_was_set {
            return Err(err(ConfigErrorKind::Duplicate(key)));
        }
    }
    if let Some(done) = current.take() {
        domains.push(done.finish()?);
    }
    if domains.is_empty() {
        return Err(ConfigError { line: 0, kind: ConfigErrorKind::NoDomains });
    }
    Ok(domains)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_domains() {
        let text = b"# demo\n[domain]\nname = a\nkernel = a.elf\nmemory = 16M\ncmdline = x y\n\n[domain]\nname=b\nkernel=b.elf\nmemory=2048 # pages\nramdisk = r\nvcpus = 4\n";
        let d = parse(text).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0], DomainConfig { name: "a", kernel: "a.elf", memory_bytes: 16 << 20, cmdline: "x y", ramdisk: None, vcpus: 1, devices: Vec::new(), console_owner: false });
        assert_eq!(d[1].vcpus, 4);
        assert_eq!(d[1].memory_bytes, 8 << 20);
        assert_eq!(d[1].ramdisk, Some("r"));
    }

    #[test]
    fn one_domain_may_own_the_console() {
        let d = parse(b"[domain]\nname=a\nkernel=a\nmemory=1M\nconsole = owner\n[domain]\nname=b\nkernel=b\nmemory=1M\n").unwrap();
        assert!(d[0].console_owner && !d[1].console_owner);
        let two = parse(b"[domain]\nname=a\nkernel=a\nmemory=1M\nconsole=owner\n[domain]\nname=b\nkernel=b\nmemory=1M\nconsole=owner\n");
        assert_eq!(two.unwrap_err(), ConfigError { line: 10, kind: ConfigErrorKind::SecondConsoleOwner });
        let bad = parse(b"[domain]\nname=a\nkernel=a\nmemory=1M\nconsole=yes\n");
        assert_eq!(bad.unwrap_err(), ConfigError { line: 5, kind: ConfigErrorKind::BadConsole("yes") });
        let twice = parse(b"[domain]\nname=a\nkernel=a\nmemory=1M\nconsole=owner\nconsole=owner\n");
        assert_eq!(twice.unwrap_err(), ConfigError { line: 6, kind: ConfigErrorKind::Duplicate("console") });
    }

    #[test]
    fn devices_name_their_backend() {
        let text = b"[domain]\nname = a\nkernel = a.elf\nmemory = 16M\ndevice = console hypervisor\ndevice = block disk\ndevice = block hypervisor image=d.img\ndevice = net sw mac=02:00:0a:0B:ff:01\n";
        let d = &parse(text).unwrap()[0];
        let dev = |kind, backend, image, mac| DeviceConfig { kind, backend, image, mac };
        assert_eq!(
            d.devices,
            [
                dev(DeviceKind::Console, BackendName::Hypervisor, None, None),
                dev(DeviceKind::Block, BackendName::Domain("disk"), None, None),
                dev(DeviceKind::Block, BackendName::Hypervisor, Some("d.img"), None),
                dev(DeviceKind::Net, BackendName::Domain("sw"), None, Some([2, 0, 10, 11, 255, 1])),
            ]
        );
        for bad in [
            "tape hypervisor",
            "block",
            "block hypervisor",
            "block disk image=d.img",
            "block hypervisor image=a image=b",
            "net hypervisor",
            "net sw mac=02:00:00:00:00",
            "net sw mac=02:00:00:00:00:01:02",
            "net sw mac=2:00:00:00:00:01",
            "net sw mac=zz:00:00:00:00:01",
            "console hypervisor image=x",
            "console hypervisor colour=red",
        ] {
            let text = alloc::format!("[domain]\ndevice = {bad}\n");
            assert!(matches!(parse(text.as_bytes()).unwrap_err().kind, ConfigErrorKind::BadDevice(v, _) if v == bad), "{bad}");
        }
    }

    #[test]
    fn errors_name_the_line() {
        let kind = |t: &'static [u8]| parse(t).unwrap_err();
        assert_eq!(kind(b"name = a\n").kind, ConfigErrorKind::OutsideDomain);
        assert_eq!(kind(b"[domain]\nname a\n").line, 2);
        assert_eq!(kind(b"[domain]\ncolour = red\n").kind, ConfigErrorKind::UnknownKey("colour"));
        assert_eq!(kind(b"[domain]\nname = a\nname = b\n").kind, ConfigErrorKind::Duplicate("name"));
        assert_eq!(kind(b"[domain]\nname = a\nkernel = k\n").kind, ConfigErrorKind::Missing("memory"));
        assert_eq!(kind(b"[domain]\nmemory = 99999999999G\n").kind, ConfigErrorKind::BadMemory("99999999999G"));
        assert_eq!(kind(b"[domain]\nmemory = 4K\n").kind, ConfigErrorKind::BadMemory("4K"));
        assert_eq!(kind(b"").kind, ConfigErrorKind::NoDomains);
        for bad in ["0", "33", "-1", "two"] {
            let text = alloc::format!("[domain]\nvcpus = {bad}\n");
            assert_eq!(parse(text.as_bytes()).unwrap_err().kind, ConfigErrorKind::BadVcpus(bad));
        }
        assert_eq!(kind(&[0xff, 0xfe]).kind, ConfigErrorKind::NotUtf8);
    }
}
