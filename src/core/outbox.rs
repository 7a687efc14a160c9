//! A connection's write buffer: user threads push packets, the daemon pops them.
//!
//! The mirror image of the inbox: any number of producers (user threads), and the thread that
//! may have to wait is a *producer* waiting for space. The daemon is the consumer while the
//! connection lives; once it has ended, whoever drains it pops too (`ConnCore::finish` on the
//! daemon, and a sender that sees the connection ended after its push, on a user thread), so
//! it has several consumers then, which the MPMC ring allows (`loom-tests/tests/outbox.rs`). Lock-free
//! by default — a [`Ring`] plus the same event-count [`Parker`] the inbox uses, with the roles
//! swapped: a sender that finds the ring full announces itself, re-checks for space or a final
//! state, and sleeps; the daemon pops, then notifies (fence, then read `sleepers`), so the
//! fast paths take no lock. The daemon's flush pops quietly and notifies once at its end, and
//! only once the outbox has drained to half its limit, so a sender that outruns the link
//! sleeps and wakes once per half an outbox, not once per packet. With `naive-mutex` it is a
//! `Mutex<VecDeque>` + `Condvar`.

use crate::core::status::{CloseReason, StatusWord};
use crate::core::sync::{AtomicUsize, Ordering};
use std::time::Instant;

/// Why a blocking push gave up.
#[derive(Debug)]
pub enum PushError<T> {
    /// The deadline passed with the outbox still full.
    Full(T),
    /// The connection finished.
    Closed(T, CloseReason),
}

#[cfg(not(feature = "naive-mutex"))]
pub use lock_free::Outbox;
#[cfg(feature = "naive-mutex")]
pub use naive::Outbox;

#[cfg(not(feature = "naive-mutex"))]
mod lock_free {
    use super::*;
    use crate::core::parker::{Parker, Wake};
    use crate::core::ring::Ring;

    /// A bounded multi-producer write buffer whose senders may wait for space.
    #[derive(Debug)]
    pub struct Outbox<T> {
        ring: Ring<T>,
        space: Parker,
        limit: Limit,
    }

    impl<T> Outbox<T> {
        /// An empty outbox of `capacity` packets, its limit at the capacity.
        pub fn new(capacity: usize) -> Self {
            Self {
                ring: Ring::new(capacity),
                space: Parker::new(),
                limit: Limit::new(capacity),
            }
        }

        /// The packets waiting (a snapshot).
        pub fn len(&self) -> usize {
            self.ring.len()
        }

        /// Whether no packet is waiting (a snapshot).
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }

        /// The most packets it can hold.
        pub fn capacity(&self) -> usize {
            self.ring.capacity()
        }

        /// The most packets it lets wait now (see `set_limit`).
        pub fn limit(&self) -> usize {
            self.limit.get()
        }

        /// Sets how many packets may wait (at most the capacity); a raised limit wakes the
        /// senders waiting for room.
        pub fn set_limit(&self, limit: usize) {
            if self.limit.set(limit) {
                self.space.notify_all();
            }
        }

        fn has_room(&self) -> bool {
            self.limit.has_room(self.ring.len())
        }

        /// The daemon took a packet that pacing held back: it still counts as waiting.
        #[cfg(not(loom))]
        pub(crate) fn hold(&self) {
            self.limit.hold();
        }

        /// The held packet left (sent, or dropped): its room counts again. The flush that
        /// releases it ends with [`Outbox::wake_if_drained`], which wakes senders.
        #[cfg(not(loom))]
        pub(crate) fn release(&self) {
            self.limit.release();
        }

        /// Pushes unless the outbox holds `limit` packets. Concurrent senders may overshoot
        /// the limit by one packet each (the check and the push are separate steps); the
        /// daemon's age check bounds the delay all the same.
        pub fn try_push(&self, item: T) -> Result<(), T> {
            if !self.has_room() {
                return Err(item);
            }
            self.ring.try_push(item)
        }

