//! Veneer's hardware-independent logic.
//!
//! Everything here is plain Rust that compiles for the host as well as for
//! the bare-metal hypervisor, so `cargo test` exercises it without booting
//! anything. Machine memory is reached through the [`phys::PhysMemory`]
//! trait: the hypervisor implements it over its direct map, the tests over a
//! `Vec`. The `unsafe` the hypervisor needs lives in its `arch` layer, never
//! here.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod acpi;
pub mod addr;
pub mod bundle;
pub mod config;
pub mod console;
pub mod cpuid;
pub mod device;
pub mod domain;
pub mod domain_builder;
pub mod elf_image;
pub mod event_channel;
pub mod frame_allocator;
pub mod frame_table;
pub mod grant_table;
pub mod guest_memory;
pub mod hv_backend;
pub mod hypercall;
pub mod m2p;
pub mod machine;
pub mod mmu;
pub mod phys;
pub mod pte;
pub mod scheduler;
pub mod time;
pub mod trapped_write;
pub mod vcpu;

#[cfg(test)]
mod test_support;
