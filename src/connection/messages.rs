//! Message mode on a [`Connection`]: channels of messages instead of one payload per packet.
//!
//! The message layer (`crate::message`) runs on the daemon thread, one `MessageConnection`
//! per connection (`daemon/messages.rs`). User threads touch only the shared
//! [`MessageCore`]: a sender reserves its message's cost against the channel's budget (so a
//! full channel refuses at once, and the layer never has to), takes an id, and pushes the
//! message onto a lock-free ring for the daemon; received messages arrive in an inbox with
//! the packet inbox's read rule; acked / lost events arrive in a ring of their own.

use super::{ConnShared, Connection};
use crate::core::conn::Wait;
use crate::core::inbox::{RecvTimeoutError, TryRecvError};
use crate::core::messages::{MessageCore, MessageSizes, OutMessage, Refused};
use crate::core::pool::{BufferPool, Packet};
use crate::core::status::CloseReason;
use crate::daemon::shared::Ready;
use crate::daemon::DaemonConfig;
use crate::error::SendError;
use crate::message::{MessageEvent, MessageId};
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The shared message state of a connection of a daemon with `config`.
pub(super) fn core_for(
    config: &DaemonConfig,
    pool: &Arc<BufferPool>,
) -> MessageCore<ReceivedMessage> {
    match &config.messages {
        Some(messages) => {
            let limits: Vec<usize> = messages.channels.iter().map(|c| c.budget).collect();
            let sizes = MessageSizes {
                outbox: config.outbox_capacity,
                inbox: config.inbox_capacity,
                events: config.delivery_capacity,
            };
            MessageCore::new(sizes, &limits, pool.clone())
        }
        // Packet mode: nothing is ever queued here; the inbox only carries the close reason.
        None => MessageCore::new(
            MessageSizes {
                outbox: 1,
                inbox: 1,
                events: 1,
            },
            &[],
            pool.clone(),
        ),
    }
}

/// A received message: its channel and its bytes (dereferences to them). Dropping it
/// recycles its buffer: messages up to `protocol.max_payload` bytes live in the daemon's
/// pooled buffers (no allocation in steady state); larger ones are allocated for the copy
/// and freed on drop.
///
/// ```
/// # use gudp::{Daemon, DaemonConfig, message::MessageConfig};
/// # let mut config = DaemonConfig::default();
/// # config.messages = Some(MessageConfig::default());
/// # let daemon = Daemon::spawn(config).unwrap();
/// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
/// # let client = daemon.connect(listener.local_addr()).unwrap();
/// # let server = listener.accept().unwrap();
/// // `client` and `server` are the two ends of one message-mode connection over loopback.
/// client.send_message(3, b"hello").unwrap(); // channel 3: reliable ordered
/// let message: gudp::ReceivedMessage = server.recv_message().unwrap();
/// assert_eq!((message.channel(), &message[..]), (3, &b"hello"[..]));
/// ```
pub struct ReceivedMessage {
    channel: u8,
    packet: Packet,
}

impl ReceivedMessage {
    pub(crate) fn new(channel: u8, packet: Packet) -> Self {
        Self { channel, packet }
    }

    /// The channel it was sent on (its index in `MessageConfig::channels`).
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig, message::MessageConfig};
    /// # let mut config = DaemonConfig::default();
    /// # config.messages = Some(MessageConfig::default());
    /// # let daemon = Daemon::spawn(config).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// # let server = listener.accept().unwrap();
    /// client.send_message(2, b"unordered but reliable").unwrap();
    /// assert_eq!(server.recv_message().unwrap().channel(), 2);
    /// ```
    pub fn channel(&self) -> u8 {
        self.channel
    }

    /// The message's bytes.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig, message::MessageConfig};
    /// # let mut config = DaemonConfig::default();
    /// # config.messages = Some(MessageConfig::default());
    /// # let daemon = Daemon::spawn(config).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// # let server = listener.accept().unwrap();
    /// client.send_message(3, b"state").unwrap();
    /// assert_eq!(server.recv_message().unwrap().as_bytes(), b"state");
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        self.packet.as_bytes()
    }
}

impl Deref for ReceivedMessage {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.packet.as_bytes()
    }
}

impl AsRef<[u8]> for ReceivedMessage {
    fn as_ref(&self) -> &[u8] {
        self.packet.as_bytes()
    }
}

impl fmt::Debug for ReceivedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceivedMessage")
            .field("channel", &self.channel)
            .field("len", &self.packet.len())
            .finish()
    }
}

