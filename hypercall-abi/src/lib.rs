//! The Veneer hypercall ABI, version 1.
//!
//! This crate is the single source of truth for everything a guest and the
//! hypervisor agree on: call numbers, error codes, the layout of shared
//! structures and the ELF note a guest kernel carries. The C headers under
//! `include/` are generated from it; `SPEC.md` describes the semantics.
#![no_std]

pub mod error;
pub mod hypercall;
pub mod note;
pub mod start_info;
pub mod version;

#[cfg(all(feature = "guest", target_arch = "x86_64"))]
pub mod call;

pub use error::Error;
pub use hypercall::Hypercall;
