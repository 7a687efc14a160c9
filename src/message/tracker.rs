//! Which frames each sent packet carried, until the packet layer reports its outcome.
//!
//! Packet ids increase with every packet sent (`Endpoint::send` assigns them), so the
//! packets form a deque ordered by id, found by binary search, and freed from the front once
//! resolved. Items live in one deque beside them, addressed by absolute index: no allocation
//! per packet once warm.

use std::collections::VecDeque;
use std::time::Instant;

use super::send::SentItem;
use crate::protocol::PacketNumber;

#[derive(Debug)]
struct SentPacket {
    id: PacketNumber,
    sent_at: Instant,
    start: u64,
    len: u32,
    /// It carried ack frames (sent again if it is lost).
    acks: bool,
    resolved: bool,
}

#[derive(Debug)]
pub(crate) struct Tracker {
    packets: VecDeque<SentPacket>,
    items: VecDeque<SentItem>,
    /// Absolute index of `items[0]`.
    base: u64,
    max_packets: usize,
}

/// Packets the deque holds from the start. The packet layer reports every packet's outcome
/// by the time its sent window (512 by default) has moved past it, and resolved packets leave
/// from the front, so the deque stays within about that many: sized so once, it never grows
/// in steady state, whatever the timing of the acks (it once grew under load, a test found).
const PRESIZED_PACKETS: usize = 1024;

impl Tracker {
    pub(crate) fn new(max_packets: usize) -> Self {
        Self {
            packets: VecDeque::with_capacity(max_packets.min(PRESIZED_PACKETS)),
            items: VecDeque::new(),
            base: 0,
            max_packets,
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.packets.len() >= self.max_packets
    }

    /// Records packet `id` carrying `items` (drained) and, if `acks`, ack frames. `false`,
    /// recording nothing, when `id` is not above every id recorded so far.
    pub(crate) fn push(
        &mut self,
        id: PacketNumber,
        now: Instant,
        items: &mut Vec<SentItem>,
        acks: bool,
    ) -> bool {
        if self.packets.back().is_some_and(|p| p.id >= id) {
            return false;
        }
        let start = self.base + self.items.len() as u64;
        self.packets.push_back(SentPacket {
            id,
            sent_at: now,
            start,
            len: items.len() as u32,
            acks,
            resolved: false,
        });
        self.items.extend(items.drain(..));
        true
    }

    /// Resolves packet `id`: copies its items into `out` and returns when it was sent and
    /// whether it carried ack frames, or `None` if it is not tracked (or already resolved).
    pub(crate) fn resolve(
        &mut self,
        id: PacketNumber,
        out: &mut Vec<SentItem>,
    ) -> Option<(Instant, bool)> {
        let i = self.packets.binary_search_by_key(&id, |p| p.id).ok()?;
        let p = &mut self.packets[i];
        if p.resolved {
            return None;
        }
        p.resolved = true;
        let from = (p.start - self.base) as usize;
        out.extend(self.items.range(from..from + p.len as usize).copied());
        let sent = (p.sent_at, p.acks);
        while self.packets.front().is_some_and(|p| p.resolved) {
            let p = self.packets.pop_front().expect("front exists");
            self.items.drain(..p.len as usize);
            self.base += u64::from(p.len);
        }
        Some(sent)
    }
}
