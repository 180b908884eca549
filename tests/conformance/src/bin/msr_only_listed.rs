//! C4: `msr_read` and `msr_write` (SPEC 13.11) reach only the MSRs of the
//! `msr` table, each with its stated effect. Every other MSR answers
//! `NotFound` and a refused write changes nothing: LSTAR, STAR, CSTAR,
//! SFMASK, SYSENTER_*, an x2APIC register, SPEC_CTRL, and numbers above 32
//! bits that would wrap to listed ones (hypercalls still work afterwards, so
//! the hypervisor's syscall MSRs are intact). APIC_BASE reads 0 and is not
//! writable; EFER shows only LME/LMA/SCE/NXE and ignores writes; PAT takes
//! only its own value; the segment bases and TSC_AUX take effect (`rdtscp`
//! sees TSC_AUX) and refuse what the row refuses; bad pointers are refused.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::cpu::msr;
use veneer_guest::hypercall_abi::{Error, Hypercall};
use veneer_guest::{check, hypercall, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");

fn read(m: u32) -> u64 {
    match hypercall::msr_read(m) {
        Ok(v) => v,
        Err(e) => veneer_guest::failure(format_args!("msr_read({:#x}): {:?}", m, e)),
    }
}

fn main(_: &StartInfo) -> ! {
    let (rd, wr) = (Hypercall::MsrRead.number(), Hypercall::MsrWrite.number());
    let mut sink = 0u64;
    let out = &mut sink as *mut u64 as u64;
    for m in [
        0xc000_0082u64, // LSTAR
        0xc000_0081,    // STAR
        0xc000_0083,    // CSTAR
        0xc000_0084,    // SFMASK
        0x174,          // SYSENTER_CS
        0x175,          // SYSENTER_ESP
        0x176,          // SYSENTER_EIP
        0x802,          // x2APIC id
        0x48,           // SPEC_CTRL
        0x1_c000_0080,  // EFER + 2^32
        0x1_0000_0277,  // PAT + 2^32
        u64::MAX,
    ] {
        let r = hypercall::raw(rd, [m, out, 0, 0, 0, 0]);
        check!(r == Err(Error::NotFound), "msr_read {:#x}: {:?}", m, r);
        let r = hypercall::raw(wr, [m, 0, 0, 0, 0, 0]);
        check!(r == Err(Error::NotFound), "msr_write {:#x}: {:?}", m, r);
    }
    check!(sink == 0, "a refused read wrote {:#x}", sink);
    // LSTAR survived the refused write: this hypercall arrives.
    check!(hypercall::abi_query().is_ok(), "hypercalls after the refused writes");

    check!(read(msr::APIC_BASE) == 0, "APIC_BASE {:#x}", read(msr::APIC_BASE));
    let r = hypercall::msr_write(msr::APIC_BASE, 0xfee0_0900);
    check!(r == Err(Error::Invalid), "msr_write APIC_BASE: {:?}", r);

    let efer = read(msr::EFER);
    // LME and LMA on a 64-bit host; SCE, as the guest's calls use syscall.
    check!(efer & !0xd01 == 0 && efer & 0x501 == 0x501, "EFER {:#x}", efer);
    check!(hypercall::msr_write(msr::EFER, 0) == Ok(0), "EFER write not ignored");
    check!(read(msr::EFER) == efer, "EFER changed: {:#x}", read(msr::EFER));

    let misc = read(msr::MISC_ENABLE);
    check!(misc & !(1 | 1 << 16) == 0, "MISC_ENABLE {:#x}", misc);
    check!(hypercall::msr_write(msr::MISC_ENABLE, !0) == Ok(0), "MISC_ENABLE write not ignored");

    let pat = read(msr::PAT);
    check!(hypercall::msr_write(msr::PAT, pat) == Ok(0), "PAT write of its value");
    for bad in [0, pat ^ 1, !pat] {
        let r = hypercall::msr_write(msr::PAT, bad);
        check!(r == Err(Error::Invalid), "msr_write PAT {:#x}: {:?}", bad, r);
    }
    check!(read(msr::PAT) == pat, "PAT changed");

    for m in [msr::FS_BASE, msr::GS_BASE, msr::KERNEL_GS_BASE] {
        let old = read(m);
        check!(hypercall::msr_write(m, 0x1234_5000) == Ok(0), "base {:#x}", m);
        check!(read(m) == 0x1234_5000, "base {:#x} reads {:#x}", m, read(m));
        for bad in [0x0000_8000_0000_0000, 1 << 63] {
            let r = hypercall::msr_write(m, bad);
            check!(r == Err(Error::Invalid), "msr_write {:#x} = {:#x}: {:?}", m, bad, r);
        }
        check!(read(m) == 0x1234_5000, "a refused base changed {:#x}", m);
        check!(hypercall::msr_write(m, old) == Ok(0), "restore {:#x}", m);
    }

    check!(hypercall::msr_write(msr::TSC_AUX, 0xabcd_1234) == Ok(0), "TSC_AUX write");
    check!(read(msr::TSC_AUX) == 0xabcd_1234, "TSC_AUX reads {:#x}", read(msr::TSC_AUX));
    let r = hypercall::msr_write(msr::TSC_AUX, 1 << 32);
    check!(r == Err(Error::Invalid), "TSC_AUX above 32 bits: {:?}", r);
    if core::arch::x86_64::__cpuid(0x8000_0001).edx & 1 << 27 != 0 {
        let aux: u32;
        // SAFETY: the CPU has RDTSCP (checked above), which works in ring 3.
        unsafe { core::arch::asm!("rdtscp", out("eax") _, out("edx") _, out("ecx") aux, options(nomem, nostack)) };
        check!(aux == 0xabcd_1234, "rdtscp sees TSC_AUX {:#x}", aux);
    }

    for bad in [0x1000u64, 0xffff_8000_0000_0000, 0x0000_8000_0000_0000] {
        let r = hypercall::raw(rd, [u64::from(msr::EFER), bad, 0, 0, 0, 0]);
        check!(r == Err(Error::BadAddress), "msr_read into {:#x}: {:?}", bad, r);
    }
    veneer_guest::success()
}
