//! The receiving half of one reliable channel: a window of `reliable_window` wire ids from
//! the oldest id not yet received (unordered) or delivered (ordered).
//!
//! Ids behind the window are duplicates; ids beyond it are refused (an honest sender never
//! sends them: it keeps its ids within a window from its oldest unacked message, which is
//! never ahead of the receiver's). Out-of-order messages and partial reassemblies are charged
//! against the channel's budget; since the sender charges the same bytes for every message
//! from its oldest unacked one on, an honest sender never makes the receiver exceed it.

use std::collections::VecDeque;
use std::time::Instant;

use super::fragment::{message_cost, Reassembly, MESSAGE_OVERHEAD};
use super::frame::{AckBlock, FrameError, ACK_HEADER_LEN};
use crate::protocol::seq::{sequence_greater_than, HALF_RANGE};

/// Most blocks one ack frame carries (its count is a byte).
const MAX_ACK_BLOCKS: usize = 255;

#[derive(Debug, Default)]
enum Slot {
    #[default]
    Empty,
    Partial(Box<Reassembly>),
    /// Received; for an ordered channel, the message waiting for its turn.
    Done(Option<Vec<u8>>),
}

static EMPTY: Slot = Slot::Empty;

/// Where a received reliable frame falls: behind the window, or at this distance from `next`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    Behind,
    In(usize),
}

/// When this channel's receiver owes its sender an ack frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AckDue {
    /// Scheduled: sent at this time, or earlier with any payload that goes out anyway.
    pub(crate) at: Option<Instant>,
    /// Due now (its time passed, or the packet carrying the last one was lost).
    pub(crate) ready: bool,
}

/// The receiving half of a reliable channel.
#[derive(Debug)]
pub(crate) struct ReliableRecv {
    ordered: bool,
    next: u16,
    /// Slot `d` holds id `next + d`; grown on demand, never beyond `window` slots, so an
    /// idle or in-order channel costs no window memory however large the window.
    slots: VecDeque<Slot>,
    window: usize,
    held: usize,
    budget: usize,
    /// The newest (id, fragment index) received: a frame older than it arrived out of
    /// order, so its packet may be beyond the packet layer's 33-sequence ack range.
    newest: Option<(u16, u16)>,
    pub(crate) ack: AckDue,
}

/// What a frame did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Received {
    /// Already had it.
    Duplicate,
    /// Stored (a fragment, or a message waiting for earlier ones).
    Stored,
    /// This message is ready (for an ordered channel, `next_ready` then drains the run it
    /// unblocked).
    Ready(Vec<u8>),
}

impl ReliableRecv {
    pub(crate) fn new(ordered: bool, window: u16, budget: usize) -> Self {
        Self {
            ordered,
            next: 0,
            slots: VecDeque::new(),
            window: usize::from(window),
            held: 0,
            budget,
            newest: None,
            ack: AckDue::default(),
        }
    }

    fn slot(&self, d: usize) -> &Slot {
        self.slots.get(d).unwrap_or(&EMPTY)
    }

    fn slot_mut(&mut self, d: usize) -> &mut Slot {
        if self.slots.len() <= d {
            self.slots.resize_with(d + 1, Slot::default);
        }
        &mut self.slots[d]
    }

    /// Notes a reliable frame's arrival; `true` if it came out of order (older than one
    /// already received) and so should be reported in an ack frame: its packet may lie
    /// outside the packet layer's ack range, and a duplicate means the sender missed an ack.
    pub(crate) fn note_arrival(&mut self, id: u16, fragment: u16) -> bool {
        let late = self.newest.is_some_and(|(nid, nf)| {
            sequence_greater_than(nid, id) || (nid == id && nf >= fragment)
        });
        if !late {
            self.newest = Some((id, fragment));
        }
        late
    }

    /// Has any reliable frame arrived on this channel?
    pub(crate) fn has_received(&self) -> bool {
        self.newest.is_some()
    }

