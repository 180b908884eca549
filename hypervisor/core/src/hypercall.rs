//! Hypercall decoding and handling.
//!
//! Each call is decoded from the saved registers into a typed [`Call`]
//! (every argument checked, nothing changed), then carried out. A call that
//! fails changes nothing and returns an [`Error`] in `rax`.

use core::mem::{offset_of, size_of};

use hypercall_abi::hypercall::{AbiInfo, ShutdownReason, CONSOLE_WRITE_MAX};
use hypercall_abi::version::AbiVersion;
use hypercall_abi::error::encode;
use hypercall_abi::{Error, Hypercall};

use crate::domain::Outcome;
use crate::guest_memory::AddressSpace;
use crate::phys::PhysMemory;
use crate::vcpu::GuestRegisters;

/// A decoded call with its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    AbiQuery { info: u64 },
    ConsoleWrite { buf: u64, len: usize },
    Shutdown(Outcome),
}

/// What the caller of [`handle`] must do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Resume the vCPU with this value in `rax`.
    Return(u64),
    /// The domain has ended.
    End(Outcome),
}

/// The hypervisor's side of the calls: what it offers and where console
/// output goes.
pub struct Services<'a, M: PhysMemory> {
    pub abi: AbiVersion,
    pub features: u64,
    pub mem: &'a mut M,
    pub console: &'a mut dyn FnMut(&[u8]),
}

/// The six argument registers, in ABI order.
fn args(regs: &GuestRegisters) -> [u64; 6] {
    let g = &regs.gprs;
    [g.rdi, g.rsi, g.rdx, g.r10, g.r8, g.r9]
}

/// Checks the number and arguments of the call in `regs`.
pub fn decode(regs: &GuestRegisters) -> Result<Call, Error> {
    let a = args(regs);
    match Hypercall::from_number(regs.gprs.rax).ok_or(Error::NoSuchCall)? {
        Hypercall::AbiQuery => Ok(Call::AbiQuery { info: a[0] }),
        Hypercall::ConsoleWrite => {
            let len = usize::try_from(a[1]).map_err(|_| Error::TooBig)?;
            if len > CONSOLE_WRITE_MAX {
                return Err(Error::TooBig);
            }
            Ok(Call::ConsoleWrite { buf: a[0], len })
        }
        Hypercall::SchedShutdown => {
            let reason = ShutdownReason::from_number(a[0]).ok_or(Error::Invalid)?;
            let code = u32::try_from(a[1]).map_err(|_| Error::Invalid)?;
            Ok(Call::Shutdown(match reason {
                ShutdownReason::Poweroff => Outcome::Poweroff(code),
                ShutdownReason::Reboot => Outcome::Reboot(code),
                ShutdownReason::Crash => Outcome::Crash(code),
            }))
        }
        // The rest of ABI v1 is specified but not yet served by this
        // hypervisor; it answers exactly as for an unknown number.
        _ => Err(Error::NoSuchCall),
    }
}

