//! A link conditioner: a deterministic, seeded, in-memory network that carries datagrams
//! between addresses under simulated time, with latency, jitter, loss and duplication.
//!
//! Every datagram is delayed by `latency ± jitter` (uniform, never below zero), so jitter
//! larger than the send interval reorders packets. Each datagram is dropped with probability
//! `loss_percent`; a surviving datagram is duplicated with probability `duplicate_percent`
//! (the copy gets its own delay). An optional [`Bottleneck`] gives each destination a
//! FIFO queue served at a fixed packet rate, dropping what finds it full, so a sender faster
//! than the bottleneck sees queueing delay and then loss, as on a real link or a receiver's
//! socket buffer. The same seed and the same calls give the same deliveries.
//! The parameters can be changed at any time ([`LinkConditioner::set_config`]); datagrams
//! already in flight keep the delay they were given. Datagrams in flight wait in a heap
//! ordered by arrival, so sending and delivering one costs O(log n) in the datagrams in flight.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use gudp::conditioner::{LinkConditioner, LinkConfig};
//!
//! let t0 = Instant::now();
//! let mut config = LinkConfig::default();
//! config.latency = Duration::from_millis(50);
//! let mut link = LinkConditioner::new(config, 42);
//! let (a, b) = ("10.0.0.1:1".parse().unwrap(), "10.0.0.2:1".parse().unwrap());
//! link.send(t0, a, b, b"ping");
//! assert!(link.poll_deliver(t0).is_none());
//! let d = link.poll_deliver(t0 + Duration::from_millis(50)).unwrap();
//! assert_eq!((d.from, d.to, &d.data[..]), (a, b, &b"ping"[..]));
//! ```

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The conditions of a simulated link (applied to each datagram when it is sent).
///
/// ```
/// use std::time::Duration;
/// use gudp::conditioner::LinkConfig;
/// let mut wifi = LinkConfig::default();
/// wifi.latency = Duration::from_millis(30);
/// wifi.jitter = Duration::from_millis(10);
/// wifi.loss_percent = 2.0;
/// assert_eq!(wifi.duplicate_percent, 0.0);
/// assert_eq!(LinkConfig::default().latency, Duration::ZERO);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct LinkConfig {
    /// Base one-way delay.
    pub latency: Duration,
    /// Each datagram's delay is drawn uniformly from `latency - jitter ..= latency + jitter`
    /// (clamped at zero).
    pub jitter: Duration,
    /// Chance, in percent (0–100), that a datagram is lost.
    pub loss_percent: f64,
    /// Chance, in percent (0–100), that a delivered datagram is delivered twice.
    pub duplicate_percent: f64,
    /// A rate limit with a queue in front of each destination (none by default).
    pub bottleneck: Option<Bottleneck>,
}

/// A bottleneck in front of each destination: datagrams to one address leave its queue at
/// `packets_per_second`, in order, after any random loss; one that finds `queue` datagrams
/// already waiting is dropped (counted in [`LinkStats::overflowed`]). Latency and jitter are
/// added after the queue.
///
/// ```
/// use std::time::{Duration, Instant};
/// use gudp::conditioner::{Bottleneck, LinkConditioner, LinkConfig};
/// let t0 = Instant::now();
/// let mut config = LinkConfig::default();
/// config.bottleneck = Some(Bottleneck::new(1000, 2)); // 1 ms per datagram, 2 may wait
/// let mut link = LinkConditioner::new(config, 1);
/// let (a, b) = ("10.0.0.1:1".parse().unwrap(), "10.0.0.2:1".parse().unwrap());
/// for _ in 0..4 {
///     link.send(t0, a, b, b"x");
/// }
/// // The first is served at once, two wait, the fourth finds the queue full.
/// assert_eq!(link.stats().overflowed, 1);
/// assert_eq!(link.next_delivery(), Some(t0 + Duration::from_millis(1)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Bottleneck {
    /// Datagrams served per second (at least 1).
    pub packets_per_second: u32,
    /// Datagrams that may wait behind the one being served.
    pub queue: u32,
}