    /// Writes an ack frame for `channel` into `out`: the cumulative id and, lowest first,
    /// as many blocks of held messages and fragments as fit. `None` if not even the header
    /// fits.
    pub(crate) fn write_ack(&self, channel_byte: u8, out: &mut [u8]) -> Option<usize> {
        if out.len() < ACK_HEADER_LEN {
            return None;
        }
        out[0] = channel_byte;
        out[1..3].copy_from_slice(&self.next.to_be_bytes());
        let mut used = ACK_HEADER_LEN;
        let mut count = 0;
        let mut run: Option<(u16, u16)> = None;
        let mut put = |b: AckBlock, used: &mut usize, count: &mut usize| -> bool {
            if *count == MAX_ACK_BLOCKS {
                return false;
            }
            match b.encode(&mut out[*used..]) {
                Ok(n) => {
                    *used += n;
                    *count += 1;
                    true
                }
                Err(_) => false,
            }
        };
        'slots: for (d, slot) in self.slots.iter().enumerate() {
            let id = self.next.wrapping_add(d as u16);
            if let Slot::Done(_) = slot {
                run = Some(match run {
                    Some((first, n)) => (first, n + 1),
                    None => (id, 1),
                });
                continue;
            }
            if let Some((id, count_)) = run.take() {
                if !put(
                    AckBlock::Messages { id, count: count_ },
                    &mut used,
                    &mut count,
                ) {
                    break 'slots;
                }
            }
            if let Slot::Partial(r) = slot {
                for (start, n) in r.runs() {
                    let b = AckBlock::Fragments {
                        id,
                        start,
                        count: n,
                    };
                    if !put(b, &mut used, &mut count) {
                        break 'slots;
                    }
                }
            }
        }
        if let Some((id, n)) = run {
            put(AckBlock::Messages { id, count: n }, &mut used, &mut count);
        }
        out[3] = count as u8;
        Some(used)
    }

    pub(crate) fn held(&self) -> usize {
        self.held
    }

    pub(crate) fn budget(&self) -> usize {
        self.budget
    }

    fn position(&self, id: u16) -> Result<Position, FrameError> {
        let d = id.wrapping_sub(self.next);
        if d >= HALF_RANGE {
            Ok(Position::Behind)
        } else if usize::from(d) < self.window {
            Ok(Position::In(usize::from(d)))
        } else {
            Err(FrameError::OutOfWindow)
        }
    }

    /// Bytes accepting this frame would add to `held` (validating its window position).
    pub(crate) fn cost_of(
        &self,
        id: u16,
        fragment: Option<(usize, usize)>,
        len: usize,
    ) -> Result<usize, FrameError> {
        let Position::In(s) = self.position(id)? else {
            return Ok(0);
        };
        Ok(match (self.slot(s), fragment) {
            (Slot::Partial(_), None) => return Err(FrameError::BadFragment),
            (Slot::Partial(r), Some((total, _))) if r.total() != total => {
                return Err(FrameError::BadFragment)
            }
            (Slot::Empty, Some((total, fragment_size))) => message_cost(total, 0, fragment_size),
            (Slot::Empty, None) if self.ordered && id != self.next => len + MESSAGE_OVERHEAD,
            _ => 0,
        })
    }

    /// Takes a whole message (`fragment` is `None`) or one fragment: `(index, total,
    /// fragment_size)`. The caller checked `cost_of` against the budget.
    pub(crate) fn receive(
        &mut self,
        id: u16,
        bytes: &[u8],
        fragment: Option<(u16, usize, usize)>,
        copy: impl FnOnce(&[u8]) -> Vec<u8>,
    ) -> Result<Received, FrameError> {
        let Position::In(s) = self.position(id)? else {
            return Ok(Received::Duplicate);
        };
        let data = match (std::mem::take(self.slot_mut(s)), fragment) {
            (Slot::Done(d), _) => {
                self.slots[s] = Slot::Done(d);
                return Ok(Received::Duplicate);
            }
            (Slot::Empty, None) => copy(bytes),
            (Slot::Partial(r), None) => {
                // A whole message where fragments were expected: malformed.
                self.slots[s] = Slot::Partial(r);
                return Err(FrameError::BadFragment);
            }
            (slot, Some((index, total, fragment_size))) => {
                let mut r = match slot {
                    Slot::Partial(r) if r.total() == total => r,
                    Slot::Partial(r) => {
                        self.slots[s] = Slot::Partial(r);
                        return Err(FrameError::BadFragment);
                    }
                    _ => {
                        let r = Box::new(Reassembly::new(total, fragment_size));
                        self.held += r.cost();
                        r
                    }
                };
                let fresh = r.insert(index, bytes, fragment_size);
                if !r.is_complete() {
                    self.slots[s] = Slot::Partial(r);
                    return Ok(if fresh {
                        Received::Stored
                    } else {
                        Received::Duplicate
                    });
                }
                self.held -= r.cost();
                r.into_data()
            }
        };
        if !self.ordered || id == self.next {
            self.slots[s] = Slot::Done(None);
            self.advance();
            return Ok(Received::Ready(data));
        }
        self.held += data.len() + MESSAGE_OVERHEAD;
        self.slots[s] = Slot::Done(Some(data));
        Ok(Received::Stored)
    }

    /// Moves `next` past received ids whose messages have been handed out.
    fn advance(&mut self) {
        while let Some(Slot::Done(None)) = self.slots.front() {
            self.slots.pop_front();
            self.next = self.next.wrapping_add(1);
        }
    }

    /// An ordered channel's next message whose turn has come.
    pub(crate) fn next_ready(&mut self) -> Option<Vec<u8>> {
        let Some(Slot::Done(Some(_))) = self.slots.front() else {
            return None;
        };
        let Slot::Done(Some(data)) = std::mem::replace(&mut self.slots[0], Slot::Done(None)) else {
            unreachable!("checked above")
        };
        self.held -= data.len() + MESSAGE_OVERHEAD;
        self.advance();
        Some(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(b: &[u8]) -> Vec<u8> {
        b.to_vec()
    }

    #[test]
    fn ordered_waits_for_the_head_across_the_wrap() {
        let mut r = ReliableRecv::new(true, 8, 1000);
        r.next = 65_534;
        assert_eq!(r.receive(0, b"c", None, copy), Ok(Received::Stored));
        assert_eq!(r.receive(65_535, b"b", None, copy), Ok(Received::Stored));
        assert_eq!(r.held(), 2 * (1 + MESSAGE_OVERHEAD));
        assert_eq!(
            r.receive(65_534, b"a", None, copy),
            Ok(Received::Ready(b"a".to_vec()))
        );
        assert_eq!(r.next_ready(), Some(b"b".to_vec()));
        assert_eq!(r.next_ready(), Some(b"c".to_vec()));
        assert_eq!(r.next_ready(), None);
        assert_eq!((r.next, r.held()), (1, 0));
        // Behind the window: duplicates. Far ahead: refused.
        assert_eq!(r.receive(65_535, b"b", None, copy), Ok(Received::Duplicate));
        assert_eq!(r.receive(9, b"x", None, copy), Err(FrameError::OutOfWindow));
    }

    #[test]
    fn window_slots_grow_only_as_far_as_ids_are_outstanding() {
        let mut r = ReliableRecv::new(true, 8192, 1 << 20);
        for id in 0..10_000u32 {
            let got = r.receive(id as u16, b"m", None, copy);
            assert_eq!(got, Ok(Received::Ready(b"m".to_vec())));
            assert!(r.slots.len() <= 1, "in order: no window memory");
        }
        // A gap of 100 holds 101 slots; the far edge of the window at most 8192.
        let next = r.next;
        r.receive(next.wrapping_add(100), b"x", None, copy).unwrap();
        assert_eq!(r.slots.len(), 101);
        r.receive(next.wrapping_add(8191), b"y", None, copy)
            .unwrap();
        assert_eq!(r.slots.len(), 8192);
        let beyond = r.receive(next.wrapping_add(8192), b"z", None, copy);
        assert_eq!(beyond, Err(FrameError::OutOfWindow));
        assert_eq!(r.slots.len(), 8192);
    }

    #[test]
    fn unordered_delivers_at_once_and_counts_fragments() {
        let mut r = ReliableRecv::new(false, 8, 1000);
        assert_eq!(
            r.cost_of(3, Some((25, 10)), 10),
            Ok(25 + MESSAGE_OVERHEAD + 8)
        );
        assert_eq!(
            r.receive(3, b"0123456789", Some((0, 25, 10)), copy),
            Ok(Received::Stored)
        );
        assert_eq!(r.held(), 25 + MESSAGE_OVERHEAD + 8);
        assert_eq!(r.cost_of(3, Some((25, 10)), 10), Ok(0));
        assert_eq!(
            r.receive(1, b"x", None, copy),
            Ok(Received::Ready(b"x".to_vec()))
        );
        assert_eq!(r.next, 0); // 0 still missing
        r.receive(3, b"abcdefghij", Some((1, 25, 10)), copy)
            .unwrap();
        let done = r.receive(3, b"ABCDE", Some((2, 25, 10)), copy).unwrap();
        assert_eq!(done, Received::Ready(b"0123456789abcdefghijABCDE".to_vec()));
        assert_eq!(r.held(), 0);
    }
}
