//! What a message-mode connection's handles share with the daemon, and the three protocols
//! on it (model-checked in `loom-tests/tests/messages.rs`):
//!
//! **Budgets (reserve against release).** Each channel has a byte budget. A sender reserves
//! a message's cost with a CAS that never takes the count over the limit, so a refusal is
//! synchronous and exact; the daemon releases what the message layer let go (sent, for
//! unreliable messages; acked in id order, for reliable ones). Since every byte the layer
//! holds was reserved first, the layer itself never refuses a message for its budget. A
//! sender that waits for room announces itself on `space` before its re-check, and the
//! daemon notifies after its release (the Dekker handshake of [`Parker`]), so no release is
//! missed.
//!
//! **The handoff (push against finish).** As for packets (`core::conn`): a sender pushes,
//! fences, then looks at `outbox_closed`; `finish` sets it, fences, then drains. One of the
//! two sees the message, so every message a send accepted gets its one outcome: sent by the
//! daemon, or reported [`MessageEvent::Lost`] by whoever drains it.
//!
//! **The receive path (starved against take).** Received messages wait in the message
//! layer until the inbox has room, so the layer's receive budget (not the inbox) is what
//! backpressures the peer. A daemon that finds the inbox full sets `starved`, fences and
//! tries once more; a consumer that took a message fences and looks at `starved`, and if it
//! is set asks the daemon to refill. One of the two sees the other's write, so a full inbox
//! never strands messages in the layer while the application waits.

use super::conn::Wait;
use super::inbox::Inbox;
use super::parker::{Parker, Wake};
use super::pool::BufferPool;
use super::ring::Ring;
use super::status::CloseReason;
use super::sync::{fence, Arc, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::message::{MessageEvent, MessageId};

/// A message waiting in the outbox for the daemon.
#[derive(Debug)]
pub struct OutMessage {
    /// The id the sender got back.
    pub id: u64,
    /// Its channel.
    pub channel: u8,
    /// Its bytes, in a pool buffer (or a larger one for a large message).
    pub bytes: Vec<u8>,
    /// The budget it reserved.
    pub cost: usize,
}

/// Why a reservation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The channel's budget lacks room (waiting would help unless `needed` exceeds the
    /// whole budget).
    Full {
        /// The message's cost.
        needed: usize,
        /// What the budget has left now.
        available: usize,
    },
    /// The outbox ring is full (the daemon has not caught up).
    OutboxFull,
    /// The connection finished or is closing.
    Closed(CloseReason),
}

#[derive(Debug)]
struct Budget {
    reserved: AtomicUsize,
    limit: usize,
}

/// The sizes of a message-mode connection's shared buffers.
#[derive(Clone, Copy, Debug)]
pub struct MessageSizes {
    /// Messages waiting for the daemon to take them.
    pub outbox: usize,
    /// Received messages waiting for the application.
    pub inbox: usize,
    /// Acked / lost events waiting to be polled.
    pub events: usize,
}

/// What a message-mode connection's handles and the daemon share. `T` is the received
/// message type (the daemon's `ReceivedMessage`; the models use plain numbers).
pub struct MessageCore<T> {
    /// Received messages: the daemon pushes (under its driver lock) and finishes it.
    pub inbox: Inbox<T>,
    outbox: Ring<OutMessage>,
    budgets: Box<[Budget]>,
    /// Senders waiting for budget or outbox room.
    space: Parker,
    events: Ring<MessageEvent>,
    dropped_events: AtomicU64,
    next_id: AtomicU64,
    /// As `ConnCore::scheduled`: set while the daemon is due to look without being told.
    scheduled: AtomicBool,
    outbox_closed: AtomicBool,
    /// The daemon left received messages in the layer because the inbox was full.
    starved: AtomicBool,
    pool: Arc<BufferPool>,
}

impl<T> MessageCore<T> {
    /// Empty buffers of `sizes`, one budget of `limits[c]` bytes per channel `c`.
    pub fn new(sizes: MessageSizes, limits: &[usize], pool: Arc<BufferPool>) -> Self {
        Self {
            inbox: Inbox::new(sizes.inbox),
            outbox: Ring::new(sizes.outbox),
            budgets: limits
                .iter()
                .map(|&limit| Budget {
                    reserved: AtomicUsize::new(0),
                    limit,
                })
                .collect(),
            space: Parker::new(),
            events: Ring::new(sizes.events),
            dropped_events: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
            scheduled: AtomicBool::new(false),
            outbox_closed: AtomicBool::new(false),
            starved: AtomicBool::new(false),
            pool,
        }
    }

