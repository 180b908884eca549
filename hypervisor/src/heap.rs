//! The hypervisor's heap: one run of frames taken at boot, before the frame
//! allocator (which keeps its bitmap here) exists.

use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Heap bytes per frame of RAM: the frame table's entry (24 bytes) and the
/// allocator's two bitmaps, with room to spare.
const BYTES_PER_RAM_FRAME: u64 = 40;
/// Heap for everything else (domains, vCPUs, tables of ports and grants).
const BASE_FRAMES: u64 = 2048;

/// Frames the heap takes on a machine with `ram_frames` frames of RAM:
/// 8 MiB plus the per-frame metadata, so large hosts do not run out.
pub fn frames_for(ram_frames: u64) -> u64 {
    BASE_FRAMES + (ram_frames * BYTES_PER_RAM_FRAME).div_ceil(4096)
}

/// # Safety
/// `[start, start + size)` must be mapped, writable, and used by nothing
/// else for the rest of the run; `init` is called once.
pub unsafe fn init(start: u64, size: usize) {
    // SAFETY: the caller hands over exclusive use of the range.
    unsafe { HEAP.lock().init(start as *mut u8, size) };
}
