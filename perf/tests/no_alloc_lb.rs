//! Zero-allocation proof for a shard's whole per-message work as a load balancer: the
//! `StatelessProxy` handler (parse, route program, dispatcher selection, stickiness table,
//! edits, write into the send arena) driven with complete calls, each with a new Call-ID,
//! through a counting global allocator. Only the measuring thread counts.

// A global allocator needs `unsafe impl GlobalAlloc`; the workspace denies unsafe code, this
// test file is an exception and only forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use ringsip_perf::lb::Lb;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn note_alloc() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// counting touches only an atomic and a const-initialised thread-local without destructor.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc();
        // SAFETY: same contract as ours
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc();
        // SAFETY: same contract as ours
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_alloc();
        // SAFETY: same contract as ours
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during<R>(f: impl FnOnce() -> R) -> (usize, R) {
    COUNTING.with(|c| c.set(true));
    let before = ALLOCS.load(Ordering::SeqCst);
    let r = f();
    let after = ALLOCS.load(Ordering::SeqCst);
    COUNTING.with(|c| c.set(false));
    (after - before, r)
}

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
