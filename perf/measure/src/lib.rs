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

/// Per-operation cycles of `op` alone, each run after an untimed `setup`
/// (what must happen before the operation can be repeated: an unpin
/// before a pin). Batches as in [`cycles_per_op`]; the two `rdtscp` reads
/// around each operation are included, on both sides of a ratio alike.
pub fn cycles_per_op_with_setup(per_batch: u32, mut setup: impl FnMut(), mut op: impl FnMut()) -> (u64, u64, u64) {
    let mut samples = [0u64; BATCHES];
    for _ in 0..per_batch {
        setup();
        op();
    }
    for s in samples.iter_mut() {
        let mut total = 0;
        for _ in 0..per_batch {
            setup();
            let t0 = tsc();
            op();
            total += tsc() - t0;
        }
        *s = total / u64::from(per_batch);
    }
    samples.sort_unstable();
    (samples[BATCHES / 2], samples[0], samples[BATCHES - 1])
}

/// How many times [`cycles_per_op`] runs its operation with `per_batch`:
/// the warm-up batch and `BATCHES` timed ones. A peer that must answer
/// every operation (the other end of a ping-pong) counts on it.
pub const fn ops_of(per_batch: u32) -> u64 {
    per_batch as u64 * (BATCHES as u64 + 1)
}

/// Samples taken by [`sample`].
pub const SAMPLES: usize = 101;

/// (median, minimum, maximum) of `SAMPLES` values of `measure`, each a
/// figure it takes on its own (a latency), after one untimed warm-up.
pub fn sample(mut measure: impl FnMut() -> u64) -> (u64, u64, u64) {
    let mut samples = [0u64; SAMPLES];
    measure();
    for s in samples.iter_mut() {
        *s = measure();
    }
    samples.sort_unstable();
    (samples[SAMPLES / 2], samples[0], samples[SAMPLES - 1])
}

/// Statistics of an operation that handles `n` items, per item.
pub fn per_item(stats: (u64, u64, u64), n: u64) -> (u64, u64, u64) {
    (stats.0 / n, stats.1 / n, stats.2 / n)
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
