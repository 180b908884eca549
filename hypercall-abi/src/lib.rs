//! The Veneer hypercall ABI, version 1.
//!
//! This crate is the single source of truth for everything a guest and the
//! hypervisor agree on: call numbers, error codes, the layout of shared
//! structures, ring index arithmetic and the ELF note a guest kernel
//! carries. The C headers under `include/veneer/` and the tables in
//! `SPEC.md` are generated from [`catalog::MODULES`] by the `cgen` crate;
//! `SPEC.md` describes the semantics.
//!
//! Every `repr(C)` structure is defined through [`abi_struct!`], which
//! asserts its size and every field offset at compile time and refuses
//! implicit padding.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

#[macro_use]
pub mod layout;

pub mod blk;
pub mod console;
pub mod counters;
pub mod cpu;
pub mod device;
pub mod domctl;
pub mod domid;
pub mod error;
pub mod event;
pub mod features;
pub mod grant;
pub mod hypercall;
pub mod memory;
pub mod multicall;
pub mod net;
pub mod note;
pub mod physdev;
pub mod ring;
pub mod shared_info;
pub mod start_info;
pub mod vcpu;
pub mod version;

#[cfg(all(feature = "guest", target_arch = "x86_64"))]
#[allow(unsafe_code)]
pub mod call;

pub use error::Error;
pub use hypercall::Hypercall;

/// The ABI as data, in header order: what the generator walks.
pub mod catalog {
    use crate::layout::{AbiStruct, Item, Module};
    use crate::*;

    macro_rules! s {
        ($t:ty) => {
            Item::Struct(&<$t as AbiStruct>::LAYOUT)
        };
    }
    macro_rules! v {
        ($t:expr) => {
            Item::Values(&$t)
        };
    }

