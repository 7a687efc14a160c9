//! The user's handle on one virtual connection: send, receive, delivery notifications, status.
//!
//! A [`Connection`] is cheap to clone and can be shared by any number of threads. Its state
//! lives in a [`ConnShared`] that the daemon also holds: the concurrent part ([`ConnCore`]:
//! inbox, outbox, delivery ring, flags, and the protocols on them) plus where the daemon
//! keeps it. All protocol state stays on the daemon thread.

#[cfg(target_os = "linux")]
mod lead;
mod messages;

pub use messages::ReceivedMessage;

use crate::core::conn::{ConnCore, Payload, Sizes, Wait};
use crate::core::delivery::{Delivery, PacketId};
use crate::core::inbox::{LeadSlot, RecvTimeoutError, TryRecvError};
use crate::core::messages::MessageCore;
use crate::core::pool::Packet;
use crate::core::status::{CloseReason, Status};
use crate::daemon::shared::{DaemonShared, Ready};
use crate::daemon::SocketKey;
use crate::error::SendError;
use crate::protocol;
use crate::protocol::secure::TokenInfo;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the daemon keeps a connection: its socket and its protocol id. Both parts carry a
/// generation, so the key of an ended connection matches nothing, even after its socket slot
/// and its endpoint slot are reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConnKey {
    pub(crate) socket: SocketKey,
    pub(crate) conn: protocol::ConnectionId,
}

/// The state a connection's handles share with the daemon.
pub(crate) struct ConnShared {
    pub(crate) key: ConnKey,
    /// Unique among the daemon's connections, never reused.
    pub(crate) id: u64,
    /// The daemon's latest estimates, for [`Connection::quick_stats`]: readable without the
    /// driver lock. Relaxed: each is a statistic read on its own.
    pub(crate) live: LiveEstimates,
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
    pub(crate) core: ConnCore,
    /// The message budgets, outbox, inbox and events: sized by `DaemonConfig` in message
    /// mode, and to one item each in packet mode, where nothing is ever queued in them (but
    /// a blocking message receive still learns the close reason).
    pub(crate) messages: MessageCore<ReceivedMessage>,
    /// Whether the connection is in message mode (`DaemonConfig::messages` is set).
    pub(crate) message_mode: bool,
    /// Payloads dropped because the inbox was full (the daemon counts them).
    pub(crate) dropped_inbox_full: AtomicU64,
    pub(crate) daemon: Arc<DaemonShared>,
    /// Secure mode, server side: what the client's connect token says (set once, before
    /// any handle exists).
    pub(crate) token: std::sync::OnceLock<Box<TokenInfo>>,
    /// Whether a consumer waits on the socket rather than on the inbox (`lead.rs`).
    #[cfg(target_os = "linux")]
    lead: LeadSlot,
    /// What that consumer waits on, made by the first consumer that leads.
    #[cfg(target_os = "linux")]
    lead_wait: std::sync::OnceLock<lead::LeadWait>,
    /// Set for good once the connection's socket carries another connection too (`lead.rs`).
    #[cfg(target_os = "linux")]
    lead_off: std::sync::atomic::AtomicBool,
}

/// The estimates the daemon publishes for user threads after each ack or loss.
#[derive(Debug, Default)]
pub(crate) struct LiveEstimates {
    rtt_nanos: AtomicU64,
    rtt_variation_nanos: AtomicU64,
    /// The loss percentage, as the bits of an `f64`.
    loss_percent_bits: AtomicU64,
}

impl LiveEstimates {
    pub(crate) fn publish(&self, rtt: Duration, variation: Duration, loss_percent: f64) {
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.rtt_nanos.store(nanos(rtt), Ordering::Relaxed);
        self.rtt_variation_nanos
            .store(nanos(variation), Ordering::Relaxed);
        self.loss_percent_bits
            .store(loss_percent.to_bits(), Ordering::Relaxed);
    }
}