/// Decodes and carries out the call in `regs` for the vCPU running in
/// `space`.
pub fn handle<M: PhysMemory>(regs: &GuestRegisters, space: AddressSpace, hv: &mut Services<'_, M>) -> Disposition {
    let call = match decode(regs) {
        Ok(call) => call,
        Err(e) => return Disposition::Return(e.to_return()),
    };
    let result = match call {
        Call::Shutdown(outcome) => return Disposition::End(outcome),
        Call::AbiQuery { info } => {
            let mut bytes = [0u8; size_of::<AbiInfo>()];
            bytes[offset_of!(AbiInfo, major)..][..2].copy_from_slice(&hv.abi.major.to_le_bytes());
            bytes[offset_of!(AbiInfo, minor)..][..2].copy_from_slice(&hv.abi.minor.to_le_bytes());
            bytes[offset_of!(AbiInfo, features)..][..8].copy_from_slice(&hv.features.to_le_bytes());
            space.copy_to(hv.mem, info, &bytes).map(|()| 0)
        }
        Call::ConsoleWrite { buf, len } => {
            let console = &mut hv.console;
            space.read_chunks(hv.mem, buf, len, |bytes| console(bytes)).map(|()| len as u64)
        }
    };
    Disposition::Return(encode(result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Mfn;
    use crate::domain_builder::{build, DomainSpec, HypervisorSlots};
    use crate::domain::DomainId;
    use crate::elf_image::GuestImage;
    use crate::frame_allocator::FrameAllocator;
    use crate::pte::Pte;
    use crate::test_support::{ElfBuilder, VecMemory};

    const V1: AbiVersion = AbiVersion { major: 1, minor: 0 };
    const DATA: u64 = 0xffff_ffff_8000_1000;
    const TEXT: u64 = 0xffff_ffff_8000_0000;
    /// End of the bootstrap region of the 1 MiB test domain: image (3 pages),
    /// start info, p2m, page tables (4), stack (4); nothing is mapped after.
    const END: u64 = TEXT + 13 * 0x1000;

    fn call(nr: u64, a: [u64; 6]) -> GuestRegisters {
        let mut r = GuestRegisters::default();
        (r.gprs.rax, r.gprs.rdi, r.gprs.rsi, r.gprs.rdx, r.gprs.r10, r.gprs.r8, r.gprs.r9) =
            (nr, a[0], a[1], a[2], a[3], a[4], a[5]);
        r
    }

    /// Runs `regs` against a freshly built domain; returns the disposition,
    /// the console output and the domain's data page afterwards.
    fn run(regs: GuestRegisters, data: &[u8]) -> (Disposition, Vec<u8>, Vec<u8>) {
        let bytes = ElfBuilder::guest().build();
        let image = GuestImage::parse(&bytes, V1, 0).unwrap();
        let mut mem = VecMemory::new(1024);
        let mut frames = FrameAllocator::new(&[Mfn(16)..Mfn(1024)], &[]);
        let spec = DomainSpec { id: DomainId(1), name: "t", image: &image, memory_bytes: 1 << 20, cmdline: "", ramdisk: None, abi: V1, features: 0b101 };
        let slots: HypervisorSlots = [Pte(0); 16];
        let d = build(&spec, &slots, &mut frames, &mut mem).unwrap();
        d.space.copy_to(&mut mem, DATA, data).unwrap();
        let mut out = Vec::new();
        let mut sink = |b: &[u8]| out.extend_from_slice(b);
        let disp = handle(&regs, d.space, &mut Services { abi: V1, features: 0b101, mem: &mut mem, console: &mut sink });
        let mut page = vec![0u8; 64];
        d.space.copy_from(&mem, DATA, &mut page).unwrap();
        (disp, out, page)
    }

    fn err(e: Error) -> Disposition {
        Disposition::Return(e.to_return())
    }

    #[test]
    fn abi_query_writes_version_and_features() {
        let (d, _, page) = run(call(0, [DATA + 8, 0, 0, 0, 0, 0]), &[0xee; 32]);
        assert_eq!(d, Disposition::Return(0));
        assert_eq!(&page[..8], &[0xee; 8]);
        assert_eq!(&page[8..12], &[1, 0, 0, 0]);
        assert_eq!(u64::from_le_bytes(page[16..24].try_into().unwrap()), 0b101);
        assert_eq!(&page[24..32], &[0xee; 8]);
    }

    #[test]
    fn abi_query_refuses_bad_pointers() {
        for bad in [0, TEXT, DATA - 8, END - 8, END, 0xffff_8000_0000_0000, 0x8000_0000_0000, u64::MAX] {
            let (d, _, page) = run(call(0, [bad, 0, 0, 0, 0, 0]), &[0xee; 32]);
            assert_eq!(d, err(Error::BadAddress), "pointer {bad:#x}");
            assert_eq!(&page[..32], &[0xee; 32]);
        }
    }

    #[test]
    fn console_write_copies_exactly_len_bytes() {
        let (d, out, _) = run(call(1, [DATA, 5, 0, 0, 0, 0]), b"hello world");
        assert_eq!(d, Disposition::Return(5));
        assert_eq!(out, b"hello");
        let (d, out, _) = run(call(1, [END - 3, 3, 0, 0, 0, 0]), b"");
        assert_eq!((d, out.len()), (Disposition::Return(3), 3), "the last mapped bytes are readable");
        let (d, out, _) = run(call(1, [DATA, 0, 0, 0, 0, 0]), b"x");
        assert_eq!((d, out.len()), (Disposition::Return(0), 0));
    }

    #[test]
    fn console_write_refuses_bad_input() {
        let max = CONSOLE_WRITE_MAX as u64;
        for (buf, len, e) in [
            (DATA, max + 1, Error::TooBig),
            (DATA, u64::MAX, Error::TooBig),
            (0xffff_8000_0000_0000, 4, Error::BadAddress),
            (0x1234_0000, 4, Error::BadAddress),
            (END - 2, 4, Error::BadAddress),
            (END, 1, Error::BadAddress),
        ] {
            let (d, out, _) = run(call(1, [buf, len, 0, 0, 0, 0]), b"");
            assert_eq!(d, err(e), "buf {buf:#x} len {len}");
            assert!(out.is_empty());
        }
    }

    #[test]
    fn shutdown_reasons_and_codes() {
        assert_eq!(run(call(0x53, [0, 7, 0, 0, 0, 0]), b"").0, Disposition::End(Outcome::Poweroff(7)));
        assert_eq!(run(call(0x53, [1, 0, 0, 0, 0, 0]), b"").0, Disposition::End(Outcome::Reboot(0)));
        assert_eq!(run(call(0x53, [2, 9, 0, 0, 0, 0]), b"").0, Disposition::End(Outcome::Crash(9)));
        assert_eq!(run(call(0x53, [3, 0, 0, 0, 0, 0]), b"").0, err(Error::Invalid));
        assert_eq!(run(call(0x53, [0, 1 << 32, 0, 0, 0, 0]), b"").0, err(Error::Invalid));
    }

    #[test]
    fn unknown_numbers_answer_no_such_call() {
        for nr in [2, 0x52, 0x54, 0xff, 1 << 32, u64::MAX] {
            assert_eq!(run(call(nr, [0; 6]), b"").0, err(Error::NoSuchCall), "number {nr:#x}");
        }
    }
}