    /// Every module of the ABI; each becomes `include/veneer/<name>.h`.
    pub const MODULES: &[Module] = &[
        Module {
            name: "version",
            doc: "ABI version, error codes, feature bits, reserved domain ids",
            items: &[
                v!(version::abi_version::TABLE),
                v!(error::Error::TABLE),
                v!(features::TABLE),
                v!(domid::domid::TABLE),
            ],
        },
        Module {
            name: "hypercall",
            doc: "hypercall numbers and the base calls",
            items: &[
                v!(hypercall::Hypercall::TABLE),
                v!(hypercall::base_limits::TABLE),
                v!(hypercall::ShutdownReason::TABLE),
                s!(hypercall::AbiInfo),
            ],
        },
        Module {
            name: "note",
            doc: "the guest ELF note",
            items: &[v!(note::note_consts::TABLE), s!(note::GuestNote)],
        },
        Module {
            name: "start_info",
            doc: "the start-info page",
            items: &[
                v!(start_info::start_info_consts::TABLE),
                v!(start_info::start_flags::TABLE),
                s!(start_info::StartInfo),
                s!(start_info::StartInfoExt),
            ],
        },
        Module {
            name: "shared_info",
            doc: "the shared-info page: per-vCPU state, event bitmaps, time",
            items: &[
                v!(shared_info::shared_info_consts::TABLE),
                v!(shared_info::time_flags::TABLE),
                s!(shared_info::VcpuTimeInfo),
                s!(shared_info::VcpuInfo),
                s!(shared_info::Wallclock),
                s!(shared_info::SharedInfo),
            ],
        },
        Module {
            name: "memory",
            doc: "page-table updates, pinning, TLB flushes, memory maps, reservations",
            items: &[
                v!(memory::memory_consts::TABLE),
                v!(memory::pte::TABLE),
                v!(memory::MmuUpdateCmd::TABLE),
                s!(memory::MmuUpdate),
                v!(memory::MmuextCmd::TABLE),
                s!(memory::MmuextOp),
                v!(memory::uvmf::TABLE),
                v!(memory::MemoryKind::TABLE),
                s!(memory::MemoryMapEntry),
                s!(memory::Reservation),
                s!(memory::ReservationExchange),
                s!(memory::ReservationInfo),
            ],
        },
        Module {
            name: "cpu",
            doc: "traps, entry points, segments, descriptor tables, CPUID and MSRs",
            items: &[
                v!(cpu::selectors::TABLE),
                v!(cpu::cpu_limits::TABLE),
                v!(cpu::trap_flags::TABLE),
                s!(cpu::TrapInfo),
                s!(cpu::TrapFrame),
                v!(cpu::iret_flags::TABLE),
                s!(cpu::IretFrame),
                v!(cpu::CallbackKind::TABLE),
                v!(cpu::callback_flags::TABLE),
                v!(cpu::SegmentBase::TABLE),
                v!(cpu::io_privilege::TABLE),
                s!(cpu::CpuidResult),
                v!(cpu::msr::TABLE),
                v!(cpu::descriptor::TABLE),
            ],
        },
        Module {
            name: "vcpu",
            doc: "vCPU bring-up and runstate",
            items: &[
                v!(vcpu::vcpu_flags::TABLE),
                s!(vcpu::VcpuContext),
                v!(vcpu::RunstateState::TABLE),
                s!(vcpu::RunstateInfo),
            ],
        },
        Module {
            name: "event",
            doc: "event channels, virtual IRQs, timer and scheduler limits",
            items: &[
                v!(event::Virq::TABLE),
                v!(event::EvtchnState::TABLE),
                s!(event::EvtchnStatus),
                v!(event::event_consts::TABLE),
            ],
        },
        Module {
            name: "grant",
            doc: "grant tables",
            items: &[
                v!(grant::grant_consts::TABLE),
                v!(grant::grant_flags::TABLE),
                s!(grant::GrantEntry),
                v!(grant::grant_op_flags::TABLE),
                s!(grant::GrantMapOp),
                s!(grant::GrantUnmapOp),
                s!(grant::GrantCopySeg),
                s!(grant::GrantCopyOp),
                s!(grant::GrantTableInfo),
            ],
        },
        Module {
            name: "ring",
            doc: "the generic shared ring and the ring library",
            items: &[v!(ring::ring_consts::TABLE), s!(ring::RingHeader), Item::Code(&ring::C_LIBRARY)],
        },
        Module {
            name: "device",
            doc: "split-device slots and the frontend/backend handshake",
            items: &[
                v!(device::DeviceKind::TABLE),
                v!(device::DeviceRole::TABLE),
                v!(device::DeviceState::TABLE),
                v!(device::device_consts::TABLE),
                v!(device::device_features::TABLE),
                s!(device::DeviceParams),
                s!(device::DeviceConnect),
                s!(device::DeviceInfo),
                s!(device::DeviceCreate),
            ],
        },
        Module {
            name: "blk",
            doc: "the block protocol",
            items: &[
                v!(blk::BlkOp::TABLE),
                v!(blk::blk_consts::TABLE),
                v!(blk::BlkStatus::TABLE),
                s!(blk::BlkSegment),
                s!(blk::BlkRequest),
                s!(blk::BlkResponse),
            ],
        },
        Module {
            name: "net",
            doc: "the network protocol",
            items: &[
                v!(net::net_consts::TABLE),
                v!(net::net_flags::TABLE),
                v!(net::NetStatus::TABLE),
                s!(net::NetTxRequest),
                s!(net::NetTxResponse),
                s!(net::NetRxRequest),
                s!(net::NetRxResponse),
            ],
        },
        Module {
            name: "console",
            doc: "the console protocol",
            items: &[
                v!(console::ConsoleOp::TABLE),
                v!(console::console_consts::TABLE),
                s!(console::ConsoleSlot),
            ],
        },
        Module {
            name: "multicall",
            doc: "multicall",
            items: &[v!(multicall::multicall_consts::TABLE), s!(multicall::MulticallEntry)],
        },
        Module {
            name: "domctl",
            doc: "domain control",
            items: &[
                v!(domctl::domain_create_flags::TABLE),
                s!(domctl::DomainCreate),
                s!(domctl::DomainBuild),
                v!(domctl::domain_flags::TABLE),
                s!(domctl::DomainInfo),
                v!(domctl::IoResource::TABLE),
            ],
        },
        Module {
            name: "physdev",
            doc: "physical devices for driver domains",
            items: &[
                v!(physdev::irq_flags::TABLE),
                v!(physdev::msi_flags::TABLE),
                v!(physdev::physdev_consts::TABLE),
            ],
        },
        Module {
            name: "counters",
            doc: "measurement counters",
            items: &[
                v!(counters::CounterEvent::TABLE),
                v!(counters::counter_consts::TABLE),
                s!(counters::Counter),
            ],
        },
    ];
}
