//! Machine memory for host tests.

use crate::addr::{Mfn, PAGE_SIZE};
use crate::phys::PhysMemory;

/// `frames` zeroed frames, numbered from 0.
#[derive(Clone, PartialEq, Eq)]
pub struct VecMemory {
    frames: Vec<[u8; PAGE_SIZE]>,
}

impl VecMemory {
    pub fn new(frames: usize) -> VecMemory {
        VecMemory { frames: vec![[0; PAGE_SIZE]; frames] }
    }
}

impl PhysMemory for VecMemory {
    fn contains(&self, mfn: Mfn) -> bool {
        (mfn.0 as usize) < self.frames.len()
    }
    fn frame(&self, mfn: Mfn) -> &[u8; PAGE_SIZE] {
        &self.frames[mfn.0 as usize]
    }
    fn frame_mut(&mut self, mfn: Mfn) -> &mut [u8; PAGE_SIZE] {
        &mut self.frames[mfn.0 as usize]
    }
}

/// Writes small guest ELF images for tests: a read-execute text page at
/// `base`, a read-write data segment after it (0x100 bytes of file, two
/// pages in memory) and a Veneer note.
pub struct ElfBuilder {
    base: u64,
    entry: Option<u64>,
    machine: u16,
    note: Option<(u16, u16, u64)>,
    overlapping: bool,
}

impl ElfBuilder {
    pub fn guest() -> ElfBuilder {
        ElfBuilder { base: 0xffff_ffff_8000_0000, entry: None, machine: 62, note: Some((1, 0, 0)), overlapping: false }
    }
    pub fn base(mut self, base: u64) -> Self {
        self.base = base;
        self
    }
    pub fn entry(mut self, entry: u64) -> Self {
        self.entry = Some(entry);
        self
    }
    pub fn machine(mut self, m: u16) -> Self {
        self.machine = m;
        self
    }
    pub fn note_version(mut self, major: u16, minor: u16) -> Self {
        self.note = self.note.map(|(_, _, f)| (major, minor, f));
        self
    }
    pub fn note_features(mut self, features: u64) -> Self {
        self.note = self.note.map(|(a, b, _)| (a, b, features));
        self
    }
    pub fn without_note(mut self) -> Self {
        self.note = None;
        self
    }
    pub fn overlapping(mut self) -> Self {
        self.overlapping = true;
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let mut f = vec![0u8; 0x2100];
        let put = |f: &mut Vec<u8>, at: usize, bytes: &[u8]| f[at..at + bytes.len()].copy_from_slice(bytes);
        // ELF header.
        put(&mut f, 0, b"\x7fELF\x02\x01\x01");
        put(&mut f, 16, &2u16.to_le_bytes()); // ET_EXEC
        put(&mut f, 18, &self.machine.to_le_bytes());
        put(&mut f, 20, &1u32.to_le_bytes());
        put(&mut f, 24, &self.entry.unwrap_or(self.base).to_le_bytes());
        put(&mut f, 32, &64u64.to_le_bytes()); // e_phoff
        put(&mut f, 52, &64u16.to_le_bytes()); // e_ehsize
        put(&mut f, 54, &56u16.to_le_bytes()); // e_phentsize
        put(&mut f, 56, &3u16.to_le_bytes()); // e_phnum
        put(&mut f, 58, &64u16.to_le_bytes()); // e_shentsize
        let phdr = |f: &mut Vec<u8>, i: usize, ty: u32, flags: u32, off: u64, va: u64, filesz: u64, memsz: u64| {
            let at = 64 + i * 56;
            put(f, at, &ty.to_le_bytes());
            put(f, at + 4, &flags.to_le_bytes());
            put(f, at + 8, &off.to_le_bytes());
            put(f, at + 16, &va.to_le_bytes());
            put(f, at + 24, &va.to_le_bytes());
            put(f, at + 32, &filesz.to_le_bytes());
            put(f, at + 40, &memsz.to_le_bytes());
            put(f, at + 48, &0x1000u64.to_le_bytes());
        };
        phdr(&mut f, 0, 1, 5, 0x1000, self.base, 0x10, 0x10);
        let data_va = if self.overlapping { self.base } else { self.base + 0x1000 };
        phdr(&mut f, 1, 1, 6, 0x2000, data_va, 0x100, 0x2000);
        // The note, or an unrelated one in its place.
        let (owner, ty, desc) = match self.note {
            Some((major, minor, features)) => {
                let mut d = Vec::new();
                d.extend_from_slice(&major.to_le_bytes());
                d.extend_from_slice(&minor.to_le_bytes());
                d.extend_from_slice(&0u32.to_le_bytes());
                d.extend_from_slice(&features.to_le_bytes());
                (&b"Veneer\0\0"[..], 1u32, d)
            }
            None => (&b"Other\0\0\0"[..], 1u32, vec![0; 16]),
        };
        put(&mut f, 0x100, &7u32.to_le_bytes());
        put(&mut f, 0x104, &16u32.to_le_bytes());
        put(&mut f, 0x108, &ty.to_le_bytes());
        put(&mut f, 0x10c, owner);
        put(&mut f, 0x114, &desc);
        phdr(&mut f, 2, 4, 4, 0x100, 0, 36, 36);
        put(&mut f, 64 + 2 * 56 + 48, &4u64.to_le_bytes()); // notes align to 4
        // Text: recognisable bytes; data: a counting pattern.
        put(&mut f, 0x1000, &[0xcc; 0x10]);
        for i in 0..0x100 {
            f[0x2000 + i] = i as u8;
        }
        f
    }
}

