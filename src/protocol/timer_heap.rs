//! An endpoint's per-connection deadlines, earliest first.
//!
//! Entries are never removed early: each carries its connection's timer token, and only the
//! entry whose token is the connection's latest is live; the others are skipped when they
//! surface, or dropped by a compaction once they outnumber the connections.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::table::Table;
use super::ConnectionId;

/// (deadline, slot index, generation, timer token).
type Entry = (Instant, u32, u32, u32);

#[derive(Debug, Default)]
pub(crate) struct TimerHeap {
    heap: BinaryHeap<Reverse<Entry>>,
}

impl TimerHeap {
    /// Pushes `id`'s entry; compacts once stale entries outnumber live connections.
    pub(crate) fn push(&mut self, deadline: Instant, id: ConnectionId, token: u32, table: &Table) {
        self.heap
            .push(Reverse((deadline, id.index, id.generation, token)));
        if self.heap.len() > bound(table) {
            self.heap.retain(|Reverse((_, index, generation, token))| {
                table.is_timer_live(*index, *generation, *token)
            });
        }
    }

    /// Room for the heap up to its compaction bound: it then never grows in the steady
    /// state, where how many superseded entries pile up depends on timing. Called when a
    /// connection is added.
    pub(crate) fn reserve_for(&mut self, table: &Table) {
        let bound = bound(table) + 1;
        self.heap.reserve(bound.saturating_sub(self.heap.len()));
    }

    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((deadline, ..))| *deadline)
    }

    /// The earliest entry due at `now`: the connection and the entry's token.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(ConnectionId, u32)> {
        if self.next()? > now {
            return None;
        }
        let Reverse((_, index, generation, token)) = self.heap.pop()?;
        Some((ConnectionId { index, generation }, token))
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

/// How many entries, live and superseded, the heap may hold before it compacts.
fn bound(table: &Table) -> usize {
    2 * table.len() + 64
}
