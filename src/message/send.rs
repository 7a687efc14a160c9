//! The sending half of one channel: the queue of messages, what is due, and what an outcome
//! from the packet layer changes.
//!
//! Reliable messages stay in a deque ordered by wire id until they and every earlier message
//! are acked, so wire ids in the deque are consecutive from `front_wire` and a message is
//! found by `wire - front_wire` (wrap-aware, never `Ord` on ids). A *part* is a whole message
//! or one fragment: the unit that is sent, acked, lost and resent.

use std::collections::VecDeque;
use std::time::Instant;

use super::buffers::BufferPool;
use super::config::{ChannelConfig, ChannelKind};
use super::fragment::message_cost;
use super::frame::{
    fragment_count, fragment_len, next_message_len, AckBlock, AckBlocks, Frame,
    FRAGMENT_HEADER_LEN, MESSAGE_HEADER_LEN,
};
use super::types::MessageId;
use crate::protocol::seq::HALF_RANGE;

/// Sizes and windows shared by every channel of a connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    pub(crate) max_unfragmented: usize,
    pub(crate) fragment_size: usize,
    pub(crate) window: u16,
    pub(crate) fragment_window: usize,
}

/// Send state of one part of a reliable message.
#[derive(Debug, Clone, Copy, Default)]
struct Part {
    acked: bool,
    /// In the resend queue.
    queued: bool,
    /// Packets carrying it with no outcome yet.
    in_flight: u16,
    /// Transmission number of its latest send (to recognise stale timer entries).
    tx: u32,
    /// Resend timeouts expired in a row (for backoff).
    expiries: u8,
    /// When its latest transmission was written (an ack frame's RTT sample).
    sent_at: Option<Instant>,
    /// Its next resend is the echo of the one before (see `SendChannel::echoes`).
    echo: bool,
}

#[derive(Debug)]
enum Parts {
    One(Part),
    Many(Vec<Part>),
}

#[derive(Debug)]
struct Reliable {
    id: MessageId,
    data: Vec<u8>,
    cost: usize,
    parts: Parts,
    unacked: u32,
    /// Parts sent at least once (they are first sent in order).
    introduced: u16,
}

impl Reliable {
    fn part_count(&self) -> u16 {
        match &self.parts {
            Parts::One(_) => 1,
            Parts::Many(v) => v.len() as u16,
        }
    }

    fn fully_introduced(&self) -> bool {
        self.introduced == self.part_count()
    }
}

#[derive(Debug)]
struct Unreliable {
    id: MessageId,
    wire: u16,
    data: Vec<u8>,
    cost: usize,
    /// Next fragment to send.
    next: u16,
    /// Fragments, 0 for a whole message.
    count: u16,
}

/// A frame a channel can write next.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Next {
    pub(crate) len: usize,
    wire: u16,
    frag: Option<u16>,
    source: Source,
    /// Written as a next-message frame (see [`Next::after`]).
    compact: bool,
}

impl Next {
    /// This frame written right after a frame of `previous` (channel and id of a whole
    /// message, if it was one): a whole message whose id follows on the same channel is
    /// written as a next-message frame, without its id and with a varint length.
    pub(crate) fn after(mut self, channel: u8, previous: Option<(u8, u16)>) -> Self {
        let follows = previous == Some((channel, self.wire.wrapping_sub(1)));
        if self.frag.is_none() && follows {
            self.len = next_message_len(self.len - MESSAGE_HEADER_LEN);
            self.compact = true;
        }
        self
    }

    /// The id of this frame's message if it is a whole one (what a next frame may follow).
    pub(crate) fn whole_id(&self) -> Option<u16> {
        self.frag.is_none().then_some(self.wire)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Resend,
    Fresh,
    Unreliable,
}

/// What one written frame was, for the packet tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SentItem {
    pub(crate) msg: MessageId,
    pub(crate) channel: u8,
    pub(crate) wire: u16,
    pub(crate) frag: Option<u16>,
    pub(crate) tx: u32,
}

/// The result of writing one frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Written {
    pub(crate) item: SentItem,
    /// Reliable: the part's expiries so far (for its timer); `None` when unreliable.
    pub(crate) expiries: Option<u8>,
    /// The first fragment of an unreliable message of this many fragments.
    pub(crate) first_of: Option<u16>,
    pub(crate) resend: bool,
}

