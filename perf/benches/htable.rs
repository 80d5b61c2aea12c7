//! htable: one table of 4096 entries keyed by IPv4 text (`10.1.x.y`), with an autoexpire (as
//! an `ipban` or per-source counter table has), keys rotating.
//!
//! * `htable/get_hit`, `htable/get_miss`: [`Htable::get_int`] of a present key, of a key that
//!   is not in the table (`10.9.x.y`);
//! * `htable/set_existing`: [`Htable::set`] of an integer over an existing key;
//! * `htable/inc_existing`: [`Htable::inc`] of an existing key;
//! * `htable_2t/…`: the same with two threads working on the one table at once (each starts
//!   half-way round the keys from the other), plus `inc_same_key` (both threads increment one
//!   key: the worst case, a flood from one source). Each thread times its own operations after
//!   a barrier (thread start-up is not counted) and the mean of the two is reported, so the
//!   figure is ns per operation per thread.
//!
//! `cargo bench -p ringsip-perf --bench htable -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ringsip_modules::htable::{Htable, Spec, Value};

const KEYS: usize = 4096;

fn keys(second: u8) -> Vec<Vec<u8>> {
    (0..KEYS).map(|i| format!("10.{second}.{}.{}", i / 256, i % 256).into_bytes()).collect()
}

fn table(keys: &[Vec<u8>], now: Instant) -> Htable {
    let t = Htable::new(&Spec {
        name: "bench".into(),
        max_entries: Some(100_000),
        autoexpire: Some(Duration::from_secs(300)),
    });
    for (i, k) in keys.iter().enumerate() {
        t.set(k, Value::Int(i as i64), None, now).expect("room for every key");
    }
    t
}

/// What one operation does: `op(table, keys, i, now)` on key `i % KEYS`.
type Op = fn(&Htable, &[Vec<u8>], usize, Instant);

fn get(t: &Htable, keys: &[Vec<u8>], i: usize, now: Instant) {
    black_box(t.get_int(black_box(&keys[i % KEYS]), now));
}

fn set(t: &Htable, keys: &[Vec<u8>], i: usize, now: Instant) {
    t.set(black_box(&keys[i % KEYS]), Value::Int(i as i64), None, now).expect("overwrite");
}

fn inc(t: &Htable, keys: &[Vec<u8>], i: usize, now: Instant) {
    black_box(t.inc(black_box(&keys[i % KEYS]), 1, now).expect("integer"));
}

fn inc_one(t: &Htable, keys: &[Vec<u8>], _i: usize, now: Instant) {
    black_box(t.inc(black_box(&keys[0]), 1, now).expect("integer"));
}

/// `iters` operations on each of two threads at once; the mean time of one thread.
fn two_threads(t: &Htable, keys: &[Vec<u8>], now: Instant, iters: u64, op: Op) -> Duration {
    let barrier = Barrier::new(2);
    let times: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2usize)
            .map(|th| {
                let barrier = &barrier;
                s.spawn(move || {
                    let start = th * KEYS / 2;
                    barrier.wait();
                    let t0 = Instant::now();
                    for i in 0..iters as usize {
                        op(t, keys, start + i, now);
                    }
                    t0.elapsed()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("bench thread")).collect()
    });
    times.iter().sum::<Duration>() / times.len() as u32
}

fn bench(c: &mut Criterion) {
    let now = Instant::now();
    let present = keys(1);
    let absent = keys(9);
    let t = table(&present, now);
    let ops: [(&str, &[Vec<u8>], Op); 4] = [
        ("get_hit", &present, get),
        ("get_miss", &absent, get),
        ("set_existing", &present, set),
        ("inc_existing", &present, inc),
    ];

    let mut g = c.benchmark_group("htable");
    for (name, keys, op) in ops {
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                op(&t, keys, i, now)
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("htable_2t");
    for (name, keys, op) in ops.into_iter().chain([("inc_same_key", &present[..], inc_one as Op)]) {
        g.bench_function(name, |b| b.iter_custom(|iters| two_threads(&t, keys, now, iters, op)));
    }
    g.finish();
    assert_eq!(t.len(), KEYS, "no key added or lost");
}

criterion_group!(benches, bench);
criterion_main!(benches);
