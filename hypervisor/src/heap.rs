//! The hypervisor's heap: one run of frames taken at boot, before the frame
//! allocator (which keeps its bitmap here) exists.

use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Frames the heap takes: 8 MiB.
pub const HEAP_FRAMES: u64 = 2048;

/// # Safety
/// `[start, start + size)` must be mapped, writable, and used by nothing
/// else for the rest of the run; `init` is called once.
pub unsafe fn init(start: u64, size: usize) {
    // SAFETY: the caller hands over exclusive use of the range.
    unsafe { HEAP.lock().init(start as *mut u8, size) };
}
