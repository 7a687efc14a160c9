//! The sans-IO message layer: channels of messages over the packet layer's payloads.
//!
//! A [`MessageConnection`] is one connection's message state. It never reads a clock or
//! touches a socket: every call that needs the time takes `now`. The caller glues it to the
//! packet layer ([`crate::protocol::Endpoint`]):
//!
//! * after [`send`](MessageConnection::send)ing messages, call
//!   [`poll_payload`](MessageConnection::poll_payload) until it returns `None` (while the
//!   endpoint's `can_send` allows), pass each payload to `Endpoint::send` and report the id
//!   it assigned with [`on_packet_sent`](MessageConnection::on_packet_sent) (or
//!   [`on_packet_unsent`](MessageConnection::on_packet_unsent) if it refused);
//! * forward the endpoint's `Event::Acked` / `Event::Lost` to
//!   [`on_packet_acked`](MessageConnection::on_packet_acked) /
//!   [`on_packet_lost`](MessageConnection::on_packet_lost);
//! * pass each received payload to [`handle_payload`](MessageConnection::handle_payload) and
//!   call `Endpoint::deliver(receipt)` only if it returns `Ok` (acked then means the message
//!   layer took it); read messages with [`poll_message`](MessageConnection::poll_message)
//!   and outcomes with [`poll_event`](MessageConnection::poll_event);
//! * call [`handle_timeout`](MessageConnection::handle_timeout) at
//!   [`next_deadline`](MessageConnection::next_deadline), then poll payloads again.
//!
//! `docs/message-layer.md` specifies the framing, channels, resend rules and limits.
//!
//! Why the API has this shape: the payload is written first and its packet id reported
//! after `Endpoint::send`, because the endpoint assigns ids and consumes none on an error;
//! `send` takes no time because queuing does not depend on it; received messages are
//! borrowed until the next `poll_message` so that small ones cost no allocation (the buffer
//! goes back to a pool); every buffer is bounded by [`MessageConfig`], and running out of room
//! is an error value ([`MessageSendError::ChannelFull`], [`ReceiveError::Full`]), never a
//! disconnect.
//!
//! ```
//! use std::time::Instant;
//! use gudp::message::{MessageConfig, MessageConnection, MessageEvent};
//! use gudp::protocol::PacketNumber;
//!
//! let now = Instant::now();
//! let mut a = MessageConnection::new(MessageConfig::default()).unwrap();
//! let mut b = MessageConnection::new(MessageConfig::default()).unwrap();
//! let id = a.send(3, b"reliable, ordered").unwrap();
//! let u = a.send(0, b"unreliable").unwrap();
//! let mut payload = [0u8; 1200];
//! let n = a.poll_payload(now, &mut payload).unwrap(); // both messages in one payload
//! a.on_packet_sent(now, PacketNumber(0)); // the id Endpoint::send assigned
//! assert!(a.poll_payload(now, &mut payload[n..]).is_none()); // nothing else due
//! b.handle_payload(now, &payload[..n]).unwrap();
//! assert_eq!(b.poll_message().unwrap().data, b"unreliable");
//! assert_eq!(b.poll_message().unwrap().data, b"reliable, ordered");
//! a.on_packet_acked(now, PacketNumber(0)); // the endpoint reported Event::Acked
//! assert_eq!(a.poll_event(), Some(MessageEvent::Acked(u))); // in payload order
//! assert_eq!(a.poll_event(), Some(MessageEvent::Acked(id)));
//! ```

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

mod buffers;
pub mod config;
mod fragment;
pub mod frame;
mod inbound;
mod outcome;
mod recv;
mod rto;
mod send;
mod tracker;
mod types;

#[cfg(test)]
mod tests;

pub use config::{ChannelConfig, ChannelKind, ConfigError, MessageConfig};
pub use frame::FrameError;
pub use rto::Rto;
pub use types::{
    Message, MessageCounters, MessageEvent, MessageId, MessageSendError, ReceiveError,
};

use buffers::BufferPool;
use fragment::UnreliablePartials;
use frame::MESSAGE_HEADER_LEN;
use recv::ReliableRecv;
use send::{Geometry, Refusal, SendChannel, SentItem};
use tracker::Tracker;

use crate::protocol::PacketNumber;