fn send_error(channel: u8, refused: Refused) -> SendError {
    match refused {
        Refused::Full { needed, available } => SendError::ChannelFull {
            channel,
            needed,
            available,
        },
        Refused::OutboxFull => SendError::OutboxFull,
        Refused::Closed(reason) => SendError::Closed(reason),
    }
}

impl ConnShared {
    /// Why nothing more may be sent, if so.
    fn send_closed(&self) -> Option<CloseReason> {
        let closed = self.core.close_requested().then_some(CloseReason::Closed);
        self.core.inbox.status().close_reason().or(closed)
    }

    fn send_message(
        self: &Arc<Self>,
        channel: u8,
        data: &[u8],
        wait: Wait,
    ) -> Result<MessageId, SendError> {
        let config = match &self.daemon.config.messages {
            Some(config) if self.message_mode => config,
            _ => return Err(SendError::WrongMode),
        };
        if let Some(reason) = self.send_closed() {
            return Err(SendError::Closed(reason));
        }
        let limits = config
            .channels
            .get(usize::from(channel))
            .ok_or(SendError::UnknownChannel { channel })?;
        let len = data.len();
        if len > limits.max_message_size {
            return Err(SendError::TooLarge {
                len,
                max: limits.max_message_size,
            });
        }
        let cost = config.message_cost(len);
        let closed = || self.send_closed();
        let messages = &self.messages;
        messages
            .reserve(channel, cost, wait, closed)
            .map_err(|refused| send_error(channel, refused))?;
        let id = messages.next_id();
        // Small messages copy into a pooled buffer; a large one would only grow it past
        // the pool's size class (and free it), so it gets its own.
        let bytes = if len <= self.daemon.config.protocol.max_payload {
            messages.pool().copy_of(data)
        } else {
            data.to_vec()
        };
        let message = OutMessage {
            id,
            channel,
            bytes,
            cost,
        };
        let make_ready = || self.daemon.make_ready(Ready::Connection(self.clone()));
        match messages.push(message, wait, closed, make_ready) {
            Ok(()) => Ok(MessageId(id)),
            Err((message, refused)) => {
                messages.release(channel, cost);
                messages.pool().give(message.bytes);
                Err(send_error(channel, refused))
            }
        }
    }

    /// After a consumer took a message: ask the daemon for more if it left some behind.
    fn took_message(self: &Arc<Self>) {
        self.messages
            .took(|| self.daemon.make_ready(Ready::Connection(self.clone())));
    }
}

impl Connection {
    /// Whether this connection runs in message mode (its daemon has
    /// `DaemonConfig::messages`): the message calls work, the packet sends refuse with
    /// [`SendError::WrongMode`] and the packet receives find nothing; and the other way
    /// round.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// assert!(!client.is_message_mode()); // the default is packet mode
    /// assert_eq!(client.try_send_message(0, b"x"), Err(gudp::SendError::WrongMode));
    /// ```
    pub fn is_message_mode(&self) -> bool {
        self.shared().message_mode
    }

    /// Queues a message on `channel` if its budget has room; never blocks and, for
    /// messages up to `protocol.max_payload` bytes, never allocates in steady state.
    /// Returns the message's id, which its [`MessageEvent`] names
    /// ([`poll_message_event`](Self::poll_message_event)).
    ///
    /// **Limits** (from [`MessageConfig`](crate::message::MessageConfig), both ends alike):
    /// a message is at most its channel's `max_message_size` (default 256 KiB unreliable,
    /// 1 MiB reliable; else [`SendError::TooLarge`]). Each channel's `budget` (default
    /// 1 MiB unreliable, 4 MiB reliable) bounds the bytes queued plus, on reliable
    /// channels, sent but not yet acked (released in id order), each message costing its
    /// length plus 64 bytes of bookkeeping: a message that does not fit is refused with
    /// [`SendError::ChannelFull`] — backpressure, never a disconnect. At most
    /// `DaemonConfig::outbox_capacity` messages (1,024) wait for the daemon to take them
    /// ([`SendError::OutboxFull`]). The daemon sends them at the pacing rate
    /// ([`try_send`](Self::try_send) has the figures), many small messages to a datagram.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig, SendError, message::MessageConfig};
    /// # let mut config = DaemonConfig::default();
    /// # config.messages = Some(MessageConfig::default());
    /// # let daemon = Daemon::spawn(config).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// // `client` is a message-mode connection (DaemonConfig::messages is set).
    /// client.try_send_message(0, b"unreliable input").unwrap();
    /// let too_big = vec![0; (256 << 10) + 1];
    /// assert!(matches!(client.try_send_message(0, &too_big), Err(SendError::TooLarge { .. })));
    /// assert_eq!(client.try_send_message(9, b"x"), Err(SendError::UnknownChannel { channel: 9 }));
    /// assert_eq!(client.try_send(b"a packet"), Err(SendError::WrongMode));
    /// ```
    pub fn try_send_message(&self, channel: u8, data: &[u8]) -> Result<MessageId, SendError> {
        self.shared().send_message(channel, data, Wait::Never)
    }

