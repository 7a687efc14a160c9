//! The message layer's public values: ids, received messages, events, errors, counters.

use std::fmt;

use super::frame::FrameError;

/// Identifies one message sent on a connection: a per-connection counter that never wraps
/// (the wire carries a 16-bit per-channel id; this is what the application sees).
///
/// ```
/// use gudp::message::{MessageConfig, MessageConnection};
/// let mut conn = MessageConnection::new(MessageConfig::default()).unwrap();
/// let now = std::time::Instant::now();
/// let a = conn.send(0, b"a").unwrap();
/// let b = conn.send(3, b"b").unwrap();
/// assert_eq!((a.get(), b.get()), (0, 1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub(crate) u64);

impl MessageId {
    /// The counter value: 0 for the connection's first message.
    ///
    /// ```
    /// # use gudp::message::{MessageConfig, MessageConnection};
    /// # let mut conn = MessageConnection::new(MessageConfig::default()).unwrap();
    /// let id = conn.send(2, b"x").unwrap();
    /// assert_eq!(id.get(), 0);
    /// ```
    pub fn get(self) -> u64 {
        self.0
    }
}

/// A received message, borrowed from the connection until the next
/// [`poll_message`](super::MessageConnection::poll_message) (its buffer is then reused).
///
/// ```
/// use std::time::Instant;
/// use gudp::message::{MessageConfig, MessageConnection};
/// let now = Instant::now();
/// let mut a = MessageConnection::new(MessageConfig::default()).unwrap();
/// let mut b = MessageConnection::new(MessageConfig::default()).unwrap();
/// a.send(3, b"hello").unwrap();
/// let mut payload = [0u8; 1200];
/// let n = a.poll_payload(now, &mut payload).unwrap();
/// b.handle_payload(now, &payload[..n]).unwrap();
/// let m = b.poll_message().unwrap();
/// assert_eq!((m.channel, m.data), (3, &b"hello"[..]));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// The channel it was sent on.
    pub channel: u8,
    /// Its bytes.
    pub data: &'a [u8],
}

/// What became of a sent message, from [`poll_event`](super::MessageConnection::poll_event).
///
/// ```
/// use gudp::message::MessageEvent;
/// # use gudp::message::{MessageConfig, MessageConnection};
/// # let mut conn = MessageConnection::new(MessageConfig::default()).unwrap();
/// # let id = conn.send(0, b"x").unwrap();
/// let e = MessageEvent::Acked(id);
/// assert_eq!(e.id(), id);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageEvent {
    /// The peer's message layer has it (every fragment): reliable and unreliable messages.
    /// On a sequenced channel the peer may then have dropped it as superseded.
    Acked(MessageId),
    /// An unreliable message will not arrive (a packet carrying it, or one of its fragments,
    /// was lost). Reliable messages are never lost: they are resent.
    Lost(MessageId),
}

impl MessageEvent {
    /// The message concerned.
    ///
    /// ```
    /// # use gudp::message::{MessageConfig, MessageConnection, MessageEvent};
    /// # let mut conn = MessageConnection::new(MessageConfig::default()).unwrap();
    /// # let id = conn.send(0, b"x").unwrap();
    /// assert_eq!(MessageEvent::Lost(id).id(), id);
    /// ```
    pub fn id(self) -> MessageId {
        match self {
            Self::Acked(id) | Self::Lost(id) => id,
        }
    }
}

/// Why [`send`](super::MessageConnection::send) refused a message. Nothing was queued; the
/// connection is unaffected.
///
/// ```
/// use std::time::Instant;
/// use gudp::message::{ChannelConfig, MessageConfig, MessageConnection, MessageSendError};
/// let small = ChannelConfig::reliable_ordered().with_budget(1200).with_max_message_size(1000);
/// let mut conn = MessageConnection::new(MessageConfig::new(vec![small])).unwrap();
/// let now = Instant::now();
/// conn.send(0, &[0; 600]).unwrap();
/// let full = conn.send(0, &[0; 600]);
/// // Each message is charged its bytes plus 64 bytes of bookkeeping.
/// assert_eq!(full, Err(MessageSendError::ChannelFull { channel: 0, needed: 664, available: 536 }));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageSendError {
    /// The configuration has no such channel.
    UnknownChannel {
        /// The channel asked for.
        channel: u8,
    },
    /// The message exceeds the channel's `max_message_size`.
    TooLarge {
        /// The message's length.
        len: usize,
        /// The channel's limit.
        max: usize,
    },
    /// The channel's budget cannot take the message now: retry once earlier messages are
    /// acked (reliable) or sent (unreliable).
    ChannelFull {
        /// The channel.
        channel: u8,
        /// Bytes the message would be charged (its length plus 64 bytes of bookkeeping,
        /// plus its fragment bitmap when fragmented).
        needed: usize,
        /// Bytes left in the budget.
        available: usize,
    },
}

