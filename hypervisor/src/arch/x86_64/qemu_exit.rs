//! Ending the run: QEMU's `isa-debug-exit` device (port 0xf4) turns a
//! written value `v` into QEMU's exit status `(v << 1) | 1`.

use x86_64::instructions::port::Port;

const ISA_DEBUG_EXIT_PORT: u16 = 0xf4;

/// How the run ended, as the host sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum RunStatus {
    /// Every domain powered off with status 0. QEMU exits 33.
    Clean = 0x10,
    /// The hypervisor failed: a panic or an exception in hypervisor code.
    /// QEMU exits 35.
    HypervisorFailed = 0x11,
    /// The hypervisor is fine but some domain did not end cleanly (or could
    /// not be built). QEMU exits 37.
    DomainFailed = 0x12,
}

/// Stops the machine.
pub fn exit(status: RunStatus) -> ! {
    let mut port = Port::<u32>::new(ISA_DEBUG_EXIT_PORT);
    // SAFETY: the write only signals QEMU; on a machine without the device
    // the port is unused and the write has no effect.
    unsafe { port.write(status as u32) };
    super::cpu::halt_forever()
}