impl Bottleneck {
    /// A bottleneck serving `packets_per_second` with room for `queue` waiting datagrams.
    ///
    /// ```
    /// let b = gudp::conditioner::Bottleneck::new(5000, 100);
    /// assert_eq!((b.packets_per_second, b.queue), (5000, 100));
    /// ```
    pub const fn new(packets_per_second: u32, queue: u32) -> Self {
        Self {
            packets_per_second,
            queue,
        }
    }
}

impl Default for LinkConfig {
    /// A perfect link: no delay, no jitter, no loss, no duplicates.
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            loss_percent: 0.0,
            duplicate_percent: 0.0,
            bottleneck: None,
        }
    }
}

/// A datagram leaving the conditioner.
///
/// ```
/// # use std::time::{Duration, Instant};
/// # use gudp::conditioner::{LinkConditioner, LinkConfig};
/// # let t0 = Instant::now();
/// # let (a, b) = ("10.0.0.1:1".parse().unwrap(), "10.0.0.2:1".parse().unwrap());
/// let mut config = LinkConfig::default();
/// config.latency = Duration::from_millis(20);
/// let mut link = LinkConditioner::new(config, 1);
/// link.send(t0, a, b, b"hi");
/// let d: gudp::conditioner::Arrival = link.poll_deliver(t0 + Duration::from_secs(1)).unwrap();
/// assert_eq!(d.at, t0 + Duration::from_millis(20)); // when it arrived, not when it was polled
/// assert_eq!((d.from, d.to, d.data), (a, b, b"hi".to_vec()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// Sender address.
    pub from: SocketAddr,
    /// Receiver address.
    pub to: SocketAddr,
    /// When it arrives.
    pub at: Instant,
    /// The bytes.
    pub data: Vec<u8>,
}

#[derive(Debug)]
struct InFlight {
    at: Instant,
    order: u64,
    delivery: Arrival,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

/// SplitMix64: a tiny, fast, well-distributed seeded generator (Steele, Lea, Flood 2014).
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose sequence is fixed by `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform value in `[0, 1)`.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `true` with probability `percent / 100`.
    pub(crate) fn chance(&mut self, percent: f64) -> bool {
        self.next_f64() * 100.0 < percent
    }
}

/// Counts of what the conditioner did.
///
/// ```
/// # use std::time::{Duration, Instant};
/// # use gudp::conditioner::{LinkConditioner, LinkConfig};
/// # let t0 = Instant::now();
/// # let (a, b) = ("10.0.0.1:1".parse().unwrap(), "10.0.0.2:1".parse().unwrap());
/// # use gudp::conditioner::LinkStats;
/// let mut config = LinkConfig::default();
/// config.loss_percent = 100.0;
/// let mut link = LinkConditioner::new(config, 1);
/// link.send(t0, a, b, b"gone");
/// let stats: LinkStats = link.stats();
/// assert_eq!((stats.sent, stats.lost, stats.duplicated, stats.delivered), (1, 1, 0, 0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkStats {
    /// Datagrams handed to [`LinkConditioner::send`].
    pub sent: u64,
    /// Datagrams dropped (random loss and bottleneck overflow).
    pub lost: u64,
    /// Of those, datagrams that found their destination's bottleneck queue full.
    pub overflowed: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Datagrams delivered (copies included).
    pub delivered: u64,
}

/// A deterministic simulated network. See the [module documentation](self).
///
/// ```
/// # use std::time::{Duration, Instant};
/// # use gudp::conditioner::{LinkConditioner, LinkConfig};
/// # let t0 = Instant::now();
/// # let (a, b) = ("10.0.0.1:1".parse().unwrap(), "10.0.0.2:1".parse().unwrap());
/// // Every datagram is duplicated: each arrives twice.
/// let mut config = LinkConfig::default();
/// config.duplicate_percent = 100.0;
/// let mut link = LinkConditioner::new(config, 9);
/// link.send(t0, a, b, b"twice");
/// assert_eq!(link.poll_deliver(t0).unwrap().data, b"twice");
/// assert_eq!(link.poll_deliver(t0).unwrap().data, b"twice");
/// assert!(link.poll_deliver(t0).is_none());
/// ```
#[derive(Debug)]
pub struct LinkConditioner {
    config: LinkConfig,
    rng: SplitMix64,
    queue: BinaryHeap<Reverse<InFlight>>,
    order: u64,
    stats: LinkStats,
    /// Per destination: when its bottleneck finishes serving what it holds.
    busy_until: HashMap<SocketAddr, Instant>,
}

