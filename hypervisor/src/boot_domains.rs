//! Building the domains the boot bundle describes.
//!
//! A domain that cannot be built — its kernel missing from the bundle, a
//! malformed or incompatible image, not enough memory — is refused with one
//! log line naming it and the reason; the others are built regardless.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use hypercall_abi::version::AbiVersion;
use veneer_core::bundle::{Bundle, CONFIG_NAME};
use veneer_core::config::{self, DomainConfig};
use veneer_core::domain::DomainId;
use veneer_core::domain_builder::{self, DomainSpec};
use veneer_core::elf_image::GuestImage;

use crate::hypervisor::{Hypervisor, FEATURES};

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
    for (id, cfg) in (1u32..).map(DomainId).zip(&configs) {
        if let Err(reason) = build_one(id, cfg, &bundle, hv) {
            log::info!("{} \"{}\": refused: {}", id, cfg.name, reason);
            hv.all_clean = false;
        }
    }
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
    };
    let domain = domain_builder::build(&spec, &mut hv.machine, &mut hv.mem).map_err(|e| format!("{e}"))?;
    log::info!(
        "{} \"{}\": built: {} MiB, image {:#x}..{:#x}, entry {:#x}",
        id, cfg.name, cfg.memory_bytes >> 20, image.virt_start, image.virt_end, image.entry
    );
    hv.domains.insert(id.0, domain);
    Ok(())
}
