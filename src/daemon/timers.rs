//! The daemon's timer heap: one entry per pending deadline, earliest first.
//!
//! Each socket's endpoint keeps its own per-connection timers (a heap inside the protocol
//! core), so this heap holds at most one live entry per socket plus pacing retries and link
//! deliveries: the cost of a tick does not grow with idle connections. Entries are never
//! removed early; an entry that was superseded is recognised and skipped when it comes due.

use crate::protocol::ConnectionId;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// What a timer entry is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// The socket's endpoint has a deadline (valid only if it matches the socket's record).
    Endpoint(usize),
    /// A connection's pacing budget allows its next packet.
    Pacing(usize, ConnectionId),
    /// The link conditioner releases a datagram.
    Link,
}

/// Entries allowed before the first compaction; the heap is allocated for them up front.
const MIN_LIMIT: usize = 64;

pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Timer)>>,
    /// Compact when the heap is longer: twice the live entries the last compaction kept.
    limit: usize,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::with_capacity(MIN_LIMIT + 1),
            limit: MIN_LIMIT,
        }
    }
}

impl Timers {
    pub(crate) fn push(&mut self, at: Instant, timer: Timer) {
        self.heap.push(Reverse((at, timer)));
    }

    /// Drops superseded entries once the heap is over its limit, so their number (which
    /// depends on how often deadlines moved earlier, that is on timing) cannot make the heap
    /// grow in the steady state. `is_live` says whether an entry would still fire; it must
    /// answer as `fire_timers` does, so that dropping the others changes nothing.
    pub(crate) fn compact(&mut self, mut is_live: impl FnMut(Instant, Timer) -> bool) {
        if self.heap.len() <= self.limit {
            return;
        }
        self.heap
            .retain(|Reverse((at, timer))| is_live(*at, *timer));
        self.limit = MIN_LIMIT.max(2 * self.heap.len());
        self.heap.reserve(self.limit + 1 - self.heap.len());
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Superseded entries, however many pile up, never grow the heap past its first
    /// allocation while the live ones stay few; the live ones all survive compaction.
    #[test]
    fn superseded_entries_do_not_grow_the_heap() {
        let mut timers = Timers::default();
        let capacity = timers.heap.capacity();
        let start = Instant::now();
        // One live entry per socket (the latest), as `finish_turn` pushes them.
        let mut live = [None; 4];
        for i in 0..10_000u64 {
            let slot = (i % 4) as usize;
            let at = start + Duration::from_secs(100) - Duration::from_millis(i);
            live[slot] = Some(at);
            timers.push(at, Timer::Endpoint(slot));
            timers.compact(|at, timer| match timer {
                Timer::Endpoint(slot) => live[slot] == Some(at),
                _ => true,
            });
        }
        assert_eq!(timers.heap.capacity(), capacity, "the heap grew");
        let mut fired = Vec::new();
        while let Some((at, Timer::Endpoint(slot))) =
            timers.pop_due(start + Duration::from_secs(200))
        {
            if live[slot] == Some(at) {
                fired.push(slot);
            }
        }
        fired.sort();
        assert_eq!(fired, [0, 1, 2, 3], "every live entry fires");
    }
}
