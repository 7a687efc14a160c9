//! The daemon's timer heap: one entry per pending deadline, earliest first.
//!
//! Each socket's endpoint keeps its own per-connection timers (a heap inside the protocol
//! core), so this heap holds at most one live entry per socket plus pacing retries and link
//! deliveries: the cost of a tick does not grow with idle connections. Entries are never
//! removed early; an entry that was superseded is recognised and skipped when it comes due.
//! Link entries are only pushed for an instant earlier than every pending one, so each stands
//! for a distinct arrival of a datagram still in flight: their number never grows with the
//! datagrams sent.

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
    /// The link conditioner may release a datagram ([`Timers::arm_link`]).
    Link,
}

/// Entries allowed before the first compaction; the heap is allocated for them up front.
const MIN_LIMIT: usize = 64;

pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Timer)>>,
    /// The instants of the `Timer::Link` entries in the heap. Each is pushed only if earlier
    /// than all of them, so this is decreasing and its last is the next to fire.
    link: Vec<Instant>,
    /// Compact when the heap is longer: twice the live entries the last compaction kept.
    limit: usize,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::with_capacity(MIN_LIMIT + 1),
            link: Vec::new(),
            limit: MIN_LIMIT,
        }
    }
}

impl Timers {
    /// Adds an endpoint or pacing entry (link entries go through [`Timers::arm_link`]).
    pub(crate) fn push(&mut self, at: Instant, timer: Timer) {
        debug_assert_ne!(timer, Timer::Link);
        self.heap.push(Reverse((at, timer)));
    }

    /// Makes sure a `Timer::Link` entry fires at `at` (the conditioner's next delivery) or
    /// earlier. A pending one no later than `at` will do: when it fires, the driver delivers
    /// what is due and arms the next delivery again.
    pub(crate) fn arm_link(&mut self, at: Instant) {
        if self.link.last().is_none_or(|&earliest| at < earliest) {
            self.link.push(at);
            self.heap.push(Reverse((at, Timer::Link)));
        }
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
        let entry = self.heap.pop().map(|Reverse(entry)| entry)?;
        if entry.1 == Timer::Link {
            // Link instants are distinct, so the earliest link entry is the last one armed.
            debug_assert_eq!(self.link.last(), Some(&entry.0));
            self.link.pop();
        }
        Some(entry)
    }

    /// Link-conditioner entries in the heap, live or not (the regression test's measure).
    #[cfg(test)]
    pub(crate) fn link_entries(&self) -> usize {
        let link = |Reverse((_, timer)): &&Reverse<(Instant, Timer)>| *timer == Timer::Link;
        self.heap.iter().filter(link).count()
    }
}

#[cfg(test)]
mod tests {
    use super::{SocketKey, Timer, Timers};
    use crate::conditioner::LinkConfig;
    use crate::{Daemon, DaemonConfig, LinkSetup};
    use std::time::{Duration, Instant};

    #[test]
    fn arm_link_pushes_only_an_earlier_instant() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut timers = Timers::default();
        timers.arm_link(ms(20));
        timers.arm_link(ms(30)); // the entry at 20 fires first and re-arms
        timers.arm_link(ms(20));
        timers.arm_link(ms(10)); // a datagram overtook: it needs its own entry
        assert_eq!(timers.link_entries(), 2);
        assert_eq!(timers.pop_due(ms(15)), Some((ms(10), Timer::Link)));
        assert_eq!(timers.pop_due(ms(15)), None);
        timers.arm_link(ms(20)); // still pending
        assert_eq!(timers.link_entries(), 1);
        assert_eq!(timers.pop_due(ms(20)), Some((ms(20), Timer::Link)));
        timers.arm_link(ms(30));
        assert_eq!(timers.next(), Some(ms(30)));
    }

    /// The issue: every conditioned datagram pushed a `Timer::Link` entry and every firing
    /// pushed one more, so the heap grew with the datagrams sent and each turn fired all of
    /// them. Between turns each entry must stand for a distinct instant at which a datagram
    /// still in flight arrives, whatever the jitter and however `set_link` changes the delay.
    #[test]
    fn link_timer_entries_stay_bounded_by_datagrams_in_flight() {
        let jittery = |latency_ms, jitter_ms| LinkConfig {
            latency: Duration::from_millis(latency_ms),
            jitter: Duration::from_millis(jitter_ms),
            duplicate_percent: 5.0,
            ..LinkConfig::default()
        };
        let link = Some(LinkSetup {
            config: jittery(20, 5),
            seed: 3,
        });
        let daemon = Daemon::manual(DaemonConfig {
            link,
            ..DaemonConfig::default()
        })
        .unwrap();
        let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let client = daemon.connect(listener.local_addr()).unwrap();
        let server = loop {
            match listener.try_accept() {
                Ok(server) => break server,
                Err(_) => daemon.poll(Some(Duration::from_millis(1))).unwrap(),
            }
        };
        let (mut echoes, mut echoes_before_change) = (0, 0);
        let start = Instant::now();
        let mut fastest = [Duration::MAX; 2]; // before and after the change
        for i in 0..2_000 {
            if i == 1_000 {
                // Shorter than the datagrams in flight: new ones overtake them.
                assert!(daemon.set_link(jittery(2, 1)));
                echoes_before_change = echoes;
            }
            // Each packet carries its send time (µs since `start`) and whether it left after
            // the change, so the test measures round trips itself.
            let mut payload = [0u8; 100];
            payload[..8].copy_from_slice(&(start.elapsed().as_micros() as u64).to_le_bytes());
            payload[8] = u8::from(i >= 1_000);
            let _ = client.try_send(&payload);
            daemon.poll(Some(Duration::from_millis(1))).unwrap();
            while let Ok(packet) = server.try_recv() {
                let _ = server.try_send(&packet);
            }
            while let Ok(echo) = client.try_recv() {
                echoes += 1;
                let sent = u64::from_le_bytes(echo[..8].try_into().unwrap());
                let rtt = start.elapsed() - Duration::from_micros(sent);
                let after = usize::from(echo[8]);
                fastest[after] = fastest[after].min(rtt);
            }
            let (entries, in_flight) = daemon.shared.driver().link_load();
            assert!(
                entries <= in_flight,
                "{entries} link timers, {in_flight} in flight"
            );
        }
        assert!(echoes_before_change > 100, "{echoes_before_change}");
        assert!(echoes > echoes_before_change + 100, "{echoes}");
        // Only the shorter link explains this: the first one adds at least 30 ms to a round
        // trip (15 ms each way), the second at most 6 ms. The fastest round trips are compared,
        // as both also hold the time this loop takes to come round on a busy machine.
        let [before, after] = fastest;
        assert!(
            after + Duration::from_millis(15) < before,
            "fastest round trip {before:?} before the change, {after:?} after"
        );
    }

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
            let key = SocketKey {
                slot,
                generation: 0,
            };
            timers.push(at, Timer::Endpoint(key));
            timers.compact(|at, timer| match timer {
                Timer::Endpoint(key) => live[key.slot] == Some(at),
                _ => true,
            });
        }
        assert_eq!(timers.heap.capacity(), capacity, "the heap grew");
        let mut fired = Vec::new();
        while let Some((at, Timer::Endpoint(key))) =
            timers.pop_due(start + Duration::from_secs(200))
        {
            if live[key.slot] == Some(at) {
                fired.push(key.slot);
            }
        }
        fired.sort();
        assert_eq!(fired, [0, 1, 2, 3], "every live entry fires");
    }
}
