//! Veneer: a paravirtualization-first hypervisor for x86_64.
//!
//! Boot: `arch/x86_64/boot.S` enters long mode and calls [`boot_main`],
//! which takes over the machine (memory, page tables, descriptor tables),
//! brings up the other CPUs (`arch::x86_64::smp`), builds the domains of
//! the boot bundle and hands the CPUs to them.
#![no_std]
#![no_main]

extern crate alloc;

mod arch;
mod boot_domains;
mod fatal;
mod heap;
mod events;
mod hypervisor;
mod io;
mod logger;
mod pcpus;

use core::ops::Range;

use veneer_core::addr::{Mfn, PAGE_SIZE};
use veneer_core::frame_allocator::{find_free_run, FrameAllocator};

use arch::x86_64::direct_map::{phys_to_virt, DirectMap};
use arch::x86_64::{apic, clock, cpu, entry, fpu, gdt, idt, paging, pic, pvh, serial, smp};
use veneer_core::time::Clock;

extern "C" {
    static __image_start_phys: u8;
    static __image_end_phys: u8;
}

/// Frames below 1 MiB hold firmware data and the loader's structures.
const LOW_MEMORY: Range<Mfn> = Mfn(0)..Mfn(0x100);

fn frames_of(bytes: Range<u64>) -> Range<Mfn> {
    Mfn::from_phys(bytes.start)..Mfn::from_phys(bytes.end.div_ceil(PAGE_SIZE as u64) * PAGE_SIZE as u64)
}

#[no_mangle]
extern "C" fn boot_main(start_info: u64) -> ! {
    serial::init();
    logger::init();
    log::info!("Veneer {} (ABI {})", env!("CARGO_PKG_VERSION"), hypercall_abi::version::AbiVersion::CURRENT);
    pic::disable();

    // SAFETY: boot.S passes the loader's %ebx; its tables map the first 4 GiB.
    let boot = match unsafe { pvh::read(start_info) } {
        Ok(b) => b,
        Err(e) => panic!("PVH start info unusable: {e}"),
    };
    let mut ram = [const { Mfn(0)..Mfn(0) }; pvh::MAX_REGIONS];
    for (slot, r) in ram.iter_mut().zip(&boot.ram[..boot.ram_count]) {
        // Only whole frames of RAM.
        *slot = Mfn(r.start.div_ceil(PAGE_SIZE as u64))..Mfn::from_phys(r.end);
    }
    let ram = &ram[..boot.ram_count];
    let total: u64 = ram.iter().map(|r| r.end.0 - r.start.0).sum();
    log::info!("memory: {} MiB of RAM in {} regions", total * PAGE_SIZE as u64 >> 20, ram.len());

    // SAFETY: linker-script symbols; only their addresses are used.
    let image = unsafe { (&__image_start_phys as *const u8 as u64)..(&__image_end_phys as *const u8 as u64) };
    let bundle = boot.bundle.clone().unwrap_or(0..0);
    let mut reserved = [LOW_MEMORY, frames_of(image), frames_of(bundle.clone()), Mfn(0)..Mfn(0)];
    let heap_frames = heap::frames_for(total);
    let heap = find_free_run(ram, &reserved, heap_frames).expect("room for the heap");
    assert!(heap.end.phys() <= 1 << 32, "the heap must lie in the boot map's first 4 GiB");
    // SAFETY: the run is RAM inside the first 4 GiB the boot tables map (the
    // search takes the lowest), reserved below so nothing else uses it.
    unsafe { heap::init(phys_to_virt(heap.start.phys()), (heap_frames as usize) * PAGE_SIZE) };
    reserved[3] = heap;
    // While the boot tables, which map the firmware's tables, are loaded.
    let apic_ids = if boot.rsdp == 0 {
        log::info!("smp: the loader gave no ACPI RSDP; running on the boot CPU alone");
        alloc::vec::Vec::new()
    } else {
        // SAFETY: the boot tables are still loaded.
        match unsafe { pvh::read_madt(boot.rsdp) } {
            Ok(madt) => madt.apic_ids,
            Err(e) => {
                log::info!("smp: ACPI: {e}; running on the boot CPU alone");
                alloc::vec::Vec::new()
            }
        }
    };
    let mut frames = FrameAllocator::new(ram, &reserved);
    log::info!("frames: {} free after the image, boot bundle and heap", frames.free_count());

    let features = cpu::features();
    cpu::init(&features);
    fpu::init(&features);
    // SAFETY: the boot tables map all RAM below 4 GiB and `paging::init`
    // maps every RAM region before anything reaches above that.
    let mut mem = unsafe { DirectMap::new(ram) };
    let tables = paging::init(ram, &[apic::XAPIC_PHYS], &mut frames, &mut mem);
    let cpus = apic_ids.len().clamp(1, smp::MAX_CPUS);
    let stacks: alloc::vec::Vec<_> = (0..cpus).map(|i| tables.map_cpu_stacks(i, &mut frames, &mut mem)).collect();
    // Boot goes on on boot.S's stack; the first guest entry moves to this
    // CPU's own.
    let selectors = gdt::init(&stacks[0]);
    idt::init();
    entry::init(0, stacks[0].main_top, selectors, features.smap, features.pcid);
    log::info!(
        "cpu: xsave {} (xcr0 {:#x}), smep {}, smap {}, pcid {}, x2apic {}, tsc-deadline {}, invariant tsc {}; own page tables, GDT, TSS, IDT loaded",
        features.xsave, features.xcr0, features.smep, features.smap, features.pcid, features.x2apic, features.tsc_deadline, features.invariant_tsc
    );
    if boot.cmdline.split(' ').any(|w| w == "veneer.selftest=page-fault") {
        fatal::self_test_page_fault();
    }

    // SAFETY: the bundle lies in RAM, reserved from the allocator above and
    // mapped by the direct map; nothing writes it.
    let bundle_bytes = unsafe {
        core::slice::from_raw_parts(phys_to_virt(bundle.start) as *const u8, (bundle.end - bundle.start) as usize)
    };
    let tsc_hz = clock::tsc_hz();
    let clock = Clock::new(clock::rdtsc(), tsc_hz, features.invariant_tsc);
    let apic = apic::init(&features, tsc_hz);
    let boot_seconds = clock::rtc_unix_seconds();
    log::info!(
        "time: TSC {} MHz{}; local APIC {} {}, timer {}{}",
        tsc_hz / 1_000_000,
        if features.invariant_tsc { " (invariant)" } else { " (not invariant: no TIME_TSC_STABLE)" },
        apic.access_mode(),
        apic.id(),
        apic.timer_mode(),
        if features.tsc_deadline { "" } else { " (no TSC-deadline mode on this CPU)" },
    );
    let overflow_test = boot.cmdline.split(' ').any(|w| w == "veneer.selftest=stack-overflow");
    let aps = smp::ApStart { boot_apic_id: apic.id(), apic_ids: &apic_ids, stacks, hypervisor_l4: tables.l4, features, tsc_hz, overflow_test };
    let online = smp::start_aps(aps, &mem);
    log::info!("smp: {online} of {} CPUs online", apic_ids.len().max(1));
    let wallclock = (boot_seconds.saturating_sub(clock.ns(clock::rdtsc()) / 1_000_000_000), 0);
    let mut hv = hypervisor::Hypervisor::new(frames, mem, tables, features, clock, wallclock, online);
    boot_domains::build_all(bundle_bytes, &mut hv);
    hypervisor::start(hv)
}
