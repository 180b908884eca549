//! A ring page as a guest reaches it: through its own mapping.

use core::sync::atomic::{fence, AtomicU32, Ordering};

use hypercall_abi::ring::SharedPage;

/// A ring page mapped writable at virtual address `va`.
#[derive(Clone, Copy, Debug)]
pub struct MappedPage(pub u64);

impl MappedPage {
    fn index(&self, offset: usize) -> &AtomicU32 {
        assert!(offset.is_multiple_of(4) && offset < 4096);
        // SAFETY: the page is mapped writable for as long as the ring is in
        // use (its owner keeps it so); the other side writes the indices
        // concurrently, so they are only touched atomically.
        unsafe { AtomicU32::from_ptr((self.0 + offset as u64) as *mut u32) }
    }
}

impl SharedPage for MappedPage {
    fn load_u32(&self, offset: usize) -> u32 {
        self.index(offset).load(Ordering::Acquire)
    }
    fn store_u32(&mut self, offset: usize, value: u32) {
        self.index(offset).store(value, Ordering::Release);
    }
    fn fence(&mut self) {
        fence(Ordering::SeqCst);
    }
    fn read(&self, offset: usize, out: &mut [u8]) {
        assert!(offset + out.len() <= 4096);
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: inside the mapped page; volatile, because the other
            // side may be writing it (the bytes are validated after the copy).
            *b = unsafe { core::ptr::read_volatile((self.0 + (offset + i) as u64) as *const u8) };
        }
    }
    fn write(&mut self, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= 4096);
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: as for `read`.
            unsafe { core::ptr::write_volatile((self.0 + (offset + i) as u64) as *mut u8, *b) };
        }
    }
}