/// The sending half of one channel.
#[derive(Debug)]
pub(crate) struct SendChannel {
    pub(crate) index: u8,
    kind: ChannelKind,
    pub(crate) weight: u8,
    budget: usize,
    max_message_size: usize,
    held: usize,
    next_wire: u16,
    /// Deficit round-robin credit, in bytes.
    pub(crate) deficit: usize,
    reliable: VecDeque<Reliable>,
    front_wire: u16,
    /// Index in `reliable` of the first message with parts never sent.
    fresh: usize,
    /// While the message at `fresh` is a large one held by the fragment window, whole
    /// messages behind it go ahead: every message between `fresh` and `ahead` has been sent.
    ahead: usize,
    resend: VecDeque<(u16, Option<u16>, MessageId)>,
    /// Whole messages just resent, to be sent once more in the next payload: a resend is
    /// lost as often as a first send, and on an ordered channel a lost resend holds up
    /// everything behind it for another timeout; two copies in separate packets make that
    /// rare at the cost of one small message per loss. Fragments are not echoed (bulk
    /// transfers would pay it in bytes).
    echoes: Vec<(u16, MessageId)>,
    /// Fragments sent at least once and not yet acked (bounded by the fragment window).
    frags_out: usize,
    unreliable: VecDeque<Unreliable>,
}

/// Why a channel refused a message (the connection adds the channel id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    TooLarge { len: usize, max: usize },
    Full { needed: usize, available: usize },
}

impl SendChannel {
    pub(crate) fn new(index: u8, c: &ChannelConfig) -> Self {
        Self {
            index,
            kind: c.kind,
            weight: c.weight,
            budget: c.budget,
            max_message_size: c.max_message_size,
            held: 0,
            next_wire: 0,
            deficit: 0,
            reliable: VecDeque::new(),
            front_wire: 0,
            fresh: 0,
            ahead: 0,
            resend: VecDeque::new(),
            echoes: Vec::new(),
            frags_out: 0,
            unreliable: VecDeque::new(),
        }
    }

    /// Bytes charged against the budget.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// Queues a message.
    pub(crate) fn push(
        &mut self,
        id: MessageId,
        bytes: &[u8],
        g: &Geometry,
        pool: &mut BufferPool,
    ) -> Result<(), Refusal> {
        let len = bytes.len();
        if len > self.max_message_size {
            return Err(Refusal::TooLarge {
                len,
                max: self.max_message_size,
            });
        }
        let cost = message_cost(len, g.max_unfragmented, g.fragment_size);
        let available = self.budget - self.held;
        if cost > available {
            return Err(Refusal::Full {
                needed: cost,
                available,
            });
        }
        self.held += cost;
        let data = pool.copy_of(bytes);
        let count = if len <= g.max_unfragmented {
            0
        } else {
            fragment_count(len, g.fragment_size)
        };
        let wire = self.next_wire;
        self.next_wire = wire.wrapping_add(1);
        if self.kind.is_reliable() {
            let (parts, unacked) = if count == 0 {
                (Parts::One(Part::default()), 1)
            } else {
                (Parts::Many(vec![Part::default(); count]), count as u32)
            };
            self.reliable.push_back(Reliable {
                id,
                data,
                cost,
                parts,
                unacked,
                introduced: 0,
            });
        } else {
            self.unreliable.push_back(Unreliable {
                id,
                wire,
                data,
                cost,
                next: 0,
                count: count as u16,
            });
        }
        Ok(())
    }

    /// Anything to send (may be a stale resend entry: `peek` then finds nothing).
    pub(crate) fn has_due(&self, g: &Geometry) -> bool {
        !self.resend.is_empty()
            || !self.echoes.is_empty()
            || !self.unreliable.is_empty()
            || self.fresh_index(g).0.is_some()
    }

    /// A new payload begins: the echoes of whole messages resent in earlier payloads are
    /// due now (unless acked or queued again meanwhile).
    pub(crate) fn begin_payload(&mut self) {
        let mut echoes = std::mem::take(&mut self.echoes);
        for (wire, msg) in echoes.drain(..) {
            if let Some((_, p)) = self.find(wire, None, msg) {
                if !p.acked && !p.queued {
                    p.queued = true;
                    p.echo = true;
                    self.resend.push_back((wire, None, msg));
                }
            }
        }
        self.echoes = echoes;
    }

