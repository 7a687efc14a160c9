//! The counting global allocator the allocation tests install (each test binary has its own
//! `#[global_allocator] static GLOBAL: Counting = Counting;`): every allocation counted
//! process-wide and per thread, and, with tracing on, a backtrace printed for each.

use std::alloc::{GlobalAlloc, Layout, System};
use std::backtrace::Backtrace;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static TRACE: AtomicBool = AtomicBool::new(false);

thread_local! {
    // Per thread, so tests running side by side do not count each other's allocations.
    static THREAD_ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    // Set while printing a backtrace, which allocates itself.
    static TRACING: Cell<bool> = const { Cell::new(false) };
}

fn count(size: usize) {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    BYTES.fetch_add(size as u64, Ordering::Relaxed);
    // A thread being torn down has no counter left; its allocations are not ours.
    let _ = THREAD_ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    if TRACE.load(Ordering::Relaxed) && !TRACING.try_with(Cell::get).unwrap_or(true) {
        TRACING.with(|t| t.set(true));
        let thread = std::thread::current();
        eprintln!(
            "allocation of {size} bytes on {:?}:\n{}",
            thread.name(),
            Backtrace::force_capture()
        );
        TRACING.with(|t| t.set(false));
    }
}

/// Allocations so far, every thread.
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Bytes allocated so far, every thread.
pub fn bytes() -> u64 {
    BYTES.load(Ordering::Relaxed)
}

/// Allocations so far on this thread.
pub fn thread_allocations() -> u64 {
    THREAD_ALLOCATIONS.with(Cell::get)
}

/// Prints a backtrace for every allocation while on.
pub fn trace(on: bool) {
    TRACE.store(on, Ordering::Relaxed);
}

// SAFETY: forwards every call unchanged to the system allocator, which upholds the
// GlobalAlloc contract; counting has no effect on the memory returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: `ptr` was allocated by `System` with `layout`; forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