impl ConnShared {
    pub(crate) fn new(
        key: ConnKey,
        id: u64,
        peer: SocketAddr,
        local: SocketAddr,
        daemon: Arc<DaemonShared>,
    ) -> Arc<Self> {
        let config = &daemon.config;
        let sizes = Sizes {
            inbox: config.inbox_capacity,
            outbox: config.outbox_capacity,
            deliveries: config.delivery_capacity,
            max_payload: config.protocol.max_payload,
        };
        Arc::new(Self {
            key,
            id,
            live: LiveEstimates::default(),
            peer,
            local,
            core: ConnCore::new(sizes, daemon.pool.clone()),
            messages: messages::core_for(config, &daemon.pool),
            message_mode: config.messages.is_some(),
            dropped_inbox_full: AtomicU64::new(0),
            daemon,
            token: std::sync::OnceLock::new(),
            #[cfg(target_os = "linux")]
            lead: LeadSlot::new(),
            #[cfg(target_os = "linux")]
            lead_wait: std::sync::OnceLock::new(),
            #[cfg(target_os = "linux")]
            lead_off: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn enqueue(self: &Arc<Self>, payload: Payload<'_>, wait: Wait) -> Result<PacketId, SendError> {
        if self.message_mode {
            return Err(SendError::WrongMode);
        }
        self.core.enqueue(payload, wait, || {
            self.daemon.make_ready(Ready::Connection(self.clone()));
        })
    }
}

impl ConnShared {
    /// Finishes the inboxes (see `ConnCore::close_inbox`): under the driver lock only.
    pub(crate) fn close_inbox(&self, reason: CloseReason) {
        self.core.close_inbox(reason);
        self.messages.close_inbox(reason);
        self.signal_leader();
    }

    /// Ends the connection (see `ConnCore::finish`): what is still queued is reported lost.
    pub(crate) fn finish(&self, reason: CloseReason) {
        self.core.finish(reason);
        self.messages.finish(reason);
        self.signal_leader();
    }

    /// After an inbox push or finish: wakes the consumer that waits on the socket rather
    /// than on the inbox, if there is one (`LeadSlot`).
    pub(crate) fn signal_leader(&self) {
        #[cfg(target_os = "linux")]
        if self.lead.must_signal() {
            if let Some(wait) = self.lead_wait.get() {
                wait.signal();
            }
        }
    }

    /// The leading consumer's wait, made on first use; `None` with a manual daemon (no
    /// other thread owns the socket's readiness, so the old path is kept) or if the
    /// eventfd cannot be made.
    #[cfg(target_os = "linux")]
    fn lead_wait(&self) -> Option<&lead::LeadWait> {
        if self.is_lead_off() {
            return None;
        }
        if let Some(wait) = self.lead_wait.get() {
            return Some(wait);
        }
        let socket = self.daemon.lead_socket(self.key.socket)?;
        let wait = lead::LeadWait::new(socket).ok()?;
        Some(self.lead_wait.get_or_init(|| wait))
    }

    /// Daemon, when the connection's socket carries a second connection: from now on its
    /// consumers wait on the inbox, and one that waits on the socket is told to leave it.
    pub(crate) fn stop_leading(&self) {
        #[cfg(target_os = "linux")]
        {
            // Release, paired with `is_lead_off`: a leader the signal wakes sees the flag.
            self.lead_off.store(true, Ordering::Release);
            self.signal_leader();
        }
    }

    #[cfg(target_os = "linux")]
    fn is_lead_off(&self) -> bool {
        self.lead_off.load(Ordering::Acquire)
    }

    /// Blocks for a packet until `deadline`: by leading where it can, else on the inbox.
    fn recv_until(self: &Arc<Self>, deadline: Option<Instant>) -> Result<Packet, RecvTimeoutError> {
        #[cfg(target_os = "linux")]
        if let Some(outcome) = lead::recv(self, deadline) {
            return outcome;
        }
        match deadline {
            Some(deadline) => self.core.inbox.recv_deadline(deadline),
            None => self.core.inbox.recv().map_err(RecvTimeoutError::Closed),
        }
    }
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
    if shared.core.request_close() {
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
    /// **Pacing.** The daemon sends at the rate the connection's rate controller finds the
    /// path sustains (docs/protocol.md §6.4): it starts at 2,000 packets/s, grows while you
    /// send faster, and backs off on loss or queueing delay, between `protocol.min_rate` (60)
    /// and `protocol.good_rate` (1,000,000 packets/s; bursts of 64, or 1 ms of packets at high
    /// rates). In bad mode it is capped at `protocol.bad_rate`: 30 packets/s, bursts of 4.
    /// A payload sent while fewer than 2 are in flight is never paced in good mode, so a
    /// request/response loop runs at the speed of the round trip. Payloads in flight stop at
    /// 3/4 of `protocol.sent_window` (512), which bounds the rate to about 384 per round trip.
    /// The outbox holds only what the current rate sends within
    /// `DaemonConfig::max_send_delay` (100 ms by default: 200 packets at the starting rate, 3
    /// in bad mode, at most the outbox's capacity), so a sender faster than the rate gets
    /// [`SendError::Paced`] instead of building a backlog that would arrive seconds late; a
    /// packet that still waits longer (the rate was cut after it was accepted) is dropped
    /// unsent and reported [`Delivery::Lost`]. [`SendError::OutboxFull`] means the outbox's
    /// capacity (`DaemonConfig::outbox_capacity`, 1,024) is the smaller limit.
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

    /// Takes a received packet if one is ready; never blocks. On a connection in message
    /// mode no packet ever arrives (every payload goes to the message layer): the packet
    /// receives find nothing until the close reason, and the packet sends refuse with
    /// [`SendError::WrongMode`] ([`Connection::is_message_mode`] tells the modes apart).
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
        self.shared().core.inbox.try_recv()
    }

    /// Waits for a packet, or returns the close reason once the connection is finished and
    /// every packet that arrived before has been received.
    ///
    /// On a spawned daemon (Linux), a thread waiting here waits on the connection's socket
    /// and reads it for the daemon when a datagram arrives, which saves the daemon thread's
    /// wake-up (one thread per connection does; others wait on the inbox). Only while the
    /// socket is the connection's own: the connections of one listener share its socket,
    /// so once it carries a second connection, their threads wait on the inbox and the
    /// daemon thread wakes exactly the one it fed (no thundering herd). The same holds for
    /// [`recv_timeout`](Self::recv_timeout) and [`recv_deadline`](Self::recv_deadline).
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
        self.shared().recv_until(None).map_err(|error| match error {
            RecvTimeoutError::Closed(reason) => reason,
            // Without a deadline the wait cannot time out.
            RecvTimeoutError::Timeout => unreachable!("recv without a deadline timed out"),
        })
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
        // A timeout too large to represent as an instant is a wait without deadline.
        self.shared()
            .recv_until(Instant::now().checked_add(timeout))
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
        self.shared().recv_until(Some(deadline))
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
        self.shared().core.inbox.drain_into(out, max)
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
        self.shared().core.poll_delivery()
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
    /// // Finished at once if the daemon is idle, else as soon as it takes the close request.
    /// while client.status().close_reason().is_none() {
    ///     std::thread::yield_now();
    /// }
    /// assert_eq!(client.status().close_reason(), Some(CloseReason::Closed));
    /// ```
    pub fn status(&self) -> Status {
        self.shared().core.inbox.status()
    }

    /// The figures a game reads every frame — RTT, its variation, loss, congestion mode and
    /// the buffers' fill — read from atomics the daemon updates after each ack or loss: no
    /// lock, no system call, never blocks behind a busy daemon turn (unlike
    /// [`stats`](Self::stats), which takes the driver lock for the full set).
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// # let server = listener.accept().unwrap();
    /// // `client` and `server` are the two ends of one connection over loopback.
    /// let quick = client.quick_stats();
    /// assert_eq!(quick.congestion_mode, gudp::CongestionMode::Good);
    /// assert_eq!((quick.inbox_len, quick.outbox_len), (0, 0));
    /// ```
    pub fn quick_stats(&self) -> QuickStats {
        let shared = self.shared();
        let live = &shared.live;
        QuickStats {
            rtt: Duration::from_nanos(live.rtt_nanos.load(Ordering::Relaxed)),
            rtt_variation: Duration::from_nanos(live.rtt_variation_nanos.load(Ordering::Relaxed)),
            packet_loss_percent: f64::from_bits(live.loss_percent_bits.load(Ordering::Relaxed)),
            congestion_mode: shared.core.inbox.status().congestion(),
            inbox_len: shared.core.inbox.len() + shared.messages.inbox.len(),
            outbox_len: shared.core.outbox.len() + shared.messages.outbox_len(),
        }
    }

    /// This connection's id: unique among its daemon's connections and never reused, so it
    /// can key a map of players; the same for every clone. Connections also compare and hash
    /// as themselves (`Connection: Eq + Hash`, hashing by this id). Clippy's
    /// `mutable_key_type` lint cannot see that the id never changes: add
    /// `ignore-interior-mutability = ["gudp::Connection"]` to your `clippy.toml`, as GUDP's does.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// let a = daemon.connect(listener.local_addr()).unwrap();
    /// let b = daemon.connect(listener.local_addr()).unwrap();
    /// assert_ne!(a.id(), b.id());
    /// assert_eq!(a.clone(), a);
    /// let players: std::collections::HashSet<gudp::Connection> = [a.clone(), b, a].into();
    /// assert_eq!(players.len(), 2);
    /// ```
    pub fn id(&self) -> u64 {
        self.shared().id
    }

    /// A snapshot of the connection's estimates and counters, or `None` once the daemon has
    /// forgotten the connection (it finished). Takes the driver lock; a frame loop reads
    /// [`quick_stats`](Self::quick_stats) instead.
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
            dropped_inbox_full: shared.dropped_inbox_full.load(Ordering::Relaxed),
            dropped_deliveries: shared.core.dropped_deliveries() + shared.messages.dropped_events(),
            inbox_len: shared.core.inbox.len() + shared.messages.inbox.len(),
            outbox_len: shared.core.outbox.len() + shared.messages.outbox_len(),
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

    /// On a secure listener's connection, what the client's connect token says: its client
    /// id and user data. `None` on a client's connection and on a plain listener's.
    ///
    /// ```
    /// use gudp::secure::{ConnectToken, PrivateKey, TokenParams};
    /// use gudp::{Daemon, DaemonConfig};
    /// let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// let key = PrivateKey::generate().unwrap();
    /// let listener = daemon.listen_secure("127.0.0.1:0".parse().unwrap(), key.clone(), None).unwrap();
    /// let protocol_id = DaemonConfig::default().protocol.protocol_id.into();
    /// let mut params = TokenParams::new(protocol_id, 42, vec![listener.local_addr()]);
    /// params.user_data[..3].copy_from_slice(b"bob");
    /// let token = ConnectToken::mint(&key, &params).unwrap();
    /// let client = daemon.connect_with_token(&token).unwrap();
    /// let server = listener.accept().unwrap();
    /// let info = server.token_info().unwrap();
    /// assert_eq!((info.client_id, &info.user_data[..3]), (42, &b"bob"[..]));
    /// assert!(client.token_info().is_none());
    /// ```
    pub fn token_info(&self) -> Option<&TokenInfo> {
        self.shared().token.get().map(|t| &**t)
    }

    /// The local socket's address. For a client this is the address its server sees (its
    /// socket is connected to the server, so the kernel also hands it nothing but the
    /// server's datagrams).
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
    /// assert_eq!(client.local_addr(), server.peer_addr()); // what the server sees
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.shared().local
    }
}

impl PartialEq for Connection {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(self.shared(), other.shared())
    }
}

impl Eq for Connection {}

impl std::hash::Hash for Connection {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id().hash(state);
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id())
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
    /// Delivery notifications (in message mode: message events) dropped because their ring
    /// was full (never polled).
    pub dropped_deliveries: u64,
    /// Packets (or messages) waiting in the inbox.
    pub inbox_len: usize,
    /// Packets (or messages) waiting in the outbox.
    pub outbox_len: usize,
}

/// What [`Connection::quick_stats`] reads without a lock.
///
/// ```
/// # use gudp::{Daemon, DaemonConfig};
/// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
/// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
/// # let client = daemon.connect(listener.local_addr()).unwrap();
/// let quick: gudp::QuickStats = client.quick_stats();
/// assert!(quick.packet_loss_percent >= 0.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct QuickStats {
    /// Smoothed round-trip time (zero until the daemon's first estimate is published).
    pub rtt: Duration,
    /// Its variation.
    pub rtt_variation: Duration,
    /// Packets lost, in percent of the last resolved ones.
    pub packet_loss_percent: f64,
    /// Good or bad: the pacing rate the connection is held to.
    pub congestion_mode: crate::CongestionMode,
    /// Packets waiting in the inbox.
    pub inbox_len: usize,
    /// Packets waiting in the outbox.
    pub outbox_len: usize,
}
