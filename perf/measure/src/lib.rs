//! The timing loop every micro-benchmark uses, on Veneer and natively, so
//! both sides of a ratio are measured the same way.
#![no_std]

/// Batches per measurement; the reported figure is their median.
pub const BATCHES: usize = 101;

/// TSC cycles, serialised against earlier instructions.
#[inline(always)]
pub fn tsc() -> u64 {
    // SAFETY: rdtscp only reads the TSC (and TSC_AUX into ecx); it is
    // available in ring 3 unless CR4.TSD is set, which neither Veneer nor the
    // native kernel does.
    unsafe { core::arch::x86_64::__rdtscp(&mut 0) }
}

/// Per-operation cycles of `op`: `BATCHES` batches of `per_batch` calls,
/// after one warm-up batch. Returns (median, minimum, maximum).
pub fn cycles_per_op(per_batch: u32, mut op: impl FnMut()) -> (u64, u64, u64) {
    let mut samples = [0u64; BATCHES];
    for _ in 0..per_batch {
        op();
    }
    for s in samples.iter_mut() {
        let t0 = tsc();
        for _ in 0..per_batch {
            op();
        }
        *s = (tsc() - t0) / u64::from(per_batch);
    }
    samples.sort_unstable();
    (samples[BATCHES / 2], samples[0], samples[BATCHES - 1])
}

/// Formats one result line the harness parses:
/// `bench <name> median=<n> min=<n> max=<n> unit=cycles`.
pub struct Line<'a> {
    pub name: &'a str,
    pub stats: (u64, u64, u64),
}

impl core::fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (median, min, max) = self.stats;
        write!(f, "bench {} median={} min={} max={} unit=cycles", self.name, median, min, max)
    }
}
