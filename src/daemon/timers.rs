//! The daemon's timer heap: one entry per pending deadline, earliest first.
//!
//! Each socket's endpoint keeps its own per-connection timers (a heap inside the protocol
//! core), so this heap holds at most one live entry per socket plus pacing retries and link
//! deliveries: the cost of a tick does not grow with idle connections. Entries are never
//! removed early; an entry that was superseded is recognised and skipped when it comes due.

use super::SocketKey;
use crate::protocol::ConnectionId;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// What a timer entry is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// The socket's endpoint has a deadline (valid only if it matches the socket's record).
    Endpoint(SocketKey),
    /// A connection's pacing budget allows its next packet.
    Pacing(SocketKey, ConnectionId),
    /// A closing connection's linger time is over.
    Linger(SocketKey, ConnectionId),
    /// The link conditioner releases a datagram.
    Link,
}

#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Timer)>>,
}

impl Timers {
    pub(crate) fn push(&mut self, at: Instant, timer: Timer) {
        self.heap.push(Reverse((at, timer)));
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, Timer)> {
        if self.next()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(entry)| entry)
    }
}
