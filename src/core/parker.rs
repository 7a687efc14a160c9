//! Futex-style parking for inbox consumers: an *event count*.
//!
//! The fast paths never lock: a producer with no sleepers pays one fence and one load; a
//! consumer with data never gets here. Only a consumer that must sleep, and a producer that
//! must wake one, take the mutex (on Linux std's `Mutex` and `Condvar` are futexes: an
//! uncontended lock is one atomic, a wait or a wake is one `futex` call).
//!
//! Protocol, for a consumer waiting on some condition C ("something to read, or finished"):
//!
//! 1. `key = prepare_park()`: announce (`sleepers += 1`), fence, read the epoch;
//! 2. re-check C; if it holds, `cancel_park()` and go read;
//! 3. `park(key, deadline)`: under the lock, sleep while the epoch is still `key`.
//!
//! and for a producer that made C true: publish, then `notify_one()` (fence, read `sleepers`,
//! and only if non-zero: bump the epoch under the lock and signal).
//!
//! No wakeup is lost: the consumer writes `sleepers` then reads C; the producer writes C then
//! reads `sleepers`; each side has a `SeqCst` fence between its write and its read (Dekker), so
//! at least one side sees the other's write. If the consumer sees C it does not sleep. If the
//! producer sees the sleeper it bumps the epoch under the lock: a consumer that has not yet
//! taken the lock will find the epoch moved and not sleep; one that is already waiting is
//! woken by the signal, since the bump and the wait are serialized by the mutex.

use crate::core::sync::{fence, wait_timeout, AtomicU64, AtomicUsize, CachePadded, Condvar, Mutex};
use crate::core::sync::{MutexGuard, Ordering};
use std::time::Instant;

/// How a `park` ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The epoch moved (a notification), or a spurious wakeup: re-check the condition.
    Notified,
    /// The deadline passed first. The caller re-checks once more before giving up, so a
    /// notification that raced the timeout is never dropped.
    TimedOut,
}

#[derive(Debug)]
pub(crate) struct Parker {
    /// Consumers between `prepare_park` and the end of `park`. Its own cache line: producers
    /// read it on every push, consumers write it only on the slow path.
    sleepers: CachePadded<AtomicUsize>,
    /// Bumped (only while holding `lock`) by every notification.
    epoch: AtomicU64,
    lock: Mutex<()>,
    condvar: Condvar,
}

impl Parker {
    pub(crate) fn new() -> Self {
        Self {
            sleepers: CachePadded::new(AtomicUsize::new(0)),
            epoch: AtomicU64::new(0),
            lock: Mutex::new(()),
            condvar: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // The lock guards no data (only the epoch/condvar handshake), so poison is harmless.
        self.lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Step 1 of sleeping: announce this consumer and return the key for `park`.
    pub(crate) fn prepare_park(&self) -> u64 {
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        // Dekker point (consumer side): the announcement above is ordered before the caller's
        // re-check of the condition. loom treats SeqCst accesses as AcqRel, so the fence is
        // explicit rather than folded into the RMW.
        fence(Ordering::SeqCst);
        // Acquire: pairs with the Release bump in `notify`; seeing a new epoch means seeing
        // whatever the notifier published before it.
        self.epoch.load(Ordering::Acquire)
    }

    /// The re-check found the condition true: withdraw the announcement.
    pub(crate) fn cancel_park(&self) {
        // Relaxed: a producer that reads a stale, larger count only pays a spurious signal.
        self.sleepers.fetch_sub(1, Ordering::Relaxed);
    }

    /// Sleeps until the epoch moves past `key`, or until `deadline`.
    pub(crate) fn park(&self, key: u64, deadline: Option<Instant>) -> Wake {
        let mut guard = self.lock();
        let mut wake = Wake::Notified;
        // Relaxed under the lock: the epoch only changes while the lock is held.
        while self.epoch.load(Ordering::Relaxed) == key {
            match deadline {
                None => {
                    guard = self
                        .condvar
                        .wait(guard)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        wake = Wake::TimedOut;
                        break;
                    }
                    let (next_guard, timed_out) =
                        wait_timeout(&self.condvar, guard, deadline - now);
                    guard = next_guard;
                    if timed_out {
                        wake = Wake::TimedOut;
                        break;
                    }
                }
            }
        }
        self.sleepers.fetch_sub(1, Ordering::Relaxed);
        drop(guard);
        wake
    }

    /// Producer side, after publishing something a sleeper may wait for: wake one sleeper.
    // The naive buffers wait on their own condvar; only the message budgets park there.
    #[cfg_attr(feature = "naive-mutex", allow(dead_code))]
    pub(crate) fn notify_one(&self) {
        // Dekker point (producer side): the publication before this call is ordered before
        // our read of `sleepers`.
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::Relaxed) == 0 {
            return; // the fast path: nobody sleeps, no lock, no syscall
        }
        self.bump_epoch();
        self.condvar.notify_one();
    }

    /// Wakes every sleeper, if there is one: for waiters on different conditions (senders
    /// needing different amounts of room), where waking one could wake the wrong one. The
    /// same Dekker handshake as [`notify_one`](Self::notify_one), so the fast path takes no
    /// lock.
    pub(crate) fn notify_waiters(&self) {
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::Relaxed) == 0 {
            return;
        }
        self.bump_epoch();
        self.condvar.notify_all();
    }

    /// Wakes every sleeper. Used once, by whoever finishes the inbox; it does not depend on
    /// the Dekker handshake because it always takes the lock.
    pub(crate) fn notify_all(&self) {
        self.bump_epoch();
        self.condvar.notify_all();
    }

    fn bump_epoch(&self) {
        let _guard = self.lock();
        // Release: pairs with the Acquire in `prepare_park`.
        self.epoch.fetch_add(1, Ordering::Release);
        // The signal is sent after unlocking (by the caller): the woken thread then does not
        // block on a mutex we still hold. Nothing is lost: a sleeper that has not yet checked
        // the epoch will see it moved; one already waiting gets the signal.
    }
}