impl LinkConditioner {
    /// A conditioner with `config`, its randomness fixed by `seed`.
    ///
    /// ```
    /// use gudp::conditioner::{LinkConditioner, LinkConfig};
    /// let link = LinkConditioner::new(LinkConfig::default(), 42);
    /// assert_eq!(link.in_flight(), 0);
    /// assert_eq!(link.next_delivery(), None);
    /// ```
    pub fn new(config: LinkConfig, seed: u64) -> Self {
        Self {
            config,
            rng: SplitMix64::new(seed),
            queue: BinaryHeap::new(),
            order: 0,
            stats: LinkStats::default(),
            busy_until: HashMap::new(),
        }
    }

    /// The current conditions.
    ///
    /// ```
    /// use gudp::conditioner::{LinkConditioner, LinkConfig};
    /// let mut config = LinkConfig::default();
    /// config.loss_percent = 2.5;
    /// assert_eq!(LinkConditioner::new(config, 1).config(), config);
    /// ```
    pub fn config(&self) -> LinkConfig {
        self.config
    }

    /// Changes the conditions for datagrams sent from now on.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::conditioner::{LinkConditioner, LinkConfig};
    /// # let t0 = Instant::now();
    /// # let (a, b) = ("10.0.0.1:1".parse().unwrap(), "10.0.0.2:1".parse().unwrap());
    /// let mut link = LinkConditioner::new(LinkConfig::default(), 1);
    /// let mut slower = link.config();
    /// slower.latency = Duration::from_millis(80);
    /// link.set_config(slower);
    /// link.send(t0, a, b, b"x");
    /// assert_eq!(link.next_delivery(), Some(t0 + Duration::from_millis(80)));
    /// ```
    pub fn set_config(&mut self, config: LinkConfig) {
        self.config = config;
    }

    /// What the conditioner did so far.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::conditioner::{LinkConditioner, LinkConfig};
    /// # let t0 = Instant::now();
    /// # let (a, b) = ("10.0.0.1:1".parse().unwrap(), "10.0.0.2:1".parse().unwrap());
    /// let mut link = LinkConditioner::new(LinkConfig::default(), 1);
    /// link.send(t0, a, b, b"x");
    /// assert_eq!((link.stats().sent, link.stats().delivered), (1, 0));
    /// link.poll_deliver(t0).unwrap();
    /// assert_eq!(link.stats().delivered, 1);
    /// ```
    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    /// Datagrams in flight.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::conditioner::{LinkConditioner, LinkConfig};
    /// # let t0 = Instant::now();
    /// # let (a, b) = ("10.0.0.1:1".parse().unwrap(), "10.0.0.2:1".parse().unwrap());
    /// let mut config = LinkConfig::default();
    /// config.latency = Duration::from_millis(10);
    /// let mut link = LinkConditioner::new(config, 1);
    /// link.send(t0, a, b, b"one");
    /// link.send(t0 + Duration::from_millis(5), a, b, b"two");
    /// assert_eq!(link.in_flight(), 2);
    /// link.poll_deliver(t0 + Duration::from_millis(10)).unwrap();
    /// assert_eq!(link.in_flight(), 1);
    /// ```
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    fn delay(&mut self) -> Duration {
        let LinkConfig {
            latency, jitter, ..
        } = self.config;
        if jitter.is_zero() {
            return latency;
        }
        // Uniform offset in -jitter..=+jitter, in nanoseconds.
        let span = u64::try_from(jitter.as_nanos().saturating_mul(2)).unwrap_or(u64::MAX);
        let offset = self.rng.next_u64() % span.saturating_add(1);
        let base = latency.saturating_add(Duration::from_nanos(offset));
        base.saturating_sub(jitter)
    }

