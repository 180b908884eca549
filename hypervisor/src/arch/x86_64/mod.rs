//! The x86_64 layer: everything that touches hardware. The only place in
//! the hypervisor with `unsafe`.

pub mod apic;
pub mod clock;
pub mod cpu;
pub mod direct_map;
pub mod entry;
pub mod fpu;
pub mod gdt;
pub mod idt;
pub mod lock;
pub mod paging;
pub mod pic;
pub mod pvh;
pub mod qemu_exit;
pub mod serial;
pub mod smp;

core::arch::global_asm!(include_str!("boot.S"), options(att_syntax));