    /// The message whose next part may be sent for the first time, and where a scan past a
    /// large message held by its fragment window got to (see `ahead`).
    fn fresh_index(&self, g: &Geometry) -> (Option<usize>, usize) {
        let window = usize::from(g.window).min(self.reliable.len());
        let Some(m) = self
            .reliable
            .get(self.fresh)
            .filter(|_| self.fresh < window)
        else {
            return (None, self.ahead);
        };
        if matches!(m.parts, Parts::One(_)) || self.frags_out < g.fragment_window {
            return (Some(self.fresh), self.ahead);
        }
        let mut i = self.ahead.max(self.fresh + 1);
        while i < window && self.reliable[i].fully_introduced() {
            i += 1;
        }
        // Only whole messages overtake: a second large one waits for the window too.
        let next = (i < window && matches!(self.reliable[i].parts, Parts::One(_))).then_some(i);
        (next, i)
    }

    /// The part `frag` of message `msg` (wire id `wire`), if still held. The id check makes
    /// a late outcome for a released message harmless even after the wire ids wrapped.
    fn find(&mut self, wire: u16, frag: Option<u16>, msg: MessageId) -> Option<(usize, &mut Part)> {
        let i = usize::from(wire.wrapping_sub(self.front_wire));
        let m = self.reliable.get_mut(i).filter(|m| m.id == msg)?;
        let part = match (&mut m.parts, frag) {
            (Parts::One(p), None) => p,
            (Parts::Many(v), Some(f)) => v.get_mut(usize::from(f))?,
            _ => return None,
        };
        Some((i, part))
    }

    /// The next frame due, discarding stale resend entries.
    pub(crate) fn peek(&mut self, g: &Geometry) -> Option<Next> {
        while let Some(&(wire, frag, msg)) = self.resend.front() {
            if let Some((i, p)) = self.find(wire, frag, msg) {
                if p.queued && !p.acked {
                    let len = self.frame_len(&self.reliable[i].data, frag, g);
                    return Some(Next {
                        len,
                        wire,
                        frag,
                        source: Source::Resend,
                        compact: false,
                    });
                }
            }
            self.resend.pop_front();
        }
        let (fresh, ahead) = self.fresh_index(g);
        self.ahead = ahead;
        if let Some(i) = fresh {
            let m = &self.reliable[i];
            let frag = matches!(m.parts, Parts::Many(_)).then_some(m.introduced);
            let wire = self.front_wire.wrapping_add(i as u16);
            return Some(Next {
                len: self.frame_len(&m.data, frag, g),
                wire,
                frag,
                source: Source::Fresh,
                compact: false,
            });
        }
        let u = self.unreliable.front()?;
        let frag = (u.count > 0).then_some(u.next);
        Some(Next {
            len: self.frame_len(&u.data, frag, g),
            wire: u.wire,
            frag,
            source: Source::Unreliable,
            compact: false,
        })
    }

    fn frame_len(&self, data: &[u8], frag: Option<u16>, g: &Geometry) -> usize {
        match frag {
            None => MESSAGE_HEADER_LEN + data.len(),
            Some(f) => {
                FRAGMENT_HEADER_LEN
                    + fragment_len(data.len() as u32, g.fragment_size, f).unwrap_or(0)
            }
        }
    }

