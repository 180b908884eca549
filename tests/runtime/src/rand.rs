//! A small deterministic generator for test data and test choices.

/// xorshift64*: deterministic from its seed, never zero.
#[derive(Clone, Copy, Debug)]
pub struct Rng(u64);

impl Rng {
    pub const fn new(seed: u64) -> Rng {
        Rng(if seed == 0 { 0x9e37_79b9_7f4a_7c15 } else { seed })
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `lo..hi` (`hi > lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo)
    }
}

/// Byte `byte` (0–511) of 512-byte sector `sector` of a disk whose
/// contents are generation `seed` of a pattern: seed 0 is the image the
/// runner writes for `pattern-*.img` disks (`xtask/src/bundle.rs` has the
/// same function), any other seed what a test wrote. Every sector of
/// every generation differs from every other.
pub fn disk_byte(seed: u32, sector: u64, byte: usize) -> u8 {
    let mut x = (sector << 20) ^ (u64::from(seed) << 40) ^ 0x51_7cc1_b727_220a;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    let word = x.wrapping_add(byte as u64 / 8).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    (word >> ((byte % 8) * 8)).to_le_bytes()[0] ^ byte.to_le_bytes()[0]
}