        /// Pushes, sleeping while the outbox is full, until `deadline` or a final state.
        pub fn push(
            &self,
            mut item: T,
            status: &StatusWord,
            deadline: Option<Instant>,
        ) -> Result<(), PushError<T>> {
            loop {
                if let Some(reason) = status.load().close_reason() {
                    return Err(PushError::Closed(item, reason));
                }
                item = match self.try_push(item) {
                    Ok(()) => return Ok(()),
                    Err(item) => item,
                };
                let key = self.space.prepare_park();
                // Re-check after announcing (Dekker with the daemon's pop + notify).
                if self.has_room() || status.is_finished() {
                    self.space.cancel_park();
                    continue;
                }
                if self.space.park(key, deadline) == Wake::TimedOut {
                    // One more try, so a wake that raced the timeout is not wasted.
                    return match self.try_push(item) {
                        Ok(()) => Ok(()),
                        Err(item) => Err(PushError::Full(item)),
                    };
                }
            }
        }

        /// Daemon: takes the oldest packet and, if a sender waits for space, wakes one.
        pub fn pop(&self) -> Option<T> {
            let item = self.ring.pop_ready()?;
            self.space.notify_one();
            Some(item)
        }

        /// Daemon: takes the oldest packet and wakes nobody; a flush that pops several calls
        /// [`Outbox::wake_if_drained`] once at its end (model-checked:
        /// `loom-tests/tests/outbox.rs`, `a_quiet_flush_wakes_a_blocked_sender_once_drained`).
        pub fn pop_quietly(&self) -> Option<T> {
            self.ring.pop_ready()
        }

        /// Daemon, at the end of a flush: wakes the waiting senders if the outbox has drained
        /// to half its limit or less. A sender held back by a full outbox then wakes once per
        /// half an outbox sent rather than once per packet (each wake is a context switch for
        /// both threads); the daemon keeps flushing while packets wait (pacing's timer), so
        /// the outbox always gets there.
        pub fn wake_if_drained(&self) {
            if self.limit.waiting(self.ring.len()) <= self.limit.get() / 2 {
                self.space.notify_all();
            }
        }

        /// Daemon: wakes every waiting sender (the connection finished).
        pub fn wake_all(&self) {
            self.space.notify_all();
        }
    }
}

#[cfg(feature = "naive-mutex")]
mod naive {
    use super::*;
    use crate::core::sync::{wait_timeout, Condvar, Mutex, MutexGuard};
    use std::collections::VecDeque;

    /// A bounded multi-producer write buffer whose senders may wait for space.
    #[derive(Debug)]
    pub struct Outbox<T> {
        queue: Mutex<VecDeque<T>>,
        space: Condvar,
        capacity: usize,
        limit: Limit,
    }

    impl<T> Outbox<T> {
        /// An empty outbox of `capacity` packets, its limit at the capacity.
        pub fn new(capacity: usize) -> Self {
            Self {
                queue: Mutex::new(VecDeque::with_capacity(capacity)),
                space: Condvar::new(),
                capacity,
                limit: Limit::new(capacity),
            }
        }

        /// The most packets it can hold.
        pub fn capacity(&self) -> usize {
            self.capacity
        }

        /// The most packets it lets wait now (see `set_limit`).
        pub fn limit(&self) -> usize {
            self.limit.get()
        }

        /// Sets how many packets may wait (at most the capacity); a raised limit wakes the
        /// senders waiting for room.
        pub fn set_limit(&self, limit: usize) {
            if self.limit.set(limit) {
                let _queue = self.lock();
                self.space.notify_all();
            }
        }

        fn lock(&self) -> MutexGuard<'_, VecDeque<T>> {
            self.queue
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }

        /// The packets waiting (a snapshot).
        pub fn len(&self) -> usize {
            self.lock().len()
        }

