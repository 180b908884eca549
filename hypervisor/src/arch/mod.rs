//! Hardware access, by architecture.
pub mod x86_64;
