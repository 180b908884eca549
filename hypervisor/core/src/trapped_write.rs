//! Trapped page-table writes (SPEC §12.8).
//!
//! A guest kernel's plain store to one of its own L1 tables, through the
//! read-only mapping every page table has, raises a page fault. Generic
//! kernel code does this (Linux's `ptep_get_and_clear` is an `xchg`), so
//! rather than make every such site a hypercall the hypervisor decodes the
//! faulting instruction and, if it is one of a few 8-byte stores to an
//! aligned entry, applies it exactly as an `mmu_update` of that entry would:
//! validated, or refused. A refused or unrecognised write is never applied;
//! the page fault stands and goes to the guest (today: stops the domain, as
//! a guest has no trap table yet).
//!
//! Emulated, with an optional `lock` prefix and a REX prefix with W set:
//! `mov r/m64, r64` (89 /r), `mov r/m64, imm32` (C7 /0), `xchg r/m64, r64`
//! (87 /r) and `cmpxchg r/m64, r64` (0F B1 /r). The memory operand must
//! compute to the faulting address. Writes to L2–L4 tables are never
//! emulated: they change far more than one mapping and are rare enough to
//! be hypercalls.

use hypercall_abi::Error;

use crate::domain::Domain;
use crate::guest_memory::{Access, AddressSpace};
use crate::machine::MachineMemory;
use crate::phys::PhysMemory;
use crate::vcpu::{GuestRegisters, Mode};

/// Why a page fault is not an emulated page-table write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not a write to a present read-only mapping of one of the domain's L1
    /// tables.
    NotPageTableWrite,
    /// The instruction is not one this module emulates, or does not write
    /// exactly the faulting entry.
    Unrecognised,
    /// The write was decoded but its new entry breaks a rule.
    Rejected(Error),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Register(u8),
    Immediate(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Mov(Source),
    Xchg(u8),
    Cmpxchg(u8),
}

/// A memory operand: `[base + index * scale + disp]` or `[rip + disp]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Address {
    base: Option<u8>,
    index: Option<(u8, u64)>,
    disp: i64,
    rip_relative: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Instruction {
    op: Op,
    address: Address,
    len: u64,
}

/// Decodes the instructions this module emulates; `None` for anything else.
fn decode(bytes: &[u8]) -> Option<Instruction> {
    let mut at = 0;
    let byte = |at: &mut usize| -> Option<u8> {
        let b = *bytes.get(*at)?;
        *at += 1;
        Some(b)
    };
    let mut first = byte(&mut at)?;
    let lock = first == 0xf0;
    if lock {
        first = byte(&mut at)?;
    }
    // REX.W: a 64-bit operand, one whole entry.
    if first & 0xf8 != 0x48 {
        return None;
    }
    let (rex_r, rex_x, rex_b) = ((first >> 2) & 1, (first >> 1) & 1, first & 1);
    let opcode = match byte(&mut at)? {
        0x0f => 0x0f00 | u16::from(byte(&mut at)?),
        op => u16::from(op),
    };
    let modrm = byte(&mut at)?;
    let (mode, reg, rm) = (modrm >> 6, ((modrm >> 3) & 7) | rex_r << 3, modrm & 7);
    if mode == 3 {
        return None;
    }
    let mut address = Address { base: None, index: None, disp: 0, rip_relative: false };
    let mut disp32 = mode == 2;
    if rm == 4 {
        let sib = byte(&mut at)?;
        let index = ((sib >> 3) & 7) | rex_x << 3;
        if index != 4 {
            address.index = Some((index, 1 << (sib >> 6)));
        }
        if sib & 7 == 5 && mode == 0 {
            disp32 = true;
        } else {
            address.base = Some((sib & 7) | rex_b << 3);
        }
    } else if rm == 5 && mode == 0 {
        address.rip_relative = true;
        disp32 = true;
    } else {
        address.base = Some(rm | rex_b << 3);
    }
    if mode == 1 {
        address.disp = i64::from(byte(&mut at)? as i8);
    } else if disp32 {
        let d = [byte(&mut at)?, byte(&mut at)?, byte(&mut at)?, byte(&mut at)?];
        address.disp = i64::from(i32::from_le_bytes(d));
    }
    let op = match (opcode, lock) {
        (0x89, false) => Op::Mov(Source::Register(reg)),
        (0xc7, false) if reg & 7 == 0 => {
            let i = [byte(&mut at)?, byte(&mut at)?, byte(&mut at)?, byte(&mut at)?];
            Op::Mov(Source::Immediate(i64::from(i32::from_le_bytes(i)) as u64))
        }
        (0x87, _) => Op::Xchg(reg),
        (0x0fb1, _) => Op::Cmpxchg(reg),
        _ => return None,
    };
    Some(Instruction { op, address, len: at as u64 })
}