    /// The pool message buffers come from.
    pub fn pool(&self) -> &BufferPool {
        &self.pool
    }

    /// Bytes reserved on `channel` (a snapshot): queued for the daemon plus held by the
    /// message layer.
    pub fn reserved(&self, channel: u8) -> usize {
        self.budgets[usize::from(channel)]
            .reserved
            .load(Ordering::Relaxed)
    }

    /// Sender: reserves `cost` bytes of `channel`'s budget, or says how much is left.
    pub fn try_reserve(&self, channel: u8, cost: usize) -> Result<(), Refused> {
        let budget = &self.budgets[usize::from(channel)];
        // Relaxed: the count guards no data; waking waiters is the parker's business.
        let mut current = budget.reserved.load(Ordering::Relaxed);
        loop {
            let available = budget.limit.saturating_sub(current);
            if cost > available {
                return Err(Refused::Full {
                    needed: cost,
                    available,
                });
            }
            // A strong CAS: it fails only when another thread moved the count, so the loop
            // makes progress (and loom needs no yield).
            match budget.reserved.compare_exchange(
                current,
                current + cost,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(now) => current = now,
            }
        }
    }

    /// Sender: reserves, waiting for room as `wait` allows unless `closed` reports a
    /// reason first. A cost above the whole budget is refused at once.
    pub fn reserve(
        &self,
        channel: u8,
        cost: usize,
        wait: Wait,
        closed: impl Fn() -> Option<CloseReason>,
    ) -> Result<(), Refused> {
        let limit = self.budgets[usize::from(channel)].limit;
        loop {
            if let Some(reason) = closed() {
                return Err(Refused::Closed(reason));
            }
            let deadline = match (self.try_reserve(channel, cost), wait) {
                (Err(Refused::Full { .. }), Wait::Until(deadline)) if cost <= limit => deadline,
                (other, _) => return other,
            };
            let key = self.space.prepare_park();
            // Re-check after announcing (Dekker with the daemon's release + notify).
            let fits = limit - self.reserved(channel).min(limit) >= cost;
            if fits || closed().is_some() {
                self.space.cancel_park();
                continue;
            }
            if self.space.park(key, deadline) == Wake::TimedOut {
                // One more try, so a release that raced the timeout is not wasted.
                return self.try_reserve(channel, cost);
            }
        }
    }

    /// Daemon (or a sender giving up): returns `bytes` of `channel`'s budget and wakes the
    /// senders waiting for room, if any.
    pub fn release(&self, channel: u8, bytes: usize) {
        if bytes == 0 {
            return;
        }
        self.budgets[usize::from(channel)]
            .reserved
            .fetch_sub(bytes, Ordering::Relaxed);
        self.space.notify_waiters();
    }

    /// Sender: the id of its next message (unique per connection; several threads may take
    /// ids in one order and push in another, so the id travels with the message).
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Sender: hands a message whose cost is reserved to the daemon, waiting for room in
    /// the outbox as `wait` allows. On `Err` the message comes
    /// back and its reservation is still held: the caller releases it. `make_ready` puts
    /// the connection on the daemon's ready list (unless it is already due to look).
    pub fn push(
        &self,
        mut message: OutMessage,
        wait: Wait,
        closed: impl Fn() -> Option<CloseReason>,
        make_ready: impl FnOnce(),
    ) -> Result<(), (OutMessage, Refused)> {
        loop {
            if let Some(reason) = closed() {
                return Err((message, Refused::Closed(reason)));
            }
            message = match self.outbox.try_push(message) {
                Ok(()) => break,
                Err(back) => back,
            };
            let Wait::Until(deadline) = wait else {
                return Err((message, Refused::OutboxFull));
            };
            let key = self.space.prepare_park();
            // Re-check after announcing (Dekker with the daemon's pop + notify).
            if self.outbox.len() < self.outbox.capacity() || closed().is_some() {
                self.space.cancel_park();
                continue;
            }
            if self.space.park(key, deadline) == Wake::TimedOut {
                match self.outbox.try_push(message) {
                    Ok(()) => break,
                    Err(back) => return Err((back, Refused::OutboxFull)),
                }
            }
        }
        // The connection may have ended after `closed` said no and `finish` drained the
        // outbox. SeqCst fence: the Dekker point against `finish` (module docs).
        fence(Ordering::SeqCst);
        if self.outbox_closed.load(Ordering::Relaxed) {
            self.discard_queued();
        } else if !self.scheduled.swap(true, Ordering::AcqRel) {
            // AcqRel: our push is released to the daemon's `begin_flush` swap.
            make_ready();
        }
        Ok(())
    }