/// A machine of `total` frames whose allocator hands out `first..total`
/// (the frames below stand for the hypervisor's), with its m2p taken and
/// a frame table whose hypervisor slots point at frames 2..18.
pub fn machine(total: u64, first: u64) -> (crate::machine::MachineMemory, VecMemory) {
    use crate::frame_allocator::FrameAllocator;
    use crate::frame_table::FrameTable;
    use crate::pte::{Pte, PteFlags};
    let mut mem = VecMemory::new(total as usize);
    let mut allocator = FrameAllocator::new(&[Mfn(first)..Mfn(total)], &[]);
    let m2p = crate::m2p::M2p::allocate(&mut allocator, &mut mem).expect("room for the m2p");
    let slots = core::array::from_fn(|i| Pte::new(Mfn(2 + i as u64), PteFlags::PRESENT | PteFlags::WRITABLE));
    let frames = FrameTable::new(total, slots, 40);
    (crate::machine::MachineMemory { allocator, frames, m2p }, mem)
}

/// A 1 MiB domain of the `ElfBuilder` guest on a 1024-frame machine, for
/// tests of the calls. Its bootstrap region: image (text at `TEXT`, data
/// at `DATA`), start info, p2m, page tables L4 L3 L2 L1, stack; nothing is
/// mapped from `END` on, and the first L1 covers `TEXT .. TEXT + 2 MiB`.
/// A CPU for hypercall tests: records what the hypervisor would load, and
/// is a host with every feature the guest view hides.
pub struct FakeCpu {
    pub fs: u64,
    pub gs: u64,
    pub loads: Vec<(u64, crate::vcpu::Mode)>,
    pub tsc_aux: u32,
    pub xcr0: u64,
}

impl Default for FakeCpu {
    fn default() -> FakeCpu {
        // x87, SSE, AVX of a host that also has AVX-512 and PKRU.
        FakeCpu { fs: 0, gs: 0, loads: Vec::new(), tsc_aux: 0, xcr0: 0b111 }
    }
}

impl FakeCpu {
    pub const PAT: u64 = 0x0007_0406_0007_0406;
    pub const EFER: u64 = 0xd01;
    pub const MISC_ENABLE: u64 = 0x0085_0089;
}