/// The general register numbered as in ModRM (0 rax ... 4 rsp ... 15 r15).
fn register(regs: &mut GuestRegisters, n: u8) -> &mut u64 {
    let g = &mut regs.gprs;
    match n {
        0 => &mut g.rax,
        1 => &mut g.rcx,
        2 => &mut g.rdx,
        3 => &mut g.rbx,
        4 => &mut regs.rsp,
        5 => &mut g.rbp,
        6 => &mut g.rsi,
        7 => &mut g.rdi,
        8 => &mut g.r8,
        9 => &mut g.r9,
        10 => &mut g.r10,
        11 => &mut g.r11,
        12 => &mut g.r12,
        13 => &mut g.r13,
        14 => &mut g.r14,
        _ => &mut g.r15,
    }
}

fn effective_address(i: &Instruction, regs: &mut GuestRegisters) -> u64 {
    let a = i.address;
    let mut ea = a.disp as u64;
    if a.rip_relative {
        ea = ea.wrapping_add(regs.rip.wrapping_add(i.len));
    }
    if let Some(base) = a.base {
        ea = ea.wrapping_add(*register(regs, base));
    }
    if let Some((index, scale)) = a.index {
        ea = ea.wrapping_add(register(regs, index).wrapping_mul(scale));
    }
    ea
}

/// RFLAGS as `cmp a, b` leaves them (CF PF AF ZF SF OF), other bits kept.
fn cmp_flags(rflags: u64, a: u64, b: u64) -> u64 {
    const ARITHMETIC: u64 = 1 | 1 << 2 | 1 << 4 | 1 << 6 | 1 << 7 | 1 << 11;
    let r = a.wrapping_sub(b);
    let bit = |cond: bool, n: u32| u64::from(cond) << n;
    let flags = bit(a < b, 0)
        | bit((r & 0xff).count_ones().is_multiple_of(2), 2)
        | bit((a ^ b ^ r) & 0x10 != 0, 4)
        | bit(r == 0, 6)
        | bit(r >> 63 == 1, 7)
        | bit(((a ^ b) & (a ^ r)) >> 63 == 1, 11);
    (rflags & !ARITHMETIC) | flags
}

/// The page-fault error code of a user-mode write to a present page.
const USER_WRITE_PROTECTION: u64 = 0b111;

/// Reads up to 15 instruction bytes at `rip`, as far as they are readable.
fn fetch(space: AddressSpace, mem: &impl PhysMemory, rip: u64, bytes: &mut [u8; 15]) -> usize {
    let first_page = (4096 - (rip % 4096) as usize).min(bytes.len());
    if space.copy_from(mem, rip, &mut bytes[..first_page]).is_err() {
        return 0;
    }
    if first_page < bytes.len() && space.copy_from(mem, rip + first_page as u64, &mut bytes[first_page..]).is_ok() {
        return bytes.len();
    }
    first_page
}

