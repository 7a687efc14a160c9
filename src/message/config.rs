//! Message-layer configuration: channels, sizes, windows and memory budgets.
//!
//! Both ends of a connection must use the same channel list and sizes;
//! [`MessageConfig::fingerprint`] condenses everything that must match into 64 bits so a
//! handshake can compare them.
//!
//! ```
//! use gudp::message::{ChannelConfig, MessageConfig};
//! let config = MessageConfig::new(vec![
//!     ChannelConfig::unreliable_sequenced(), // 0: player input
//!     ChannelConfig::reliable_ordered(),     // 1: chat
//! ]);
//! assert!(config.validate().is_ok());
//! assert_ne!(config.fingerprint(), MessageConfig::default().fingerprint());
//! ```

use std::fmt;
use std::time::Duration;

use super::fragment::{message_cost, MESSAGE_OVERHEAD};
use super::frame::{next_message_len, FRAGMENT_HEADER_LEN, MAX_CHANNELS, MESSAGE_HEADER_LEN};
use crate::protocol::config::MAX_DURATION;

/// How a channel treats its messages.
///
/// ```
/// use gudp::message::ChannelKind;
/// assert!(ChannelKind::ReliableOrdered.is_reliable());
/// assert!(!ChannelKind::UnreliableSequenced.is_reliable());
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    /// Sent once; may be lost; delivered in arrival order (the packet layer already drops
    /// duplicate packets).
    Unreliable,
    /// Sent once; a message older than one already delivered on the channel is dropped
    /// ("latest wins").
    UnreliableSequenced,
    /// Resent until acked; delivered exactly once, in arrival order.
    ReliableUnordered,
    /// Resent until acked; delivered exactly once, in send order (head-of-line blocking only
    /// within the channel).
    ReliableOrdered,
}

impl ChannelKind {
    /// `true` for the two reliable kinds.
    ///
    /// ```
    /// use gudp::message::ChannelKind;
    /// assert!(ChannelKind::ReliableUnordered.is_reliable());
    /// ```
    pub fn is_reliable(self) -> bool {
        matches!(self, Self::ReliableUnordered | Self::ReliableOrdered)
    }

    fn code(self) -> u8 {
        match self {
            Self::Unreliable => 0,
            Self::UnreliableSequenced => 1,
            Self::ReliableUnordered => 2,
            Self::ReliableOrdered => 3,
        }
    }
}

/// One channel: its delivery guarantee, share of each datagram and memory budget.
///
/// ```
/// use gudp::message::ChannelConfig;
/// let input = ChannelConfig::unreliable_sequenced().with_weight(8);
/// assert_eq!(input.weight, 8);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelConfig {
    /// Delivery guarantee.
    pub kind: ChannelKind,
    /// Share of each datagram under deficit round-robin: a channel with weight 4 gets four
    /// times the bytes of a channel with weight 1 when both have messages due (1..=255).
    pub weight: u8,
    /// Largest message accepted by `send` and from the peer, in bytes.
    pub max_message_size: usize,
    /// Bytes the channel may hold at each end: at the sender, queued plus unacked messages
    /// (reliable messages are released in id order); at a reliable receiver, out-of-order
    /// and partially reassembled messages. A send that does not fit is refused
    /// ([`MessageSendError::ChannelFull`](super::MessageSendError::ChannelFull)).
    pub budget: usize,
}

impl ChannelConfig {
    fn with_kind(kind: ChannelKind) -> Self {
        Self {
            kind,
            weight: 1,
            max_message_size: if kind.is_reliable() {
                1 << 20
            } else {
                256 << 10
            },
            budget: if kind.is_reliable() { 4 << 20 } else { 1 << 20 },
        }
    }

    /// An [`Unreliable`](ChannelKind::Unreliable) channel: weight 1, messages up to 256 KiB,
    /// 1 MiB budget.
    ///
    /// ```
    /// use gudp::message::{ChannelConfig, ChannelKind};
    /// assert_eq!(ChannelConfig::unreliable().kind, ChannelKind::Unreliable);
    /// ```
    pub fn unreliable() -> Self {
        Self::with_kind(ChannelKind::Unreliable)
    }

    /// An [`UnreliableSequenced`](ChannelKind::UnreliableSequenced) channel, sized as
    /// [`unreliable`](Self::unreliable).
    ///
    /// ```
    /// use gudp::message::{ChannelConfig, ChannelKind};
    /// assert_eq!(ChannelConfig::unreliable_sequenced().kind, ChannelKind::UnreliableSequenced);
    /// ```
    pub fn unreliable_sequenced() -> Self {
        Self::with_kind(ChannelKind::UnreliableSequenced)
    }

