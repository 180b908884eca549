//! Reference clocks read once at boot: the PIT, against which the TSC (and
//! the APIC timer) are calibrated, and the CMOS real-time clock, which sets
//! the wall clock.

use x86_64::instructions::port::Port;

/// The PIT's input clock.
const PIT_HZ: u64 = 1_193_182;
/// Calibration window: 20 ms.
const WINDOW_MS: u64 = 20;

/// The TSC now.
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc only reads the time-stamp counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Runs `sample` at the start and the end of a 20 ms window timed by PIT
/// channel 2 (the speaker gate, so no interrupt is involved); returns the
/// two samples.
pub fn over_pit_window<T>(mut sample: impl FnMut() -> T) -> (T, T) {
    let count = PIT_HZ * WINDOW_MS / 1000;
    let mut gate = Port::<u8>::new(0x61);
    let mut command = Port::<u8>::new(0x43);
    let mut channel2 = Port::<u8>::new(0x42);
    // SAFETY: ports 0x61, 0x42 and 0x43 are the PIT's channel 2 and its
    // gate; nothing else in Veneer uses them, and the speaker stays off.
    unsafe {
        let g = gate.read();
        gate.write((g & !0x02) | 0x01);
        // Channel 2, low byte then high byte, mode 0 (interrupt on terminal count).
        command.write(0b1011_0000);
        channel2.write((count & 0xff) as u8);
        channel2.write((count >> 8) as u8);
        let start = sample();
        // OUT2 (bit 5) rises when the count reaches zero.
        while gate.read() & 0x20 == 0 {
            core::hint::spin_loop();
        }
        (start, sample())
    }
}

/// TSC ticks per second, measured against the PIT.
pub fn tsc_hz() -> u64 {
    let (t0, t1) = over_pit_window(rdtsc);
    (t1 - t0) * 1000 / WINDOW_MS
}

/// Ticks per second of a down-counter sampled by `read`, measured against
/// the PIT.
pub fn down_counter_hz(read: impl FnMut() -> u32) -> u64 {
    let (c0, c1) = over_pit_window(read);
    u64::from(c0.wrapping_sub(c1)) * 1000 / WINDOW_MS
}

fn cmos(register: u8) -> u8 {
    let mut index = Port::<u8>::new(0x70);
    let mut data = Port::<u8>::new(0x71);
    // SAFETY: ports 0x70/0x71 are the CMOS; bit 7 of the index keeps NMIs
    // disabled as firmware leaves them; reading has no other effect.
    unsafe {
        index.write(0x80 | register);
        data.read()
    }
}

/// Seconds since 1970-01-01T00:00:00Z from the CMOS real-time clock.
pub fn rtc_unix_seconds() -> u64 {
    // Wait out an update in progress, then read until two reads agree.
    let read = || {
        while cmos(0x0a) & 0x80 != 0 {
            core::hint::spin_loop();
        }
        [cmos(0x00), cmos(0x02), cmos(0x04), cmos(0x07), cmos(0x08), cmos(0x09), cmos(0x32)]
    };
    let mut r = read();
    loop {
        let again = read();
        if again == r {
            break;
        }
        r = again;
    }
    let status_b = cmos(0x0b);
    let bcd = status_b & 0x04 == 0;
    let value = |v: u8| if bcd { u64::from(v & 0x0f) + u64::from(v >> 4) * 10 } else { u64::from(v) };
    let (sec, min) = (value(r[0]), value(r[1]));
    let hour = if status_b & 0x02 != 0 {
        value(r[2])
    } else {
        // 12-hour mode: bit 7 is PM, 12 means 0.
        value(r[2] & 0x7f) % 12 + if r[2] & 0x80 != 0 { 12 } else { 0 }
    };
    let (day, month) = (value(r[3]), value(r[4]));
    let century = if r[6] != 0 { value(r[6]) } else { 20 };
    let year = century * 100 + value(r[5]);
    days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec
}

/// Days from 1970-01-01 to `year-month-day` (proleptic Gregorian).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
