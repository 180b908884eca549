//! The 16550 UART at COM1: the hypervisor's log and the guests' console.

use spin::Mutex;
use uart_16550::SerialPort;

const COM1: u16 = 0x3f8;

// SAFETY: COM1 is the standard PC serial port; nothing else in the
// hypervisor drives those I/O ports, and the mutex serialises access.
static PORT: Mutex<SerialPort> = Mutex::new(unsafe { SerialPort::new(COM1) });

pub fn init() {
    PORT.lock().init();
}

/// Writes raw bytes, translating `\n` to `\r\n` as a terminal expects.
pub fn write_bytes(bytes: &[u8]) {
    let mut port = PORT.lock();
    for &b in bytes {
        if b == b'\n' {
            port.send(b'\r');
        }
        port.send(b);
    }
}

/// A `core::fmt::Write` handle on the port.
pub struct Serial;

impl core::fmt::Write for Serial {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        write_bytes(s.as_bytes());
        Ok(())
    }
}

/// Frees the port for a last report, even if the failure struck while the
/// port was held.
pub fn take_over() {
    // SAFETY: called only on the way to stopping the machine, on the one CPU
    // Veneer runs; an interrupted writer never resumes, so at worst one
    // character of its line is lost.
    unsafe { PORT.force_unlock() };
}