impl fmt::Display for MessageSendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownChannel { channel } => write!(f, "unknown channel {channel}"),
            Self::TooLarge { len, max } => write!(f, "message of {len} bytes exceeds {max}"),
            Self::ChannelFull {
                channel,
                needed,
                available,
            } => write!(
                f,
                "channel {channel} is full: {needed} bytes needed, {available} available"
            ),
        }
    }
}

impl std::error::Error for MessageSendError {}

/// Why [`handle_payload`](super::MessageConnection::handle_payload) took nothing from a
/// payload. Either way the caller must not pass the packet's receipt to
/// `Endpoint::deliver`, so the packet is not acked and the sender resends what mattered.
///
/// ```
/// use std::time::Instant;
/// use gudp::message::{FrameError, MessageConfig, MessageConnection, ReceiveError};
/// let mut conn = MessageConnection::new(MessageConfig::default()).unwrap();
/// let bad = conn.handle_payload(Instant::now(), &[0x3F, 0, 0, 0, 0]); // channel 63
/// assert_eq!(bad, Err(ReceiveError::Frame(FrameError::UnknownChannel(63))));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReceiveError {
    /// The payload is malformed (or breaks the configuration's limits).
    Frame(FrameError),
    /// Accepting it would exceed a memory budget (the application is not polling messages
    /// fast enough, or a reliable channel's receive budget is spent).
    Full,
}

impl fmt::Display for ReceiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Frame(e) => write!(f, "malformed payload: {e}"),
            Self::Full => write!(f, "receive budget exhausted"),
        }
    }
}

impl std::error::Error for ReceiveError {}

impl From<FrameError> for ReceiveError {
    fn from(e: FrameError) -> Self {
        Self::Frame(e)
    }
}

/// What the message layer did, cumulatively.
///
/// ```
/// use gudp::message::{MessageConfig, MessageConnection};
/// let mut conn = MessageConnection::new(MessageConfig::default()).unwrap();
/// conn.send(0, b"x").unwrap();
/// assert_eq!(conn.counters().messages_sent, 1);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageCounters {
    /// Messages accepted by `send`.
    pub messages_sent: u64,
    /// Sends refused with `ChannelFull`.
    pub sends_refused: u64,
    /// Payloads written by `poll_payload`.
    pub payloads_sent: u64,
    /// Frames (messages or fragments) written, first sends and resends.
    pub frames_sent: u64,
    /// Reliable frames written again (after a loss report or a timeout).
    pub resends: u64,
    /// Reliable frames whose resend timeout expired before any outcome.
    pub rto_expiries: u64,
    /// Messages reported `Acked`.
    pub messages_acked: u64,
    /// Unreliable messages reported `Lost`.
    pub messages_lost: u64,
    /// Message events dropped because `max_events` were waiting.
    pub events_dropped: u64,
    /// Payloads not sent because `max_tracked_packets` were awaiting an outcome.
    pub tracker_full: u64,
    /// Outcomes for packet ids not tracked (not carrying messages, or misreported).
    pub unknown_packets: u64,
    /// Payloads taken by `handle_payload`.
    pub payloads_received: u64,
    /// Payloads refused as malformed.
    pub payloads_malformed: u64,
    /// Payloads refused for lack of memory (not acked: the sender resends).
    pub payloads_refused: u64,
    /// Messages queued for `poll_message`.
    pub messages_received: u64,
    /// Reliable frames received again (already had them).
    pub duplicates: u64,
    /// Sequenced messages dropped because a newer one was already delivered.
    pub sequenced_dropped: u64,
    /// Partial unreliable messages evicted to make room.
    pub reassembly_evicted: u64,
    /// Partial unreliable messages dropped at their reassembly timeout.
    pub reassembly_timed_out: u64,
    /// Unreliable fragments dropped because their message exceeds the reassembly budget.
    pub reassembly_too_large: u64,
    /// Ack frames written (the receiver's report of what it holds, sent when frames arrive
    /// out of order).
    pub ack_frames_sent: u64,
    /// Ack frames taken from the peer.
    pub ack_frames_received: u64,
    /// Reliable messages whose last part was acked by an ack frame rather than a packet ack.
    pub acked_by_frame: u64,
}
