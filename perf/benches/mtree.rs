//! mtree at LCR scale: a tree of 1,000,000 digit prefixes (2–10 digits, uniformly random
//! digits, distinct) and lookups of 11-digit numbers.
//!
//! * `mtree/build_1m`: building the tree from the prefix list (what a snapshot build pays);
//! * `mtree/longest_1m`: [`Mtree::longest`], one lookup per iteration over a rotating set of
//!   keys;
//! * `mtree/hash_oracle_1m`: the naive way, a hash map probed from the longest prefix of the
//!   key down to the shortest (the answers are checked equal to the tree's first);
//! * `mtree/matches_1m`: every matching prefix, longest first.
//!
//! `taskset -c 1 cargo bench -p ringsip-perf --bench mtree`

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ringsip_modules::mtree::{Alphabet, Mtree};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn digits(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| b'0' + (self.next() % 10) as u8).collect()
    }
}

const PREFIXES: usize = 1_000_000;

fn prefixes() -> Vec<(Vec<u8>, u32)> {
    let mut r = Rng(0x1234_5678_9abc_def1);
    let mut seen = std::collections::HashSet::with_capacity(PREFIXES);
    let mut out = Vec::with_capacity(PREFIXES);
    while out.len() < PREFIXES {
        let len = 2 + (r.next() % 9) as usize;
        let p = r.digits(len);
        if seen.insert(p.clone()) {
            let v = out.len() as u32;
            out.push((p, v));
        }
    }
    out
}

fn lookups(c: &mut Criterion) {
    let entries = prefixes();
    let mut g = c.benchmark_group("mtree");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("build_1m", |b| {
        b.iter_batched(
            || entries.clone(),
            |e| black_box(Mtree::build(Alphabet::digits(), e).unwrap()),
            BatchSize::LargeInput,
        )
    });
    g.finish();

    let tree = Mtree::build(Alphabet::digits(), entries.clone()).unwrap();
    let map: HashMap<Vec<u8>, u32> = entries.iter().cloned().collect();
    let oracle = |key: &[u8]| (0..=key.len()).rev().find_map(|l| map.get(&key[..l]).map(|v| (l, v)));
    let mut r = Rng(42);
    let keys: Vec<Vec<u8>> = (0..4096).map(|_| r.digits(11)).collect();
    for k in &keys {
        assert_eq!(tree.longest(k), oracle(k), "tree and oracle disagree");
    }
    eprintln!(
        "mtree: {} prefixes, {} nodes, {:.1} MiB",
        tree.len(),
        tree.nodes(),
        tree.memory_bytes() as f64 / (1024.0 * 1024.0)
    );

    let mut g = c.benchmark_group("mtree");
    g.measurement_time(Duration::from_secs(3));
    let mut i = 0;
    g.bench_function("longest_1m", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            black_box(tree.longest(black_box(&keys[i])))
        })
    });
    g.bench_function("hash_oracle_1m", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            black_box(oracle(black_box(&keys[i])))
        })
    });
    g.bench_function("matches_1m", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            black_box(tree.matches(black_box(&keys[i])).count())
        })
    });
    g.finish();
}

criterion_group!(benches, lookups);
criterion_main!(benches);
