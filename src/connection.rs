//! The user's handle on one virtual connection: send, receive, delivery notifications, status.
//!
//! A [`Connection`] is cheap to clone and can be shared by any number of threads. Its state
//! lives in a [`ConnShared`] that the daemon also holds: the inbox (read buffer), the outbox
//! (write buffer), the delivery-notification ring and a few atomics. All protocol state stays
//! on the daemon thread.

use crate::daemon::shared::{DaemonShared, Ready};
use crate::daemon::SocketKey;
use crate::error::SendError;
use crate::inbox::{Inbox, RecvTimeoutError, TryRecvError};
use crate::outbox::{Outbox, PushError};
use crate::pool::Packet;
use crate::protocol;
use crate::ring::Ring;
use crate::status::{CloseReason, Status};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Identifies one packet sent on a [`Connection`]. Ids are unique per connection and taken
/// in increasing order from 0 by `send`/`try_send` (a refused send may leave a gap).
/// Delivery notifications name packets by it.
///
/// ```
/// # use gudp::{Daemon, DaemonConfig};
/// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
/// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
/// # let client = daemon.connect(listener.local_addr()).unwrap();
/// # let server = listener.accept().unwrap();
/// // `client` and `server` are the two ends of one connection over loopback.
/// let first = client.send(b"a").unwrap();
/// let second = client.send(b"b").unwrap();
/// assert_eq!((first, second), (gudp::PacketId(0), gudp::PacketId(1)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PacketId(pub u64);

/// What happened to a sent packet. Each packet whose send returned an id gets exactly one of
/// the two, and it is the truth:
///
/// - `Acked`: the peer's daemon placed the payload in the peer's inbox, where its application
///   will read it. A payload the peer refused (its inbox was full, or the connection was
///   closing there) is never acked.
/// - `Lost`: no ack arrived within the loss timeout, or the packet was dropped unsent (it
///   waited longer than `DaemonConfig::max_send_delay`, or the connection ended first). A lost
///   packet may still have arrived if only its acks were lost: build reliability on `Acked`.
///
/// Notifications wait in a ring of `DaemonConfig::delivery_capacity` (4,096 by default): poll
/// them at least that often, or the excess is dropped and counted
/// ([`ConnectionStats::dropped_deliveries`]).
///
/// ```
/// # use gudp::{Daemon, DaemonConfig};
/// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
/// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
/// # let client = daemon.connect(listener.local_addr()).unwrap();
/// # let server = listener.accept().unwrap();
/// // `client` and `server` are the two ends of one connection over loopback.
/// # use gudp::Delivery;
/// let id = client.send(b"ping").unwrap();
/// server.send(&server.recv().unwrap()).unwrap(); // the echo carries the ack
/// let delivery = loop {
///     if let Some(delivery) = client.poll_delivery() {
///         break delivery;
///     }
///     std::thread::yield_now();
/// };
/// assert_eq!(delivery, Delivery::Acked(id));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Delivery {
    /// The peer acknowledged the packet.
    Acked(PacketId),
    /// The packet was not acknowledged in time (or the connection ended first).
    Lost(PacketId),
}

impl Delivery {
    /// The packet this is about.
    ///
    /// ```
    /// use gudp::{Delivery, PacketId};
    /// assert_eq!(Delivery::Lost(PacketId(7)).id(), PacketId(7));
    /// ```
    pub fn id(self) -> PacketId {
        match self {
            Delivery::Acked(id) | Delivery::Lost(id) => id,
        }
    }

    /// Whether the peer's application got the packet.
    ///
    /// ```
    /// use gudp::{Delivery, PacketId};
    /// assert!(Delivery::Acked(PacketId(7)).is_acked());
    /// assert!(!Delivery::Lost(PacketId(7)).is_acked());
    /// ```
    pub fn is_acked(self) -> bool {
        matches!(self, Delivery::Acked(_))
    }
}

/// A packet waiting in an outbox.
#[derive(Debug)]
pub(crate) struct OutPacket {
    pub(crate) id: u64,
    pub(crate) bytes: Vec<u8>,
    /// When `try_send` accepted it: the daemon drops it, reported lost, once it has waited
    /// longer than `DaemonConfig::max_send_delay`.
    pub(crate) queued_at: Instant,
}

