//! Reassembly of fragmented messages, with every byte counted.
//!
//! A partial message's buffer is allocated whole when its first fragment arrives (the
//! fragment header carries the total length), so its cost is known up front and charged
//! before anything is stored: a reliable channel refuses a fragment that would exceed its
//! budget; the unreliable pool evicts its oldest partial message to make room.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::frame::fragment_count;

/// Bookkeeping charged per message on top of its bytes (queue entries, buffer headers), so
/// that a flood of tiny messages is bounded by the budgets too.
pub(crate) const MESSAGE_OVERHEAD: usize = 64;

/// Bytes a message of `len` costs against a budget, at either end: its data and overhead,
/// plus the bitmap of received fragments when it is fragmented (the receiver holds both; the
/// sender charges the same so an honest sender never makes its peer exceed the same budget).
pub(crate) fn message_cost(len: usize, max_unfragmented: usize, fragment_size: usize) -> usize {
    if len <= max_unfragmented {
        len + MESSAGE_OVERHEAD
    } else {
        len + MESSAGE_OVERHEAD + fragment_count(len, fragment_size).div_ceil(64) * 8
    }
}

/// One message being reassembled.
#[derive(Debug)]
pub(crate) struct Reassembly {
    data: Vec<u8>,
    have: Vec<u64>,
    missing: usize,
}

impl Reassembly {
    pub(crate) fn new(total: usize, fragment_size: usize) -> Self {
        let count = fragment_count(total, fragment_size);
        Self {
            data: vec![0; total],
            have: vec![0; count.div_ceil(64)],
            missing: count,
        }
    }

    /// Bytes held (equal to [`message_cost`] of the total).
    pub(crate) fn cost(&self) -> usize {
        self.data.len() + MESSAGE_OVERHEAD + self.have.len() * 8
    }

    pub(crate) fn total(&self) -> usize {
        self.data.len()
    }

    /// Stores fragment `index` (already validated against the total by the decoder);
    /// `false` if it was already here.
    pub(crate) fn insert(&mut self, index: u16, bytes: &[u8], fragment_size: usize) -> bool {
        let i = usize::from(index);
        let (word, bit) = (i / 64, 1u64 << (i % 64));
        if self.have[word] & bit != 0 {
            return false;
        }
        self.have[word] |= bit;
        self.missing -= 1;
        let start = i * fragment_size;
        self.data[start..start + bytes.len()].copy_from_slice(bytes);
        true
    }

    /// Runs of received fragments, lowest first, as (first index, count).
    pub(crate) fn runs(&self) -> impl Iterator<Item = (u16, u16)> + '_ {
        let has = |i: usize| self.have[i / 64] & (1 << (i % 64)) != 0;
        let end = self.have.len() * 64;
        let mut i = 0;
        std::iter::from_fn(move || {
            while i < end && !has(i) {
                // Skip empty words whole.
                if i % 64 == 0 && self.have[i / 64] == 0 {
                    i += 64;
                } else {
                    i += 1;
                }
            }
            if i >= end {
                return None;
            }
            let start = i;
            while i < end && has(i) {
                i += 1;
            }
            Some((start as u16, (i - start) as u16))
        })
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.missing == 0
    }

    pub(crate) fn into_data(self) -> Vec<u8> {
        self.data
    }
}

/// What happened to an unreliable fragment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PartialOutcome {
    /// Stored; the message is still incomplete (or the fragment was a duplicate).
    Stored,
    /// The message is complete: here it is.
    Complete(Vec<u8>),
    /// The message alone exceeds the pool's budget: dropped.
    TooLarge,
}

#[derive(Debug)]
struct Partial {
    channel: u8,
    id: u16,
    deadline: Instant,
    r: Reassembly,
}

/// Partial unreliable messages of one connection: at most `max_count` of them and `budget`
/// bytes, oldest evicted first; each dropped `timeout` after its first fragment.
#[derive(Debug)]
pub(crate) struct UnreliablePartials {
    partials: VecDeque<Partial>,
    bytes: usize,
    budget: usize,
    max_count: usize,
    timeout: Duration,
}