/// Emulates the page fault at `fault_addr` with `error_code` if it is a
/// trapped write to one of the domain's L1 tables: applies it as a
/// validated update and advances `regs` past the instruction. Otherwise
/// (or if the update is refused) changes nothing and says why. Only guest
/// kernel mode's writes are emulated: a guest user process that can see a
/// page table gets the fault, never an update.
pub fn emulate<M: PhysMemory>(
    regs: &mut GuestRegisters,
    fault_addr: u64,
    error_code: u64,
    dom: &Domain,
    vcpu: usize,
    machine: &mut MachineMemory,
    mem: &mut M,
) -> Result<(), Refused> {
    // Present, write, user; not a reserved-bit fault, not a fetch.
    if error_code & 0x1f != USER_WRITE_PROTECTION || dom.vcpus[vcpu].mode() != Mode::Kernel {
        return Err(Refused::NotPageTableWrite);
    }
    let space = dom.space(vcpu);
    let (table, offset) = space.translate(mem, fault_addr, Access::Read).map_err(|_| Refused::NotPageTableWrite)?;
    if machine.frames.table_level(table, dom.id) != Some(1) {
        return Err(Refused::NotPageTableWrite);
    }
    let mut bytes = [0u8; 15];
    let n = fetch(space, mem, regs.rip, &mut bytes);
    let insn = decode(&bytes[..n]).ok_or(Refused::Unrecognised)?;
    if offset % 8 != 0 || effective_address(&insn, regs) != fault_addr {
        return Err(Refused::Unrecognised);
    }
    let index = offset / 8;
    let old = mem.read_u64(table, index);
    let mut write = |value: u64, mem: &mut M| {
        machine.frames.update_entry(dom.id, table, index, value, false, mem).map_err(Refused::Rejected)
    };
    match insn.op {
        Op::Mov(Source::Register(r)) => write(*register(regs, r), mem)?,
        Op::Mov(Source::Immediate(v)) => write(v, mem)?,
        Op::Xchg(r) => {
            write(*register(regs, r), mem)?;
            *register(regs, r) = old;
        }
        Op::Cmpxchg(r) => {
            let expected = regs.gprs.rax;
            if expected == old {
                write(*register(regs, r), mem)?;
            } else {
                regs.gprs.rax = old;
            }
            regs.rflags = cmp_flags(regs.rflags, expected, old);
        }
    }
    regs.rip = regs.rip.wrapping_add(insn.len);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pte::PteFlags;
    use crate::test_support::TestDomain as T;

    const P: u64 = PteFlags::PRESENT.bits();
    const RW: u64 = PteFlags::WRITABLE.bits();
    const U: u64 = PteFlags::USER.bits();
    const ENTRY_20: u64 = T::L1 + 20 * 8;

    /// Runs `code` (placed in the data page) as if it had faulted writing
    /// `fault_addr`, with `rax`, `rdi` and `rsi` preset.
    fn trap(t: &mut T, code: &[u8], fault_addr: u64, error_code: u64, rax: u64, rdi: u64, rsi: u64) -> (Result<(), Refused>, GuestRegisters) {
        t.write(T::DATA, code);
        let mut regs = GuestRegisters::default();
        (regs.rip, regs.gprs.rax, regs.gprs.rdi, regs.gprs.rsi, regs.rflags) = (T::DATA, rax, rdi, rsi, 0x202);
        let r = emulate(&mut regs, fault_addr, error_code, &t.dom, 0, &mut t.machine, &mut t.mem);
        (r, regs)
    }

    #[test]
    fn a_trapped_store_to_an_l1_is_applied_as_a_validated_update() {
        let mut t = T::new();
        let page = t.mfn(20).phys();
        // mov [rdi], rsi
        let (r, regs) = trap(&mut t, &[0x48, 0x89, 0x37], ENTRY_20, 7, 0, ENTRY_20, page | P | RW);
        assert_eq!(r, Ok(()));
        assert_eq!(regs.rip, T::DATA + 3);
        assert_eq!(t.read_u64(ENTRY_20), page | P | RW | U);
        t.write(T::TEXT + 20 * 0x1000, b"now mapped");
        t.audit();
        // lock xchg [rdi], rsi: the old entry comes back in rsi.
        let (r, regs) = trap(&mut t, &[0xf0, 0x48, 0x87, 0x37], ENTRY_20, 7, 0, ENTRY_20, 0);
        assert_eq!((r, regs.gprs.rsi, regs.rip), (Ok(()), page | P | RW | U, T::DATA + 4));
        assert_eq!(t.read_u64(ENTRY_20), 0);
        // lock cmpxchg [rdi], rsi: fails (rax is not the entry), then succeeds.
        let (r, regs) = trap(&mut t, &[0xf0, 0x48, 0x0f, 0xb1, 0x37], ENTRY_20, 7, 5, ENTRY_20, page | P);
        assert_eq!((r, regs.gprs.rax, regs.rflags & (1 << 6)), (Ok(()), 0, 0));
        assert_eq!(t.read_u64(ENTRY_20), 0);
        let (r, regs) = trap(&mut t, &[0xf0, 0x48, 0x0f, 0xb1, 0x37], ENTRY_20, 7, 0, ENTRY_20, page | P);
        assert_eq!((r, regs.rflags & (1 << 6)), (Ok(()), 1 << 6));
        assert_eq!(t.read_u64(ENTRY_20), page | P | U);
        // mov qword [rdi + 8], 0: entry 21 cleared through a displacement.
        let (r, _) = trap(&mut t, &[0x48, 0xc7, 0x47, 0x08, 0, 0, 0, 0], ENTRY_20 + 8, 7, 0, ENTRY_20, 0);
        assert_eq!(r, Ok(()));
        t.audit();
    }

    #[test]
    fn a_trapped_write_that_breaks_a_rule_is_refused_and_changes_nothing() {
        let mut t = T::new();
        let l4 = t.dom.vcpus[0].kernel_base().phys();
        let before = t.read_u64(ENTRY_20);
        let store = [0x48, 0x89, 0x37];
        let cases = [
            (ENTRY_20, 7, l4 | P | RW, Refused::Rejected(hypercall_abi::Error::Busy)),
            (ENTRY_20, 7, 0x1000 | P, Refused::Rejected(hypercall_abi::Error::Invalid)),
            (ENTRY_20, 5, 0, Refused::NotPageTableWrite),
            (ENTRY_20, 0xf, 0, Refused::NotPageTableWrite),
            (T::L4 + 8, 7, 0, Refused::NotPageTableWrite),
            (T::DATA + 0x100, 7, 0, Refused::NotPageTableWrite),
            (0x1234_0000, 7, 0, Refused::NotPageTableWrite),
        ];
        for (fault, code, value, want) in cases {
            let (r, regs) = trap(&mut t, &store, fault, code, 0, fault, value);
            assert_eq!(r, Err(want), "fault {fault:#x} code {code:#x} value {value:#x}");
            assert_eq!(regs.rip, T::DATA, "not advanced");
        }
        // The instruction must write exactly the faulting entry.
        let (r, _) = trap(&mut t, &store, ENTRY_20, 7, 0, ENTRY_20 + 8, 0);
        assert_eq!(r, Err(Refused::Unrecognised));
        let (r, _) = trap(&mut t, &store, ENTRY_20 + 4, 7, 0, ENTRY_20 + 4, 0);
        assert_eq!(r, Err(Refused::Unrecognised), "half an entry");
        let (r, _) = trap(&mut t, &[0x89, 0x37], ENTRY_20, 7, 0, ENTRY_20, 0);
        assert_eq!(r, Err(Refused::Unrecognised), "a 32-bit store");
        assert_eq!(t.read_u64(ENTRY_20), before);
        t.audit();
    }

    #[test]
    fn decodes_the_emulated_forms_with_their_lengths() {
        // mov [rdi], rax
        let i = decode(&[0x48, 0x89, 0x07]).unwrap();
        assert_eq!((i.op, i.len), (Op::Mov(Source::Register(0)), 3));
        assert_eq!(i.address, Address { base: Some(7), index: None, disp: 0, rip_relative: false });
        // mov [r9 + 8], r11
        let i = decode(&[0x4d, 0x89, 0x59, 0x08]).unwrap();
        assert_eq!((i.op, i.len), (Op::Mov(Source::Register(11)), 4));
        assert_eq!(i.address, Address { base: Some(9), index: None, disp: 8, rip_relative: false });
        // mov qword [rsp + rcx*8 - 0x1000], -2
        let i = decode(&[0x48, 0xc7, 0x84, 0xcc, 0x00, 0xf0, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff]).unwrap();
        assert_eq!((i.op, i.len), (Op::Mov(Source::Immediate(u64::MAX - 1)), 12));
        assert_eq!(i.address, Address { base: Some(4), index: Some((1, 8)), disp: -0x1000, rip_relative: false });
        // lock xchg [rdx], rsi; xchg without lock
        assert_eq!(decode(&[0xf0, 0x48, 0x87, 0x32]).map(|i| (i.op, i.len)), Some((Op::Xchg(6), 4)));
        assert_eq!(decode(&[0x48, 0x87, 0x32]).map(|i| (i.op, i.len)), Some((Op::Xchg(6), 3)));
        // lock cmpxchg [rbx], r12 ; r12 via REX.R
        assert_eq!(decode(&[0xf0, 0x4c, 0x0f, 0xb1, 0x23]).map(|i| (i.op, i.len)), Some((Op::Cmpxchg(12), 5)));
        // mov [rip + 0x10], rax
        let i = decode(&[0x48, 0x89, 0x05, 0x10, 0, 0, 0]).unwrap();
        assert!(i.address.rip_relative && i.address.disp == 0x10 && i.len == 7);
        // mov [r12], rax: SIB with base r12 (REX.B), no index
        let i = decode(&[0x49, 0x89, 0x04, 0x24]).unwrap();
        assert_eq!(i.address, Address { base: Some(12), index: None, disp: 0, rip_relative: false });
        // [r12 + r12*2]: index 4 with REX.X is r12, not "none"
        let i = decode(&[0x4b, 0x89, 0x04, 0x64]).unwrap();
        assert_eq!(i.address.index, Some((12, 2)));
        // [disp32] through SIB without base
        let i = decode(&[0x48, 0x89, 0x04, 0x25, 0x00, 0x10, 0, 0]).unwrap();
        assert_eq!(i.address, Address { base: None, index: None, disp: 0x1000, rip_relative: false });
    }

    #[test]
    fn refuses_everything_else() {
        for bytes in [
            &[0x89, 0x07][..],              // 32-bit store: half an entry
            &[0x66, 0x48, 0x89, 0x07],      // operand-size prefix
            &[0x64, 0x48, 0x89, 0x07],      // FS override
            &[0xf0, 0x48, 0x89, 0x07],      // lock mov
            &[0x48, 0x89, 0xc7],            // register destination
            &[0x48, 0xc7, 0x0f, 0, 0, 0, 0], // C7 /1
            &[0x48, 0x09, 0x07],            // or
            &[0xf0, 0x48, 0x0f, 0xba, 0x37, 0x01], // lock btr
            &[0x88, 0x07],                  // byte store
            &[0x48, 0x89],                  // truncated
            &[0x48, 0x89, 0x47],            // truncated displacement
            &[],
        ] {
            assert_eq!(decode(bytes), None, "{bytes:02x?}");
        }
    }

    #[test]
    fn cmpxchg_flags_match_cmp() {
        let zf = 1 << 6;
        assert_eq!(cmp_flags(0x202, 5, 5) & 0x8d5, zf | 1 << 2);
        assert_eq!(cmp_flags(0x202, 5, 5) & 0x202, 0x202, "other bits kept");
        let f = cmp_flags(0, 1, 2);
        assert_eq!(f & 1, 1, "borrow");
        assert_eq!(f & (1 << 7), 1 << 7, "negative");
        assert_eq!(f & zf, 0);
        let f = cmp_flags(0, 1 << 63, 1);
        assert_eq!(f & (1 << 11), 1 << 11, "signed overflow");
        assert_eq!(cmp_flags(0xffff, 0x10, 0x1) & (1 << 4), 1 << 4, "nibble borrow");
    }
}
