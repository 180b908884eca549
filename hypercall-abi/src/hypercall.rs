//! Hypercall numbers.
//!
//! A guest kernel issues `syscall` with the number in `rax` and arguments in
//! `rdi, rsi, rdx, r10, r8, r9`; the result comes back in `rax` (negative:
//! an [`Error`](crate::Error)). Every other register, vector registers
//! included, is preserved except `rcx` and `r11`, which `syscall` clobbers.
//!
//! Numbers are grouped by area and are never reused: a retired call keeps
//! its number and answers `NoSuchCall`.

/// Every hypercall of ABI v1, by number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Hypercall {
    /// `abi_query(info: *mut AbiInfo) -> 0`: the ABI version and features.
    AbiQuery = 0x00,
    /// `console_write(buf: *const u8, len: usize) -> len`: append to the
    /// domain's console.
    ConsoleWrite = 0x01,
    /// `sched_shutdown(reason: ShutdownReason, code: u32) -> !`: end the
    /// domain.
    SchedShutdown = 0x53,
}

impl Hypercall {
    /// Every call, for tables and exhaustive tests.
    pub const ALL: [Hypercall; 3] =
        [Hypercall::AbiQuery, Hypercall::ConsoleWrite, Hypercall::SchedShutdown];

    /// The call with this number, if there is one.
    pub fn from_number(number: u64) -> Option<Hypercall> {
        Hypercall::ALL.iter().copied().find(|h| *h as u64 == number)
    }

    /// The number placed in `rax`.
    pub const fn number(self) -> u64 {
        self as u64
    }
}

/// The most bytes one `console_write` accepts.
pub const CONSOLE_WRITE_MAX: usize = 4096;

/// Why a domain shuts down (`sched_shutdown`, first argument).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum ShutdownReason {
    /// Orderly power-off; the code is the domain's exit status.
    Poweroff = 0,
    /// The domain asks to be restarted.
    Reboot = 1,
    /// The domain detected a fatal error; the code says which.
    Crash = 2,
}

impl ShutdownReason {
    pub fn from_number(n: u64) -> Option<ShutdownReason> {
        match n {
            0 => Some(ShutdownReason::Poweroff),
            1 => Some(ShutdownReason::Reboot),
            2 => Some(ShutdownReason::Crash),
            _ => None,
        }
    }
}

/// What `abi_query` writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct AbiInfo {
    pub major: u16,
    pub minor: u16,
    /// Must be zero.
    pub reserved0: u32,
    /// Feature bits the hypervisor offers (`features` module).
    pub features: u64,
}
const _: () = assert!(core::mem::size_of::<AbiInfo>() == 16);
const _: () = assert!(core::mem::offset_of!(AbiInfo, features) == 8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_unique_and_round_trip() {
        for (i, a) in Hypercall::ALL.iter().enumerate() {
            assert_eq!(Hypercall::from_number(a.number()), Some(*a));
            for b in &Hypercall::ALL[i + 1..] {
                assert_ne!(a.number(), b.number());
            }
        }
        assert_eq!(Hypercall::from_number(0xffff), None);
        assert_eq!(Hypercall::from_number(u64::MAX), None);
    }
}