impl UnreliablePartials {
    pub(crate) fn new(budget: usize, max_count: usize, timeout: Duration) -> Self {
        Self {
            partials: VecDeque::with_capacity(max_count),
            bytes: 0,
            budget,
            max_count,
            timeout,
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Adds a fragment; `evicted` counts partial messages dropped to make room.
    #[allow(clippy::too_many_arguments)] // one fragment's fields, flat as on the wire
    pub(crate) fn insert(
        &mut self,
        now: Instant,
        channel: u8,
        id: u16,
        total: usize,
        index: u16,
        bytes: &[u8],
        fragment_size: usize,
        evicted: &mut u64,
    ) -> PartialOutcome {
        let found = self
            .partials
            .iter()
            .position(|p| p.channel == channel && p.id == id);
        let at = match found {
            Some(i) if self.partials[i].r.total() == total => i,
            _ => {
                if let Some(i) = found {
                    // Same id, another length: a newer message after the id wrapped.
                    self.remove(i);
                    *evicted += 1;
                }
                let cost = message_cost(total, 0, fragment_size);
                if cost > self.budget {
                    return PartialOutcome::TooLarge;
                }
                while self.partials.len() >= self.max_count || self.bytes + cost > self.budget {
                    self.remove(0);
                    *evicted += 1;
                }
                let r = Reassembly::new(total, fragment_size);
                self.bytes += r.cost();
                self.partials.push_back(Partial {
                    channel,
                    id,
                    deadline: now + self.timeout,
                    r,
                });
                self.partials.len() - 1
            }
        };
        let p = &mut self.partials[at];
        p.r.insert(index, bytes, fragment_size);
        if !p.r.is_complete() {
            return PartialOutcome::Stored;
        }
        let p = self.remove(at);
        PartialOutcome::Complete(p.r.into_data())
    }

    fn remove(&mut self, i: usize) -> Partial {
        let p = self.partials.remove(i).expect("index in range");
        self.bytes -= p.r.cost();
        p
    }

    /// Drops partial messages whose time is up; returns how many.
    pub(crate) fn expire(&mut self, now: Instant) -> u64 {
        let mut n = 0;
        // Deadlines are pushed in time order, so the expired ones are at the front.
        while self.partials.front().is_some_and(|p| p.deadline <= now) {
            self.remove(0);
            n += 1;
        }
        n
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.partials.front().map(|p| p.deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reassembles_out_of_order_and_ignores_duplicates() {
        let mut r = Reassembly::new(25, 10);
        assert_eq!(r.cost(), 25 + MESSAGE_OVERHEAD + 8);
        assert!(r.insert(2, b"UVWXY", 10));
        assert!(r.insert(0, b"ABCDEFGHIJ", 10));
        assert!(!r.insert(2, b"UVWXY", 10));
        assert!(!r.is_complete());
        assert!(r.insert(1, b"KLMNOPQRST", 10));
        assert!(r.is_complete());
        assert_eq!(r.into_data(), b"ABCDEFGHIJKLMNOPQRSTUVWXY");
    }

    #[test]
    fn runs_of_received_fragments() {
        let mut r = Reassembly::new(200 * 10, 10);
        for i in [0u16, 2, 3, 5, 6, 7, 63, 64, 65, 130, 199] {
            r.insert(i, &[0; 10], 10);
        }
        let runs: Vec<_> = r.runs().collect();
        assert_eq!(runs, [(0, 1), (2, 2), (5, 3), (63, 3), (130, 1), (199, 1)]);
    }

    #[test]
    fn pool_evicts_oldest_within_budget_and_expires() {
        let t0 = Instant::now();
        let mut evicted = 0;
        // Budget for two 100-byte messages (100 + 64 + 8 bytes each).
        let mut pool = UnreliablePartials::new(344, 8, Duration::from_secs(1));
        for id in 0..5u16 {
            let out = pool.insert(t0, 0, id, 100, 0, &[1; 10], 10, &mut evicted);
            assert_eq!(out, PartialOutcome::Stored);
            assert!(pool.bytes() <= 344);
        }
        assert_eq!((evicted, pool.bytes()), (3, 344));
        let big = pool.insert(t0, 0, 9, 1000, 0, &[1; 10], 10, &mut evicted);
        assert_eq!(big, PartialOutcome::TooLarge);
        assert_eq!(pool.deadline(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(pool.expire(t0 + Duration::from_secs(1)), 2);
        assert_eq!(pool.bytes(), 0);
    }
}
