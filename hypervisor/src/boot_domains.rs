//! Building the domains the boot bundle describes.
//!
//! A domain that cannot be built — its kernel missing from the bundle, a
//! malformed or incompatible image, not enough memory, a device whose
//! backend or disk image does not exist — is refused with one log line
//! naming it and the reason; the others are built regardless, and its
//! device slots close as if it had ended.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use hypercall_abi::version::AbiVersion;
use veneer_core::bundle::{Bundle, CONFIG_NAME};
use hypercall_abi::device::{device_consts, DeviceKind};
use veneer_core::config::{self, BackendName, DomainConfig};
use veneer_core::device::Backend;
use veneer_core::domain::DomainId;
use veneer_core::domain_builder::{self, DomainSpec};
use veneer_core::elf_image::GuestImage;

use crate::hypervisor::{Hypervisor, FEATURES};
use crate::io::{self, BootDevice};

pub fn build_all(bytes: &[u8], hv: &mut Hypervisor) {
    let (bundle, configs) = match read_bundle(bytes) {
        Ok(parsed) => parsed,
        Err(e) => {
            log::error!("boot bundle: {e}");
            hv.all_clean = false;
            return;
        }
    };
    // Domain 0 is kept for the privileged control domain.
    let ids: Vec<DomainId> = (1u32..).map(DomainId).take(configs.len()).collect();
    // The device slots first, so each domain starts with its console handle
    // and every backend it will talk to waiting; a domain whose devices
    // cannot be set up is refused like one whose image is bad.
    let mut refused: Vec<(DomainId, String)> = Vec::new();
    for (&id, cfg) in ids.iter().zip(&configs) {
        let created = devices_of(id, cfg, &configs, &bundle).and_then(|devices| {
            for d in &devices {
                io::create_boot_device(hv, d).map_err(|e| format!("device {:?} {}: {e:?}", d.kind, d.index))?;
                log::info!("{id} \"{}\": {} {} served by {}", cfg.name, kind_name(d.kind), d.index, backend_name(d.backend));
            }
            Ok(())
        });
        if let Err(reason) = created {
            refused.push((id, reason));
        }
    }
    for (&id, cfg) in ids.iter().zip(&configs) {
        let reason = match refused.iter().find(|r| r.0 == id) {
            Some((_, reason)) => reason.clone(),
            None => match build_one(id, cfg, &bundle, hv) {
                Ok(()) => continue,
                Err(reason) => {
                    refused.push((id, reason.clone()));
                    reason
                }
            },
        };
        log::info!("{} \"{}\": refused: {}", id, cfg.name, reason);
        hv.all_clean = false;
    }
    // The slots of refused domains close as if those domains had ended.
    for (id, _) in refused {
        io::domain_ending(hv, id.0);
    }
}

fn kind_name(k: DeviceKind) -> &'static str {
    match k {
        DeviceKind::Console => "console",
        DeviceKind::Block => "block",
        DeviceKind::Net => "net",
    }
}

fn backend_name(b: Backend) -> String {
    match b {
        Backend::Hypervisor => String::from("the hypervisor"),
        Backend::Domain(d) => format!("d{d}"),
    }
}

/// The device slots `cfg` (domain `id`) asks for, with backends resolved
/// to domain ids and disk images found in the bundle.
fn devices_of<'a>(id: DomainId, cfg: &DomainConfig<'_>, all: &[DomainConfig<'_>], bundle: &Bundle<'a>) -> Result<Vec<BootDevice<'a>>, String> {
    let mut out = Vec::new();
    for (n, d) in cfg.devices.iter().enumerate() {
        let backend = match d.backend {
            BackendName::Hypervisor => Backend::Hypervisor,
            BackendName::Domain(name) => {
                let at = all.iter().position(|c| c.name == name).ok_or_else(|| format!("device backend `{name}` is not a domain of the configuration"))?;
                let backend = u32::try_from(at + 1).expect("few domains");
                if backend == id.0 {
                    return Err(format!("device backend `{name}` is the domain itself"));
                }
                Backend::Domain(backend)
            }
        };
        let image = match d.image {
            Some(member) => Some(bundle.get(member).ok_or_else(|| format!("disk image `{member}` is not in the boot bundle"))?),
            None => None,
        };
        let index = cfg.devices[..n].iter().filter(|e| e.kind == d.kind).count();
        out.push(BootDevice {
            kind: d.kind,
            frontend: id.0,
            backend,
            index: u32::try_from(index).expect("few devices"),
            mac: d.mac.unwrap_or([0; 6]),
            image,
        });
    }
    Ok(out)
}

fn read_bundle(bytes: &[u8]) -> Result<(Bundle<'_>, Vec<DomainConfig<'_>>), String> {
    let bundle = Bundle::parse(bytes).map_err(|e| format!("{e}"))?;
    let text = bundle.get(CONFIG_NAME).ok_or_else(|| format!("no {CONFIG_NAME}"))?;
    let configs = config::parse(text).map_err(|e| format!("{e}"))?;
    Ok((bundle, configs))
}

fn build_one(id: DomainId, cfg: &DomainConfig<'_>, bundle: &Bundle<'_>, hv: &mut Hypervisor) -> Result<(), String> {
    let kernel = bundle.get(cfg.kernel).ok_or_else(|| format!("kernel `{}` is not in the boot bundle", cfg.kernel))?;
    let ramdisk = match cfg.ramdisk {
        Some(name) => Some(bundle.get(name).ok_or_else(|| format!("ramdisk `{name}` is not in the boot bundle"))?),
        None => None,
    };
    let image = GuestImage::parse(kernel, AbiVersion::CURRENT, FEATURES).map_err(|e| format!("{e}"))?;
    let spec = DomainSpec {
        id,
        name: cfg.name,
        image: &image,
        memory_bytes: cfg.memory_bytes,
        cmdline: cfg.cmdline,
        ramdisk,
        abi: AbiVersion::CURRENT,
        features: FEATURES,
        vcpus: cfg.vcpus,
        console_device: hv.io.devices.frontend_handle(id.0, DeviceKind::Console, 0).unwrap_or(device_consts::NONE),
        console_owner: cfg.console_owner,
    };
    let domain = domain_builder::build(&spec, &mut hv.machine, &mut hv.mem).map_err(|e| format!("{e}"))?;
    log::info!(
        "{} \"{}\": built: {} MiB, image {:#x}..{:#x}, entry {:#x}",
        id, cfg.name, cfg.memory_bytes >> 20, image.virt_start, image.virt_end, image.entry
    );
    hv.domains.insert(id.0, domain);
    Ok(())
}
