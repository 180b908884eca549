//! The vCPUs of an SMP test guest: starting them on their own stacks, and
//! knowing which one runs (through the kernel GS base, as a guest kernel's
//! per-CPU area).

use core::sync::atomic::{AtomicU64, Ordering};

use hypercall_abi::cpu::SegmentBase;
use hypercall_abi::vcpu::{vcpu_flags, VcpuContext};
use hypercall_abi::Error;

use crate::{hypercall, trap, StartInfo};

/// The most vCPUs these helpers start.
pub const MAX_VCPUS: usize = 8;
const STACK_SIZE: usize = 16384;

/// Per-vCPU data the kernel GS base points at: the vCPU's id first.
#[repr(C)]
struct PerVcpu {
    id: AtomicU64,
}

static PER_VCPU: [PerVcpu; MAX_VCPUS] = [const { PerVcpu { id: AtomicU64::new(0) } }; MAX_VCPUS];

#[repr(C, align(16))]
struct Stack([u8; STACK_SIZE]);
static mut STACKS: [Stack; MAX_VCPUS] = [const { Stack([0; STACK_SIZE]) }; MAX_VCPUS];

/// Points vCPU 0's kernel GS base at its per-vCPU data.
pub fn init() {
    hypercall::set_segment_base(SegmentBase::GsKernel, core::ptr::addr_of!(PER_VCPU[0]) as u64).expect("GS base");
}

/// The id of the vCPU running this code.
pub fn this_vcpu() -> usize {
    usize::try_from(trap::gs_word()).expect("a vCPU id")
}

fn vcpu_number(id: usize) -> u32 {
    u32::try_from(id).expect("a vCPU id")
}

// A new vCPU starts here with its id in rdi and its Rust entry in rsi.
core::arch::global_asm!(
    ".global veneer_vcpu_start",
    "veneer_vcpu_start:",
    "and rsp, -16",
    "call rsi",
    "ud2",
);

extern "C" {
    fn veneer_vcpu_start();
}

/// Brings vCPU `id` up at `entry(id)` on a stack of its own, in the
/// bootstrap address space, with events enabled and the caller's trap table
/// and callbacks.
pub fn start_vcpu(start: &StartInfo, id: usize, entry: extern "C" fn(u64) -> !) -> Result<(), Error> {
    initialise_vcpu(start, id, entry)?;
    hypercall::vcpu_up(vcpu_number(id))?;
    Ok(())
}

/// `vcpu_initialise` of vCPU `id` as [`start_vcpu`] does it, without
/// bringing it up.
pub fn initialise_vcpu(start: &StartInfo, id: usize, entry: extern "C" fn(u64) -> !) -> Result<(), Error> {
    assert!((1..MAX_VCPUS).contains(&id), "vCPU {id}");
    PER_VCPU[id].id.store(id as u64, Ordering::SeqCst);
    let ctx = VcpuContext {
        rip: veneer_vcpu_start as *const () as u64,
        rsp: core::ptr::addr_of!(STACKS) as u64 + ((id + 1) * STACK_SIZE) as u64,
        rdi: id as u64,
        rsi: entry as *const () as u64,
        kernel_l4_mfn: trap::bootstrap_l4_mfn(start),
        gs_base_kernel: core::ptr::addr_of!(PER_VCPU[id]) as u64,
        flags: vcpu_flags::EVENTS_ENABLED,
        ..VcpuContext::default()
    };
    hypercall::vcpu_initialise(vcpu_number(id), &ctx)?;
    Ok(())
}
