//! The legacy 8259 PICs. Veneer takes no legacy interrupts: the firmware
//! leaves them routed to vectors that overlap CPU exceptions, so they are
//! moved out of the way and masked for good.

use x86_64::instructions::port::Port;

pub fn disable() {
    let mut commands = [Port::<u8>::new(0x20), Port::<u8>::new(0xa0)];
    let mut data = [Port::<u8>::new(0x21), Port::<u8>::new(0xa1)];
    // ICW1 (init, expect ICW4), ICW2 (vector base), ICW3 (cascade), ICW4
    // (8086 mode), then mask every line.
    let init: [[u8; 4]; 2] = [[0x11, 0x20, 0x04, 0x01], [0x11, 0x28, 0x02, 0x01]];
    for i in 0..2 {
        // SAFETY: ports 0x20/0x21 and 0xa0/0xa1 are the PICs, owned by this
        // module alone; the sequence is the documented initialisation.
        unsafe {
            commands[i].write(init[i][0]);
            data[i].write(init[i][1]);
            data[i].write(init[i][2]);
            data[i].write(init[i][3]);
            data[i].write(0xff);
        }
    }
}
