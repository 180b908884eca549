//! Guest virtual memory as a hypercall sees it.
//!
//! A hypercall's pointer arguments are guest virtual addresses. The
//! hypervisor never dereferences them: it walks the calling vCPU's page
//! tables in software, requires every level to grant user access (and write
//! access for writes), and copies through its own map of machine memory. A
//! pointer into the hypervisor's range, a non-canonical one, an unmapped
//! page or a read-only page for a write all fail with `BadAddress`, and a
//! failed copy-out has written nothing.

use hypercall_abi::Error;

use crate::addr::{range_is_guest, Mfn, PAGE_SIZE};
use crate::phys::PhysMemory;
use crate::pte::{table_index, PteFlags, ADDR_MASK};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// A guest's address space: its top-level page table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressSpace {
    pub l4: Mfn,
}

impl AddressSpace {
    /// Translates one guest virtual address to (frame, offset) as ring 3
    /// would see it, or `BadAddress`.
    pub fn translate(
        &self,
        mem: &impl PhysMemory,
        va: u64,
        access: Access,
    ) -> Result<(Mfn, usize), Error> {
        if !range_is_guest(va, 1) {
            return Err(Error::BadAddress);
        }
        let mut table = self.l4;
        for level in (1..=4u32).rev() {
            if !mem.contains(table) {
                return Err(Error::BadAddress);
            }
            let entry = mem.read_u64(table, table_index(va, level));
            let flags = PteFlags::from_bits_truncate(entry);
            if !flags.contains(PteFlags::PRESENT | PteFlags::USER) {
                return Err(Error::BadAddress);
            }
            if access == Access::Write && !flags.contains(PteFlags::WRITABLE) {
                return Err(Error::BadAddress);
            }
            let huge = level > 1 && flags.contains(PteFlags::HUGE);
            if level == 4 && flags.contains(PteFlags::HUGE) {
                return Err(Error::BadAddress);
            }
            if level == 1 || huge {
                let span_mask = (1u64 << (12 + 9 * (level - 1))) - 1;
                let base = entry & ADDR_MASK & !span_mask;
                let phys = base | (va & span_mask);
                let mfn = Mfn::from_phys(phys);
                if !mem.contains(mfn) {
                    return Err(Error::BadAddress);
                }
                return Ok((mfn, (phys as usize) % PAGE_SIZE));
            }
            table = Mfn::from_phys(entry & ADDR_MASK);
        }
        unreachable!("the walk ends at level 1")
    }

    /// Hands `[va, va + len)` to `f` in page-sized pieces, straight from
    /// the frames that back it, once the whole range has been found
    /// readable: on failure `f` has seen nothing.
    pub fn read_chunks(&self, mem: &impl PhysMemory, va: u64, len: usize, mut f: impl FnMut(&[u8])) -> Result<(), Error> {
        self.probe(mem, va, len as u64, Access::Read)?;
        let mut done = 0;
        while done < len {
            let (mfn, off) = self.translate(mem, va + done as u64, Access::Read)?;
            let n = (PAGE_SIZE - off).min(len - done);
            f(&mem.frame(mfn)[off..off + n]);
            done += n;
        }
        Ok(())
    }

    /// Copies `dst.len()` bytes from guest address `va`.
    pub fn copy_from(&self, mem: &impl PhysMemory, va: u64, dst: &mut [u8]) -> Result<(), Error> {
        let mut done = 0;
        self.read_chunks(mem, va, dst.len(), |chunk| {
            dst[done..done + chunk.len()].copy_from_slice(chunk);
            done += chunk.len();
        })
    }

    /// Checks that every byte of `[va, va + len)` is accessible as
    /// `access`, without touching it.
    pub fn probe(&self, mem: &impl PhysMemory, va: u64, len: u64, access: Access) -> Result<(), Error> {
        if !range_is_guest(va, len) {
            return Err(Error::BadAddress);
        }
        if len == 0 {
            // An empty range touches no page: any address will do.
            return Ok(());
        }
        let mut page = va & !(PAGE_SIZE as u64 - 1);
        let end = va + len;
        while page < end {
            self.translate(mem, page.max(va), access)?;
            page += PAGE_SIZE as u64;
        }
        Ok(())
    }