    /// Writes the frame `peek` returned into `out` (which has room for `next.len`).
    pub(crate) fn write(
        &mut self,
        next: Next,
        out: &mut [u8],
        (now, tx): (Instant, u32),
        g: &Geometry,
        pool: &mut BufferPool,
    ) -> Written {
        let channel = self.index;
        let (data, msg, first_of) = match next.source {
            Source::Unreliable => {
                let u = self.unreliable.front().expect("peeked");
                let first_of = (u.count > 0 && u.next == 0).then_some(u.count);
                (&u.data[..], u.id, first_of)
            }
            _ => {
                let i = usize::from(next.wire.wrapping_sub(self.front_wire));
                let m = &self.reliable[i];
                (&m.data[..], m.id, None)
            }
        };
        let frame = match next.frag {
            None if next.compact => Frame::NextMessage {
                channel,
                id: next.wire,
                data,
            },
            None => Frame::Message {
                channel,
                id: next.wire,
                data,
            },
            Some(index) => {
                let start = usize::from(index) * g.fragment_size;
                let n = fragment_len(data.len() as u32, g.fragment_size, index).unwrap_or(0);
                Frame::Fragment {
                    channel,
                    id: next.wire,
                    total: data.len() as u32,
                    index,
                    data: &data[start..start + n],
                }
            }
        };
        frame.encode(out).expect("the caller checked the room");
        let item = SentItem {
            msg,
            channel,
            wire: next.wire,
            frag: next.frag,
            tx,
        };
        let mut expiries = None;
        match next.source {
            Source::Unreliable => {
                let u = self.unreliable.front_mut().expect("peeked");
                u.next += 1;
                if u.count == 0 || u.next == u.count {
                    let u = self.unreliable.pop_front().expect("peeked");
                    self.held -= u.cost;
                    pool.put(u.data);
                }
            }
            Source::Fresh => {
                let i = usize::from(next.wire.wrapping_sub(self.front_wire));
                let m = &mut self.reliable[i];
                m.introduced += 1;
                if matches!(m.parts, Parts::Many(_)) {
                    self.frags_out += 1;
                }
                while self
                    .reliable
                    .get(self.fresh)
                    .is_some_and(Reliable::fully_introduced)
                {
                    self.fresh += 1;
                }
            }
            Source::Resend => {
                self.resend.pop_front();
            }
        }
        if next.source != Source::Unreliable {
            let (_, p) = self.find(next.wire, next.frag, msg).expect("peeked");
            p.queued = false;
            p.in_flight = p.in_flight.saturating_add(1);
            p.tx = tx;
            p.sent_at = Some(now);
            expiries = Some(p.expiries);
            // A whole message's resend gets an echo, unless it is the echo.
            let echo_due = next.source == Source::Resend
                && next.frag.is_none()
                && !std::mem::take(&mut p.echo);
            if echo_due {
                self.echoes.push((next.wire, msg));
            }
        }
        Written {
            item,
            expiries,
            first_of,
            resend: next.source == Source::Resend,
        }
    }

    /// A packet carrying this reliable part was acked. Returns the message's id when this
    /// completes it.
    pub(crate) fn on_acked(&mut self, item: &SentItem, pool: &mut BufferPool) -> Option<MessageId> {
        let (i, p) = self.find(item.wire, item.frag, item.msg)?;
        if p.acked {
            return None;
        }
        p.acked = true;
        if item.frag.is_some() {
            self.frags_out -= 1;
        }
        let m = &mut self.reliable[i];
        m.unacked -= 1;
        let done = (m.unacked == 0).then_some(m.id);
        // Release in id order: the receiver may hold anything after the oldest unacked
        // message, so the sender keeps charging for it (see `ChannelConfig::budget`).
        while self.reliable.front().is_some_and(|m| m.unacked == 0) {
            let m = self.reliable.pop_front().expect("front exists");
            self.held -= m.cost;
            pool.put(m.data);
            self.front_wire = self.front_wire.wrapping_add(1);
            self.fresh -= 1;
            self.ahead = self.ahead.saturating_sub(1);
        }
        done
    }

