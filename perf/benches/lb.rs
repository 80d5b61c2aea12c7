//! The stateless load balancer's per-message cost inside one shard, without sockets: what
//! ringsip's own work adds on top of the kernel's UDP path measured by `ringsip-bench`.
//!
//! One benchmark per message of a call (`INVITE`, `180`, `200-INVITE`, `ACK`, `BYE`,
//! `200-BYE`), each fed to a shard's `StatelessProxy` built from
//! `config/examples/stateless-lb.toml` and queued into its send arena (then discarded):
//! parse, the route program (max-forwards, in-dialog, dispatch), dispatcher selection, the
//! CANCEL/ACK stickiness table, the Via/Max-Forwards edits and the write. `call` feeds all six.
//! (`config/examples/lcr.toml` relays statefully now, as `benches/stateful.rs` measures;
//! the prefix lookup alone is timed by `benches/mtree.rs`.)
//!
//! `taskset -c 1 cargo bench -p ringsip-perf --bench lb`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ringsip_perf::lb::Lb;

fn per_message(c: &mut Criterion) {
    let mut lb = Lb::new();
    // warm the tables as a running shard's are
    for _ in 0..1000 {
        lb.call().expect("call flow");
    }
    let msgs = lb.one_call();
    let mut g = c.benchmark_group("lb");
    for (step, p) in &msgs {
        g.throughput(Throughput::Elements(1));
        g.bench_function(step.name(), |b| b.iter(|| black_box(lb.feed_prepared(black_box(p)))));
    }
    g.throughput(Throughput::Elements(msgs.len() as u64));
    g.bench_function("call", |b| {
        b.iter(|| {
            let mut n = 0;
            for (_, p) in &msgs {
                n += lb.feed_prepared(black_box(p));
            }
            black_box(n)
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = per_message
}
criterion_main!(benches);