/// Where the daemon keeps a connection: its socket and its protocol id. Both parts carry a
/// generation, so the key of an ended connection matches nothing, even after its socket slot
/// and its endpoint slot are reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConnKey {
    pub(crate) socket: SocketKey,
    pub(crate) conn: protocol::ConnectionId,
}

/// Counters the daemon keeps for a connection beyond the protocol's own.
#[derive(Debug, Default)]
pub(crate) struct LocalCounters {
    pub(crate) dropped_inbox_full: AtomicU64,
    pub(crate) dropped_deliveries: AtomicU64,
}

/// The state a connection's handles share with the daemon.
pub(crate) struct ConnShared {
    pub(crate) key: ConnKey,
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
    pub(crate) max_payload: usize,
    pub(crate) inbox: Inbox<Packet>,
    pub(crate) outbox: Outbox<OutPacket>,
    pub(crate) deliveries: Ring<Delivery>,
    /// Set while the daemon is due to look at this connection without being told: it is in
    /// the ready list, or holds a packet back for pacing. Senders that find it set skip the
    /// wake, so a burst of sends costs one.
    pub(crate) scheduled: AtomicBool,
    pub(crate) close_requested: AtomicBool,
    /// Set when the connection has ended for good: nothing in the outbox will be sent any
    /// more (while a closed connection lingers, the daemon still drains it).
    outbox_closed: AtomicBool,
    next_packet_id: AtomicU64,
    pub(crate) counters: LocalCounters,
    pub(crate) daemon: Arc<DaemonShared>,
}

impl ConnShared {
    pub(crate) fn new(
        key: ConnKey,
        peer: SocketAddr,
        local: SocketAddr,
        daemon: Arc<DaemonShared>,
    ) -> Arc<Self> {
        let config = &daemon.config;
        Arc::new(Self {
            key,
            peer,
            local,
            max_payload: config.protocol.max_payload,
            inbox: Inbox::new(config.inbox_capacity),
            outbox: Outbox::new(config.outbox_capacity),
            deliveries: Ring::new(config.delivery_capacity),
            scheduled: AtomicBool::new(false),
            close_requested: AtomicBool::new(false),
            outbox_closed: AtomicBool::new(false),
            next_packet_id: AtomicU64::new(0),
            counters: LocalCounters::default(),
            daemon,
        })
    }

    /// Hands this connection to the daemon unless it is already due to look at it.
    pub(crate) fn schedule(self: &Arc<Self>) {
        // AcqRel: pairs with the daemon's `swap(false)`, so a packet pushed before our swap is
        // visible to the daemon's drain that follows its swap (see `daemon::shared`).
        if !self.scheduled.swap(true, Ordering::AcqRel) {
            self.daemon.make_ready(Ready::Connection(self.clone()));
        }
    }

    /// Finishes the inbox (the first reason given wins) and wakes every blocked receiver and
    /// sender. Only a thread that holds the driver lock may call it: the daemon pushes under
    /// that lock, so no payload can be pushed after the final bit, and a consumer told the
    /// close reason never receives anything after it.
    pub(crate) fn close_inbox(&self, reason: CloseReason) {
        self.inbox.finish(reason);
        self.outbox.wake_all();
    }

    /// Ends the connection from the daemon's side: records the reason, wakes every blocked
    /// receiver and sender, and reports whatever is still queued as lost.
    pub(crate) fn finish(&self, reason: CloseReason) {
        self.close_inbox(reason);
        self.outbox_closed.store(true, Ordering::Relaxed);
        // SeqCst fence: the Dekker point against a sender's push-then-look in `enqueue`.
        fence(Ordering::SeqCst);
        self.discard_queued();
    }

    /// Packets still queued once the connection has finished will never be sent: each gets
    /// its one notification, as lost. Safe to run on several threads at once: every pop takes
    /// a different packet.
    fn discard_queued(&self) {
        while let Some(packet) = self.outbox.pop() {
            self.notify_delivery(Delivery::Lost(PacketId(packet.id)));
            self.daemon.pool.give(packet.bytes);
        }
    }

