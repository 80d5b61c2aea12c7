//! Latency histogram (HDR-style, log-linear): exact to 1 µs below 2048 µs, then 1024
//! sub-buckets per power of two (relative error < 0.1 %). Fixed memory, O(1) record.

const SUB_BITS: u32 = 10;
const SUB: u64 = 1 << SUB_BITS; // 1024
/// Values are clamped to 2^36 µs (19 hours).
const MAX_EXP: u32 = 36;

/// A latency histogram in µs.
#[derive(Clone, Debug)]
pub(crate) struct Histogram {
    counts: Vec<u64>,
    n: u64,
    sum: u128,
    max: u64,
}

fn index(v: u64) -> usize {
    if v < 2 * SUB {
        v as usize
    } else {
        let e = 63 - v.leading_zeros() - SUB_BITS; // v >> e is in [SUB, 2 SUB)
        ((e as usize) << SUB_BITS) + (v >> e) as usize
    }
}

/// Highest value that lands in bucket `i`.
fn bucket_high(i: usize) -> u64 {
    let i = i as u64;
    if i < 2 * SUB {
        i
    } else {
        let e = (i >> SUB_BITS) - 1;
        let m = i - (e << SUB_BITS);
        ((m + 1) << e) - 1
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl Histogram {
    pub(crate) fn new() -> Histogram {
        Histogram { counts: vec![0; index((1u64 << MAX_EXP) - 1) + 1], n: 0, sum: 0, max: 0 }
    }

    /// Record one value in µs.
    pub(crate) fn record(&mut self, us: u64) {
        let v = us.min((1u64 << MAX_EXP) - 1);
        self.counts[index(v)] += 1;
        self.n += 1;
        self.sum += u128::from(v);
        self.max = self.max.max(v);
    }

    pub(crate) fn count(&self) -> u64 {
        self.n
    }

    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    pub(crate) fn mean(&self) -> f64 {
        if self.n == 0 { f64::NAN } else { self.sum as f64 / self.n as f64 }
    }

    /// Nearest-rank percentile (`p` in 0..=100): the smallest recorded value (to bucket
    /// precision: the bucket's highest value, capped at the maximum) with at least p % of
    /// the samples at or below it. `None` when empty.
    pub(crate) fn percentile(&self, p: f64) -> Option<u64> {
        if self.n == 0 {
            return None;
        }
        // (the epsilon keeps 99.9 % of 1000 at rank 999 despite float rounding)
        let rank = ((p * self.n as f64 / 100.0 - 1e-9).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(bucket_high(i).min(self.max));
            }
        }
        Some(self.max)
    }
}

/// Nearest-rank percentile of sorted values (`p` in 0..=100), the same definition as
/// [`Histogram::percentile`] without the bucketing. `None` when empty.
pub(crate) fn percentile_sorted(sorted: &[u32], p: f64) -> Option<u32> {
    let n = sorted.len() as u64;
    if n == 0 {
        return None;
    }
    let rank = ((p * n as f64 / 100.0 - 1e-9).ceil() as u64).clamp(1, n);
    sorted.get(rank as usize - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        let mut last = 0;
        for v in (0..200_000u64).chain([1 << 30, (1 << 36) - 1]) {
            let i = index(v);
            assert!(i >= last, "{v}");
            assert!(bucket_high(i) >= v, "{v}");
            if i > 0 {
                assert!(bucket_high(i - 1) < v, "{v}");
            }
            last = i;
        }
        assert_eq!(index(2047), 2047);
        assert_eq!(index(2048), 2048);
        assert_eq!(bucket_high(2048), 2049);
    }

    #[test]
    fn exact_percentiles_below_2ms() {
        let mut h = Histogram::new();
        for v in 1..=1000 {
            h.record(v);
        }
        assert_eq!(h.percentile(50.0), Some(500));
        assert_eq!(h.percentile(99.0), Some(990));
        assert_eq!(h.percentile(99.9), Some(999));
        assert_eq!(h.percentile(100.0), Some(1000));
        assert_eq!(h.percentile(0.0), Some(1));
        assert_eq!(h.count(), 1000);
        assert!((h.mean() - 500.5).abs() < 1e-9);
        assert_eq!(Histogram::new().percentile(50.0), None);
    }

    #[test]
    fn large_values_within_a_tenth_of_a_percent() {
        let mut h = Histogram::new();
        for v in [10_000u64, 123_456, 7_999_999, 500_000] {
            h.record(v);
        }
        let p = h.percentile(75.0).unwrap(); // 3rd of 4 = 500_000
        assert!((500_000..=500_500).contains(&p), "{p}");
        assert_eq!(h.percentile(100.0), Some(7_999_999)); // capped at the maximum
        assert_eq!(h.max(), 7_999_999);
    }

    #[test]
    fn sorted_percentiles_match_the_histogram_below_2ms() {
        let v: Vec<u32> = (1..=1000).collect();
        let mut h = Histogram::new();
        v.iter().for_each(|&x| h.record(u64::from(x)));
        for p in [0.0, 50.0, 99.0, 99.9, 100.0] {
            assert_eq!(percentile_sorted(&v, p).map(u64::from), h.percentile(p), "{p}");
        }
        assert_eq!(percentile_sorted(&[], 50.0), None);
        assert_eq!(percentile_sorted(&[7], 99.0), Some(7));
    }
}
