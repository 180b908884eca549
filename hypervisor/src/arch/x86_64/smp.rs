//! The other CPUs: bringing them up, and asking them to flush their TLBs.
//!
//! Bring-up: the boot CPU lists the CPUs from the ACPI MADT, maps each
//! one's stacks, copies `trampoline.S` to `TRAMPOLINE_PHYS` in low memory
//! and starts the others one at a time with INIT and two STARTUP IPIs.
//! Each comes up through the trampoline into [`ap_main`], sets up its own
//! GDT, TSS, IDT, per-CPU block and local APIC as the boot CPU did, says it
//! is online and waits until the hypervisor is ready to schedule
//! ([`release`]).
//!
//! TLB shootdown: a CPU that must see another's TLB flushed sets that
//! CPU's request flag, sends it `WORK_VECTOR` and waits until the flag is
//! clear again. The target serves the request from the interrupt, whether
//! it ran guest code or idled, or, if it is waiting for the hypervisor
//! lock (with interrupts off), from the lock's wait loop; it never needs
//! the lock to serve, so the requester may hold it.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use alloc::vec::Vec;
use spin::Once;

use super::apic::{self, WORK_VECTOR};
use super::clock;
use super::cpu::{self, Features};
use veneer_core::addr::Mfn;
use veneer_core::phys::PhysMemory;

use super::direct_map::{phys_to_virt, DirectMap};
use super::entry;
use super::gdt;
use super::idt;
use super::paging::{self, CpuStacks};

/// The most CPUs Veneer drives.
pub const MAX_CPUS: usize = 64;

/// Where the trampoline runs: a page of conventional memory below 1 MiB
/// (the allocator never hands those out), whose number is the STARTUP
/// IPI's vector.
const TRAMPOLINE_PHYS: u64 = 0x8000;
/// Where in the trampoline page the boot CPU leaves an AP's data.
const TRAMP_CR3: usize = 0xf00;
const TRAMP_STACK: usize = 0xf08;
const TRAMP_CPU: usize = 0xf10;
/// The STARTUP IPI's vector: the trampoline's page number.
const TRAMPOLINE_PAGE: u8 = 0x08;
const _: () = assert!(TRAMPOLINE_PHYS == (TRAMPOLINE_PAGE as u64) << 12);

core::arch::global_asm!(
    include_str!("trampoline.S"),
    TRAMPOLINE_PHYS = const TRAMPOLINE_PHYS,
    TRAMP_CR3 = const TRAMP_CR3,
    TRAMP_STACK = const TRAMP_STACK,
    TRAMP_CPU = const TRAMP_CPU,
    options(att_syntax),
);

extern "C" {
    static trampoline_start: u8;
    static trampoline_end: u8;
}

/// What every AP needs from the boot CPU.
struct Shared {
    features: Features,
    stacks: Vec<CpuStacks>,
    /// `veneer.selftest=stack-overflow`: CPU 1 overflows its stack.
    overflow_test: bool,
}

static SHARED: Once<Shared> = Once::new();
/// How many CPUs are online (the boot CPU counts from the start).
static ONLINE: AtomicU32 = AtomicU32::new(1);
/// Local APIC id of each CPU, by index.
static APIC_IDS: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
/// Set once the hypervisor can schedule: the APs wait for it.
static GO: AtomicBool = AtomicBool::new(false);
/// Whether CPUs use PCIDs (how a TLB flush is done).
static PCID: AtomicBool = AtomicBool::new(false);
/// Per CPU: a TLB flush is requested.
static FLUSH_REQUESTED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
/// Shootdowns sent (for the boot log and tests of the path).
static SHOOTDOWNS: AtomicU64 = AtomicU64::new(0);

/// CPUs online.
pub fn online() -> usize {
    ONLINE.load(Ordering::SeqCst) as usize
}

/// Waits `us` microseconds on the TSC.
fn delay_us(us: u64, tsc_hz: u64) {
    let end = clock::rdtsc() + tsc_hz / 1_000_000 * us;
    while clock::rdtsc() < end {
        core::hint::spin_loop();
    }
}

/// How to start the APs.
pub struct ApStart<'a> {
    pub boot_apic_id: u32,
    /// Every CPU's APIC id (the boot CPU's among them).
    pub apic_ids: &'a [u32],
    /// By CPU index; `stacks[0]` is the boot CPU's.
    pub stacks: Vec<CpuStacks>,
    pub hypervisor_l4: Mfn,
    pub features: Features,
    pub tsc_hz: u64,
    pub overflow_test: bool,
}

