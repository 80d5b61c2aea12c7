//! The flood detector (`[pike]`, the `flooding` condition): what one request costs.
//!
//! * `pike/hit`: [`Pike::hit`] for requests of 4,096 source IPs in turn (each source's word
//!   found, one compare-and-swap);
//! * `pike/hit_one_source`: every request from one source (a flood: the same word).
//!
//! `cargo bench -p ringsip-perf --bench pike -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ringsip_modules::pike::Pike;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("pike");
    let p = Pike::new(Duration::from_secs(2), 1_000_000, 100_000);
    let sources: Vec<IpAddr> = (0..4096u32).map(|i| IpAddr::from([10, 0, (i >> 8) as u8, i as u8])).collect();
    let now = Instant::now();
    let mut k = 0;
    g.bench_function("hit", |b| {
        b.iter(|| {
            k = (k + 1) % sources.len();
            black_box(p.hit(black_box(sources[k]), now))
        })
    });
    let one: IpAddr = [192, 0, 2, 1].into();
    g.bench_function("hit_one_source", |b| b.iter(|| black_box(p.hit(black_box(one), now))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