    /// Records a delivery notification, counting it if the ring is full.
    pub(crate) fn notify_delivery(&self, delivery: Delivery) {
        if self.deliveries.try_push(delivery).is_err() {
            self.counters
                .dropped_deliveries
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    fn enqueue(self: &Arc<Self>, payload: Payload<'_>, wait: Wait) -> Result<PacketId, SendError> {
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
        let pool = &self.daemon.pool;
        let bytes = match payload {
            Payload::Borrowed(bytes) => pool.copy_of(bytes),
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
        match pushed {
            Ok(()) => {
                // The connection may have ended between our check above and the push, after
                // `finish` emptied the outbox. Each side writes (the push; `outbox_closed`),
                // fences, then reads the other's: one of us sees the packet, so it is never
                // stranded without its notification.
                fence(Ordering::SeqCst);
                if self.outbox_closed.load(Ordering::Relaxed) {
                    self.discard_queued();
                } else {
                    self.schedule();
                }
                Ok(PacketId(id))
            }
            Err((packet, error)) => {
                pool.give(packet.bytes);
                Err(error)
            }
        }
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
}

/// What a send queues: bytes to copy into a pool buffer, or a received packet whose buffer
/// moves into the outbox as it is.
enum Payload<'a> {
    Borrowed(&'a [u8]),
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
#[derive(Clone, Copy)]
enum Wait {
    Never,
    Until(Option<Instant>),
}

/// One end of a virtual connection. Clone it freely: every clone is the same connection, and
/// it closes when the last clone is dropped (or [`close`](Self::close) is called).
///
/// ```
/// use gudp::{Daemon, DaemonConfig};
/// let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
/// let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
/// let client = daemon.connect(listener.local_addr()).unwrap();
/// let server = listener.accept().unwrap();
/// let id = client.send(b"hello").unwrap();
/// assert_eq!(&server.recv().unwrap()[..], b"hello");
/// server.send(b"world").unwrap();
/// assert_eq!(&client.recv().unwrap()[..], b"world");
/// # let _ = id;
/// ```
#[derive(Clone)]
pub struct Connection {
    handle: Arc<Handle>,
}

/// Closes the connection when the last user handle goes away.
struct Handle {
    shared: Arc<ConnShared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        request_close(&self.shared);
    }
}

fn request_close(shared: &Arc<ConnShared>) {
    if !shared.close_requested.swap(true, Ordering::AcqRel) {
        // Finish the inbox now if the daemon is not running (a consumer blocked in `recv`
        // wakes at once), else the daemon does it when it takes the request: either way under
        // the driver lock, so that no payload is pushed after the close reason.
        if let Some(_driver) = shared.daemon.try_driver() {
            shared.close_inbox(CloseReason::Closed);
        }
        // Tell the daemon even if the connection is scheduled: a connection held back by
        // pacing is scheduled but would only be looked at when its budget allows.
        shared.daemon.make_ready(Ready::Connection(shared.clone()));
    }
}

impl Connection {
    pub(crate) fn new(shared: Arc<ConnShared>) -> Self {
        Self {
            handle: Arc::new(Handle { shared }),
        }
    }

    fn shared(&self) -> &Arc<ConnShared> {
        &self.handle.shared
    }

    /// Queues one packet, waiting while the outbox is full. Returns the packet's id for
    /// delivery notifications. The wait is short: the outbox drains at the pacing rate (see
    /// [`try_send`](Self::try_send) for the limits), and the packet then waits at most
    /// `DaemonConfig::max_send_delay` for its slot.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// # let server = listener.accept().unwrap();
    /// // `client` and `server` are the two ends of one connection over loopback.
    /// let id = client.send(b"hello").unwrap();
    /// assert_eq!(id, gudp::PacketId(0)); // the first packet of this connection
    /// assert_eq!(&server.recv().unwrap()[..], b"hello");
    /// ```
    pub fn send(&self, payload: &[u8]) -> Result<PacketId, SendError> {
        self.shared()
            .enqueue(Payload::Borrowed(payload), Wait::Until(None))
    }

    /// Queues one packet if the outbox has room; never blocks and, in steady state, never
    /// allocates.
    ///
    /// **Pacing.** The daemon sends at most the congestion mode's rate, from
    /// `DaemonConfig::protocol`: by default 2,000 packets/s in good mode (bursts of 64) and
    /// 30 packets/s in bad mode (bursts of 4). That also caps a request/response loop at about
    /// 2,000 round trips a second per connection; raise `good_rate` for more. The outbox
    /// holds only what the current rate sends within `DaemonConfig::max_send_delay` (100 ms by
    /// default: 200 packets in good mode, 3 in bad), so a sender faster than the rate gets
    /// [`SendError::Paced`] instead of building a backlog that would arrive seconds late; a
    /// packet that still waits longer is dropped unsent and reported
    /// [`Delivery::Lost`]. [`SendError::OutboxFull`] means the outbox's capacity
    /// (`DaemonConfig::outbox_capacity`, 1,024) is the smaller limit.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig, SendError};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let conn = daemon.connect(listener.local_addr()).unwrap();
    /// let too_big = vec![0u8; 5000];
    /// assert!(matches!(conn.try_send(&too_big), Err(SendError::TooLarge { .. })));
    /// ```
    pub fn try_send(&self, payload: &[u8]) -> Result<PacketId, SendError> {
        self.shared()
            .enqueue(Payload::Borrowed(payload), Wait::Never)
    }

    /// Like [`send`](Self::send), but gives up with [`SendError::OutboxFull`] (or `Paced`)
    /// after `timeout`.
    ///
    /// ```
    /// use gudp::{Daemon, DaemonConfig, SendError};
    /// use std::time::Duration;
    /// // A manual daemon that nobody polls never empties the outbox (capacity 1 here).
    /// let mut config = DaemonConfig::default();
    /// config.outbox_capacity = 1;
    /// let daemon = Daemon::manual(config).unwrap();
    /// let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// let conn = daemon.connect(listener.local_addr()).unwrap();
    /// assert!(conn.send_timeout(b"fits", Duration::from_millis(1)).is_ok());
    /// let full = conn.send_timeout(b"waits 1 ms", Duration::from_millis(1));
    /// assert_eq!(full, Err(SendError::OutboxFull));
    /// ```
    pub fn send_timeout(&self, payload: &[u8], timeout: Duration) -> Result<PacketId, SendError> {
        self.shared().enqueue(
            Payload::Borrowed(payload),
            Wait::Until(Instant::now().checked_add(timeout)),
        )
    }

    /// Like [`try_send`](Self::try_send), for a packet received on any connection of the
    /// same daemon (or another): its buffer moves into the outbox, so forwarding or echoing
    /// costs no copy. The packet is consumed either way; on an error its buffer is recycled.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// # let server = listener.accept().unwrap();
    /// // `client` and `server` are the two ends of one connection over loopback.
    /// client.send(b"echo me").unwrap();
    /// let packet = server.recv().unwrap();
    /// server.try_send_packet(packet).unwrap(); // the same buffer goes back out
    /// assert_eq!(&client.recv().unwrap()[..], b"echo me");
    /// ```
    pub fn try_send_packet(&self, packet: Packet) -> Result<PacketId, SendError> {
        self.shared().enqueue(Payload::Owned(packet), Wait::Never)
    }

    /// Like [`send`](Self::send) (waits while the outbox is full), for a received packet:
    /// see [`try_send_packet`](Self::try_send_packet).
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// # let server = listener.accept().unwrap();
    /// client.send(b"forward me").unwrap();
    /// server.send_packet(server.recv().unwrap()).unwrap();
    /// assert_eq!(&client.recv().unwrap()[..], b"forward me");
    /// ```
    pub fn send_packet(&self, packet: Packet) -> Result<PacketId, SendError> {
        self.shared()
            .enqueue(Payload::Owned(packet), Wait::Until(None))
    }

    /// Takes a received packet if one is ready; never blocks.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// # let server = listener.accept().unwrap();
    /// // `client` and `server` are the two ends of one connection over loopback.
    /// # use gudp::TryRecvError;
    /// assert_eq!(server.try_recv(), Err(TryRecvError::Empty));
    /// client.send(b"input").unwrap();
    /// let packet = loop {
    ///     if let Ok(packet) = server.try_recv() {
    ///         break packet; // a frame loop would do other work between tries
    ///     }
    ///     std::thread::yield_now();
    /// };
    /// assert_eq!(&packet[..], b"input");
    /// ```
    pub fn try_recv(&self) -> Result<Packet, TryRecvError> {
        self.shared().inbox.try_recv()
    }

    /// Waits for a packet, or returns the close reason once the connection is finished and
    /// every packet that arrived before has been received.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// # let server = listener.accept().unwrap();
    /// // `client` and `server` are the two ends of one connection over loopback.
    /// # use gudp::CloseReason;
    /// client.send(b"last words").unwrap();
    /// assert_eq!(&server.recv().unwrap()[..], b"last words");
    /// client.close();
    /// assert_eq!(server.recv(), Err(CloseReason::ClosedByPeer));
    /// ```
    pub fn recv(&self) -> Result<Packet, CloseReason> {
        self.shared().inbox.recv()
    }

    /// Like [`recv`](Self::recv), but gives up after `timeout`.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// # let server = listener.accept().unwrap();
    /// // `client` and `server` are the two ends of one connection over loopback.
    /// # use gudp::RecvTimeoutError;
    /// # use std::time::Duration;
    /// let nothing = server.recv_timeout(Duration::from_millis(1));
    /// assert_eq!(nothing, Err(RecvTimeoutError::Timeout));
    /// client.send(b"hi").unwrap();
    /// assert_eq!(&server.recv_timeout(Duration::from_secs(5)).unwrap()[..], b"hi");
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Packet, RecvTimeoutError> {
        self.shared().inbox.recv_timeout(timeout)
    }

    /// Like [`recv`](Self::recv), but gives up at `deadline`.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// # let server = listener.accept().unwrap();
    /// // `client` and `server` are the two ends of one connection over loopback.
    /// # use gudp::RecvTimeoutError;
    /// # use std::time::{Duration, Instant};
    /// assert_eq!(server.recv_deadline(Instant::now()), Err(RecvTimeoutError::Timeout));
    /// client.send(b"hi").unwrap();
    /// let deadline = Instant::now() + Duration::from_secs(5);
    /// assert_eq!(&server.recv_deadline(deadline).unwrap()[..], b"hi");
    /// ```
    pub fn recv_deadline(&self, deadline: Instant) -> Result<Packet, RecvTimeoutError> {
        self.shared().inbox.recv_deadline(deadline)
    }

    /// Moves up to `max` ready packets into `out` without blocking (a frame loop's drain).
    /// Returns how many, or the close reason once finished and drained.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// # let server = listener.accept().unwrap();
    /// // `client` and `server` are the two ends of one connection over loopback.
    /// for i in 0..3u8 {
    ///     client.send(&[i]).unwrap();
    /// }
    /// let mut frame = Vec::with_capacity(64);
    /// while frame.len() < 3 {
    ///     server.drain_into(&mut frame, 64).unwrap(); // never blocks: 0 if nothing arrived yet
    /// }
    /// assert_eq!(frame.iter().map(|p| p[0]).collect::<Vec<_>>(), [0, 1, 2]);
    /// ```
    pub fn drain_into(
        &self,
        out: &mut impl Extend<Packet>,
        max: usize,
    ) -> Result<usize, CloseReason> {
        self.shared().inbox.drain_into(out, max)
    }

    /// The next delivery notification (acked or lost), if any.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// # let server = listener.accept().unwrap();
    /// // `client` and `server` are the two ends of one connection over loopback.
    /// # use gudp::Delivery;
    /// assert_eq!(client.poll_delivery(), None); // nothing sent yet
    /// let id = client.send(b"ping").unwrap();
    /// server.send(&server.recv().unwrap()).unwrap(); // the echo carries the ack
    /// let delivery = loop {
    ///     if let Some(delivery) = client.poll_delivery() {
    ///         break delivery;
    ///     }
    ///     std::thread::yield_now();
    /// };
    /// assert_eq!(delivery, Delivery::Acked(id));
    /// ```
    pub fn poll_delivery(&self) -> Option<Delivery> {
        self.shared().deliveries.pop_ready()
    }

    /// The congestion mode and, once finished, the close reason.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// # let server = listener.accept().unwrap();
    /// // `client` and `server` are the two ends of one connection over loopback.
    /// # use gudp::{CloseReason, CongestionMode};
    /// assert_eq!(client.status().congestion(), CongestionMode::Good);
    /// assert_eq!(client.status().close_reason(), None);
    /// client.close();
    /// assert_eq!(client.status().close_reason(), Some(CloseReason::Closed));
    /// ```
    pub fn status(&self) -> Status {
        self.shared().inbox.status()
    }

    /// A snapshot of the connection's estimates and counters, or `None` once the daemon has
    /// forgotten the connection (it finished).
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// # let server = listener.accept().unwrap();
    /// // `client` and `server` are the two ends of one connection over loopback.
    /// let stats = client.stats().unwrap();
    /// assert!(stats.protocol.connected);
    /// assert_eq!(stats.protocol.peer, listener.local_addr());
    /// assert_eq!((stats.inbox_len, stats.outbox_len), (0, 0));
    /// ```
    pub fn stats(&self) -> Option<ConnectionStats> {
        let shared = self.shared();
        let protocol = shared.daemon.connection_stats(shared.key)?;
        Some(ConnectionStats {
            protocol,
            dropped_inbox_full: shared.counters.dropped_inbox_full.load(Ordering::Relaxed),
            dropped_deliveries: shared.counters.dropped_deliveries.load(Ordering::Relaxed),
            inbox_len: shared.inbox.len(),
            outbox_len: shared.outbox.len(),
        })
    }

    /// Closes the connection. Sends fail from now on and nothing more is received (packets
    /// already received can still be drained, then reads report [`CloseReason::Closed`]).
    /// What `try_send` already accepted is still sent, at the pacing rate, and the daemon
    /// waits for each packet's ack or loss, for at most `DaemonConfig::close_linger` (1 s by
    /// default); then the peer is told (its side ends with [`CloseReason::ClosedByPeer`])
    /// and whatever is still unresolved is reported lost. So a "player left" message sent
    /// just before closing arrives. Dropping the last clone closes the same way; so does
    /// [`Daemon::shutdown`](crate::Daemon::shutdown), for every connection at once.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// # let server = listener.accept().unwrap();
    /// // `client` and `server` are the two ends of one connection over loopback.
    /// # use gudp::{CloseReason, SendError};
    /// client.close();
    /// assert_eq!(client.try_send(b"more"), Err(SendError::Closed(CloseReason::Closed)));
    /// assert_eq!(server.recv(), Err(CloseReason::ClosedByPeer)); // the peer is told
    /// ```
    pub fn close(&self) {
        request_close(self.shared());
    }

    /// The peer's address.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// # let server = listener.accept().unwrap();
    /// // `client` and `server` are the two ends of one connection over loopback.
    /// assert_eq!(client.peer_addr(), listener.local_addr());
    /// assert_eq!(server.peer_addr().port(), client.local_addr().port());
    /// ```
    pub fn peer_addr(&self) -> SocketAddr {
        self.shared().peer
    }

    /// The local socket's address.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// # let server = listener.accept().unwrap();
    /// // `client` and `server` are the two ends of one connection over loopback.
    /// // Accepted connections share the listener's socket; a client gets a socket of its own.
    /// assert_eq!(server.local_addr(), listener.local_addr());
    /// assert_ne!(client.local_addr().port(), listener.local_addr().port());
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.shared().local
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("local", &self.local_addr())
            .field("peer", &self.peer_addr())
            .field("status", &self.status())
            .finish()
    }
}

/// A snapshot of one connection: the protocol's estimates and counters, plus what the daemon
/// counted for it.
///
/// ```
/// # use gudp::{Daemon, DaemonConfig};
/// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
/// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
/// # let client = daemon.connect(listener.local_addr()).unwrap();
/// # let server = listener.accept().unwrap();
/// // `client` and `server` are the two ends of one connection over loopback.
/// let stats: gudp::ConnectionStats = client.stats().unwrap();
/// assert_eq!(stats.protocol.role, gudp::protocol::Role::Client);
/// assert_eq!((stats.dropped_inbox_full, stats.dropped_deliveries), (0, 0));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// RTT, loss, bandwidth, congestion mode and the protocol's counters.
    pub protocol: protocol::ProtocolStats,
    /// Payloads dropped because the inbox was full (the application read too slowly).
    pub dropped_inbox_full: u64,
    /// Delivery notifications dropped because their ring was full (never polled).
    pub dropped_deliveries: u64,
    /// Packets waiting in the inbox.
    pub inbox_len: usize,
    /// Packets waiting in the outbox.
    pub outbox_len: usize,
}
