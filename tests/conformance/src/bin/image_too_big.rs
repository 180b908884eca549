//! An image whose bootstrap regions (here a 64 MiB bss) exceed the domain's
//! memory (16 MiB) is refused with "does not fit", not built half-way.
#![no_std]
#![no_main]

use veneer_guest::StartInfo;

veneer_guest::entry!(main);
veneer_guest::expect!(b"refused image does not fit");

static mut HUGE: [u8; 64 << 20] = [0; 64 << 20];

fn main(_: &StartInfo) -> ! {
    // SAFETY: never reached; the read keeps HUGE in the image.
    let b = unsafe { core::ptr::read_volatile(core::ptr::addr_of!(HUGE).cast::<u8>()) };
    veneer_guest::failure(format_args!("a 64 MiB image ran in 16 MiB ({})", b))
}
