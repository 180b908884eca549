//! A virtual CPU's register state, as the entry code saves it.
//!
//! The layout is shared with the assembly in `arch/x86_64/entry.S`, which
//! addresses fields through `offset_of!` constants, never by hand.

use crate::addr::Mfn;

/// General-purpose registers except `rsp`, in the order the entry code
/// stores them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Gprs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
}

/// Everything needed to resume a vCPU in ring 3.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct GuestRegisters {
    pub gprs: Gprs,
    pub rip: u64,
    pub rflags: u64,
    pub rsp: u64,
}

/// A virtual CPU: its registers and the address spaces it runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vcpu {
    pub regs: GuestRegisters,
    /// The L4 table of guest kernel mode (its CR3); holds a use (M6).
    pub kernel_base: Mfn,
    /// The L4 table of guest user mode, once the guest installs one.
    pub user_base: Option<Mfn>,
}

/// RFLAGS bits a guest may hold: CF PF AF ZF SF TF DF OF, AC, ID.
/// IF is always set and IOPL always 0: a ring-3 kernel neither masks real
/// interrupts nor reaches I/O ports.
pub const RFLAGS_GUEST_MASK: u64 = 0x0000_0000_0024_0dd5;
pub const RFLAGS_IF: u64 = 1 << 9;
/// Bit 1 of RFLAGS reads as one.
pub const RFLAGS_FIXED: u64 = 1 << 1;

impl GuestRegisters {
    /// The registers a vCPU starts with: everything zero but the entry
    /// point, the stack and the first argument.
    pub fn at_entry(rip: u64, rsp: u64, rdi: u64) -> GuestRegisters {
        GuestRegisters {
            gprs: Gprs { rdi, ..Gprs::default() },
            rip,
            rsp,
            rflags: RFLAGS_FIXED | RFLAGS_IF,
        }
    }

    /// Forces RFLAGS to a value ring 3 may run with.
    pub fn sanitize_rflags(&mut self) {
        self.rflags = (self.rflags & RFLAGS_GUEST_MASK) | RFLAGS_FIXED | RFLAGS_IF;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rflags_never_grants_iopl_or_clears_if() {
        let mut r = GuestRegisters { rflags: u64::MAX, ..GuestRegisters::default() };
        r.sanitize_rflags();
        assert_eq!(r.rflags & (3 << 12), 0, "IOPL");
        assert_ne!(r.rflags & RFLAGS_IF, 0);
        assert_eq!(r.rflags & (1 << 17), 0, "VM");
        assert_eq!(r.rflags & (1 << 14), 0, "NT");
        r.rflags = 0;
        r.sanitize_rflags();
        assert_eq!(r.rflags, RFLAGS_FIXED | RFLAGS_IF);
    }
}
