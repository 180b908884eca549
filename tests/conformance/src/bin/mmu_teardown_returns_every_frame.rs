//! Domain teardown releases every frame and reference, whatever the guest
//! left behind: here a second pinned address space installed as the user
//! base pointer, a pinned L1 hooked into it, mappings of every kind, a
//! reservation given back and retaken, the shared-info page mapped. The
//! guest then powers off; the hypervisor's own check at the end of the
//! run (its `frames: all N free again` line, which the runner requires)
//! proves the allocator got back exactly what the domain took.
#![no_std]
#![no_main]

use veneer_guest::hypercall_abi::memory::{uvmf, MmuUpdate, MmuextCmd};
use veneer_guest::mmu::{self, op, peek, poke, Memory, RO, RW};
use veneer_guest::{check, StartInfo, IMAGE_BASE};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");

fn main(start: &StartInfo) -> ! {
    let mut mem = Memory::new(start);
    let ext = mmu::start_info_ext(start);
    // The shared-info page, mapped writable as the ABI intends.
    let si = Memory::va(mem.alloc());
    check!(mmu::update_va_mapping(si, ext.shared_info_mfn << 12 | RW, uvmf::INVLPG) == Ok(0), "map shared info");
    poke(si + 0xc10, 1);
    // A second L4 sharing the image's L3, pinned, as the user base.
    let l4 = mem.alloc();
    check!(mem.map(l4, RW) == Ok(0), "map");
    for i in 0..512 {
        poke(Memory::va(l4) + i * 8, if i == 511 { peek(start.pt_base + 511 * 8) } else { 0 });
    }
    check!(mem.map(l4, RO) == Ok(0), "remap");
    let (done, r) = mmu::mmuext(&[op(MmuextCmd::PinL4, mem.mfn(l4), 0), op(MmuextCmd::NewUserBaseptr, mem.mfn(l4), 0)]);
    check!((done, r) == (2, Ok(0)), "user base: {} {:?}", done, r);
    // A pinned L1 for a second window, full of mappings.
    let table = mem.alloc();
    check!(mem.fresh_table(table) == Ok(0) && mmu::pin(1, mem.mfn(table)) == Ok(0), "L1");
    let window = IMAGE_BASE + (2 << 20);
    let hook = MmuUpdate::pt_update(mem.entry_maddr(window, 2), mem.mfn(table) << 12 | RW);
    check!(mmu::mmu_update(&[hook]) == (1, Ok(0)), "hook");
    for i in 0..64u64 {
        let flags = if i % 2 == 0 { RW } else { RO };
        let u = MmuUpdate::pt_update((mem.mfn(table) << 12) | (i * 8), (mem.mfn(1024 + i / 2) << 12) | flags);
        check!(mmu::mmu_update(&[u]) == (1, Ok(0)), "mapping {}", i);
    }
    // Give a frame back and take one.
    let pfn = mem.alloc();
    let mut e = [mem.mfn(pfn)];
    check!(mmu::reservation_decrease(&mut e) == Ok(1), "decrease");
    let mut e = [pfn];
    check!(mmu::reservation_increase(&mut e) == Ok(1), "increase");
    poke(start.p2m_base + pfn * 8, e[0]);
    check!(mem.map(pfn, RW) == Ok(0), "map the new frame");
    veneer_guest::success()
}
