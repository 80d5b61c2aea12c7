//! The transaction-stateful load balancer's per-message cost inside one shard, without
//! sockets, against the stateless one measured in the same run.
//!
//! * `stateless/*`: `config/examples/stateless-lb.toml` through [`ringsip_perf::lb`], exactly
//!   as `benches/lb.rs` measures it (one prepared message of each kind fed again and again).
//! * `stateful/*`: `config/examples/stateful-lb.toml` through [`ringsip_perf::stateful`]:
//!   whole calls, each with a new Call-ID (a stateful proxy cannot be fed the same INVITE
//!   twice: the second one is a retransmission), 32 at a time message kind by message kind,
//!   on a virtual clock at 1,000 calls/s, after a warm-up of 400 s virtual
//!   ([`ringsip_perf::stateful::SETTLED_CALLS`]): the table holds its steady number of
//!   transactions (the BYEs, and the accepted INVITEs, of the last 32 s) and its buffers
//!   and map have stopped growing. Each benchmark times only the router's work on
//!   its message kind (one clock read per batch of 32); building and checking the messages
//!   is not timed. `INVITE` includes the 100 Trying the router sends itself; `timers` is the
//!   router's `tick` per call (Timer K trims the BYE leg, Timer J frees the transaction,
//!   the health probes); `call` is the six messages plus `timers`.
//!
//! At the end a summary measures both again over the same number of calls and prints the
//! ns per message of each kind side by side with the ratio.
//!
//! `taskset -c 1 cargo bench -p ringsip-perf --bench stateful`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ringsip_perf::lb::{Lb, Prepared};
use ringsip_perf::stateful::{SETTLED_CALLS, Stateful, Step, Times};

/// Calls in flight at once (one receive batch per message kind).
const BATCH: usize = 32;

/// Calls the summary times, per round.
const SUMMARY_CALLS: u64 = 20_000;

fn stateful_calls(s: &mut Stateful, calls: u64, t: &mut Times) {
    let mut left = calls;
    while left > 0 {
        let n = left.min(BATCH as u64) as usize;
        s.calls(n, Some(t)).unwrap_or_else(|e| panic!("{e}"));
        left -= n as u64;
    }
}

fn stateless(c: &mut Criterion, lb: &mut Lb, msgs: &[(Step, Prepared)]) {
    let mut g = c.benchmark_group("stateless");
    for (step, p) in msgs {
        g.throughput(Throughput::Elements(1));
        g.bench_function(step.name(), |b| b.iter(|| black_box(lb.feed_prepared(black_box(p)))));
    }
    g.throughput(Throughput::Elements(msgs.len() as u64));
    g.bench_function("call", |b| {
        b.iter(|| {
            let mut n = 0;
            for (_, p) in msgs {
                n += lb.feed_prepared(black_box(p));
            }
            black_box(n)
        })
    });
    g.finish();
}

fn stateful(c: &mut Criterion, s: &mut Stateful) {
    let mut g = c.benchmark_group("stateful");
    // every iteration is a whole call of which one part is timed: keep the wall time bounded
    g.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1)).sample_size(20);
    for step in Step::ALL {
        g.throughput(Throughput::Elements(1));
        g.bench_function(step.name(), |b| {
            b.iter_custom(|iters| {
                let mut t = Times::default();
                stateful_calls(s, iters, &mut t);
                t.of(step)
            })
        });
    }
    g.bench_function("timers", |b| {
        b.iter_custom(|iters| {
            let mut t = Times::default();
            stateful_calls(s, iters, &mut t);
            t.tick
        })
    });
    g.throughput(Throughput::Elements(Step::ALL.len() as u64));
    g.bench_function("call", |b| {
        b.iter_custom(|iters| {
            let mut t = Times::default();
            stateful_calls(s, iters, &mut t);
            t.total()
        })
    });
    g.finish();
}

/// Both proxies over the same number of calls, three rounds (the fastest of each kind
/// counts), printed side by side.
fn summary(lb: &mut Lb, msgs: &[(Step, Prepared)], s: &mut Stateful) {
    let mut best_lb = [f64::MAX; 6];
    let mut best_sf = [f64::MAX; 7];
    for _ in 0..3 {
        for (k, (_, p)) in msgs.iter().enumerate() {
            let started = Instant::now();
            for _ in 0..SUMMARY_CALLS {
                black_box(lb.feed_prepared(black_box(p)));
            }
            let ns = started.elapsed().as_nanos() as f64 / SUMMARY_CALLS as f64;
            best_lb[k] = best_lb[k].min(ns);
        }
        let mut t = Times::default();
        stateful_calls(s, SUMMARY_CALLS, &mut t);
        for (k, step) in Step::ALL.into_iter().enumerate() {
            best_sf[k] = best_sf[k].min(t.ns_per(step));
        }
        best_sf[6] = best_sf[6].min(t.tick_ns_per_call());
    }
    let lb_call: f64 = best_lb.iter().sum();
    let sf_msgs: f64 = best_sf[..6].iter().sum();
    let sf_call = sf_msgs + best_sf[6];
    println!();
    println!("summary: ns per message, {SUMMARY_CALLS} calls per round, fastest of 3 rounds, same process");
    println!("{:<16} {:>10} {:>10} {:>7}", "message", "stateless", "stateful", "ratio");
    for (k, step) in Step::ALL.into_iter().enumerate() {
        println!("{:<16} {:>10.0} {:>10.0} {:>6.2}x", step.name(), best_lb[k], best_sf[k], best_sf[k] / best_lb[k]);
    }
    println!("{:<16} {:>10.0} {:>10.0} {:>6.2}x", "6 messages", lb_call, sf_msgs, sf_msgs / lb_call);
    println!("{:<16} {:>10} {:>10.0}", "timers per call", "-", best_sf[6]);
    println!("{:<16} {:>10.0} {:>10.0} {:>6.2}x", "call", lb_call, sf_call, sf_call / lb_call);
    println!("{:<16} {:>10.0} {:>10.0} {:>6.2}x", "per message", lb_call / 6.0, sf_call / 6.0, sf_call / lb_call);
    println!(
        "stateful table: {} live transactions after {:.1} s virtual ({} calls)",
        s.live(),
        s.elapsed().as_secs_f64(),
        s.calls_made()
    );
}

fn benches(c: &mut Criterion) {
    let mut lb = Lb::new();
    // warm the tables as a running shard's are
    for _ in 0..1000 {
        lb.call().expect("call flow");
    }
    let msgs = lb.one_call();
    let mut s = Stateful::new();
    // past Timer J and past the buffer pool's and match map's last growth: the steady state
    // of a shard that has been under this load for minutes
    s.run(SETTLED_CALLS, BATCH).unwrap_or_else(|e| panic!("warm-up: {e}"));

    stateless(c, &mut lb, &msgs);
    stateful(c, &mut s);
    summary(&mut lb, &msgs, &mut s);
}

criterion_group! {
    name = bench;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(bench);