impl crate::vcpu::GuestCpu for FakeCpu {
    fn active_gs_base(&self) -> u64 {
        self.gs
    }
    fn set_active_gs_base(&mut self, value: u64) {
        self.gs = value;
    }
    fn set_fs_base(&mut self, value: u64) {
        self.fs = value;
    }
    fn load_address_space(&mut self, l4: u64, mode: crate::vcpu::Mode) {
        self.loads.push((l4, mode));
    }
    fn fs_base(&self) -> u64 {
        self.fs
    }
    fn set_tsc_aux(&mut self, value: u32) {
        self.tsc_aux = value;
    }
    fn host_cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        match (leaf, subleaf) {
            (0, _) => [0x1f, 0x756e_6547, 0x6c65_746e, 0x4965_6e69],
            // Initial APIC id 7; every feature bit set.
            (1, _) => [0x806f8, 0x0710_0800, u32::MAX, u32::MAX],
            (7, 0) => [2, u32::MAX, u32::MAX, u32::MAX],
            (7, 1) => [0x1234, 0, 0, 0],
            (5 | 0xa, _) => [0x40, 0x40, 3, 0x0703_0000],
            (0xb, _) => [1, 1, 0x100, 7],
            // The host supports x87 SSE AVX, AVX-512 (5-7) and PKRU (9);
            // 0x340 is the size for the XCR0 in force, 0xa88 for them all.
            (0xd, 0) => [0x2e7, 0x340, 0xa88, 0],
            (0xd, 1) => [0xf, 0xa90, 0x1800, 0],
            (0xd, 2) => [0x100, 0x240, 0, 0],
            (0xd, 5) => [0x40, 0x340, 0, 0],
            (0xd, 9) => [8, 0xa80, 0, 0],
            (0x8000_0000, _) => [0x8000_0008, 0, 0, 0],
            (0x8000_0001, _) => [0, 0, u32::MAX, u32::MAX],
            (0x8000_0008, _) => [0x3030, 0, 0, 0],
            // What a leaf past the top would give on real hardware: noise.
            _ => [0xdead; 4],
        }
    }
    fn guest_xcr0(&self) -> u64 {
        self.xcr0
    }
    fn host_msr(&self, msr: crate::vcpu::HostMsr) -> u64 {
        match msr {
            crate::vcpu::HostMsr::MiscEnable => Self::MISC_ENABLE,
            crate::vcpu::HostMsr::Pat => Self::PAT,
            crate::vcpu::HostMsr::Efer => Self::EFER,
        }
    }
}

pub struct TestDomain {
    pub machine: crate::machine::MachineMemory,
    pub mem: VecMemory,
    pub dom: crate::domain::Domain,
    pub console: Vec<u8>,
    /// Physical console input waiting for `console_read`.
    pub input: Vec<u8>,
    pub cpu: FakeCpu,
}

impl TestDomain {
    pub const TEXT: u64 = 0xffff_ffff_8000_0000;
    pub const DATA: u64 = Self::TEXT + 0x1000;
    pub const L4: u64 = Self::TEXT + 5 * 0x1000;
    pub const L1: u64 = Self::TEXT + 8 * 0x1000;
    /// After the stack (pages 9-12) the shared-info page (13); nothing is
    /// mapped from here on.
    pub const END: u64 = Self::TEXT + 14 * 0x1000;
    pub const FEATURES: u64 = 0;

    pub fn new() -> TestDomain {
        Self::build(false)
    }

    /// A domain that owns the physical console (`console = owner`).
    pub fn with_console_owner() -> TestDomain {
        Self::build(true)
    }

