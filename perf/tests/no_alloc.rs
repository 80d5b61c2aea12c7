//! Zero-allocation proof: a counting global allocator around the whole per-message work of a
//! stateless proxy (parse, proxy fields, validate, forwarding edit list, write).
//!
//! `ringsip-proto` is `no_std` without `alloc`, so it cannot allocate by construction; this
//! test checks the claim end to end, including this crate's glue and anything inlined from
//! `core`. Only the measuring thread is counted (a thread-local flag), so libtest's own
//! threads printing results in parallel cannot make the test flaky, and measured regions are
//! serialised by a lock, so tests counting on other threads cannot either.

use std::hint::black_box;

use ringsip_perf::proxy::{forward, proxy_fields};
use ringsip_perf::samples::ALL;
use ringsip_proto::Message;

mod common;
use common::allocations_during;

#[global_allocator]
static GLOBAL: common::Counting = common::Counting;

const ITERATIONS: usize = 100;

/// The whole per-message work, as in the `forward` and `validate` benchmark groups.
fn proxy_work(raw: &[u8], out: &mut [u8; 2048]) -> usize {
    let msg = Message::parse(black_box(raw)).expect("parse");
    let fields = proxy_fields(&msg).expect("proxy fields");
    black_box(&fields);
    // the lazily parsed typed values other modules read
    black_box((msg.from().expect("From"), msg.to().expect("To"), msg.content_type().expect("Content-Type")));
    msg.validate().expect("validate");
    let n = forward(&msg, &fields, out).expect("forward");
    black_box(&out[..n]);
    // the forwarded message is read back as the next hop would
    let fwd = Message::parse(&out[..n]).expect("reparse");
    fwd.validate().expect("revalidate");
    n
}

#[test]
fn proxy_work_does_not_allocate() {
    let mut out = [0u8; 2048];
    for (name, raw) in ALL {
        // warm up once outside the measured region (lazy statics, first-touch of anything)
        let expected = proxy_work(raw, &mut out);
        let (allocs, total) = allocations_during(|| {
            let mut total = 0;
            for _ in 0..ITERATIONS {
                total += proxy_work(raw, &mut out);
            }
            total
        });
        assert_eq!(total, expected * ITERATIONS, "{name}: the work really ran");
        assert_eq!(
            allocs, 0,
            "{name}: {allocs} allocations in {ITERATIONS} iterations of parse + fields + validate + forward"
        );
    }
}

#[test]
fn counter_sees_allocations() {
    // the negative control: if this passes, a zero above is a real zero
    let (allocs, v) = allocations_during(|| black_box(Vec::<u8>::with_capacity(black_box(64))));
    assert!(allocs >= 1, "the counting allocator missed a Vec allocation");
    drop(v);
    let (allocs, ()) = allocations_during(|| {
        let mut v = black_box(Vec::<u32>::new());
        for i in 0..100 {
            v.push(i);
        }
        black_box(&v);
    });
    assert!(allocs >= 2, "growing a Vec reallocates: counted {allocs}");
}

#[test]
fn rsip_allocates_per_message() {
    // the baseline does allocate: report how much, per message
    for (name, raw) in ALL {
        drop(rsip::SipMessage::try_from(raw).expect("rsip parses"));
        let (allocs, msg) = allocations_during(|| rsip::SipMessage::try_from(black_box(raw)).expect("rsip parses"));
        drop(msg);
        println!("rsip::SipMessage::try_from({name}, {} bytes): {allocs} allocations", raw.len());
        assert!(allocs > 0, "{name}");
    }
}
