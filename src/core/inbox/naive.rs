//! The naive inbox (feature `naive-mutex`): the original design, kept as the baseline.
//!
//! `Mutex<VecDeque>` + `Condvar`, with the original policy: lock; wait while nothing to read
//! and not finished; read; if still readable, notify the next. The producer notifies one per
//! item, and notifies all on the final state after taking the lock.

use super::{RecvTimeoutError, TryRecvError};
use crate::core::status::{CloseReason, StatusWord};
use crate::core::sync::{wait_timeout, Condvar, Mutex, MutexGuard};
use std::collections::VecDeque;
use std::time::Instant;

#[derive(Debug)]
pub(crate) struct Shared<T> {
    queue: Mutex<VecDeque<T>>,
    readable: Condvar,
    capacity: usize,
    status: StatusWord,
}

impl<T> Shared<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "inbox capacity must be at least 1");
        // The same limit as the lock-free inbox's ring, so both modes accept the same sizes.
        assert!(
            capacity <= crate::core::ring::Ring::<T>::MAX_CAPACITY,
            "inbox capacity {capacity} is above Ring::MAX_CAPACITY"
        );
        Self {
            // Allocated once: the queue never grows past `capacity`.
            queue: Mutex::new(VecDeque::with_capacity(capacity)),
            readable: Condvar::new(),
            capacity,
            status: StatusWord::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<T>> {
        // A panic while holding the lock leaves the VecDeque consistent (no user code runs
        // under it), so poison is safe to ignore.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn status(&self) -> &StatusWord {
        &self.status
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn push(&self, item: T) -> Result<(), T> {
        let mut queue = self.lock();
        // Nothing may follow the close reason. Checked under the lock, but a `finish` on
        // another thread does not take it before setting the bit, so only a `finish` on
        // this thread is sure to be seen, as in the lock-free inbox.
        if queue.len() >= self.capacity || self.status.is_finished() {
            return Err(item);
        }
        queue.push_back(item);
        drop(queue);
        self.readable.notify_one();
        Ok(())
    }

    pub(crate) fn finish(&self, reason: CloseReason) -> bool {
        let first = self.status.finish(reason);
        if first {
            // Taking the lock means no consumer is between its check and its wait.
            let _queue = self.lock();
            self.readable.notify_all();
        }
        first
    }

    /// Under the lock: read one item, waking the next consumer if more are left; or report
    /// the close reason once finished and empty.
    fn take(&self, queue: &mut VecDeque<T>) -> Result<T, TryRecvError> {
        match queue.pop_front() {
            Some(item) => {
                if !queue.is_empty() {
                    self.readable.notify_one();
                }
                Ok(item)
            }
            None => match self.status.load().close_reason() {
                Some(reason) => Err(TryRecvError::Closed(reason)),
                None => Err(TryRecvError::Empty),
            },
        }
    }

    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        self.take(&mut self.lock())
    }

    /// Moves items out in chunks of at most `CHUNK`: popped under the lock into a stack
    /// array, handed to `out` after unlocking, so the caller's `Extend` never runs under the
    /// lock (it may call back into the inbox) and nothing is allocated.
    pub(crate) fn drain_into(
        &self,
        out: &mut impl Extend<T>,
        max: usize,
    ) -> Result<usize, CloseReason> {
        let mut taken = 0;
        loop {
            let mut chunk = Chunk::new(self);
            {
                let mut queue = self.lock();
                if taken == 0 && queue.is_empty() {
                    // Nothing left (and `max` may be 0): the close reason, once finished.
                    return match self.status.load().close_reason() {
                        Some(reason) => Err(reason),
                        None => Ok(0),
                    };
                }
                let n = (max - taken).min(CHUNK).min(queue.len());
                for slot in &mut chunk.items[..n] {
                    *slot = queue.pop_front();
                }
                chunk.len = n;
                // The last chunk leaves items behind: as in `take`, wake the next consumer.
                if n > 0 && taken + n == max && !queue.is_empty() {
                    self.readable.notify_one();
                }
            }
            let n = chunk.len;
            if n == 0 {
                return Ok(taken);
            }
            out.extend(&mut chunk);
            // What `out` actually pulled; anything it left goes back when `chunk` drops.
            taken += chunk.next;
            if chunk.next < n || taken == max {
                return Ok(taken);
            }
        }
    }

    pub(crate) fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let mut queue = self.lock();
        loop {
            match self.take(&mut queue) {
                Ok(item) => return Ok(item),
                Err(TryRecvError::Closed(reason)) => return Err(RecvTimeoutError::Closed(reason)),
                Err(TryRecvError::Empty) => {}
            }
            match deadline {
                None => {
                    queue = self
                        .readable
                        .wait(queue)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                Some(deadline) => {
                    let now = Instant::now();
                    let timed_out = if now >= deadline {
                        true
                    } else {
                        let (next, timed_out) = wait_timeout(&self.readable, queue, deadline - now);
                        queue = next;
                        timed_out
                    };
                    if timed_out {
                        // One last look under the lock, so a notification that raced the
                        // timeout is not dropped.
                        return self.take(&mut queue).map_err(|error| match error {
                            TryRecvError::Closed(reason) => RecvTimeoutError::Closed(reason),
                            TryRecvError::Empty => RecvTimeoutError::Timeout,
                        });
                    }
                }
            }
        }
    }
}

/// Items per chunk of `drain_into`: small enough for the stack, large enough that a frame
/// loop's batch takes the lock a few times, not once per item.
const CHUNK: usize = 16;

/// Items taken out of the queue for `drain_into`, handed out in order by `next`. Dropping it
/// with items not yet handed out (the caller's `Extend` panicked or stopped early) puts them
/// back at the front of the queue, in order: nothing the caller was not given is lost.
struct Chunk<'a, T> {
    shared: &'a Shared<T>,
    items: [Option<T>; CHUNK],
    next: usize,
    len: usize,
}

impl<'a, T> Chunk<'a, T> {
    fn new(shared: &'a Shared<T>) -> Self {
        Self {
            shared,
            items: std::array::from_fn(|_| None),
            next: 0,
            len: 0,
        }
    }
}

impl<T> Iterator for Chunk<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.next == self.len {
            return None;
        }
        self.next += 1;
        self.items[self.next - 1].take()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.len - self.next;
        (left, Some(left))
    }
}

impl<T> Drop for Chunk<'_, T> {
    fn drop(&mut self) {
        if self.next == self.len {
            return;
        }
        let mut queue = self.shared.lock();
        // They were the oldest items, so they go back to the front, newest first. The queue
        // may briefly hold more than `capacity` (a push filled the room meanwhile); `push`
        // refuses until it is back under.
        for item in self.items[self.next..self.len].iter_mut().rev() {
            if let Some(item) = item.take() {
                queue.push_front(item);
            }
        }
        drop(queue);
        // Another consumer may be asleep, having found the queue empty while we held these.
        self.shared.readable.notify_one();
    }
}