    /// The receiver's ack frame: every id before `next`, and the runs in `blocks`, are held
    /// at the receiver. Acks each such part that was sent (never one still unsent, whatever
    /// a peer claims) and passes each message this completes to `done`. Returns when the
    /// earliest-sent part it newly acked was sent: an RTT sample of the slowest path to an
    /// ack (a late arrival, then the ack frame's delay), so that reordering shows in the
    /// RTT variation and the resend timeout leaves room for it.
    pub(crate) fn on_ack_frame(
        &mut self,
        next: u16,
        blocks: AckBlocks<'_>,
        pool: &mut BufferPool,
        done: &mut impl FnMut(MessageId),
    ) -> Option<Instant> {
        let mut oldest = None;
        // Cumulative: release from the front; each completed message moves `front_wire`.
        while next.wrapping_sub(self.front_wire) < HALF_RANGE && next != self.front_wire {
            let front = self.front_wire;
            self.ack_message(front, 0, u16::MAX, pool, done, &mut oldest);
            if self.front_wire == front {
                break; // not all of it was sent: a forged ack
            }
        }
        for block in blocks.iter() {
            match block {
                AckBlock::Messages { id, count } => {
                    // Only messages up to the last ever sent can be acked: clamp the run to
                    // them so a forged block costs no more than an honest one.
                    let sent = self.fresh.max(self.ahead) + 1;
                    let start = id.wrapping_sub(self.front_wire);
                    let (from, n) = if start < HALF_RANGE {
                        (usize::from(start), usize::from(count))
                    } else {
                        let behind = usize::from(start.wrapping_neg());
                        (0, usize::from(count).saturating_sub(behind))
                    };
                    let to = (from + n).min(sent).min(self.reliable.len());
                    // Wire ids, not offsets: offsets shift as the front is released.
                    let first = self.front_wire.wrapping_add(from as u16);
                    for k in 0..to.saturating_sub(from) {
                        let wire = first.wrapping_add(k as u16);
                        self.ack_message(wire, 0, u16::MAX, pool, done, &mut oldest);
                    }
                }
                AckBlock::Fragments { id, start, count } => {
                    let end = start.saturating_add(count - 1);
                    self.ack_message(id, start, end, pool, done, &mut oldest);
                }
            }
        }
        oldest
    }

    /// Acks the sent parts `first..=last` of the message with wire id `wire` (a whole
    /// message is part 0), if it is held.
    fn ack_message(
        &mut self,
        wire: u16,
        first: u16,
        last: u16,
        pool: &mut BufferPool,
        done: &mut impl FnMut(MessageId),
        oldest: &mut Option<Instant>,
    ) {
        let i = usize::from(wire.wrapping_sub(self.front_wire));
        let Some(m) = self.reliable.get(i).filter(|m| m.introduced > 0) else {
            return;
        };
        let (msg, introduced) = (m.id, m.introduced);
        let frags = matches!(m.parts, Parts::Many(_));
        let last = last.min(introduced - 1);
        for f in first..=last {
            let item = SentItem {
                msg,
                channel: self.index,
                wire,
                frag: frags.then_some(f),
                tx: 0,
            };
            if let Some((_, p)) = self.find(wire, item.frag, msg).filter(|(_, p)| !p.acked) {
                *oldest = match (*oldest, p.sent_at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            if let Some(id) = self.on_acked(&item, pool) {
                done(id);
            }
            if !frags {
                break;
            }
        }
    }

    /// A packet carrying this reliable part was lost (or never sent): resend it unless
    /// another copy is still in flight.
    pub(crate) fn on_lost(&mut self, item: &SentItem) {
        let Some((_, p)) = self.find(item.wire, item.frag, item.msg) else {
            return;
        };
        p.in_flight = p.in_flight.saturating_sub(1);
        if !p.acked && !p.queued && p.in_flight == 0 {
            p.queued = true;
            self.resend.push_back((item.wire, item.frag, item.msg));
        }
    }

    /// The resend timer of transmission `item.tx` fired. `true` if it was still current
    /// and the part is queued again.
    pub(crate) fn on_timeout(&mut self, item: &SentItem) -> bool {
        let Some((_, p)) = self.find(item.wire, item.frag, item.msg) else {
            return false;
        };
        if p.acked || p.queued || p.tx != item.tx {
            return false;
        }
        p.queued = true;
        p.expiries = p.expiries.saturating_add(1);
        self.resend.push_back((item.wire, item.frag, item.msg));
        true
    }

    /// When transmission `item.tx` was written, if its timer still waits for it.
    pub(crate) fn sent_at(&mut self, item: &SentItem) -> Option<Instant> {
        self.find(item.wire, item.frag, item.msg)
            .filter(|(_, p)| !p.acked && !p.queued && p.tx == item.tx)
            .and_then(|(_, p)| p.sent_at)
    }

    /// Is transmission `item.tx` still the one its timer waits for?
    pub(crate) fn is_current(&mut self, item: &SentItem) -> bool {
        self.find(item.wire, item.frag, item.msg)
            .is_some_and(|(_, p)| !p.acked && !p.queued && p.tx == item.tx)
    }
}
