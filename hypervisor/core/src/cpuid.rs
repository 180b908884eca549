//! The CPUID view a guest kernel gets from `cpuid_query` (SPEC 13.10): the
//! host's leaves with what a ring-3 kernel cannot use, or must not believe
//! it owns, taken away.

use hypercall_abi::cpu::cpu_limits::CPUID_HV_BASE;
use hypercall_abi::version::AbiVersion;

use crate::vcpu::GuestCpu;

const HV_BASE: u32 = CPUID_HV_BASE as u32;
const EXT_BASE: u32 = 0x8000_0000;
/// "VeneerVeneer" as EBX, ECX, EDX.
const SIGNATURE: [u32; 3] = [u32::from_le_bytes(*b"Vene"), u32::from_le_bytes(*b"erVe"), u32::from_le_bytes(*b"neer")];

/// Leaf 1 ECX: MONITOR, VMX, SMX, PCID, x2APIC, TSC-deadline.
const L1_ECX_HIDDEN: u32 = 1 << 3 | 1 << 5 | 1 << 6 | 1 << 17 | 1 << 21 | 1 << 24;
const L1_ECX_HYPERVISOR: u32 = 1 << 31;
/// Leaf 1 EDX: the local APIC.
const L1_EDX_HIDDEN: u32 = 1 << 9;
/// Leaf 7.0 EBX: SMEP, INVPCID, SMAP.
const L7_EBX_HIDDEN: u32 = 1 << 7 | 1 << 10 | 1 << 20;
/// Leaf 7.0 ECX: UMIP, PKU, OSPKE, LA57.
const L7_ECX_HIDDEN: u32 = 1 << 2 | 1 << 3 | 1 << 4 | 1 << 16;
/// Leaf 0x80000001 ECX: SVM and MONITORX, AMD's VMX and MONITOR.
const E1_ECX_HIDDEN: u32 = 1 << 2 | 1 << 29;
/// Leaf 0xd.1 EAX: XSAVES (ring 0 only).
const XSAVE1_EAX_HIDDEN: u32 = 1 << 3;

/// What `cpuid_query(leaf, subleaf)` answers vCPU `vcpu` of a domain whose
/// guests run with XCR0 `cpu.guest_xcr0()`: EAX, EBX, ECX, EDX.
pub fn view(cpu: &dyn GuestCpu, abi: AbiVersion, vcpu: u32, leaf: u64, subleaf: u64) -> [u32; 4] {
    // Leaves and subleaves are 32-bit: a wider number names no leaf.
    let (Ok(leaf), Ok(subleaf)) = (u32::try_from(leaf), u32::try_from(subleaf)) else { return [0; 4] };
    if leaf == HV_BASE {
        return [HV_BASE + 1, SIGNATURE[0], SIGNATURE[1], SIGNATURE[2]];
    }
    if leaf == HV_BASE + 1 {
        return [u32::from(abi.major) << 16 | u32::from(abi.minor), 0, 0, 0];
    }
    // The hardware answers a leaf past the top with the highest basic leaf;
    // the guest gets zero, as for every range the host does not have.
    let known = leaf <= cpu.host_cpuid(0, 0)[0] || (EXT_BASE..=cpu.host_cpuid(EXT_BASE, 0)[0]).contains(&leaf);
    if !known {
        return [0; 4];
    }
    let mut r = cpu.host_cpuid(leaf, subleaf);
    match leaf {
        1 => {
            // The initial APIC id (EBX 31:24) is the vCPU's, in the 8 bits it has.
            r[1] = r[1] & 0x00ff_ffff | (vcpu & 0xff) << 24;
            r[2] = r[2] & !L1_ECX_HIDDEN | L1_ECX_HYPERVISOR;
            r[3] &= !L1_EDX_HIDDEN;
        }
        // MONITOR/MWAIT's parameters, and the architectural PMU.
        5 | 0xa => r = [0; 4],
        7 if subleaf == 0 => {
            r[1] &= !L7_EBX_HIDDEN;
            r[2] &= !L7_ECX_HIDDEN;
        }
        // The x2APIC id of the topology leaves.
        0xb | 0x1f => r[3] = vcpu,
        0xd => r = xsave_leaf(r, subleaf, cpu.guest_xcr0()),
        0x8000_0001 => r[2] &= !E1_ECX_HIDDEN,
        _ => {}
    }
    r
}

