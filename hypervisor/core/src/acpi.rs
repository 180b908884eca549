//! The one ACPI table the hypervisor reads: the MADT, for the local APIC
//! ids of the machine's CPUs. The firmware's tables are reached from the
//! RSDP (whose address the PVH start info gives) through the RSDT or, from
//! ACPI 2.0 on, the XSDT; every table's checksum is checked before any of
//! it is believed.
//!
//! Physical memory is read through a closure, so the parser runs on the
//! host over a map of bytes as it does at boot over the firmware's memory.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// Reads `buf.len()` bytes at a physical address; false if they are not
/// readable.
pub type ReadPhys<'a> = &'a dyn Fn(u64, &mut [u8]) -> bool;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcpiError {
    /// No "RSD PTR " signature, or a bad checksum, at the given address.
    BadRsdp(u64),
    /// A table that cannot be read, or whose length or checksum is wrong.
    BadTable { signature: [u8; 4], at: u64 },
    /// The root table lists no MADT.
    NoMadt,
}

impl fmt::Display for AcpiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcpiError::BadRsdp(at) => write!(f, "no valid RSDP at {at:#x}"),
            AcpiError::BadTable { signature, at } => {
                write!(f, "table {} at {at:#x} is unreadable or fails its checksum", signature.escape_ascii())
            }
            AcpiError::NoMadt => write!(f, "no MADT"),
        }
    }
}

/// What the MADT says about the CPUs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Madt {
    /// The local APIC ids of the enabled CPUs, in table order (the
    /// firmware lists the boot CPU first).
    pub apic_ids: Vec<u32>,
}

const HEADER: usize = 36;
/// MADT: the header, the local APIC address and the flags.
const MADT_ENTRIES: usize = HEADER + 8;
const ENTRY_LOCAL_APIC: u8 = 0;
const ENTRY_LOCAL_X2APIC: u8 = 9;
/// Local APIC flags: the CPU is enabled.
const ENABLED: u32 = 1;

fn sums_to_zero(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |a, &b| a.wrapping_add(b)) == 0
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Reads a whole system description table at `at`, checked.
fn read_table(read: ReadPhys<'_>, at: u64) -> Result<Vec<u8>, AcpiError> {
    let mut header = [0u8; HEADER];
    let bad = |signature| AcpiError::BadTable { signature, at };
    if !read(at, &mut header) {
        return Err(bad(*b"????"));
    }
    let signature: [u8; 4] = header[..4].try_into().expect("4 bytes");
    let len = u32_at(&header, 4) as usize;
    // A table longer than 1 MiB is corrupt, not large.
    if !(HEADER..=1 << 20).contains(&len) {
        return Err(bad(signature));
    }
    let mut table = vec![0u8; len];
    if !read(at, &mut table) || !sums_to_zero(&table) {
        return Err(bad(signature));
    }
    Ok(table)
}

/// Finds the MADT from the RSDP at `rsdp` and lists the enabled CPUs.
pub fn read_madt(rsdp: u64, read: ReadPhys<'_>) -> Result<Madt, AcpiError> {
    let mut r = [0u8; 36];
    if !read(rsdp, &mut r[..20]) || &r[..8] != b"RSD PTR " || !sums_to_zero(&r[..20]) {
        return Err(AcpiError::BadRsdp(rsdp));
    }
    let revision = r[15];
    // ACPI 2.0 and later: the XSDT, with 64-bit entries and a checksum
    // over the longer structure.
    let (root, entry_size) = if revision >= 2 {
        if !read(rsdp, &mut r) || !sums_to_zero(&r) {
            return Err(AcpiError::BadRsdp(rsdp));
        }
        (u64_at(&r, 24), 8)
    } else {
        (u64::from(u32_at(&r, 16)), 4)
    };
    let root_table = read_table(read, root)?;
    for entry in root_table[HEADER..].chunks_exact(entry_size) {
        let at = if entry_size == 8 { u64_at(entry, 0) } else { u64::from(u32_at(entry, 0)) };
        let mut signature = [0u8; 4];
        if !read(at, &mut signature) || &signature != b"APIC" {
            continue;
        }
        return parse_madt(&read_table(read, at)?, at);
    }
    Err(AcpiError::NoMadt)
}

