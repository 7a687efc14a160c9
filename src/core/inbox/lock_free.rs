//! The lock-free inbox: a [`Ring`], a [`Parker`] and a [`StatusWord`].
//!
//! Read rule: a consumer sleeps only when there is nothing to read and the inbox is not
//! finished, and re-checks that condition after announcing itself to the parker (see
//! `parker.rs` for why no wakeup is lost). Fast paths take no lock and make no syscall.
//! Before its first sleep a consumer looks again for a moment (`Backoff::snooze` until
//! `is_completed`): a sleeping consumer costs its producer a wake-up syscall per item, an
//! awake one costs nothing.

use super::{RecvTimeoutError, TryRecvError};
use crate::core::parker::{Parker, Wake};
use crate::core::ring::Ring;
use crate::core::status::{CloseReason, StatusWord};
use crate::core::sync::Backoff;
use std::time::Instant;

#[derive(Debug)]
pub(crate) struct Shared<T> {
    ring: Ring<T>,
    parker: Parker,
    status: StatusWord,
}

impl<T> Shared<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            ring: Ring::new(capacity),
            parker: Parker::new(),
            status: StatusWord::new(),
        }
    }

    pub(crate) fn status(&self) -> &StatusWord {
        &self.status
    }

    pub(crate) fn len(&self) -> usize {
        self.ring.len()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    pub(crate) fn push(&self, item: T) -> Result<(), T> {
        // Nothing may follow the close reason: once a final bit is set, refuse. This holds
        // for a `finish` on this thread (program order: our load sees our own `fetch_or`);
        // a `finish` racing on another thread may still let this one item in.
        if self.status.is_finished() {
            return Err(item);
        }
        self.ring.try_push(item)?;
        // One wake per item; free when nobody sleeps.
        self.parker.notify_one();
        Ok(())
    }

    pub(crate) fn finish(&self, reason: CloseReason) -> bool {
        let first = self.status.finish(reason);
        if first {
            self.parker.notify_all();
        }
        first
    }

    /// Pops one ready item; if more are ready, passes a wake on to the next sleeper.
    ///
    /// Consumers never wait for a producer: an item still being written counts as not there
    /// yet, and sleeping on it is safe because its producer notifies after publishing it.
    fn pop(&self) -> Option<T> {
        let item = self.ring.pop_ready()?;
        if self.ring.has_ready() {
            self.parker.notify_one();
        }
        Some(item)
    }

    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        if let Some(item) = self.pop() {
            return Ok(item);
        }
        match self.status.load().close_reason() {
            None => Err(TryRecvError::Empty),
            // Drain rule: the Acquire load that saw the final bit also made visible every item
            // pushed before `finish`, so one more pop catches an item our first pop missed.
            Some(reason) => self.pop().ok_or(TryRecvError::Closed(reason)),
        }
    }

    pub(crate) fn drain_into(
        &self,
        out: &mut impl Extend<T>,
        max: usize,
    ) -> Result<usize, CloseReason> {
        if max == 0 {
            // Report the close if there is nothing left, without taking anything. Drain rule:
            // the Acquire load that sees the final bit makes every item pushed before
            // `finish` visible to `has_ready`.
            return match self.status.load().close_reason() {
                Some(reason) if !self.ring.has_ready() => Err(reason),
                _ => Ok(0),
            };
        }
        let mut taken = 0;
        {
            // Dropped on the way out, even if `out.extend` panics: items we leave behind may
            // be next to sleepers whose wakes went to items we took.
            let _pass_on = PassWakeOn(self);
            // Each item is handed over as soon as it is popped, so a panicking `extend`
            // loses only the item it was given; the rest stay in the ring.
            while taken < max {
                let Some(item) = self.ring.pop_ready() else {
                    break;
                };
                taken += 1;
                out.extend(Some(item));
            }
        }
        if taken > 0 {
            return Ok(taken);
        }
        match self.try_recv() {
            Ok(item) => {
                out.extend(Some(item));
                Ok(1)
            }
            Err(TryRecvError::Empty) => Ok(0),
            Err(TryRecvError::Closed(reason)) => Err(reason),
        }
    }

    pub(crate) fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        // A short look before the first sleep: in a stream the next item is usually a few
        // hundred nanoseconds away, and catching it awake spares both sides a syscall.
        let mut backoff = Backoff::new();
        loop {
            match self.try_recv() {
                Ok(item) => return Ok(item),
                Err(TryRecvError::Closed(reason)) => return Err(RecvTimeoutError::Closed(reason)),
                Err(TryRecvError::Empty) => {}
            }
            if !backoff.is_completed() {
                backoff.snooze();
                continue;
            }
            let key = self.parker.prepare_park();
            // The re-check after announcing (Dekker): an item published before the producer's
            // fence is seen here, or the producer sees us in `sleepers` and wakes us.
            if self.ring.has_ready() || self.status.is_finished() {
                self.parker.cancel_park();
                continue;
            }
            if self.parker.park(key, deadline) == Wake::TimedOut {
                // Leaving without an item is only allowed after one more look: a wake that
                // raced our timeout was meant for an item, and we take it rather than drop
                // the wake. If the look finds nothing, no item is waiting and no wake is owed.
                return match self.try_recv() {
                    Ok(item) => Ok(item),
                    Err(TryRecvError::Closed(reason)) => Err(RecvTimeoutError::Closed(reason)),
                    Err(TryRecvError::Empty) => Err(RecvTimeoutError::Timeout),
                };
            }
        }
    }
}

/// Wakes the next sleeper when dropped if items are left ready: the wake-next of a batch
/// drain, run on unwind too.
struct PassWakeOn<'a, T>(&'a Shared<T>);

impl<T> Drop for PassWakeOn<'_, T> {
    fn drop(&mut self) {
        if self.0.ring.has_ready() {
            self.0.parker.notify_one();
        }
    }
}
