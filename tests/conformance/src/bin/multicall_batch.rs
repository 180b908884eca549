//! `multicall` (SPEC 11.4) runs every entry in order as if issued on its
//! own and writes each result: a failing entry does not stop the others;
//! calls that would nest, not return or block (`multicall`, `iret`,
//! `sched_shutdown`, `sched_block`) fail their entry with `Invalid` and do
//! nothing (the domain lives on after the shutdown entry); an unknown number
//! is `NoSuchCall`. The call itself refuses a count of 0 (`Invalid`), above
//! `MULTICALL_MAX` (`TooBig`), and entries it cannot read (`BadAddress`).
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::cpu::{msr, CpuidResult};
use veneer_guest::hypercall_abi::hypercall::AbiInfo;
use veneer_guest::hypercall_abi::multicall::MulticallEntry;
use veneer_guest::hypercall_abi::{Error, Hypercall};
use veneer_guest::{check, hypercall, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");

fn e(op: u64, a: [u64; 3]) -> MulticallEntry {
    MulticallEntry { op, args: [a[0], a[1], a[2], 0, 0, 0], result: 0xdead }
}

fn main(_: &StartInfo) -> ! {
    let mut info = AbiInfo::default();
    let mut cpuid = CpuidResult::default();
    let mut aux = 0u64;
    let h = |c: Hypercall| c.number();
    let mut batch = [
        e(h(Hypercall::MsrWrite), [msr::TSC_AUX.into(), 0x55, 0]),
        e(h(Hypercall::AbiQuery), [&mut info as *mut AbiInfo as u64, 0, 0]),
        e(h(Hypercall::AbiQuery), [0x1000, 0, 0]),
        e(h(Hypercall::Multicall), [0x1000, 1, 0]),
        e(h(Hypercall::Iret), [0, 0, 0]),
        e(h(Hypercall::SchedShutdown), [0, 0, 0]),
        e(h(Hypercall::SchedBlock), [0, 0, 0]),
        e(0xff, [0, 0, 0]),
        e(h(Hypercall::CpuidQuery), [0x4000_0001, 0, &mut cpuid as *mut CpuidResult as u64]),
        // Entries run in order: this reads what the first wrote.
        e(h(Hypercall::MsrRead), [msr::TSC_AUX.into(), &mut aux as *mut u64 as u64, 0]),
    ];
    let r = hypercall::multicall(&mut batch);
    check!(r == Ok(batch.len() as u64), "multicall: {:?}", r);
    let (bad, inv, nsc) = (Error::BadAddress.to_return(), Error::Invalid.to_return(), Error::NoSuchCall.to_return());
    let want = [0, 0, bad, inv, inv, inv, inv, nsc, 0, 0];
    for (i, (entry, w)) in batch.iter().zip(want).enumerate() {
        check!(entry.result == w, "entry {} (op {:#x}): result {:#x}, want {:#x}", i, entry.op, entry.result, w);
    }
    check!(info.major == 1, "abi_query entry wrote {:?}", info);
    check!(cpuid.eax == 1 << 16, "cpuid_query entry wrote {:?}", cpuid);
    check!(aux == 0x55, "msr_read entry read {:#x}", aux);

    let nr = Hypercall::Multicall.number();
    let mut one = [e(h(Hypercall::MsrWrite), [msr::TSC_AUX.into(), 0x66, 0])];
    let p = one.as_mut_ptr() as u64;
    for (what, args, want) in [
        ("count 0", [p, 0], Error::Invalid),
        ("count 65", [p, 65], Error::TooBig),
        ("huge count", [p, u64::MAX], Error::TooBig),
        ("unmapped entries", [0x1000, 1], Error::BadAddress),
        ("entries in the hypervisor", [0xffff_8000_0000_0000, 1], Error::BadAddress),
        ("non-canonical entries", [0x0000_8000_0000_0000, 1], Error::BadAddress),
        ("entries that wrap", [u64::MAX - 63, 2], Error::BadAddress),
    ] {
        let r = hypercall::raw(nr, [args[0], args[1], 0, 0, 0, 0]);
        check!(r == Err(want), "multicall {}: {:?}", what, r);
    }
    check!(one[0].result == 0xdead, "a refused multicall ran its entry");
    check!(hypercall::msr_read(msr::TSC_AUX) == Ok(0x55), "a refused multicall changed TSC_AUX");
    veneer_guest::success()
}