    /// A [`ReliableUnordered`](ChannelKind::ReliableUnordered) channel: weight 1, messages
    /// up to 1 MiB, 4 MiB budget.
    ///
    /// ```
    /// use gudp::message::ChannelConfig;
    /// assert_eq!(ChannelConfig::reliable_unordered().max_message_size, 1 << 20);
    /// ```
    pub fn reliable_unordered() -> Self {
        Self::with_kind(ChannelKind::ReliableUnordered)
    }

    /// This channel with another weight.
    ///
    /// ```
    /// use gudp::message::ChannelConfig;
    /// assert_eq!(ChannelConfig::unreliable().with_weight(4).weight, 4);
    /// ```
    pub fn with_weight(mut self, weight: u8) -> Self {
        self.weight = weight;
        self
    }

    /// This channel with another largest message size.
    ///
    /// ```
    /// use gudp::message::ChannelConfig;
    /// let c = ChannelConfig::reliable_ordered().with_max_message_size(16 << 20);
    /// assert_eq!(c.max_message_size, 16 << 20);
    /// ```
    pub fn with_max_message_size(mut self, max_message_size: usize) -> Self {
        self.max_message_size = max_message_size;
        self
    }

    /// This channel with another memory budget.
    ///
    /// ```
    /// use gudp::message::ChannelConfig;
    /// assert_eq!(ChannelConfig::reliable_ordered().with_budget(1 << 10).budget, 1 << 10);
    /// ```
    pub fn with_budget(mut self, budget: usize) -> Self {
        self.budget = budget;
        self
    }

    /// A [`ReliableOrdered`](ChannelKind::ReliableOrdered) channel, sized as
    /// [`reliable_unordered`](Self::reliable_unordered).
    ///
    /// ```
    /// use gudp::message::ChannelConfig;
    /// assert_eq!(ChannelConfig::reliable_ordered().budget, 4 << 20);
    /// ```
    pub fn reliable_ordered() -> Self {
        Self::with_kind(ChannelKind::ReliableOrdered)
    }
}

/// The message layer's configuration for one connection.
///
/// ```
/// use gudp::message::MessageConfig;
/// let c = MessageConfig::default();
/// assert_eq!((c.max_payload, c.channels.len()), (1200, 4));
/// assert_eq!(c.fragment_size(), 1200 - 9);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub struct MessageConfig {
    /// The channels, by id (index). At most 64.
    pub channels: Vec<ChannelConfig>,
    /// Bytes of one packet payload (the packet layer's `Config::max_payload`).
    pub max_payload: usize,
    /// Reliable message ids in flight per channel: the sender never sends an id this far
    /// ahead of its oldest unacked one (a power of two, 1..=32768). It caps a channel at
    /// this many messages per round trip while the oldest is unacked (8192 by default:
    /// about 80,000 messages/s at 100 ms). The receiver holds a slot of about 32 bytes per
    /// id from its oldest missing one to the newest received, at most this many.
    pub reliable_window: u16,
    /// Fragments of a channel's large reliable messages sent but not yet acked, at most.
    pub fragment_window: usize,
    /// Bytes of partial unreliable messages held per connection; the oldest is evicted to
    /// make room.
    pub unreliable_reassembly_budget: usize,
    /// Partial unreliable messages held per connection, at most.
    pub max_unreliable_partials: usize,
    /// A partial unreliable message is dropped this long after its first fragment arrived.
    pub unreliable_reassembly_timeout: Duration,
    /// Bytes of received messages waiting for [`poll_message`](super::MessageConnection::poll_message);
    /// while above it, payloads are refused (not acked), so the sender backs off.
    pub max_ready_bytes: usize,
    /// Sent packets remembered (packet id → what it carried); when full, nothing more is
    /// sent until the packet layer reports an outcome.
    pub max_tracked_packets: usize,
    /// Message events held for [`poll_event`](super::MessageConnection::poll_event); the
    /// oldest is dropped (and counted) beyond it.
    pub max_events: usize,
    /// Freed small-message buffers kept for reuse (each at most `max_payload` rounded up to
    /// a power of two).
    pub max_pooled_buffers: usize,
    /// RTT assumed before the first sample.
    pub initial_rtt: Duration,
    /// Lower bound of the resend timeout.
    pub min_rto: Duration,
    /// Upper bound of the resend timeout (also after backoff).
    pub max_rto: Duration,
}

impl Default for MessageConfig {
    /// Four channels: 0 unreliable, 1 unreliable sequenced, 2 reliable unordered,
    /// 3 reliable ordered.
    fn default() -> Self {
        Self::new(vec![
            ChannelConfig::unreliable(),
            ChannelConfig::unreliable_sequenced(),
            ChannelConfig::reliable_unordered(),
            ChannelConfig::reliable_ordered(),
        ])
    }
}

