//! Every vCPU call refuses bad input (section 14): vCPUs the domain does
//! not have (`NotFound`, also for ids wider than 32 bits), contexts that
//! break C2 (entry point or stack in the hypervisor or off the canonical
//! range), M6 (a kernel or user base pointer that is not an L4 frame), an
//! unaligned or unroomy kernel stack, non-canonical segment bases,
//! undefined flags or reserved fields, an unreadable context, and
//! misaligned or hypervisor runstate areas. A refused `vcpu_initialise`
//! leaves the vCPU uninitialised (`vcpu_up` still says `Invalid`).
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::vcpu::VcpuContext;
use veneer_guest::hypercall_abi::{Error, Hypercall};
use veneer_guest::{check, hypercall, trap, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");
veneer_guest::vcpus!(b"2");

#[repr(C, align(16))]
struct Stack([u8; 4096]);
static mut STACK: Stack = Stack([0; 4096]);

fn main(start: &StartInfo) -> ! {
    let l4 = trap::bootstrap_l4_mfn(start);
    // SAFETY: the p2m array is mapped at p2m_base; entry 0 is an image frame.
    let image_mfn = unsafe { core::ptr::read_volatile(start.p2m_base as *const u64) };
    let good = VcpuContext { rip: main as *const () as u64, rsp: core::ptr::addr_of!(STACK) as u64 + 4096, kernel_l4_mfn: l4, ..VcpuContext::default() };
    let raw = |call: Hypercall, a: u64, b: u64| hypercall::raw(call.number(), [a, b, 0, 0, 0, 0]);
    for vcpu in [2u64, 31, 32, u64::from(u32::MAX), 1 << 32] {
        check!(raw(Hypercall::VcpuInitialise, vcpu, &good as *const _ as u64) == Err(Error::NotFound), "initialise vCPU {:#x}", vcpu);
        for call in [Hypercall::VcpuUp, Hypercall::VcpuDown, Hypercall::VcpuIsUp] {
            check!(raw(call, vcpu, 0) == Err(Error::NotFound), "{:?} vCPU {:#x}", call, vcpu);
        }
        check!(raw(Hypercall::VcpuRegisterRunstate, vcpu, 0) == Err(Error::NotFound), "runstate vCPU {:#x}", vcpu);
    }
    let bad: [(&str, VcpuContext); 11] = [
        ("rip in the hypervisor", VcpuContext { rip: 0xffff_8780_0020_0000, ..good }),
        ("non-canonical rip", VcpuContext { rip: 0x8000_0000_0000, ..good }),
        ("rsp in the direct map", VcpuContext { rsp: 0xffff_8000_0010_0000, ..good }),
        ("kernel base not an L4", VcpuContext { kernel_l4_mfn: image_mfn, ..good }),
        ("no kernel base", VcpuContext { kernel_l4_mfn: 0, ..good }),
        ("user base not an L4", VcpuContext { user_l4_mfn: image_mfn, ..good }),
        ("unaligned kernel stack", VcpuContext { kernel_sp: good.rsp - 8, ..good }),
        ("kernel stack without room", VcpuContext { kernel_sp: 0xffff_8800_0000_0040, ..good }),
        ("non-canonical GS base", VcpuContext { gs_base_user: 1 << 63, ..good }),
        ("undefined flag", VcpuContext { flags: 2, ..good }),
        ("reserved field", VcpuContext { reserved0: [0, 0, 1, 0, 0], ..good }),
    ];
    for (what, ctx) in bad {
        check!(hypercall::vcpu_initialise(1, &ctx) == Err(Error::Invalid), "context with {}", what);
    }
    check!(raw(Hypercall::VcpuInitialise, 1, 0x1000) == Err(Error::BadAddress), "unmapped context");
    check!(hypercall::vcpu_up(1) == Err(Error::Invalid), "a refused context left vCPU 1 uninitialised");
    for (what, va) in [("misaligned", core::ptr::addr_of!(STACK) as u64 + 4), ("in the hypervisor", 0xffff_8000_0000_0000), ("non-canonical", 0x8000_0000_0000)] {
        check!(raw(Hypercall::VcpuRegisterRunstate, 1, va) == Err(Error::Invalid), "runstate area {}", what);
    }
    check!(hypercall::vcpu_down(1) == Ok(0), "down of an offline vCPU is a no-op");
    check!(hypercall::vcpu_is_up(0) == Ok(1) && hypercall::vcpu_is_up(1) == Ok(0), "states unchanged");
    veneer_guest::success()
}
