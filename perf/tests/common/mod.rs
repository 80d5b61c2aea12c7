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

fn note_alloc() {
    // `try_with`: the allocator may run while this thread's locals are being torn down
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