    /// Like [`try_send_message`](Self::try_send_message), but waits while the channel's
    /// budget (or the outbox) is full: until acks free room, or the connection ends. A
    /// message costing more than the whole budget is refused at once
    /// ([`SendError::ChannelFull`]).
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig, message::MessageConfig};
    /// # let mut config = DaemonConfig::default();
    /// # config.messages = Some(MessageConfig::default());
    /// # let daemon = Daemon::spawn(config).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// # let server = listener.accept().unwrap();
    /// let level = vec![7u8; 1 << 20]; // 1 MiB, sent as fragments on channel 3
    /// client.send_message(3, &level).unwrap();
    /// assert_eq!(server.recv_message().unwrap().len(), 1 << 20);
    /// ```
    pub fn send_message(&self, channel: u8, data: &[u8]) -> Result<MessageId, SendError> {
        self.shared().send_message(channel, data, Wait::Until(None))
    }

    /// Like [`send_message`](Self::send_message), but gives up after `timeout` with
    /// [`SendError::ChannelFull`] (or `OutboxFull`).
    ///
    /// ```
    /// use gudp::{message::{ChannelConfig, MessageConfig}, Daemon, DaemonConfig, SendError};
    /// use std::time::Duration;
    /// let mut config = DaemonConfig::default();
    /// // One reliable channel with room for a single 100-byte message (100 + 64 bytes).
    /// let channel = ChannelConfig::reliable_ordered().with_max_message_size(100).with_budget(200);
    /// config.messages = Some(MessageConfig::new(vec![channel]));
    /// let daemon = Daemon::manual(config).unwrap(); // never polled: nothing is acked
    /// let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// let pending = daemon.connect_nonblocking(listener.local_addr()).unwrap();
    /// let conn = loop {
    ///     daemon.poll(Some(Duration::from_millis(1))).unwrap();
    ///     if let Some(conn) = pending.try_finish() {
    ///         break conn.unwrap();
    ///     }
    /// };
    /// conn.send_message_timeout(0, &[1; 100], Duration::from_millis(1)).unwrap();
    /// let full = conn.send_message_timeout(0, &[2; 100], Duration::from_millis(1));
    /// assert!(matches!(full, Err(SendError::ChannelFull { channel: 0, .. })));
    /// ```
    pub fn send_message_timeout(
        &self,
        channel: u8,
        data: &[u8],
        timeout: Duration,
    ) -> Result<MessageId, SendError> {
        let deadline = Instant::now().checked_add(timeout);
        self.shared()
            .send_message(channel, data, Wait::Until(deadline))
    }

    /// Takes a received message if one is ready; never blocks. Messages of all channels
    /// arrive in one queue, each carrying its channel, in the order the message layer
    /// delivers them (in send order within an ordered channel). On a packet-mode
    /// connection nothing ever arrives here (`Empty` until the close reason). At most
    /// `DaemonConfig::inbox_capacity` (4,096) wait here; beyond that they wait in the
    /// message layer (`MessageConfig::max_ready_bytes`), and beyond that the peer's
    /// payloads are refused and not acked, so its reliable messages are resent later.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig, TryRecvError, message::MessageConfig};
    /// # let mut config = DaemonConfig::default();
    /// # config.messages = Some(MessageConfig::default());
    /// # let daemon = Daemon::spawn(config).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// # let server = listener.accept().unwrap();
    /// assert_eq!(server.try_recv_message().unwrap_err(), TryRecvError::Empty);
    /// client.send_message(3, b"chat").unwrap();
    /// let message = loop {
    ///     if let Ok(message) = server.try_recv_message() {
    ///         break message; // a frame loop would do other work between tries
    ///     }
    ///     std::thread::yield_now();
    /// };
    /// assert_eq!(&message[..], b"chat");
    /// ```
    pub fn try_recv_message(&self) -> Result<ReceivedMessage, TryRecvError> {
        let shared = self.shared();
        let message = shared.messages.inbox.try_recv()?;
        shared.took_message();
        Ok(message)
    }

    /// Waits for a message, or returns the close reason once the connection is finished
    /// and every message that arrived before has been received. On a packet-mode
    /// connection no message ever arrives: it returns the close reason when the
    /// connection ends.
    ///
    /// ```
    /// # use gudp::{CloseReason, Daemon, DaemonConfig, message::MessageConfig};
    /// # let mut config = DaemonConfig::default();
    /// # config.messages = Some(MessageConfig::default());
    /// # let daemon = Daemon::spawn(config).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// # let server = listener.accept().unwrap();
    /// client.send_message(3, b"goodbye").unwrap();
    /// client.close(); // the close sends what was accepted first
    /// assert_eq!(&server.recv_message().unwrap()[..], b"goodbye");
    /// assert_eq!(server.recv_message().unwrap_err(), CloseReason::ClosedByPeer);
    /// ```
    pub fn recv_message(&self) -> Result<ReceivedMessage, CloseReason> {
        let shared = self.shared();
        let message = shared.messages.inbox.recv()?;
        shared.took_message();
        Ok(message)
    }

    /// Like [`recv_message`](Self::recv_message), but gives up after `timeout`.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig, RecvTimeoutError, message::MessageConfig};
    /// # use std::time::Duration;
    /// # let mut config = DaemonConfig::default();
    /// # config.messages = Some(MessageConfig::default());
    /// # let daemon = Daemon::spawn(config).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// # let server = listener.accept().unwrap();
    /// let nothing = server.recv_message_timeout(Duration::from_millis(1));
    /// assert_eq!(nothing.unwrap_err(), RecvTimeoutError::Timeout);
    /// client.send_message(3, b"hi").unwrap();
    /// let message = server.recv_message_timeout(Duration::from_secs(5)).unwrap();
    /// assert_eq!(&message[..], b"hi");
    /// ```
    pub fn recv_message_timeout(
        &self,
        timeout: Duration,
    ) -> Result<ReceivedMessage, RecvTimeoutError> {
        let shared = self.shared();
        let message = shared.messages.inbox.recv_timeout(timeout)?;
        shared.took_message();
        Ok(message)
    }

    /// Moves up to `max` ready messages into `out` without blocking (a frame loop's
    /// drain: a `Vec` kept across frames costs no allocation). Returns how many, or the
    /// close reason once finished and drained. On a packet-mode connection it moves
    /// nothing (`Ok(0)` until the close reason).
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig, message::MessageConfig};
    /// # let mut config = DaemonConfig::default();
    /// # config.messages = Some(MessageConfig::default());
    /// # let daemon = Daemon::spawn(config).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// # let server = listener.accept().unwrap();
    /// for i in 0..3u8 {
    ///     client.send_message(3, &[i]).unwrap();
    /// }
    /// let mut frame = Vec::with_capacity(64);
    /// while frame.len() < 3 {
    ///     server.drain_messages(&mut frame, 64).unwrap(); // 0 if nothing arrived yet
    /// }
    /// assert_eq!(frame.iter().map(|m| m[0]).collect::<Vec<_>>(), [0, 1, 2]);
    /// ```
    pub fn drain_messages(
        &self,
        out: &mut impl Extend<ReceivedMessage>,
        max: usize,
    ) -> Result<usize, CloseReason> {
        let shared = self.shared();
        let taken = shared.messages.inbox.drain_into(out, max)?;
        if taken > 0 {
            shared.took_message();
        }
        Ok(taken)
    }

    /// The next per-message notification: [`MessageEvent::Acked`] once the peer's message
    /// layer took the message (reliable and unreliable alike), [`MessageEvent::Lost`] for
    /// an unreliable message whose packet was lost (reliable ones are resent until acked).
    /// Each names the id the send returned. Messages still unacked when the connection
    /// ends get no event (the close reason says why); messages still queued for the
    /// daemon then are reported lost. Events wait in a ring of
    /// `DaemonConfig::delivery_capacity` (4,096): poll them at least that often, or the
    /// excess is dropped and counted ([`ConnectionStats::dropped_deliveries`](crate::ConnectionStats::dropped_deliveries)).
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig, message::{MessageConfig, MessageEvent}};
    /// # let mut config = DaemonConfig::default();
    /// # config.messages = Some(MessageConfig::default());
    /// # let daemon = Daemon::spawn(config).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// # let server = listener.accept().unwrap();
    /// let id = client.send_message(3, b"ping").unwrap();
    /// server.recv_message().unwrap();
    /// let event = loop {
    ///     if let Some(event) = client.poll_message_event() {
    ///         break event;
    ///     }
    ///     std::thread::yield_now();
    /// };
    /// assert_eq!(event, MessageEvent::Acked(id));
    /// ```
    pub fn poll_message_event(&self) -> Option<MessageEvent> {
        self.shared().messages.poll_event()
    }
}