/// Deficit round-robin quantum per unit of channel weight, in bytes: small against a
/// payload, so that a payload takes several rounds and its bytes split by weight.
const QUANTUM: usize = 64;

/// How long a receiver that saw reliable frames arrive out of order waits before it sends
/// an ack frame (gathering what else arrives): short against the sender's resend timeout
/// (at least srtt + 11 ms), long enough that a reordered burst costs a few ack frames.
const ACK_FRAME_DELAY: Duration = Duration::from_millis(10);

/// A resend timer: the deadline and the transmission it watches.
type Timer = (Instant, SentItem);

#[derive(Debug)]
enum RecvChannel {
    Unreliable {
        sequenced: bool,
        latest: Option<u16>,
    },
    Reliable(ReliableRecv),
}

/// Outcome so far of an unreliable message sent as fragments.
#[derive(Debug)]
struct FragmentedOutcome {
    msg: MessageId,
    remaining: u16,
    lost: bool,
}

/// One connection's message-layer state (see the [module docs](self)).
///
/// ```
/// use gudp::message::{MessageConfig, MessageConnection};
/// let conn = MessageConnection::new(MessageConfig::default()).unwrap();
/// assert_eq!(conn.next_deadline(), None); // idle
/// ```
#[derive(Debug)]
pub struct MessageConnection {
    config: MessageConfig,
    geometry: Geometry,
    send: Vec<SendChannel>,
    recv: Vec<RecvChannel>,
    partials: UnreliablePartials,
    pool: BufferPool,
    ready: VecDeque<(u8, Vec<u8>)>,
    ready_bytes: usize,
    current: Option<(u8, Vec<u8>)>,
    tracker: Tracker,
    /// Items of the payload last written, until `on_packet_sent` names its packet.
    pending: Vec<SentItem>,
    /// The payload last written carries ack frames.
    pending_acks: bool,
    scratch: Vec<SentItem>,
    timers: BinaryHeap<Reverse<Timer>>,
    /// Heap length above which stale timers are pruned.
    prune_at: usize,
    fragmented: VecDeque<FragmentedOutcome>,
    events: VecDeque<MessageEvent>,
    rto: Rto,
    /// When a packet carrying messages was last acked: while acks keep coming, a lost resend
    /// is loss, not a dead path, and its timeout is not backed off (as QUIC resets its
    /// backoff on any ack).
    last_ack: Option<Instant>,
    next_id: u64,
    next_tx: u32,
    rr: usize,
    counters: MessageCounters,
}

impl MessageConnection {
    /// A connection with nothing sent or received.
    ///
    /// ```
    /// use gudp::message::{ConfigError, MessageConfig, MessageConnection};
    /// let mut bad = MessageConfig::default();
    /// bad.channels.clear();
    /// assert_eq!(MessageConnection::new(bad).unwrap_err(), ConfigError::ChannelCount);
    /// ```
    pub fn new(config: MessageConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let geometry = Geometry {
            max_unfragmented: config.max_unfragmented(),
            fragment_size: config.fragment_size(),
            window: config.reliable_window,
            fragment_window: config.fragment_window,
        };
        let send = config
            .channels
            .iter()
            .enumerate()
            .map(|(i, c)| SendChannel::new(i as u8, c))
            .collect();
        let recv = config
            .channels
            .iter()
            .map(|c| match c.kind {
                ChannelKind::Unreliable | ChannelKind::UnreliableSequenced => {
                    RecvChannel::Unreliable {
                        sequenced: c.kind == ChannelKind::UnreliableSequenced,
                        latest: None,
                    }
                }
                kind => RecvChannel::Reliable(ReliableRecv::new(
                    kind == ChannelKind::ReliableOrdered,
                    config.reliable_window,
                    c.budget,
                )),
            })
            .collect();
        Ok(Self {
            partials: UnreliablePartials::new(
                config.unreliable_reassembly_budget,
                config.max_unreliable_partials,
                config.unreliable_reassembly_timeout,
            ),
            pool: BufferPool::new(config.max_pooled_buffers, config.max_payload),
            ready: VecDeque::new(),
            ready_bytes: 0,
            current: None,
            tracker: Tracker::new(config.max_tracked_packets),
            pending: Vec::new(),
            pending_acks: false,
            scratch: Vec::new(),
            timers: BinaryHeap::new(),
            prune_at: 4 * config.max_tracked_packets,
            fragmented: VecDeque::new(),
            events: VecDeque::new(),
            rto: Rto::new(config.initial_rtt, config.min_rto, config.max_rto),
            last_ack: None,
            next_id: 0,
            next_tx: 0,
            rr: 0,
            counters: MessageCounters::default(),
            geometry,
            send,
            recv,
            config,
        })
    }