    /// Daemon, before it takes messages: one pushed from now on must tell it again.
    pub fn begin_flush(&self) {
        // AcqRel: reads the swap of the sender that scheduled us, so its push is visible.
        self.scheduled.swap(false, Ordering::AcqRel);
    }

    /// Daemon, when pacing holds its sends back and a timer will bring it back: senders
    /// need not wake it meanwhile (it takes their messages when the timer fires).
    pub fn hold_for_pacing(&self) {
        // Release: a sender that reads this `true` skips the wake; the daemon's next
        // `begin_flush` still sees its message.
        self.scheduled.store(true, Ordering::Release);
    }

    /// Daemon: the oldest queued message.
    pub fn pop(&self) -> Option<OutMessage> {
        self.outbox.pop_ready()
    }

    /// Daemon, after taking messages: their room goes to waiting senders.
    pub fn took_messages(&self) {
        self.space.notify_waiters();
    }

    /// Whether no message waits for the daemon (a snapshot).
    pub fn outbox_is_empty(&self) -> bool {
        self.outbox.is_empty()
    }

    /// Messages waiting for the daemon (a snapshot).
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// Finishes the inbox (the first reason wins) and wakes every waiting sender. Only a
    /// thread holding the driver lock calls it (see `ConnCore::close_inbox`).
    pub fn close_inbox(&self, reason: CloseReason) {
        self.inbox.finish(reason);
        self.space.notify_all();
    }

    /// Daemon: the connection ended. Wakes everyone and reports every message still queued
    /// as lost.
    pub fn finish(&self, reason: CloseReason) {
        self.close_inbox(reason);
        self.outbox_closed.store(true, Ordering::Relaxed);
        // SeqCst fence: the Dekker point against a sender's push-then-look (module docs).
        fence(Ordering::SeqCst);
        self.discard_queued();
    }

    /// Messages queued once the connection has ended will never be sent: each is reported
    /// lost. Runs on the daemon and on senders, possibly at once: every pop takes a
    /// different message.
    fn discard_queued(&self) {
        while let Some(message) = self.outbox.pop_ready() {
            self.notify_event(MessageEvent::Lost(MessageId(message.id)));
            self.release(message.channel, message.cost);
            self.pool.give(message.bytes);
        }
    }

    /// Daemon: records an acked / lost event, counting it if the ring is full.
    pub fn notify_event(&self, event: MessageEvent) {
        if self.events.try_push(event).is_err() {
            self.dropped_events.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// User thread: the next acked / lost event.
    pub fn poll_event(&self) -> Option<MessageEvent> {
        self.events.pop_ready()
    }

    /// Events dropped because their ring was full.
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events.load(Ordering::Relaxed)
    }

    /// Daemon: pushes a received message, or hands it back when the inbox is full (keep it
    /// and offer it again when a consumer asks for a refill) or finished.
    pub fn deliver(&self, message: T) -> Result<(), T> {
        let message = match self.inbox.push(message) {
            Ok(()) => return Ok(()),
            Err(back) if self.inbox.status().is_finished() => return Err(back),
            Err(back) => back,
        };
        self.starved.store(true, Ordering::Relaxed);
        // SeqCst fence: the Dekker point against a consumer's take-then-look (module docs).
        fence(Ordering::SeqCst);
        self.inbox.push(message)
    }

    /// Consumer, after it took a message: if the daemon left messages behind for want of
    /// room, `make_ready` asks it to refill (one consumer asks; the others see the flag
    /// cleared).
    pub fn took(&self, make_ready: impl FnOnce()) {
        // SeqCst fence: the Dekker point against the daemon's `deliver` (module docs).
        fence(Ordering::SeqCst);
        if self.starved.load(Ordering::Relaxed) && self.starved.swap(false, Ordering::AcqRel) {
            make_ready();
        }
    }
}
