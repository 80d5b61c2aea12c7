//! The counting global allocator shared by the zero-allocation tests. Each test binary
//! installs it with `#[global_allocator] static GLOBAL: common::Counting = common::Counting;`.
//! Only threads inside [`allocations_during`] count, so libtest's own threads cannot make a
//! test flaky, and measured regions are serialised by a lock.

// A global allocator needs `unsafe impl GlobalAlloc`; the workspace denies unsafe code, the
// zero-allocation tests are the one exception and this only forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

pub struct Counting;

/// Allocations (alloc, alloc_zeroed, realloc) made by threads while they were counting.
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

/// Backtraces still to print for allocations made while counting (see
/// [`trace_allocations_if`]).
static TRACES: AtomicUsize = AtomicUsize::new(0);

fn note_alloc(layout: Layout) {
    // `try_with`: the allocator may run while this thread's locals are being torn down
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        if TRACES.load(Ordering::Relaxed) > 0 {
            trace(layout);
        }
    }
}

/// Print where this allocation comes from. Capturing and printing a backtrace allocates
/// too: counting is off meanwhile, so those allocations neither count nor recurse.
#[cold]
fn trace(layout: Layout) {
    COUNTING.with(|c| c.set(false));
    if TRACES.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok() {
        let bt = std::backtrace::Backtrace::force_capture();
        eprintln!("allocation of {} bytes (align {}) while counting:\n{bt}", layout.size(), layout.align());
    }
    COUNTING.with(|c| c.set(true));
}

/// When the environment variable `var` is set (to a number, default 8), print a backtrace
/// for that many of the allocations made while counting: where a zero-allocation test's
/// allocations come from.
#[allow(dead_code)] // not every test binary traces
pub fn trace_allocations_if(var: &str) {
    if let Ok(v) = std::env::var(var) {
        TRACES.store(v.parse().unwrap_or(8), Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// counting touches only atomics and a const-initialised thread-local without destructor.
// Tracing (a debugging switch, off unless a test turns it on) captures a backtrace, which
// allocates: counting is off meanwhile, so that re-entry only forwards to `System`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout);
        // SAFETY: same contract as ours
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout);
        // SAFETY: same contract as ours
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_alloc(Layout::from_size_align(new_size, layout.align()).unwrap_or(layout));
        // SAFETY: same contract as ours
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Serialises the measured regions: the counter is global, so two tests counting at once
/// (libtest runs them on parallel threads) would see each other's allocations.
static MEASURING: Mutex<()> = Mutex::new(());

/// How many allocations this thread made while running `f`.
pub fn allocations_during<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let _one_at_a_time = MEASURING.lock().unwrap_or_else(PoisonError::into_inner);
    COUNTING.with(|c| c.set(true));
    let before = ALLOCS.load(Ordering::SeqCst);
    let r = f();
    let after = ALLOCS.load(Ordering::SeqCst);
    COUNTING.with(|c| c.set(false));
    (after - before, r)
}
