//! The state one connection's user handles share with the daemon, and the protocols on it:
//! enqueue (user threads) against finish (the daemon), the `scheduled` ready flag, and the
//! delivery notifications. Nothing here knows about sockets or mio: the daemon supplies
//! "make this connection ready and wake the loop" as a closure, so the whole protocol compiles
//! under `--cfg loom` and is model-checked (`loom-tests/tests/conn.rs`, `outbox.rs`,
//! `ready.rs`).
//!
//! **Enqueue against finish (a Dekker handshake).** `finish` sets `outbox_closed`, then
//! drains the outbox, reporting each packet lost. A sender pushes, then looks at
//! `outbox_closed` and, if it is set, drains too. Both sides write, then read the other's
//! write, so one of them sees the packet: a packet pushed after the daemon's drain is drained
//! by its sender. Every pop takes a different packet, so no packet is reported twice.
//!
//! Each side's write and read are separated by a `SeqCst` fence; the fences are totally
//! ordered, so the read after the later fence sees the write before the earlier one.

use super::delivery::{Delivery, PacketId};
use super::inbox::Inbox;
use super::outbox::{Outbox, PushError};
use super::pool::{BufferPool, Packet};
use super::ring::Ring;
use super::status::CloseReason;
use super::sync::{fence, Arc, AtomicBool, AtomicU64, Ordering};
use crate::error::SendError;
use std::time::Instant;

/// A packet waiting in an outbox.
#[derive(Debug)]
pub struct OutPacket {
    /// The id `enqueue` returned for it.
    pub id: u64,
    /// The payload, in a pool buffer.
    pub bytes: Vec<u8>,
    /// When `enqueue` accepted it: the daemon drops it, reported lost, once it has waited
    /// longer than `DaemonConfig::max_send_delay` for its pacing slot.
    pub queued_at: Instant,
}

/// What a send queues: bytes to copy into a pool buffer, or a received packet whose buffer
/// moves into the outbox as it is.
pub enum Payload<'a> {
    /// Copied into a pool buffer.
    Borrowed(&'a [u8]),
    /// Its buffer moves into the outbox.
    Owned(Packet),
}

impl Payload<'_> {
    fn len(&self) -> usize {
        match self {
            Payload::Borrowed(bytes) => bytes.len(),
            Payload::Owned(packet) => packet.len(),
        }
    }
}

/// How long a send may wait for room in the outbox.
#[derive(Clone, Copy, Debug)]
pub enum Wait {
    /// Not at all (`try_send`).
    Never,
    /// Until the deadline, or for ever with `None` (`send`, `send_timeout`).
    Until(Option<Instant>),
}

/// The sizes of a connection's buffers.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// Received packets waiting for the application.
    pub inbox: usize,
    /// Packets waiting to be sent.
    pub outbox: usize,
    /// Delivery notifications waiting to be polled.
    pub deliveries: usize,
    /// The largest payload a send accepts.
    pub max_payload: usize,
}

/// What a connection's handles and the daemon share.
pub struct ConnCore {
    /// The read buffer: the daemon pushes (under its driver lock) and finishes it.
    pub inbox: Inbox<Packet>,
    /// The write buffer: senders push, the daemon pops (and so does whoever drains it once the
    /// connection has ended: the daemon's `finish`, or a sender that sees `outbox_closed`).
    pub outbox: Outbox<OutPacket>,
    deliveries: Ring<Delivery>,
    /// Set while the daemon is due to look at this connection without being told: it is in
    /// the ready list, or holds packets back for pacing. Senders that find it set skip the
    /// ready list and the wake, so a burst of sends costs one.
    scheduled: AtomicBool,
    close_requested: AtomicBool,
    /// Set by `finish`: nothing in the outbox will be sent any more (while a closed
    /// connection lingers, the daemon still drains it; `finish` comes at the end).
    outbox_closed: AtomicBool,
    next_packet_id: AtomicU64,
    dropped_deliveries: AtomicU64,
    max_payload: usize,
    pool: Arc<BufferPool>,
}

impl ConnCore {
    /// A connection with empty buffers of `sizes`, taking payload buffers from `pool`.
    pub fn new(sizes: Sizes, pool: Arc<BufferPool>) -> Self {
        Self {
            inbox: Inbox::new(sizes.inbox),
            outbox: Outbox::new(sizes.outbox),
            deliveries: Ring::new(sizes.deliveries),
            scheduled: AtomicBool::new(false),
            close_requested: AtomicBool::new(false),
            outbox_closed: AtomicBool::new(false),
            next_packet_id: AtomicU64::new(0),
            dropped_deliveries: AtomicU64::new(0),
            max_payload: sizes.max_payload,
            pool,
        }
    }

