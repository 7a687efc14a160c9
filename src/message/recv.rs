//! The receiving half of one reliable channel: a window of `reliable_window` wire ids from
//! the oldest id not yet received (unordered) or delivered (ordered).
//!
//! Ids behind the window are duplicates; ids beyond it are refused (an honest sender never
//! sends them: it keeps its ids within a window from its oldest unacked message, which is
//! never ahead of the receiver's). Out-of-order messages and partial reassemblies are charged
//! against the channel's budget; since the sender charges the same bytes for every message
//! from its oldest unacked one on, an honest sender never makes the receiver exceed it.

use super::fragment::{message_cost, Reassembly, MESSAGE_OVERHEAD};
use super::frame::FrameError;
use crate::protocol::seq::HALF_RANGE;

#[derive(Debug, Default)]
enum Slot {
    #[default]
    Empty,
    Partial(Box<Reassembly>),
    /// Received; for an ordered channel, the message waiting for its turn.
    Done(Option<Vec<u8>>),
}

/// Where a received reliable frame falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    Behind,
    In(usize),
}

/// The receiving half of a reliable channel.
#[derive(Debug)]
pub(crate) struct ReliableRecv {
    ordered: bool,
    next: u16,
    slots: Box<[Slot]>,
    held: usize,
    budget: usize,
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
            slots: (0..window).map(|_| Slot::Empty).collect(),
            held: 0,
            budget,
        }
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
        } else if usize::from(d) < self.slots.len() {
            Ok(Position::In(usize::from(id) % self.slots.len()))
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
        Ok(match (&self.slots[s], fragment) {
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
        let data = match (std::mem::take(&mut self.slots[s]), fragment) {
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
        loop {
            let s = usize::from(self.next) % self.slots.len();
            match self.slots[s] {
                Slot::Done(None) => {
                    self.slots[s] = Slot::Empty;
                    self.next = self.next.wrapping_add(1);
                }
                _ => return,
            }
        }
    }

    /// An ordered channel's next message whose turn has come.
    pub(crate) fn next_ready(&mut self) -> Option<Vec<u8>> {
        let s = usize::from(self.next) % self.slots.len();
        let Slot::Done(Some(_)) = self.slots[s] else {
            return None;
        };
        let Slot::Done(Some(data)) = std::mem::replace(&mut self.slots[s], Slot::Done(None)) else {
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