    fn build(console_owner: bool) -> TestDomain {
        use crate::domain::DomainId;
        use crate::domain_builder::{build, DomainSpec};
        use crate::elf_image::GuestImage;
        use hypercall_abi::version::AbiVersion;
        let v1 = AbiVersion { major: 1, minor: 0 };
        let bytes = ElfBuilder::guest().build();
        let image = GuestImage::parse(&bytes, v1, 0).unwrap();
        let (mut machine, mut mem) = machine(1024, 16);
        let spec = DomainSpec { id: DomainId(1), name: "t", image: &image, memory_bytes: 1 << 20, cmdline: "", ramdisk: None, abi: v1, features: Self::FEATURES, vcpus: 1, console_device: hypercall_abi::device::device_consts::NONE, console_owner };
        let dom = build(&spec, &mut machine, &mut mem).unwrap();
        TestDomain { machine, mem, dom, console: Vec::new(), input: Vec::new(), cpu: FakeCpu::default() }
    }

    /// Makes hypercall `nr` with `args` from vCPU 0.
    pub fn call(&mut self, nr: u64, args: [u64; 6]) -> crate::hypercall::Disposition {
        let mut regs = crate::vcpu::GuestRegisters::default();
        (regs.gprs.rax, regs.gprs.rdi, regs.gprs.rsi, regs.gprs.rdx, regs.gprs.r10, regs.gprs.r8, regs.gprs.r9) =
            (nr, args[0], args[1], args[2], args[3], args[4], args[5]);
        self.run(&mut regs)
    }

    pub fn call_hc(&mut self, nr: hypercall_abi::Hypercall, args: [u64; 6]) -> crate::hypercall::Disposition {
        self.call(nr.number(), args)
    }

    /// Makes the hypercall `regs` hold, from vCPU 0; `iret` changes them.
    pub fn run(&mut self, regs: &mut crate::vcpu::GuestRegisters) -> crate::hypercall::Disposition {
        use crate::hypercall::{handle, Services};
        let console = &mut self.console;
        let mut sink = |b: &[u8]| console.extend_from_slice(b);
        let input = &mut self.input;
        let mut source = |buf: &mut [u8]| {
            let n = buf.len().min(input.len());
            buf[..n].copy_from_slice(&input[..n]);
            input.drain(..n);
            n
        };
        let mut services = Services {
            abi: hypercall_abi::version::AbiVersion { major: 1, minor: 0 },
            features: Self::FEATURES,
            mem: &mut self.mem,
            machine: &mut self.machine,
            console: &mut sink,
            console_input: &mut source,
            cpu: &mut self.cpu,
        };
        handle(regs, &mut self.dom, 0, &mut services)
    }

    /// The result of call `nr`: its value or error.
    pub fn result(&mut self, nr: hypercall_abi::Hypercall, args: [u64; 6]) -> Result<u64, hypercall_abi::Error> {
        match self.call(nr.number(), args) {
            crate::hypercall::Disposition::Return(rax) => hypercall_abi::Error::from_return(rax).map_err(|e| e.unwrap()),
            other => panic!("{nr:?} ended the domain: {other:?}"),
        }
    }

    pub fn write(&mut self, va: u64, bytes: &[u8]) {
        self.dom.space(0).copy_to(&mut self.mem, va, bytes).unwrap();
    }

    pub fn read(&self, va: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        self.dom.space(0).copy_from(&self.mem, va, &mut b).unwrap();
        b
    }

    pub fn read_u64(&self, va: u64) -> u64 {
        let mut b = [0u8; 8];
        self.dom.space(0).copy_from(&self.mem, va, &mut b).unwrap();
        u64::from_le_bytes(b)
    }

    /// The machine frame behind pseudo-physical frame `pfn`, from the p2m
    /// array the builder wrote (at page 4 of the bootstrap region).
    pub fn mfn(&self, pfn: u64) -> Mfn {
        Mfn(self.read_u64(Self::TEXT + 4 * 0x1000 + pfn * 8))
    }

    /// Checks every count in the frame table against what exists.
    pub fn audit(&self) {
        let v = &self.dom.vcpus[0];
        let mut bases = vec![v.kernel_base()];
        bases.extend(v.user_base());
        crate::frame_table::tests::audit(&self.machine.frames, &self.mem, &bases, &[self.dom.shared_info], &[]).unwrap();
    }
}