    /// Copies `src` to guest address `va`; on failure nothing is written.
    pub fn copy_to(&self, mem: &mut impl PhysMemory, va: u64, src: &[u8]) -> Result<(), Error> {
        // Translate every page first so a fault half-way writes nothing.
        self.probe(mem, va, src.len() as u64, Access::Write)?;
        let mut done = 0;
        while done < src.len() {
            let (mfn, off) = self.translate(mem, va + done as u64, Access::Write)?;
            let n = (PAGE_SIZE - off).min(src.len() - done);
            mem.frame_mut(mfn)[off..off + n].copy_from_slice(&src[done..done + n]);
            done += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pte::Pte;
    use crate::test_support::VecMemory;

    const RW_USER: PteFlags = PteFlags::PRESENT.union(PteFlags::WRITABLE).union(PteFlags::USER);

    /// Maps `va` to `leaf` with `flags` at the leaf, building tables as needed.
    fn map(mem: &mut VecMemory, l4: Mfn, va: u64, leaf: Mfn, flags: PteFlags, next: &mut u64) {
        let mut table = l4;
        for level in (2..=4u32).rev() {
            let i = table_index(va, level);
            let e = Pte(mem.read_u64(table, i));
            table = if e.is_present() {
                e.mfn()
            } else {
                let t = Mfn(*next);
                *next += 1;
                mem.write_u64(table, i, Pte::new(t, RW_USER).0);
                t
            };
        }
        mem.write_u64(table, table_index(va, 1), Pte::new(leaf, flags).0);
    }

    fn setup() -> (VecMemory, AddressSpace) {
        let mut mem = VecMemory::new(64);
        let l4 = Mfn(1);
        let mut next = 2;
        map(&mut mem, l4, 0x40_0000, Mfn(40), RW_USER, &mut next);
        map(&mut mem, l4, 0x40_1000, Mfn(41), RW_USER, &mut next);
        map(&mut mem, l4, 0x40_2000, Mfn(42), PteFlags::PRESENT | PteFlags::USER, &mut next);
        map(&mut mem, l4, 0x40_3000, Mfn(43), PteFlags::PRESENT | PteFlags::WRITABLE, &mut next);
        map(&mut mem, l4, 0x40_4000, Mfn(9999), RW_USER, &mut next);
        (mem, AddressSpace { l4 })
    }

    #[test]
    fn copies_across_a_page_boundary() {
        let (mut mem, space) = setup();
        let data: Vec<u8> = (0..100).collect();
        space.copy_to(&mut mem, 0x40_0fd0, &data).unwrap();
        let mut back = [0u8; 100];
        space.copy_from(&mem, 0x40_0fd0, &mut back).unwrap();
        assert_eq!(&back[..], &data[..]);
        assert_eq!(mem.frame(Mfn(41))[..0x34], data[0x30..]);
    }

    #[test]
    fn refuses_what_ring3_could_not_do() {
        let (mut mem, space) = setup();
        let mut b = [0u8; 8];
        // Unmapped.
        assert_eq!(space.copy_from(&mem, 0x50_0000, &mut b), Err(Error::BadAddress));
        // Read-only page for a write; readable for a read.
        assert_eq!(space.copy_to(&mut mem, 0x40_2000, &b), Err(Error::BadAddress));
        assert_eq!(space.copy_from(&mem, 0x40_2000, &mut b), Ok(()));
        // Supervisor-only page.
        assert_eq!(space.copy_from(&mem, 0x40_3000, &mut b), Err(Error::BadAddress));
        // Frame outside RAM.
        assert_eq!(space.copy_from(&mem, 0x40_4000, &mut b), Err(Error::BadAddress));
        // Hypervisor range and non-canonical addresses.
        assert_eq!(space.copy_from(&mem, 0xffff_8000_0000_0000, &mut b), Err(Error::BadAddress));
        assert_eq!(space.copy_from(&mem, 0x8000_0000_0000, &mut b), Err(Error::BadAddress));
    }

    #[test]
    fn failed_read_shows_nothing() {
        let (mut mem, space) = setup();
        // Starts in a readable page, runs into an unmapped one.
        let mut seen = 0;
        assert_eq!(space.read_chunks(&mem, 0x40_4ff0, 0x20, |c| seen += c.len()), Err(Error::BadAddress));
        assert_eq!(space.read_chunks(&mem, 0x40_2ff0, 0x1020, |c| seen += c.len()), Err(Error::BadAddress));
        assert_eq!(seen, 0);
        assert_eq!(space.read_chunks(&mem, 0x40_0ff0, 0x20, |c| seen += c.len()), Ok(()));
        assert_eq!(seen, 0x20);
        // An empty range needs no mapping at all.
        assert_eq!(space.read_chunks(&mem, 0x1, 0, |c| seen += c.len()), Ok(()));
        assert_eq!(space.copy_to(&mut mem, 0x1, &[]), Ok(()));

    }

    #[test]
    fn failed_copy_out_writes_nothing() {
        let (mut mem, space) = setup();
        let before = *mem.frame(Mfn(41));
        // Starts in a writable page, runs into the read-only one.
        let src = [0xaa; 0x1100];
        assert_eq!(space.copy_to(&mut mem, 0x40_1000, &src), Err(Error::BadAddress));
        assert_eq!(*mem.frame(Mfn(41)), before);
    }
}
