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

fn send_all(port: &mut SerialPort, bytes: &[u8]) {
    for &b in bytes {
        if b == b'\n' {
            port.send(b'\r');
        }
        port.send(b);
    }
}

/// Writes raw bytes in one piece (no other CPU's output comes between
/// them), translating `\n` to `\r\n` as a terminal expects.
pub fn write_bytes(bytes: &[u8]) {
    send_all(&mut PORT.lock(), bytes);
}

/// Moves the bytes waiting in the receiver into `buf`, without waiting for
/// more; returns how many (the console owner's `console_read`).
pub fn read_available(buf: &mut [u8]) -> usize {
    let mut port = PORT.lock();
    let mut n = 0;
    while n < buf.len() {
        match port.try_receive() {
            Ok(b) => {
                buf[n] = b;
                n += 1;
            }
            Err(_) => break,
        }
    }
    n
}

/// Writes formatted text in one piece.
pub fn write_fmt(args: core::fmt::Arguments<'_>) {
    struct Locked<'a>(&'a mut SerialPort);
    impl core::fmt::Write for Locked<'_> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            send_all(self.0, s.as_bytes());
            Ok(())
        }
    }
    // Serial output cannot fail.
    let _ = core::fmt::Write::write_fmt(&mut Locked(&mut PORT.lock()), args);
}

/// A `core::fmt::Write` handle on the port, for the last report of a
/// failure (each piece is written on its own).
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
    // SAFETY: called only on the way to stopping the machine; a writer this
    // interrupts (on this CPU) never resumes, and one on another CPU at
    // worst mixes a few characters into the report.
    unsafe { PORT.force_unlock() };
}