    /// User thread: queues one packet and, unless the daemon is already due to look at this
    /// connection, calls `make_ready` (append it to the ready list and wake the loop).
    pub fn enqueue(
        &self,
        payload: Payload<'_>,
        wait: Wait,
        make_ready: impl FnOnce(),
    ) -> Result<PacketId, SendError> {
        if let Some(reason) = self.inbox.status().close_reason() {
            return Err(SendError::Closed(reason));
        }
        if self.close_requested.load(Ordering::Relaxed) {
            return Err(SendError::Closed(CloseReason::Closed));
        }
        let len = payload.len();
        if len > self.max_payload {
            return Err(SendError::TooLarge {
                len,
                max: self.max_payload,
            });
        }
        // The id travels with the packet: with several sender threads, push order and id
        // order may differ, and notifications must name the packet the user got back.
        let id = self.next_packet_id.fetch_add(1, Ordering::Relaxed);
        let bytes = match payload {
            Payload::Borrowed(bytes) => self.pool.copy_of(bytes),
            Payload::Owned(packet) => packet.into_bytes(),
        };
        let packet = OutPacket {
            id,
            bytes,
            queued_at: Instant::now(),
        };
        let pushed = match wait {
            Wait::Never => self
                .outbox
                .try_push(packet)
                .map_err(|back| (back, self.full_error())),
            Wait::Until(deadline) => self
                .outbox
                .push(packet, self.inbox.status_word(), deadline)
                .map_err(|error| match error {
                    PushError::Full(back) => (back, self.full_error()),
                    PushError::Closed(back, reason) => (back, SendError::Closed(reason)),
                }),
        };
        if let Err((packet, error)) = pushed {
            self.pool.give(packet.bytes);
            return Err(error);
        }
        // The connection may have ended between our check above and the push, after `finish`
        // drained the outbox. SeqCst fence: the Dekker point against `finish` (module docs).
        fence(Ordering::SeqCst);
        if self.outbox_closed.load(Ordering::Relaxed) {
            self.discard_queued();
        } else {
            self.schedule(make_ready);
        }
        Ok(PacketId(id))
    }

    /// Why the outbox refused: its limit is the pacing rate's (packets sent within
    /// `max_send_delay`) unless that exceeds its capacity.
    fn full_error(&self) -> SendError {
        if self.outbox.limit() < self.outbox.capacity() {
            SendError::Paced
        } else {
            SendError::OutboxFull
        }
    }

    /// Hands this connection to the daemon unless it is already due to look at it.
    fn schedule(&self, make_ready: impl FnOnce()) {
        // AcqRel: our push is released to the daemon's `begin_flush` swap, which reads this
        // swap (or a later one in the flag's modification order) and then pops.
        if !self.scheduled.swap(true, Ordering::AcqRel) {
            make_ready();
        }
    }

    /// Daemon, before it drains the outbox: a packet pushed from now on must tell it again.
    pub fn begin_flush(&self) {
        // AcqRel: the acquire half reads the swap of the sender that scheduled us, so its
        // packet is visible to the pops that follow.
        self.scheduled.swap(false, Ordering::AcqRel);
    }

    /// Daemon, when pacing holds packets back: keeps the connection scheduled while the
    /// outbox is not empty (senders need not wake it; its pacing timer brings it back).
    /// Returns whether it holds packets.
    pub fn hold_for_pacing(&self) -> bool {
        if self.outbox.is_empty() {
            return false;
        }
        // Release: a sender that reads this `true` skips the wake, and the daemon's next
        // `begin_flush` sees its packet all the same (it reads the sender's later swap).
        self.scheduled.store(true, Ordering::Release);
        true
    }

    /// User thread: records a close request; `true` for the first caller.
    pub fn request_close(&self) -> bool {
        // AcqRel: the daemon's Acquire load sees what the closing thread did before.
        !self.close_requested.swap(true, Ordering::AcqRel)
    }

    /// Daemon: whether a close was requested.
    pub fn close_requested(&self) -> bool {
        self.close_requested.load(Ordering::Acquire)
    }

    /// Finishes the inbox (the first reason given wins) and wakes every blocked receiver and
    /// sender. Only a thread that holds the driver lock may call it: the daemon pushes under
    /// that lock, so no payload can be pushed after the final bit, and a consumer told the
    /// close reason never receives anything after it.
    pub fn close_inbox(&self, reason: CloseReason) {
        self.inbox.finish(reason);
        self.outbox.wake_all();
    }

    /// Daemon: ends the connection. Records the reason, wakes every blocked receiver and
    /// sender, and reports whatever is still queued as lost.
    pub fn finish(&self, reason: CloseReason) {
        self.close_inbox(reason);
        self.outbox_closed.store(true, Ordering::Relaxed);
        // SeqCst fence: the Dekker point against a sender's push-then-look (module docs).
        fence(Ordering::SeqCst);
        self.discard_queued();
    }

    /// Packets still queued once the connection has finished will never be sent: each gets
    /// its one notification, as lost. Runs on the daemon and on senders, possibly at once:
    /// every pop takes a different packet.
    fn discard_queued(&self) {
        while let Some(packet) = self.outbox.pop() {
            self.notify_delivery(Delivery::Lost(PacketId(packet.id)));
            self.pool.give(packet.bytes);
        }
    }

    /// Records a delivery notification, counting it if the ring is full.
    pub fn notify_delivery(&self, delivery: Delivery) {
        if self.deliveries.try_push(delivery).is_err() {
            self.dropped_deliveries.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// User thread: the next delivery notification, if one is ready.
    pub fn poll_delivery(&self) -> Option<Delivery> {
        self.deliveries.pop_ready()
    }

    /// Notifications dropped because their ring was full.
    pub fn dropped_deliveries(&self) -> u64 {
        self.dropped_deliveries.load(Ordering::Relaxed)
    }
}