    /// When a datagram to `to` sent at `now` leaves the bottleneck, or `None` if its queue is
    /// full.
    fn pass_bottleneck(&mut self, now: Instant, to: SocketAddr) -> Option<Instant> {
        let Some(b) = self.config.bottleneck else {
            return Some(now);
        };
        let service = Duration::from_secs(1) / b.packets_per_second.max(1);
        let busy = self.busy_until.entry(to).or_insert(now);
        let start = (*busy).max(now);
        let waiting = start.saturating_duration_since(now).as_nanos() / service.as_nanos().max(1);
        if waiting > u128::from(b.queue) {
            return None;
        }
        *busy = start + service;
        Some(start + service)
    }

    fn enqueue(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, data: Vec<u8>) {
        let Some(departs) = self.pass_bottleneck(now, to) else {
            self.stats.lost += 1;
            self.stats.overflowed += 1;
            return;
        };
        let at = departs + self.delay();
        self.order += 1;
        let delivery = Arrival { from, to, at, data };
        self.queue.push(Reverse(InFlight {
            at,
            order: self.order,
            delivery,
        }));
    }

    /// Puts a datagram from `from` to `to` on the link at `now`.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::conditioner::{LinkConditioner, LinkConfig};
    /// # let t0 = Instant::now();
    /// # let (a, b) = ("10.0.0.1:1".parse().unwrap(), "10.0.0.2:1".parse().unwrap());
    /// let mut config = LinkConfig::default();
    /// config.loss_percent = 50.0;
    /// let mut link = LinkConditioner::new(config, 5);
    /// for i in 0..1000u32 {
    ///     link.send(t0, a, b, &i.to_be_bytes());
    /// }
    /// let stats = link.stats();
    /// assert_eq!(link.in_flight() as u64, stats.sent - stats.lost);
    /// assert!((400..600).contains(&stats.lost), "{stats:?}");
    /// ```
    pub fn send(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, datagram: &[u8]) {
        self.stats.sent += 1;
        if self.rng.chance(self.config.loss_percent) {
            self.stats.lost += 1;
            return;
        }
        if self.rng.chance(self.config.duplicate_percent) {
            self.stats.duplicated += 1;
            self.enqueue(now, from, to, datagram.to_vec());
        }
        self.enqueue(now, from, to, datagram.to_vec());
    }