/// Brings up the CPUs of `apic_ids` other than the boot CPU, each with the
/// stacks mapped for its index; returns how many are online in all. A CPU
/// that does not come up is reported and left out.
pub fn start_aps(a: ApStart<'_>, mem: &DirectMap) -> usize {
    let ApStart { boot_apic_id, apic_ids, stacks, hypervisor_l4, features, tsc_hz, overflow_test } = a;
    let f = &features;
    PCID.store(f.pcid, Ordering::SeqCst);
    APIC_IDS[0].store(boot_apic_id, Ordering::SeqCst);
    if apic_ids.len() > 1 && !mem.contains(Mfn::from_phys(TRAMPOLINE_PHYS)) {
        log::info!("smp: no RAM at {TRAMPOLINE_PHYS:#x} for the trampoline; running on the boot CPU alone");
        return 1;
    }
    let hypervisor_l4 = hypervisor_l4.phys();
    let shared = SHARED.call_once(|| Shared { features: *f, stacks, overflow_test });
    // SAFETY: linker symbols of trampoline.S; only their addresses are used.
    let (start, end) = unsafe { (&trampoline_start as *const u8 as u64, &trampoline_end as *const u8 as u64) };
    let len = usize::try_from(end - start).expect("a small trampoline");
    assert!(len <= TRAMP_CR3, "the trampoline ({len} bytes) overlaps its data");
    let page = phys_to_virt(TRAMPOLINE_PHYS) as *mut u8;
    // SAFETY: the trampoline page is conventional memory below 1 MiB that
    // the frame allocator never hands out and that nothing else uses once
    // boot has read the loader's structures; the direct map maps it. The
    // copy's source is the image's own text.
    unsafe { core::ptr::copy_nonoverlapping(start as *const u8, page, len) };
    let write = |offset: usize, value: u64| {
        // SAFETY: as above; the offsets lie in the page, past the code.
        unsafe { core::ptr::write_volatile(page.add(offset) as *mut u64, value) }
    };
    let others = apic_ids.iter().copied().filter(|&id| id != boot_apic_id);
    for (index, id) in (1..).zip(others) {
        if index >= MAX_CPUS || index >= shared.stacks.len() {
            log::info!("smp: CPU with APIC id {id} left out: Veneer drives {} CPUs", shared.stacks.len().min(MAX_CPUS));
            break;
        }
        APIC_IDS[index].store(id, Ordering::SeqCst);
        write(TRAMP_CR3, hypervisor_l4);
        write(TRAMP_STACK, shared.stacks[index].main_top);
        write(TRAMP_CPU, index as u64);
        let before = online();
        let lapic = apic::local();
        lapic.send_init(id);
        delay_us(10_000, tsc_hz);
        for _ in 0..2 {
            lapic.send_startup(id, TRAMPOLINE_PAGE);
            delay_us(200, tsc_hz);
            if online() > before {
                break;
            }
        }
        // Give it up to a second (TCG is slow to start a CPU).
        let deadline = clock::rdtsc() + tsc_hz;
        while online() == before && clock::rdtsc() < deadline {
            core::hint::spin_loop();
        }
        if online() == before {
            log::info!("smp: CPU {index} (APIC id {id}) did not come up; left out");
            break;
        }
    }
    online()
}

/// An AP's first Rust, on its own stack and the hypervisor's tables.
#[no_mangle]
extern "C" fn ap_main(index: usize) -> ! {
    let shared = SHARED.get().expect("the boot CPU shares its setup before starting APs");
    let f = &shared.features;
    cpu::init(f);
    let stacks = &shared.stacks[index];
    let selectors = gdt::init(stacks);
    idt::load();
    entry::init(index, stacks.main_top, selectors, f.smap, f.pcid);
    apic::init_this_cpu();
    log::info!("smp: CPU {index} online (APIC id {})", apic::local().id());
    if shared.overflow_test && index == 1 {
        crate::fatal::self_test_stack_overflow(index);
    }
    ONLINE.fetch_add(1, Ordering::SeqCst);
    while !GO.load(Ordering::SeqCst) {
        core::hint::spin_loop();
    }
    crate::pcpus::run_cpu()
}

/// Lets the APs start scheduling.
pub fn release() {
    GO.store(true, Ordering::SeqCst);
}

/// The local APIC id of CPU `index`.
fn apic_id(index: usize) -> u32 {
    APIC_IDS[index].load(Ordering::SeqCst)
}

/// Asks CPU `index` to pick again (it runs `RESCHED_VECTOR`'s handler).
pub fn send_resched(index: usize) {
    apic::local().send_ipi(apic_id(index), apic::RESCHED_VECTOR);
}

/// Flushes this CPU's TLB if another CPU asked for it.
pub fn serve_requests() {
    let me = entry::this_cpu();
    if FLUSH_REQUESTED[me].load(Ordering::SeqCst) {
        paging::flush_tlb(PCID.load(Ordering::SeqCst));
        FLUSH_REQUESTED[me].store(false, Ordering::SeqCst);
    }
}

/// Flushes the TLBs of `cpus` (never this one) and returns once they are
/// flushed.
pub fn flush_tlbs(cpus: impl Iterator<Item = usize> + Clone) {
    let me = entry::this_cpu();
    for cpu in cpus.clone() {
        debug_assert_ne!(cpu, me, "this CPU flushes its own TLB");
        FLUSH_REQUESTED[cpu].store(true, Ordering::SeqCst);
        apic::local().send_ipi(apic_id(cpu), WORK_VECTOR);
        SHOOTDOWNS.fetch_add(1, Ordering::Relaxed);
    }
    for cpu in cpus {
        while FLUSH_REQUESTED[cpu].load(Ordering::SeqCst) {
            core::hint::spin_loop();
        }
    }
}

/// The frame table's `RemoteFlush`: every other CPU with a guest loaded.
pub fn flush_other_cpus() {
    let me = entry::this_cpu();
    flush_tlbs((0..online()).filter(move |&c| c != me && entry::has_guest_loaded(c)));
}

/// Shootdowns sent so far.
pub fn shootdowns() -> u64 {
    SHOOTDOWNS.load(Ordering::Relaxed)
}