/// Several domains of the `ElfBuilder` guest on one machine, numbered from
/// 1, each as [`TestDomain`] lays it out: for tests of calls between
/// domains (grants, devices).
pub struct World {
    pub machine: crate::machine::MachineMemory,
    pub mem: VecMemory,
    pub domains: std::collections::BTreeMap<u32, crate::domain::Domain>,
}

impl World {
    pub fn new(n: u32) -> World {
        use crate::domain::DomainId;
        use crate::domain_builder::{build, DomainSpec};
        use crate::elf_image::GuestImage;
        use hypercall_abi::version::AbiVersion;
        let v1 = AbiVersion { major: 1, minor: 0 };
        let bytes = ElfBuilder::guest().build();
        let image = GuestImage::parse(&bytes, v1, 0).unwrap();
        let (mut machine, mut mem) = machine(2048, 16);
        let mut domains = std::collections::BTreeMap::new();
        for id in 1..=n {
            let spec = DomainSpec { id: DomainId(id), name: "w", image: &image, memory_bytes: 1 << 20, cmdline: "", ramdisk: None, abi: v1, features: 0, vcpus: 1, console_device: hypercall_abi::device::device_consts::NONE, console_owner: false };
            domains.insert(id, build(&spec, &mut machine, &mut mem).unwrap());
        }
        World { machine, mem, domains }
    }

    pub fn dom(&self, d: u32) -> &crate::domain::Domain {
        &self.domains[&d]
    }

    pub fn write(&mut self, d: u32, va: u64, bytes: &[u8]) {
        self.domains[&d].space(0).copy_to(&mut self.mem, va, bytes).unwrap();
    }

    pub fn read(&self, d: u32, va: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        self.domains[&d].space(0).copy_from(&self.mem, va, &mut b).unwrap();
        b
    }

    /// The machine frame of `d`'s pseudo-physical frame `pfn`.
    pub fn mfn(&self, d: u32, pfn: u64) -> Mfn {
        let b = self.read(d, TestDomain::TEXT + 4 * 0x1000 + pfn * 8, 8);
        Mfn(u64::from_le_bytes(b.try_into().unwrap()))
    }

    /// Maps `d`'s frame `pfn` at its usual address in the first L1
    /// (`TEXT + pfn * 4096`), writable or not, as `update_va_mapping` would.
    pub fn map(&mut self, d: u32, pfn: u64, writable: bool) {
        use crate::pte::{Pte, PteFlags};
        let va = TestDomain::TEXT + pfn * 0x1000;
        let dom = &self.domains[&d];
        let (l1, index) = crate::mmu::l1_entry_of(dom.vcpus[0].kernel_base(), va, &self.mem).unwrap();
        let mut flags = PteFlags::PRESENT;
        flags.set(PteFlags::WRITABLE, writable);
        let entry = Pte::new(self.mfn(d, pfn), flags).0;
        self.machine.frames.update_entry(dom.id, l1, index, entry, false, &mut self.mem).unwrap();
    }

    /// Checks every count in the frame table against what exists: each
    /// domain's base pointer, shared-info page and grant-table frames,
    /// every grant mapping, and `pins` the test holds for the hypervisor.
    pub fn audit(&self, pins: &[crate::grant_table::Pin]) {
        let bases: Vec<Mfn> = self.domains.values().map(|d| d.vcpus[0].kernel_base()).collect();
        let mut specials: Vec<Mfn> = self.domains.values().map(|d| d.shared_info).collect();
        for d in self.domains.values() {
            specials.extend_from_slice(d.grants.frames());
        }
        let uses = crate::grant_table::all_uses(self.domains.values(), pins);
        crate::frame_table::tests::audit(&self.machine.frames, &self.mem, &bases, &specials, &uses).unwrap();
    }
}
