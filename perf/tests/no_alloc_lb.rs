//! Zero-allocation proof for a shard's whole per-message work as a load balancer: the
//! `StatelessProxy` handler (parse, route program, dispatcher selection, stickiness table,
//! edits, write into the send arena) driven with complete calls, each with a new Call-ID,
//! through a counting global allocator. Only the measuring thread counts.

use std::hint::black_box;

use ringsip_perf::lb::Lb;

mod common;
use common::allocations_during;

#[global_allocator]
static GLOBAL: common::Counting = common::Counting;

#[test]
fn load_balancer_calls_do_not_allocate() {
    let mut lb = Lb::new();
    // steady state: tables warmed by earlier calls, as in a running shard
    for _ in 0..200 {
        lb.call().expect("call flow");
    }
    const CALLS: usize = 5000;
    let (allocs, forwarded) = allocations_during(|| {
        let mut n = 0;
        for _ in 0..CALLS {
            n += black_box(lb.call().expect("call flow"));
        }
        n
    });
    assert_eq!(forwarded, 6 * CALLS, "every message of every call was forwarded");
    assert_eq!(allocs, 0, "{allocs} allocations over {CALLS} calls ({} messages)", 6 * CALLS);
}

#[test]
fn counter_sees_allocations() {
    // the negative control: building a shard allocates, and the counter must see it
    let (allocs, lb) = allocations_during(Lb::new);
    assert!(allocs > 10, "building a proxy allocates; counted {allocs}");
    drop(black_box(lb));
}