    /// When the next datagram arrives.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::conditioner::{LinkConditioner, LinkConfig};
    /// # let t0 = Instant::now();
    /// # let (a, b) = ("10.0.0.1:1".parse().unwrap(), "10.0.0.2:1".parse().unwrap());
    /// let mut config = LinkConfig::default();
    /// config.latency = Duration::from_millis(30);
    /// let mut link = LinkConditioner::new(config, 1);
    /// assert_eq!(link.next_delivery(), None);
    /// link.send(t0, a, b, b"x");
    /// assert_eq!(link.next_delivery(), Some(t0 + Duration::from_millis(30)));
    /// ```
    pub fn next_delivery(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse(f)| f.at)
    }

    /// The next datagram due at or before `now`, in arrival order (ties in send order).
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::conditioner::{LinkConditioner, LinkConfig};
    /// # let t0 = Instant::now();
    /// # let (a, b) = ("10.0.0.1:1".parse().unwrap(), "10.0.0.2:1".parse().unwrap());
    /// let mut config = LinkConfig::default();
    /// config.latency = Duration::from_millis(100);
    /// let mut link = LinkConditioner::new(config, 1);
    /// link.send(t0, a, b, b"slow");
    /// let mut faster = config;
    /// faster.latency = Duration::from_millis(10);
    /// link.set_config(faster);
    /// link.send(t0, a, b, b"fast");
    /// let later = t0 + Duration::from_secs(1);
    /// assert_eq!(link.poll_deliver(later).unwrap().data, b"fast"); // arrival order
    /// assert_eq!(link.poll_deliver(later).unwrap().data, b"slow");
    /// assert!(link.poll_deliver(later).is_none());
    /// ```
    pub fn poll_deliver(&mut self, now: Instant) -> Option<Arrival> {
        if self.next_delivery()? > now {
            return None;
        }
        let Reverse(f) = self.queue.pop()?;
        self.stats.delivered += 1;
        Some(f.delivery)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_its_published_sequence() {
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        let (mut x, mut y) = (SplitMix64::new(7), SplitMix64::new(7));
        assert_eq!(x.next_u64(), y.next_u64());
        assert_ne!(SplitMix64::new(8).next_u64(), SplitMix64::new(7).next_u64());
    }

    fn addrs() -> (SocketAddr, SocketAddr) {
        ("10.0.0.1:1".parse().unwrap(), "10.0.0.2:2".parse().unwrap())
    }

    #[test]
    fn same_seed_same_outcome_and_rates_match() {
        let t0 = Instant::now();
        let (a, b) = addrs();
        let config = LinkConfig {
            latency: Duration::from_millis(100),
            jitter: Duration::from_millis(50),
            loss_percent: 20.0,
            duplicate_percent: 10.0,
            bottleneck: None,
        };
        let run = |seed| {
            let mut l = LinkConditioner::new(config, seed);
            for i in 0..10_000u32 {
                l.send(
                    t0 + Duration::from_millis(u64::from(i)),
                    a,
                    b,
                    &i.to_be_bytes(),
                );
            }
            let mut out = Vec::new();
            while let Some(d) = l.poll_deliver(t0 + Duration::from_secs(100)) {
                out.push((d.at, d.data));
            }
            (l.stats(), out)
        };
        let (stats, out) = run(7);
        assert_eq!(run(7), (stats, out.clone()));
        assert_ne!(run(8).1, out);
        assert!((1900..2100).contains(&stats.lost), "{stats:?}");
        assert!((700..900).contains(&stats.duplicated), "{stats:?}");
        assert_eq!(stats.delivered as usize, out.len());
        // Arrival times are ordered, within latency ± jitter of their send time, and jitter
        // reorders the payloads.
        assert!(out.windows(2).all(|w| w[0].0 <= w[1].0));
        let mut reordered = 0;
        for w in out.windows(2) {
            let (x, y) = (
                u32::from_be_bytes(w[0].1[..].try_into().unwrap()),
                u32::from_be_bytes(w[1].1[..].try_into().unwrap()),
            );
            if y < x {
                reordered += 1;
            }
        }
        assert!(reordered > 1000, "{reordered}");
        for (at, data) in &out {
            let sent = t0
                + Duration::from_millis(u64::from(u32::from_be_bytes(
                    data[..].try_into().unwrap(),
                )));
            let d = *at - sent;
            assert!(
                d >= Duration::from_millis(50) && d <= Duration::from_millis(150),
                "{d:?}"
            );
        }
    }

    #[test]
    fn config_changes_apply_to_new_datagrams() {
        let t0 = Instant::now();
        let (a, b) = addrs();
        let mut l = LinkConditioner::new(
            LinkConfig {
                latency: Duration::from_millis(300),
                ..LinkConfig::default()
            },
            1,
        );
        l.send(t0, a, b, b"slow");
        l.set_config(LinkConfig {
            latency: Duration::from_millis(10),
            ..l.config()
        });
        l.send(t0, a, b, b"fast");
        assert_eq!(l.in_flight(), 2);
        assert_eq!(l.next_delivery(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(
            l.poll_deliver(t0 + Duration::from_secs(1)).unwrap().data,
            b"fast"
        );
        assert_eq!(
            l.poll_deliver(t0 + Duration::from_secs(1)).unwrap().data,
            b"slow"
        );
        assert!(l.poll_deliver(t0 + Duration::from_secs(1)).is_none());
    }
}