    /// The configuration.
    ///
    /// ```
    /// # use gudp::message::{MessageConfig, MessageConnection};
    /// let conn = MessageConnection::new(MessageConfig::default()).unwrap();
    /// assert_eq!(conn.config().max_payload, 1200);
    /// ```
    pub fn config(&self) -> &MessageConfig {
        &self.config
    }

    /// What the message layer did so far.
    ///
    /// ```
    /// # use gudp::message::{MessageConfig, MessageConnection};
    /// let conn = MessageConnection::new(MessageConfig::default()).unwrap();
    /// assert_eq!(conn.counters().resends, 0);
    /// ```
    pub fn counters(&self) -> &MessageCounters {
        &self.counters
    }

    /// Queues a message on `channel` and returns its id. It goes out with the next
    /// [`poll_payload`](Self::poll_payload)s, sharing payloads with whatever else is due.
    /// No time is needed: nothing about queuing depends on it.
    ///
    /// ```
    /// use gudp::message::{MessageConfig, MessageConnection, MessageSendError};
    /// let mut conn = MessageConnection::new(MessageConfig::default()).unwrap();
    /// assert!(conn.send(3, &vec![0; 1 << 20]).is_ok()); // 1 MiB: sent as fragments
    /// assert_eq!(conn.send(9, b"x"), Err(MessageSendError::UnknownChannel { channel: 9 }));
    /// ```
    pub fn send(&mut self, channel: u8, data: &[u8]) -> Result<MessageId, MessageSendError> {
        let id = MessageId(self.next_id);
        self.send_as(id, channel, data)?;
        self.next_id += 1;
        Ok(id)
    }

    /// Like [`send`](Self::send), under an id the caller chose: the daemon's users learn a
    /// message's id before the daemon queues it here. Ids only need to be unique per
    /// connection (they are compared for equality, never ordered).
    pub(crate) fn send_as(
        &mut self,
        id: MessageId,
        channel: u8,
        data: &[u8],
    ) -> Result<(), MessageSendError> {
        let ch = self
            .send
            .get_mut(usize::from(channel))
            .ok_or(MessageSendError::UnknownChannel { channel })?;
        match ch.push(id, data, &self.geometry, &mut self.pool) {
            Ok(()) => {
                self.counters.messages_sent += 1;
                Ok(())
            }
            Err(Refusal::TooLarge { len, max }) => Err(MessageSendError::TooLarge { len, max }),
            Err(Refusal::Full { needed, available }) => {
                self.counters.sends_refused += 1;
                Err(MessageSendError::ChannelFull {
                    channel,
                    needed,
                    available,
                })
            }
        }
    }

    /// Bytes `channel` holds against its budget (queued plus unacked messages).
    ///
    /// ```
    /// # use gudp::message::{MessageConfig, MessageConnection};
    /// let mut conn = MessageConnection::new(MessageConfig::default()).unwrap();
    /// conn.send(2, &[0; 100]).unwrap();
    /// assert_eq!(conn.channel_held(2), 100 + 64); // bytes and bookkeeping
    /// ```
    pub fn channel_held(&self, channel: u8) -> usize {
        self.send.get(usize::from(channel)).map_or(0, |c| c.held())
    }

    /// Would [`poll_payload`](Self::poll_payload) write something? (It may still find
    /// nothing when the only entries are stale.)
    ///
    /// ```
    /// # use gudp::message::{MessageConfig, MessageConnection};
    /// let mut conn = MessageConnection::new(MessageConfig::default()).unwrap();
    /// assert!(!conn.wants_to_send());
    /// conn.send(0, b"x").unwrap();
    /// assert!(conn.wants_to_send());
    /// ```
    pub fn wants_to_send(&self) -> bool {
        !self.tracker.is_full()
            && (self.send.iter().any(|c| c.has_due(&self.geometry))
                || self.recv.iter().any(|r| match r {
                    RecvChannel::Reliable(r) => r.ack.ready,
                    RecvChannel::Unreliable { .. } => false,
                }))
    }

