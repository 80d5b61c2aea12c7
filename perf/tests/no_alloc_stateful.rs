//! Zero-allocation proof for a shard's whole per-message work as a transaction-stateful load
//! balancer (`config/examples/stateful-lb.toml`): the `StatelessProxy` handler with `relay`
//! (transaction table, 100 Trying, stateful branches, response matching, Record-Route, the
//! transactions living on until Timer J) and its timers (`tick`: Timer K trims, Timer J
//! frees, health probes), driven with complete calls on a virtual clock through a counting
//! global allocator. Only the measuring thread counts.
//!
//! * `stateful_calls_*_do_not_allocate`: after a warm-up of 40 s virtual (40,000 calls at
//!   1 ms, [`WARM_UP_CALLS`]: more than Timer J, so the table holds its steady number of
//!   transactions and as many expire per tick as are created), 20,000 more calls allocate
//!   nothing — one at a time, and 32 at a time message kind by message kind.
//! * `settled_stateful_calls_do_not_allocate`: the same after 400 s virtual
//!   ([`SETTLED_CALLS`]), when the table's buffer pool and match map have stopped growing.
//!
//! What the first two found at first, and how it was fixed: pooled message buffers were
//! shared by roles of different sizes and grew (by doubling) when a small one was handed a
//! large role, so it took several Timer J periods before nothing grew any more. Now every
//! message is written into a shard scratch buffer with room for the largest datagram and
//! then kept in a pooled buffer of its size class (512 B doubling to 32 KiB), and answered
//! transactions move out of the slab into a compact lingering store (their key, deadline,
//! where responses go, and a non-INVITE's final response); so the populations settle within
//! one Timer J period.
//!
//! To find an allocation site: `STATEFUL_ALLOC_TRACE=20 cargo test -p ringsip-perf --release
//! --test no_alloc_stateful -- --nocapture` prints a backtrace for the first 20 allocations
//! made while counting (see `common::trace_allocations_if`); `STATEFUL_WARM_UP=<calls>`
//! changes the warm-up of the first two tests.

use std::hint::black_box;
use std::time::Duration;

use ringsip_perf::stateful::{CALL_SPACING, SETTLED_CALLS, Stateful, TIMER_J, WARM_UP_CALLS};

mod common;
use common::allocations_during;

#[global_allocator]
static GLOBAL: common::Counting = common::Counting;

const CALLS: usize = 20_000;

/// Calls whose transactions are still held (live or lingering) in steady state: those of
/// the last 32 s.
fn calls_in_timer_j() -> u64 {
    (TIMER_J.as_millis() / CALL_SPACING.as_millis()) as u64
}

/// The table's steady size: every call leaves its BYE transaction for Timer J, and its
/// INVITE transaction too when an accepted INVITE is kept for 64·T1 (RFC 6026), so one or
/// two transactions per call of the last 32 s (± a tick or a batch of calls).
fn assert_steady(s: &Stateful, when: &str) -> u64 {
    let live = s.live();
    let per_call = (live as f64 / calls_in_timer_j() as f64).round() as u64;
    assert!(
        (1..=2).contains(&per_call) && live.abs_diff(per_call * calls_in_timer_j()) <= 150,
        "{when}: {live} live transactions, expected about {} or {}",
        calls_in_timer_j(),
        2 * calls_in_timer_j()
    );
    live
}

fn assert_clean(s: &Stateful) {
    for m in [
        "ringsip_retransmissions_sent_total",
        "ringsip_branch_timeouts_total",
        "ringsip_transactions_refused_total",
        "ringsip_stray_responses_total",
        "ringsip_drops_total",
    ] {
        assert_eq!(s.metric(m), 0, "{m}");
    }
    assert_eq!(s.metric("ringsip_transactions_created_total"), 2 * s.calls_made(), "one per INVITE and per BYE");
}

fn run(batch: usize, warm_up: usize) {
    common::trace_allocations_if("STATEFUL_ALLOC_TRACE");
    let mut s = Stateful::new();
    s.run(warm_up, batch).unwrap_or_else(|e| panic!("warm-up: {e}"));
    assert!(s.elapsed() > TIMER_J + Duration::from_secs(5), "{:?} of virtual time", s.elapsed());
    let before = assert_steady(&s, "after the warm-up");
    let (allocs, routed) = allocations_during(|| {
        let mut n = 0;
        let mut left = CALLS;
        while left > 0 {
            let k = left.min(batch);
            match s.calls(k, None) {
                Ok(r) => n += black_box(r),
                Err(e) => return Err(e),
            }
            left -= k;
        }
        Ok(n)
    });
    let routed = routed.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(routed, 6 * CALLS, "every message of every call was routed");
    let after = assert_steady(&s, "after the measured calls");
    assert!(after.abs_diff(before) <= 150, "the table kept growing: {before} -> {after} live transactions");
    println!(
        "{batch} at a time, {warm_up} calls of warm-up: {allocs} allocations over {CALLS} calls; {before} -> {after} live transactions, {:?} virtual",
        s.elapsed()
    );
    assert_clean(&s);
    assert!(s.probes() > 0, "the health probes ran (and were answered)");
    assert_eq!(
        allocs,
        0,
        "{allocs} allocations over {CALLS} stateful calls ({} messages), {batch} at a time",
        6 * CALLS
    );
}

/// The warm-up of the first two tests (`STATEFUL_WARM_UP=<calls>` to try others).
fn warm_up() -> usize {
    std::env::var("STATEFUL_WARM_UP").ok().and_then(|v| v.parse().ok()).unwrap_or(WARM_UP_CALLS)
}

#[test]
fn stateful_calls_one_at_a_time_do_not_allocate() {
    run(1, warm_up());
}

#[test]
fn stateful_calls_in_batches_do_not_allocate() {
    run(32, warm_up());
}

#[test]
fn settled_stateful_calls_do_not_allocate() {
    run(32, SETTLED_CALLS);
    run(1, SETTLED_CALLS);
}