/// Leaf 0xd limited to the components of `xcr0`.
fn xsave_leaf(host: [u32; 4], subleaf: u32, xcr0: u64) -> [u32; 4] {
    if xcr0 == 0 {
        return [0; 4];
    }
    match subleaf {
        // EBX is the size for the XCR0 in force, which is the guests'; as
        // XCR0 is fixed, it is also the most any enabled set needs (ECX).
        0 => [xcr0 as u32, host[1], host[1], (xcr0 >> 32) as u32],
        // EBX, ECX and EDX describe the supervisor states of XSAVES.
        1 => [host[0] & !XSAVE1_EAX_HIDDEN, 0, 0, 0],
        i if i < 64 && xcr0 & 1 << i != 0 => host,
        _ => [0; 4],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::FakeCpu;

    const V1: AbiVersion = AbiVersion { major: 1, minor: 0 };

    fn q(leaf: u64, subleaf: u64) -> [u32; 4] {
        view(&FakeCpu::default(), V1, 3, leaf, subleaf)
    }

    #[test]
    fn leaf_1_hides_hypervisor_owned_features_and_names_the_vcpu() {
        let host = FakeCpu::default().host_cpuid(1, 0);
        let r = q(1, 0);
        assert_eq!(r[0], host[0]);
        assert_eq!(r[1], host[1] & 0x00ff_ffff | 3 << 24);
        for bit in [3, 5, 6, 17, 21, 24] {
            assert_eq!(r[2] & 1 << bit, 0, "ECX bit {bit}");
        }
        assert_eq!(r[2] | L1_ECX_HIDDEN, host[2] | L1_ECX_HYPERVISOR, "the rest of ECX is the host's");
        assert_ne!(r[2] & 1 << 31, 0, "hypervisor bit");
        assert_eq!(r[3], host[3] & !(1 << 9), "no local APIC");
    }

    #[test]
    fn leaf_7_hides_smep_smap_invpcid_umip_pku_la57() {
        let host = FakeCpu::default().host_cpuid(7, 0);
        let r = q(7, 0);
        assert_eq!(r[1], host[1] & !(1 << 7 | 1 << 10 | 1 << 20));
        assert_eq!(r[2], host[2] & !(1 << 2 | 1 << 3 | 1 << 4 | 1 << 16));
        assert_eq!((r[0], r[3]), (host[0], host[3]));
        assert_eq!(q(7, 1), FakeCpu::default().host_cpuid(7, 1), "other subleaves pass through");
        assert_eq!(q(0x8000_0001, 0)[2] & (1 << 2 | 1 << 29), 0, "SVM, MONITORX");
    }

    #[test]
    fn pmu_monitor_and_topology() {
        assert_eq!(q(0xa, 0), [0; 4]);
        assert_eq!(q(5, 0), [0; 4]);
        assert_eq!(q(0xb, 0)[3], 3);
        assert_eq!(q(0xb, 1)[3], 3);
    }

    #[test]
    fn leaf_0xd_reports_only_the_guest_xcr0() {
        let cpu = FakeCpu::default();
        let xcr0 = cpu.guest_xcr0();
        let r = q(0xd, 0);
        assert_eq!(u64::from(r[3]) << 32 | u64::from(r[0]), xcr0);
        let size = cpu.host_cpuid(0xd, 0)[1];
        assert_eq!((r[1], r[2]), (size, size), "ECX is the size for XCR0, not for all the host has");
        assert_eq!(q(0xd, 1), [cpu.host_cpuid(0xd, 1)[0] & !(1 << 3), 0, 0, 0], "no XSAVES");
        assert_eq!(q(0xd, 2), cpu.host_cpuid(0xd, 2), "AVX is enabled");
        for sub in [5, 9, 63, 64, 1000] {
            assert_eq!(q(0xd, sub), [0; 4], "component {sub} is not");
        }
        let none = FakeCpu { xcr0: 0, ..FakeCpu::default() };
        assert_eq!(view(&none, V1, 0, 0xd, 0), [0; 4], "no XSAVE for guests");
    }

    #[test]
    fn hypervisor_leaves_and_unknown_leaves() {
        let r = q(0x4000_0000, 0);
        assert_eq!(r[0], 0x4000_0001);
        let sig: Vec<u8> = r[1..].iter().flat_map(|w| w.to_le_bytes()).collect();
        assert_eq!(sig, b"VeneerVeneer");
        assert_eq!(q(0x4000_0001, 0), [1 << 16, 0, 0, 0]);
        assert_eq!(view(&FakeCpu::default(), AbiVersion { major: 1, minor: 2 }, 0, 0x4000_0001, 0)[0], 1 << 16 | 2);
        let max_basic = FakeCpu::default().host_cpuid(0, 0)[0];
        for leaf in [u64::from(max_basic) + 1, 0x4000_0002, 0x2000_0000, 0x8000_0009, 0xc000_0000, 1 << 32 | 1, u64::MAX] {
            assert_eq!(q(leaf, 0), [0; 4], "leaf {leaf:#x}");
        }
        assert_eq!(q(1, 1 << 32), [0; 4], "a subleaf wider than 32 bits");
        assert_eq!(q(0x8000_0008, 0), FakeCpu::default().host_cpuid(0x8000_0008, 0));
        assert_eq!(q(0, 0), FakeCpu::default().host_cpuid(0, 0));
    }
}