fn parse_madt(t: &[u8], at: u64) -> Result<Madt, AcpiError> {
    let bad = AcpiError::BadTable { signature: *b"APIC", at };
    if t.len() < MADT_ENTRIES {
        return Err(bad);
    }
    let mut apic_ids = Vec::new();
    let mut i = MADT_ENTRIES;
    while i + 2 <= t.len() {
        let (kind, len) = (t[i], usize::from(t[i + 1]));
        if len < 2 || i + len > t.len() {
            return Err(bad);
        }
        let e = &t[i..i + len];
        match kind {
            ENTRY_LOCAL_APIC if len >= 8 && u32_at(e, 4) & ENABLED != 0 => apic_ids.push(u32::from(e[3])),
            ENTRY_LOCAL_X2APIC if len >= 16 && u32_at(e, 8) & ENABLED != 0 => {
                let id = u32_at(e, 4);
                // Firmware lists CPUs with ids below 255 in both forms.
                if !apic_ids.contains(&id) {
                    apic_ids.push(id);
                }
            }
            _ => {}
        }
        i += len;
    }
    Ok(Madt { apic_ids })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    /// Physical memory of a few byte runs.
    struct Memory(RefCell<BTreeMap<u64, Vec<u8>>>);

    impl Memory {
        fn new() -> Memory {
            Memory(RefCell::new(BTreeMap::new()))
        }
        fn put(&self, at: u64, bytes: Vec<u8>) {
            self.0.borrow_mut().insert(at, bytes);
        }
        fn read(&self, at: u64, buf: &mut [u8]) -> bool {
            for (&start, bytes) in self.0.borrow().iter() {
                if at >= start && at + buf.len() as u64 <= start + bytes.len() as u64 {
                    let off = (at - start) as usize;
                    buf.copy_from_slice(&bytes[off..off + buf.len()]);
                    return true;
                }
            }
            false
        }
    }

    fn fix_checksum(b: &mut [u8], at: usize, over: usize) {
        b[at] = 0;
        let sum = b[..over].iter().fold(0u8, |a, &x| a.wrapping_add(x));
        b[at] = 0u8.wrapping_sub(sum);
    }

    fn table(signature: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut t = vec![0u8; HEADER];
        t[..4].copy_from_slice(signature);
        t.extend_from_slice(body);
        let len = t.len() as u32;
        t[4..8].copy_from_slice(&len.to_le_bytes());
        let n = t.len();
        fix_checksum(&mut t, 9, n);
        t
    }

    fn local_apic(uid: u8, id: u8, flags: u32) -> Vec<u8> {
        let mut e = vec![ENTRY_LOCAL_APIC, 8, uid, id];
        e.extend_from_slice(&flags.to_le_bytes());
        e
    }

    fn local_x2apic(id: u32, flags: u32) -> Vec<u8> {
        let mut e = vec![ENTRY_LOCAL_X2APIC, 16, 0, 0];
        e.extend_from_slice(&id.to_le_bytes());
        e.extend_from_slice(&flags.to_le_bytes());
        e.extend_from_slice(&7u32.to_le_bytes());
        e
    }

    fn madt(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut body = 0xfee0_0000u32.to_le_bytes().to_vec();
        body.extend_from_slice(&1u32.to_le_bytes());
        // An I/O APIC entry the parser skips.
        body.extend_from_slice(&[1, 12, 0, 0, 0, 0, 0xc0, 0xfe, 0, 0, 0, 0]);
        for e in entries {
            body.extend_from_slice(e);
        }
        table(b"APIC", &body)
    }

    fn rsdp_v1(rsdt: u32) -> Vec<u8> {
        let mut r = b"RSD PTR ".to_vec();
        r.extend_from_slice(&[0; 12]);
        r[16..20].copy_from_slice(&rsdt.to_le_bytes());
        fix_checksum(&mut r, 8, 20);
        r
    }

    fn rsdp_v2(xsdt: u64) -> Vec<u8> {
        let mut r = rsdp_v1(0);
        r.resize(36, 0);
        r[15] = 2;
        fix_checksum(&mut r, 8, 20);
        r[20..24].copy_from_slice(&36u32.to_le_bytes());
        r[24..32].copy_from_slice(&xsdt.to_le_bytes());
        fix_checksum(&mut r, 32, 36);
        r
    }

    /// QEMU's layout: RSDP v1, an RSDT listing a FACP and the MADT.
    fn qemu_like(cpus: &[Vec<u8>]) -> Memory {
        let m = Memory::new();
        m.put(0xf5000, rsdp_v1(0x7fe0_0000));
        let mut rsdt = Vec::new();
        rsdt.extend_from_slice(&0x7fe0_1000u32.to_le_bytes());
        rsdt.extend_from_slice(&0x7fe0_2000u32.to_le_bytes());
        m.put(0x7fe0_0000, table(b"RSDT", &rsdt));
        m.put(0x7fe0_1000, table(b"FACP", &[0; 20]));
        m.put(0x7fe0_2000, madt(cpus));
        m
    }

    #[test]
    fn lists_the_enabled_cpus_in_table_order() {
        let m = qemu_like(&[local_apic(0, 0, 1), local_apic(1, 2, 1), local_apic(2, 4, 0), local_apic(3, 3, 1)]);
        let read = |at: u64, buf: &mut [u8]| m.read(at, buf);
        assert_eq!(read_madt(0xf5000, &read), Ok(Madt { apic_ids: vec![0, 2, 3] }), "the disabled CPU (id 4) is left out");
    }

    #[test]
    fn reads_the_xsdt_and_x2apic_entries() {
        let m = Memory::new();
        m.put(0x1000, rsdp_v2(0x8000_0000));
        m.put(0x8000_0000, table(b"XSDT", &0x8000_1000u64.to_le_bytes()));
        m.put(0x8000_1000, madt(&[local_apic(0, 1, 1), local_x2apic(1, 1), local_x2apic(300, 1), local_x2apic(301, 0)]));
        let read = |at: u64, buf: &mut [u8]| m.read(at, buf);
        assert_eq!(read_madt(0x1000, &read), Ok(Madt { apic_ids: vec![1, 300] }));
    }

    #[test]
    fn refuses_what_fails_its_checks() {
        let m = qemu_like(&[local_apic(0, 0, 1)]);
        let read = |at: u64, buf: &mut [u8]| m.read(at, buf);
        assert_eq!(read_madt(0xf4000, &read), Err(AcpiError::BadRsdp(0xf4000)), "nothing there");
        let mut bad = rsdp_v1(0x7fe0_0000);
        bad[9] ^= 1;
        m.put(0xf5000, bad);
        assert_eq!(read_madt(0xf5000, &read), Err(AcpiError::BadRsdp(0xf5000)), "checksum");
        m.put(0xf5000, rsdp_v1(0x7fe0_0000));
        let mut t = madt(&[local_apic(0, 0, 1)]);
        t[40] ^= 1;
        m.put(0x7fe0_2000, t);
        assert_eq!(read_madt(0xf5000, &read), Err(AcpiError::BadTable { signature: *b"APIC", at: 0x7fe0_2000 }));
        // An entry running past the table's end.
        let mut t = madt(&[local_apic(0, 0, 1)]);
        let last = t.len() - 7;
        t[last] = 9;
        let n = t.len();
        fix_checksum(&mut t, 9, n);
        m.put(0x7fe0_2000, t);
        assert_eq!(read_madt(0xf5000, &read), Err(AcpiError::BadTable { signature: *b"APIC", at: 0x7fe0_2000 }));
        m.put(0x7fe0_0000, table(b"RSDT", &0x7fe0_1000u32.to_le_bytes()));
        assert_eq!(read_madt(0xf5000, &read), Err(AcpiError::NoMadt));
    }
}
