//! The naive inbox (feature `naive-mutex`): the original design, kept as the baseline.
//!
//! `Mutex<VecDeque>` + `Condvar`, with the original policy: lock; wait while nothing to read
//! and not finished; read; if still readable, notify the next. The producer notifies one per
//! item, and notifies all on the final state after taking the lock.

use super::{RecvTimeoutError, TryRecvError};
use crate::status::{CloseReason, StatusWord};
use crate::sync::{wait_timeout, Condvar, Mutex, MutexGuard};
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
        if queue.len() >= self.capacity {
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

    pub(crate) fn drain_into(
        &self,
        out: &mut impl Extend<T>,
        max: usize,
    ) -> Result<usize, CloseReason> {
        let mut queue = self.lock();
        let taken = max.min(queue.len());
        if taken == 0 {
            return match self.status.load().close_reason() {
                Some(reason) => Err(reason),
                None => Ok(0),
            };
        }
        out.extend(queue.drain(..taken));
        if !queue.is_empty() {
            self.readable.notify_one();
        }
        Ok(taken)
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