        /// Whether no packet is waiting (a snapshot).
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }

        /// Pushes unless the outbox holds `limit` packets.
        pub fn try_push(&self, item: T) -> Result<(), T> {
            let mut queue = self.lock();
            if !self.limit.has_room(queue.len()) {
                return Err(item);
            }
            queue.push_back(item);
            Ok(())
        }

        /// Pushes, sleeping while the outbox is full, until `deadline` or a final state.
        pub fn push(
            &self,
            item: T,
            status: &StatusWord,
            deadline: Option<Instant>,
        ) -> Result<(), PushError<T>> {
            let mut queue = self.lock();
            loop {
                if let Some(reason) = status.load().close_reason() {
                    return Err(PushError::Closed(item, reason));
                }
                if self.limit.has_room(queue.len()) {
                    queue.push_back(item);
                    return Ok(());
                }
                match deadline {
                    None => {
                        queue = self
                            .space
                            .wait(queue)
                            .unwrap_or_else(|poisoned| poisoned.into_inner());
                    }
                    Some(deadline) => {
                        let now = Instant::now();
                        if now >= deadline {
                            return Err(PushError::Full(item));
                        }
                        queue = wait_timeout(&self.space, queue, deadline - now).0;
                    }
                }
            }
        }

        /// Takes the oldest packet and, if a sender waits for space, wakes one.
        pub fn pop(&self) -> Option<T> {
            let item = self.lock().pop_front()?;
            self.space.notify_one();
            Some(item)
        }

        /// Takes the oldest packet and wakes nobody (see the lock-free `pop_quietly`).
        pub fn pop_quietly(&self) -> Option<T> {
            self.lock().pop_front()
        }

        /// Wakes the waiting senders if the outbox has drained to half its limit or less (see
        /// the lock-free `wake_if_drained`).
        pub fn wake_if_drained(&self) {
            let queue = self.lock();
            if self.limit.waiting(queue.len()) <= self.limit.get() / 2 {
                self.space.notify_all();
            }
        }

        /// Wakes every waiting sender (the connection finished).
        pub fn wake_all(&self) {
            let _queue = self.lock();
            self.space.notify_all();
        }

        /// The daemon took a packet that pacing held back: it still counts as waiting.
        #[cfg(not(loom))]
        pub(crate) fn hold(&self) {
            self.limit.hold();
        }

        /// The held packet left (sent, or dropped): its room counts again (see the lock-free
        /// `release`).
        #[cfg(not(loom))]
        pub(crate) fn release(&self) {
            self.limit.release();
        }
    }
}

/// How many packets an outbox lets wait: its capacity, or fewer when the connection's pacing
/// rate would send fewer within `DaemonConfig::max_send_delay`. Set by the daemon, read by
/// senders; Relaxed suffices, as a stale value only moves the refusal by one packet.
#[derive(Debug)]
struct Limit {
    value: AtomicUsize,
    capacity: usize,
    /// Packets the daemon took out but holds for their pacing slot (0 or 1): they still wait.
    held: AtomicUsize,
}

impl Limit {
    fn new(capacity: usize) -> Self {
        Self {
            value: AtomicUsize::new(capacity),
            capacity,
            held: AtomicUsize::new(0),
        }
    }

    fn get(&self) -> usize {
        self.value.load(Ordering::Relaxed)
    }

    /// Whether one more packet may wait beside `queued` ones and the held one.
    fn has_room(&self, queued: usize) -> bool {
        self.waiting(queued) < self.get()
    }

    /// How many packets wait: `queued` ones and the held one.
    fn waiting(&self, queued: usize) -> usize {
        queued + self.held.load(Ordering::Relaxed)
    }

    #[cfg(not(loom))]
    fn hold(&self) {
        self.held.fetch_add(1, Ordering::Relaxed);
    }

    #[cfg(not(loom))]
    fn release(&self) {
        self.held.fetch_sub(1, Ordering::Relaxed);
    }

    /// Returns whether the limit rose.
    fn set(&self, limit: usize) -> bool {
        let limit = limit.clamp(1, self.capacity);
        self.value.swap(limit, Ordering::Relaxed) < limit
    }
}