/// Why a [`MessageConfig`] is unusable.
///
/// ```
/// use gudp::message::{ConfigError, MessageConfig};
/// let mut c = MessageConfig::default();
/// c.max_payload = 8;
/// assert_eq!(c.validate(), Err(ConfigError::MaxPayload));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// No channels, or more than 64.
    ChannelCount,
    /// `max_payload` is below 64 bytes or above 65535.
    MaxPayload,
    /// A channel's weight is 0, or its message size or budget is 0, or its largest message
    /// needs more than 65535 fragments or (with 64 bytes of bookkeeping) exceeds its budget
    /// (or, unreliable, the reassembly budget).
    Channel(u8),
    /// `reliable_window`, `fragment_window`, `max_tracked_packets`, `max_events` or
    /// `max_unreliable_partials` is 0, or the window is not a power of two up to 32768.
    Window,
    /// `min_rto` is zero or above `max_rto`, or a duration exceeds a day (so no deadline
    /// can overflow `Instant`).
    Rto,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ChannelCount => write!(f, "1 to 64 channels required"),
            Self::MaxPayload => write!(f, "max_payload must be 64..=65535"),
            Self::Channel(c) => write!(f, "channel {c} is misconfigured"),
            Self::Window => write!(f, "a window or queue bound is out of range"),
            Self::Rto => write!(
                f,
                "min_rto must be positive and at most max_rto, durations at most a day"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

impl MessageConfig {
    /// These channels with every other setting at its default: payloads of 1200 bytes,
    /// 8192 reliable ids and 256 fragments in flight, 1 MiB for partial unreliable messages
    /// (at most 16, dropped after 2 s), 4 MiB of ready messages, 4096 tracked packets and
    /// events, 256 pooled buffers, RTO between 20 ms and 10 s from an initial RTT of 250 ms.
    ///
    /// ```
    /// use gudp::message::{ChannelConfig, MessageConfig};
    /// let c = MessageConfig::new(vec![ChannelConfig::reliable_ordered()]);
    /// assert_eq!(c.reliable_window, 8192);
    /// ```
    pub fn new(channels: Vec<ChannelConfig>) -> Self {
        Self {
            channels,
            max_payload: 1200,
            reliable_window: 8192,
            fragment_window: 256,
            unreliable_reassembly_budget: 1 << 20,
            max_unreliable_partials: 16,
            unreliable_reassembly_timeout: Duration::from_secs(2),
            max_ready_bytes: 4 << 20,
            max_tracked_packets: 4096,
            max_events: 4096,
            max_pooled_buffers: 256,
            initial_rtt: Duration::from_millis(250),
            min_rto: Duration::from_millis(20),
            max_rto: Duration::from_secs(10),
        }
    }

    /// Bytes of message data in every fragment but the last: `max_payload` minus the
    /// 9-byte fragment header.
    ///
    /// ```
    /// use gudp::message::MessageConfig;
    /// let mut c = MessageConfig::default();
    /// c.max_payload = 500;
    /// assert_eq!(c.fragment_size(), 491);
    /// ```
    pub fn fragment_size(&self) -> usize {
        self.max_payload.saturating_sub(FRAGMENT_HEADER_LEN)
    }

    /// Largest message sent in a single (unfragmented) frame.
    ///
    /// ```
    /// use gudp::message::MessageConfig;
    /// assert_eq!(MessageConfig::default().max_unfragmented(), 1195);
    /// ```
    pub fn max_unfragmented(&self) -> usize {
        self.max_payload.saturating_sub(MESSAGE_HEADER_LEN)
    }

    /// Bytes a message of `len` bytes holds against its channel's budget at the sender
    /// (what [`MessageConnection::channel_held`](super::MessageConnection::channel_held)
    /// grows by): the daemon's senders reserve exactly this, so the layer never refuses.
    pub(crate) fn message_cost(&self, len: usize) -> usize {
        super::fragment::message_cost(len, self.max_unfragmented(), self.fragment_size())
    }

    /// Checks every bound; [`MessageConnection::new`](super::MessageConnection::new) calls it.
    ///
    /// ```
    /// use gudp::message::{ChannelConfig, ConfigError, MessageConfig};
    /// let c = MessageConfig::new(vec![ChannelConfig::unreliable().with_weight(0)]);
    /// assert_eq!(c.validate(), Err(ConfigError::Channel(0)));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.channels.is_empty() || self.channels.len() > MAX_CHANNELS {
            return Err(ConfigError::ChannelCount);
        }
        if !(64..=65_535).contains(&self.max_payload) {
            return Err(ConfigError::MaxPayload);
        }
        let (whole, fs) = (self.max_unfragmented(), self.fragment_size());
        for (i, c) in self.channels.iter().enumerate() {
            let fragments = c.max_message_size.div_ceil(fs);
            let bad = c.weight == 0
                || c.max_message_size == 0
                || c.max_message_size > u32::MAX as usize
                || fragments > 65_535
                || message_cost(c.max_message_size, whole, fs) > c.budget
                || (!c.kind.is_reliable()
                    && c.max_message_size > whole
                    && message_cost(c.max_message_size, 0, fs) > self.unreliable_reassembly_budget);
            if bad {
                return Err(ConfigError::Channel(i as u8));
            }
        }
        if self.reliable_window == 0
            || self.reliable_window > 32_768
            || !self.reliable_window.is_power_of_two()
            || self.fragment_window == 0
            || self.max_tracked_packets == 0
            || self.max_events == 0
            || self.max_unreliable_partials == 0
        {
            return Err(ConfigError::Window);
        }
        if self.min_rto.is_zero()
            || self.min_rto > self.max_rto
            || self.max_rto > MAX_DURATION
            || self.initial_rtt > MAX_DURATION
            || self.unreliable_reassembly_timeout > MAX_DURATION
        {
            return Err(ConfigError::Rto);
        }
        Ok(())
    }

    /// A 64-bit FNV-1a hash of everything both ends must agree on: `max_payload`,
    /// `reliable_window` and each channel's kind and largest message, in channel order
    /// (weights and budgets are local and excluded). `docs/message-layer.md` gives the
    /// exact input bytes.
    ///
    /// ```
    /// use gudp::message::{ChannelConfig, MessageConfig};
    /// let a = MessageConfig::default();
    /// let mut b = MessageConfig::default();
    /// b.channels[0].weight = 9; // local: same fingerprint
    /// assert_eq!(a.fingerprint(), b.fingerprint());
    /// b.channels.swap(0, 3); // different channel ids: different fingerprint
    /// assert_ne!(a.fingerprint(), b.fingerprint());
    /// ```
    pub fn fingerprint(&self) -> u64 {
        let mut h = Fnv1a::new();
        h.write(b"GUDPMSG1");
        h.write(&(self.max_payload as u32).to_be_bytes());
        h.write(&self.reliable_window.to_be_bytes());
        h.write(&[self.channels.len() as u8]);
        for c in &self.channels {
            h.write(&[c.kind.code()]);
            h.write(&(c.max_message_size as u32).to_be_bytes());
        }
        h.0
    }

    /// The most bytes of received messages one connection can hold, as
    /// [`receive_memory`](super::MessageConnection::receive_memory) counts them (message
    /// bytes plus 64 bytes of bookkeeping each): every reliable channel's budget, the
    /// unreliable reassembly budget, and the ready queue, which may overshoot
    /// `max_ready_bytes` by one payload of messages plus what a completed in-order run
    /// releases (bounded by the channel budgets again).
    ///
    /// ```
    /// use gudp::message::MessageConfig;
    /// let c = MessageConfig::default();
    /// let payload_of_messages = 1200 + 1200 / 2 * 64; // empty messages take 2 bytes each
    /// let bound = 2 * (2 * (4 << 20)) + (1 << 20) + (4 << 20) + payload_of_messages;
    /// assert_eq!(c.max_receive_memory(), bound);
    /// ```
    pub fn max_receive_memory(&self) -> usize {
        let reliable: usize = self
            .channels
            .iter()
            .filter(|c| c.kind.is_reliable())
            .map(|c| c.budget)
            .sum();
        let payload_of_messages =
            self.max_payload + self.max_payload / next_message_len(0) * MESSAGE_OVERHEAD;
        2 * reliable
            + self.unreliable_reassembly_budget
            + self.max_ready_bytes
            + payload_of_messages
    }
}

/// FNV-1a, 64-bit: tiny, stable across versions and platforms (unlike `std`'s hasher).
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_test_vector() {
        // The reference vector for FNV-1a 64 of "a".
        let mut h = Fnv1a::new();
        h.write(b"a");
        assert_eq!(h.0, 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn default_fingerprint_matches_spec() {
        // docs/message-layer.md, "Channel fingerprint".
        assert_eq!(MessageConfig::default().fingerprint(), FINGERPRINT_DEFAULT);
    }

    const FINGERPRINT_DEFAULT: u64 = 0x1972_93a4_5292_56ff;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(MessageConfig::default().validate(), Ok(()));
    }
}
