//! The one place the concurrent core gets its primitives from.
//!
//! Normally these are std's (and crossbeam-utils') types; under `--cfg loom` they are loom's
//! model-checked twins, so every atomic access, cell access, lock, wait and spin in the core is
//! seen by the model checker. Nothing in the core may use an atomic or a cell that bypasses
//! this module: an access loom cannot see is an interleaving it cannot check.

pub(crate) use crossbeam_utils::CachePadded;
pub(crate) use imp::*;

#[cfg(not(loom))]
mod imp {
    pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
    pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};
    use std::time::Duration;

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

    /// Exponential backoff for retry loops: spin a little, then give the core away.
    pub(crate) struct Backoff {
        step: u32,
    }

    const SPIN_LIMIT: u32 = 6;
    /// Yields after the spins before `is_completed`: a consumer that would rather sleep stops
    /// snoozing there.
    #[cfg(not(feature = "naive-mutex"))]
    const YIELD_LIMIT: u32 = 3;

    impl Backoff {
        #[inline]
        pub(crate) fn new() -> Self {
            Self { step: 0 }
        }

        /// After losing a CAS race: the winner is making progress, retry soon.
        #[inline]
        pub(crate) fn spin(&mut self) {
            for _ in 0..1u32 << self.step.min(SPIN_LIMIT) {
                std::hint::spin_loop();
            }
            if self.step <= SPIN_LIMIT {
                self.step += 1;
            }
        }

        /// While waiting on another thread's unfinished step (a claimed, unpublished slot):
        /// spin briefly, then yield so a preempted owner can finish.
        #[inline]
        pub(crate) fn snooze(&mut self) {
            if self.step <= SPIN_LIMIT {
                for _ in 0..1u32 << self.step {
                    std::hint::spin_loop();
                }
                self.step += 1;
            } else {
                std::thread::yield_now();
                self.step = self.step.saturating_add(1);
            }
        }

        /// Whether snoozing has run its course (all the spins and `YIELD_LIMIT` yields): a
        /// thread that can sleep should do so now rather than keep burning the core.
        #[cfg(not(feature = "naive-mutex"))]
        #[inline]
        pub(crate) fn is_completed(&self) -> bool {
            self.step > SPIN_LIMIT + YIELD_LIMIT
        }
    }

    /// A timed condvar wait; `true` when the timeout elapsed.
    pub(crate) fn wait_timeout<'a, T>(
        condvar: &Condvar,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> (MutexGuard<'a, T>, bool) {
        let (guard, result) = condvar
            .wait_timeout(guard, timeout)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (guard, result.timed_out())
    }
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::cell::UnsafeCell;
    pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
    pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
    use std::time::Duration;

    /// Under loom every retry must yield, or the checker explores the spinning thread forever.
    pub(crate) struct Backoff;

    impl Backoff {
        pub(crate) fn new() -> Self {
            Self
        }

        pub(crate) fn spin(&mut self) {
            loom::thread::yield_now();
        }

        pub(crate) fn snooze(&mut self) {
            loom::thread::yield_now();
        }

        /// Always: under loom a consumer parks after its first empty look. A snooze there
        /// would let loom prefer schedules in which the producer runs first, and the models
        /// would explore fewer of the parking races they exist for; extra looks add no
        /// behaviour (each is the same `try_recv` the loop makes after every wake).
        #[cfg(not(feature = "naive-mutex"))]
        pub(crate) fn is_completed(&self) -> bool {
            true
        }
    }

    /// loom has no time. A timed wait therefore times out at once, without releasing the lock:
    /// the timer fires at the earliest possible moment. Whether a notification landed before
    /// it is what loom explores, through the interleavings that lead up to this call — the
    /// case that matters for lost wakeups is a consumer that times out with a wake pending.
    pub(crate) fn wait_timeout<'a, T>(
        _condvar: &Condvar,
        guard: MutexGuard<'a, T>,
        _timeout: Duration,
    ) -> (MutexGuard<'a, T>, bool) {
        (guard, true)
    }
}