    /// Writes the next packet payload into `out` (at most `max_payload` bytes) and returns
    /// its length, or `None` when nothing is due. Frames from every channel with something
    /// due share the payload under deficit round-robin by channel weight; resends come
    /// before new messages within a channel. Report the packet with
    /// [`on_packet_sent`](Self::on_packet_sent) before the next call (a payload not reported
    /// by then is treated as [unsent](Self::on_packet_unsent)).
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use gudp::message::{MessageConfig, MessageConnection};
    /// let mut conn = MessageConnection::new(MessageConfig::default()).unwrap();
    /// for _ in 0..300 {
    ///     conn.send(0, &[7; 10]).unwrap();
    /// }
    /// let mut out = [0u8; 1200];
    /// // 99 messages: the first with a 5-byte header, each next one with 2 (its id follows).
    /// assert_eq!(conn.poll_payload(Instant::now(), &mut out), Some(15 + 98 * 12));
    /// ```
    pub fn poll_payload(&mut self, now: Instant, out: &mut [u8]) -> Option<usize> {
        if !self.pending.is_empty() || self.pending_acks {
            self.on_packet_unsent();
        }
        if self.tracker.is_full() {
            self.counters.tracker_full += 1;
            return None;
        }
        let limit = self.config.max_payload.min(out.len());
        for ch in &mut self.send {
            ch.begin_payload();
        }
        let mut used = self.write_acks(now, &mut out[..limit]);
        let n = self.send.len();
        // The whole message written last (channel, id): the next one may follow it compactly.
        let mut previous = None;
        'fill: loop {
            let (mut progressed, mut fits) = (false, false);
            for k in 0..n {
                if limit - used < MESSAGE_HEADER_LEN {
                    // Full: later channels get no credit for a turn they did not have.
                    break 'fill;
                }
                let c = (self.rr + k) % n;
                let channel = c as u8;
                let peeked = self.send[c].peek(&self.geometry);
                let Some(first) = peeked.map(|f| f.after(channel, previous)) else {
                    self.send[c].deficit = 0;
                    continue;
                };
                let ch = &mut self.send[c];
                // Credit accrues even when the head does not fit the space left, so that a
                // full-size fragment can go first in a later payload; capped so that it
                // does not turn into a burst.
                let quantum = usize::from(ch.weight) * QUANTUM;
                ch.deficit = (ch.deficit + quantum).min(self.config.max_payload + quantum);
                if first.len > limit - used {
                    continue;
                }
                fits = true;
                let mut next = Some(first);
                while let Some(f) = next.filter(|f| f.len <= limit - used && f.len <= ch.deficit) {
                    ch.deficit -= f.len;
                    let tx = self.next_tx;
                    self.next_tx = tx.wrapping_add(1);
                    let w = ch.write(
                        f,
                        &mut out[used..],
                        (now, tx),
                        &self.geometry,
                        &mut self.pool,
                    );
                    used += f.len;
                    previous = f.whole_id().map(|id| (channel, id));
                    progressed = true;
                    self.counters.frames_sent += 1;
                    if w.resend {
                        self.counters.resends += 1;
                    }
                    if let Some(expiries) = w.expiries {
                        let timeout = self.rto.timeout();
                        let acks_flowing = self
                            .last_ack
                            .is_some_and(|at| now.saturating_duration_since(at) < timeout);
                        let expiries = if acks_flowing { 0 } else { expiries };
                        let at = now + self.rto.backed_off(expiries);
                        self.timers.push(Reverse((at, w.item)));
                    }
                    if let Some(count) = w.first_of {
                        self.fragmented.push_back(FragmentedOutcome {
                            msg: w.item.msg,
                            remaining: count,
                            lost: false,
                        });
                    }
                    self.pending.push(w.item);
                    next = ch.peek(&self.geometry).map(|f| f.after(channel, previous));
                }
                if next.is_none() {
                    ch.deficit = 0;
                }
            }
            if !progressed && !fits {
                break;
            }
        }
        self.rr = (self.rr + 1) % n;
        self.prune_timers();
        if used == 0 {
            return None;
        }
        self.counters.payloads_sent += 1;
        Some(used)
    }

    /// Writes the ack frames due at `now` at the start of `out` and returns their length.
    /// A scheduled ack rides early on a payload that goes out anyway (then in at most a
    /// quarter of it, lowest ids first, so data keeps most of the room).
    fn write_acks(&mut self, now: Instant, out: &mut [u8]) -> usize {
        let data_due = self.send.iter().any(|c| c.has_due(&self.geometry));
        let room = if data_due { out.len() / 4 } else { out.len() };
        let mut used = 0;
        for (c, r) in self.recv.iter_mut().enumerate() {
            let RecvChannel::Reliable(r) = r else {
                continue;
            };
            if !(r.ack.ready || r.ack.at.is_some_and(|at| at <= now || data_due)) {
                continue;
            }
            let Some(n) = r.write_ack(frame::ack_type_byte(c as u8), &mut out[used..room]) else {
                break;
            };
            used += n;
            r.ack = recv::AckDue::default();
            self.pending_acks = true;
            self.counters.ack_frames_sent += 1;
        }
        used
    }

    /// Stale timer entries (parts acked or resent since) are dropped when they fire; if too
    /// many pile up (many losses within one timeout), drop them early to bound the heap.
    fn prune_timers(&mut self) {
        if self.timers.len() <= self.prune_at {
            return;
        }
        let send = &mut self.send;
        self.timers
            .retain(|Reverse((_, item))| send[usize::from(item.channel)].is_current(item));
        // Amortised: the next prune waits until the heap has doubled again.
        self.prune_at = (4 * self.config.max_tracked_packets).max(2 * self.timers.len());
    }

    /// The payload last written by [`poll_payload`](Self::poll_payload) went out as packet
    /// `packet_id` (the id `Endpoint::send` returned). Ids must increase; a repeated or
    /// lower id is treated as [`on_packet_unsent`](Self::on_packet_unsent).
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use gudp::message::{MessageConfig, MessageConnection};
    /// # use gudp::protocol::PacketNumber;
    /// let now = Instant::now();
    /// let mut conn = MessageConnection::new(MessageConfig::default()).unwrap();
    /// conn.send(2, b"x").unwrap();
    /// let mut out = [0u8; 1200];
    /// conn.poll_payload(now, &mut out).unwrap();
    /// conn.on_packet_sent(now, PacketNumber(7));
    /// assert!(conn.next_deadline().is_some()); // its resend timer
    /// ```
    pub fn on_packet_sent(&mut self, now: Instant, packet_id: PacketNumber) {
        if self.pending.is_empty() && !self.pending_acks {
            return;
        }
        let acks = std::mem::take(&mut self.pending_acks);
        if !self.tracker.push(packet_id, now, &mut self.pending, acks) {
            self.pending_acks = acks;
            self.counters.unknown_packets += 1;
            self.on_packet_unsent();
        }
    }

    /// Replaces the RTT estimate behind the resend timeout, e.g. with the packet layer's
    /// `ConnectionStats::rtt` and `rtt_variation` (optional: acks already give samples).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use gudp::message::{MessageConfig, MessageConnection};
    /// let mut conn = MessageConnection::new(MessageConfig::default()).unwrap();
    /// conn.set_rtt(Duration::from_millis(2000), Duration::from_millis(100));
    /// assert_eq!(conn.rto().timeout(), Duration::from_millis(2410));
    /// ```
    pub fn set_rtt(&mut self, srtt: Duration, rttvar: Duration) {
        self.rto.set(srtt, rttvar);
    }

    /// The resend-timeout estimator.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use gudp::message::{MessageConfig, MessageConnection};
    /// let conn = MessageConnection::new(MessageConfig::default()).unwrap();
    /// assert_eq!(conn.rto().timeout(), Duration::from_millis(760)); // 250 + 4 × 125 + 10
    /// ```
    pub fn rto(&self) -> &Rto {
        &self.rto
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due: the earliest resend
    /// timeout or unreliable reassembly deadline (possibly of an entry since resolved: the
    /// call then does nothing).
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use gudp::message::{MessageConfig, MessageConnection};
    /// # use gudp::protocol::PacketNumber;
    /// let now = Instant::now();
    /// let mut conn = MessageConnection::new(MessageConfig::default()).unwrap();
    /// conn.send(2, b"x").unwrap();
    /// let mut out = [0u8; 1200];
    /// conn.poll_payload(now, &mut out).unwrap();
    /// conn.on_packet_sent(now, PacketNumber(0));
    /// assert_eq!(conn.next_deadline(), Some(now + conn.rto().timeout()));
    /// ```
    pub fn next_deadline(&self) -> Option<Instant> {
        let timer = self.timers.peek().map(|Reverse(t)| t.0);
        let acks = self.recv.iter().filter_map(|r| match r {
            RecvChannel::Reliable(r) => r.ack.at,
            RecvChannel::Unreliable { .. } => None,
        });
        [timer, self.partials.deadline()]
            .into_iter()
            .flatten()
            .chain(acks)
            .min()
    }

    /// Fires what is due at `now`: reliable parts whose resend timeout expired with no
    /// outcome are queued again (the tail-loss case: the packet layer reports a loss only
    /// once later packets are acked or its own timeout passes); partial unreliable messages
    /// past their deadline are dropped.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use gudp::message::{MessageConfig, MessageConnection};
    /// # use gudp::protocol::PacketNumber;
    /// let now = Instant::now();
    /// let mut conn = MessageConnection::new(MessageConfig::default()).unwrap();
    /// conn.send(2, b"x").unwrap();
    /// let mut out = [0u8; 1200];
    /// conn.poll_payload(now, &mut out).unwrap();
    /// conn.on_packet_sent(now, PacketNumber(0));
    /// let later = conn.next_deadline().unwrap();
    /// conn.handle_timeout(later);
    /// assert_eq!(conn.counters().rto_expiries, 1);
    /// assert!(conn.poll_payload(later, &mut out).is_some()); // resent
    /// ```
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&Reverse((at, item))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let ch = &mut self.send[usize::from(item.channel)];
            // The timeout may have grown since the timer was set (reordering seen since):
            // a transmission younger than the current timeout waits for it.
            let reordering = self.rto.reordering();
            let due = ch
                .sent_at(&item)
                .filter(|_| reordering)
                .map(|sent| sent + self.rto.timeout());
            if let Some(due) = due.filter(|&due| due > now) {
                self.timers.push(Reverse((due, item)));
                continue;
            }
            if ch.on_timeout(&item) {
                self.counters.rto_expiries += 1;
            }
        }
        self.counters.reassembly_timed_out += self.partials.expire(now);
        for r in &mut self.recv {
            if let RecvChannel::Reliable(r) = r {
                if r.ack.at.is_some_and(|at| at <= now) {
                    r.ack = recv::AckDue {
                        at: None,
                        ready: true,
                    };
                }
            }
        }
    }

    /// Pops timers of parts acked or resent since from the top of the heap, so that
    /// [`next_deadline`](Self::next_deadline) names a live timer in the common case (acks
    /// arrive roughly in send order, so the earliest timers are the ones they retire).
    fn drop_stale_timers(&mut self) {
        while let Some(Reverse((_, item))) = self.timers.peek() {
            if self.send[usize::from(item.channel)].is_current(item) {
                return;
            }
            self.timers.pop();
        }
    }

    /// `true` when every channel has sent everything and every reliable message is acked
    /// (e.g. to end a close linger early).
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use gudp::message::{MessageConfig, MessageConnection};
    /// # use gudp::protocol::PacketNumber;
    /// let now = Instant::now();
    /// let mut conn = MessageConnection::new(MessageConfig::default()).unwrap();
    /// assert!(conn.is_flushed());
    /// conn.send(3, b"x").unwrap();
    /// let mut out = [0u8; 1200];
    /// conn.poll_payload(now, &mut out).unwrap();
    /// conn.on_packet_sent(now, PacketNumber(0));
    /// assert!(!conn.is_flushed()); // sent, not yet acked
    /// conn.on_packet_acked(now, PacketNumber(0));
    /// assert!(conn.is_flushed());
    /// ```
    pub fn is_flushed(&self) -> bool {
        self.send.iter().all(|c| c.held() == 0)
    }
}
