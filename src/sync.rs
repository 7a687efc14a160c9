//! The one place the concurrent core gets its primitives from.
//!
//! Normally these are std's (and crossbeam-utils') types; under `--cfg loom` they are loom's
//! model-checked twins, so every atomic access, cell access, lock and park in the core is seen
//! by the model checker. Nothing in the core may use an atomic or a cell that bypasses this
//! module: an access loom cannot see is an interleaving it cannot check.

#[cfg(not(loom))]
mod imp {
    pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
    pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};

    /// Spin-loop hint: a pause instruction normally, a yield to the scheduler under loom.
    #[inline]
    pub(crate) fn spin_hint() {
        std::hint::spin_loop();
    }

    /// `UnsafeCell` with loom's closure-based access API, so call sites are identical in both
    /// builds and loom can check every access for a data race.
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        #[inline]
        pub(crate) const fn new(value: T) -> Self {
            Self(std::cell::UnsafeCell::new(value))
        }

        #[inline]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::cell::UnsafeCell;
    pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
    pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};

    /// Under loom a spin must yield, or the model checker explores the spinning thread forever.
    #[inline]
    pub(crate) fn spin_hint() {
        loom::thread::yield_now();
    }
}

pub(crate) use imp::*;
pub(crate) use crossbeam_utils::CachePadded;
