//! The rate controller: finds the pacing rate the path sustains and sits just under it
//! (§6.4). Fed by what the packet layer already knows — each ack, each loss, each RTT sample
//! with the peer's ack delay taken out — and told when pacing held a payload back.
//!
//! It is AIMD on the pacing rate, driven by two congestion signals: a lost packet, and a
//! standing queue (the smallest RTT of the last few samples above the path's minimum by more
//! than the target). One loss per round trip, and one standing queue until it drains, is
//! acted on: the rate drops to a fraction of what the path delivered in the last rounds. Growth
//! happens once per round, only in rounds where pacing actually held the sender back (an
//! application sending less than the rate learns nothing about the path) and no queue of
//! ours stands: doubling until the first signal, then an additive step that doubles each
//! round that grows (up to 8 packets per round), or half the gap back to the regain point
//! (halfway between a cut and what the path carried when it came) per control round trip,
//! whichever is more.

use std::time::{Duration, Instant};

use crate::protocol::config::Config;

/// Rate before anything is known (the old fixed good-mode rate, which every path we ever
/// ran on carried).
const INITIAL_RATE: f64 = 2_000.0;
/// Decrease on a loss: to 0.7 of the delivered rate (CUBIC's β; NewReno's 0.5 empties a
/// shallow queue and wastes a third of the link on average).
const LOSS_DECREASE: f64 = 0.7;
/// Decrease on a standing queue above the target: gentler, as no packet was lost yet.
const DELAY_DECREASE: f64 = 0.85;
/// The shortest round: loopback round trips are tens of microseconds, and per-round growth
/// on that clock would outrun every signal.
const MIN_ROUND: Duration = Duration::from_millis(1);
/// Growth is measured on a round trip of this length at least: on loopback (tens of
/// microseconds) the receiver's socket buffer holds a few milliseconds of packets, and growth
/// on the real round trip would overflow it before any signal came back.
const GROWTH_RTT: Duration = Duration::from_millis(10);
/// The minimum RTT is the smallest sample over the last 5 to 10 s, so a path that got longer
/// is learned within 10 s and a queue that never drains is not taken for the path.
const MIN_RTT_WINDOW: Duration = Duration::from_secs(5);
/// The standing RTT is the smallest sample over the last half smoothed RTT, at least this
/// (Copa's filter): a queue that persists, not one late ack or one descheduled thread.
const STANDING_WINDOW: Duration = Duration::from_millis(10);
/// The growth step after slow start, in packets per round, stops doubling here (BIC's
/// largest increment): 8 packets per 1 ms round on loopback, 400 packets/s per round on a
/// 20 ms path. An absolute step, not a fraction of the rate, so a small flow grows as fast
/// as a large one and shares converge.
const MAX_STEP: f64 = 8.0;
/// The queue-delay target is at least this multiple of the path's jitter (the smoothed
/// difference between consecutive RTT samples, RFC 3550's interarrival jitter): a queue
/// moves the RTT slowly, per-datagram jitter from sample to sample, and the smallest of a
/// few jittered samples sits well above the smallest of thousands.
const JITTER_TARGET: u32 = 3;
/// A standing queue still there this many rounds after the cut it caused triggers another.
const REARM_ROUNDS: u32 = 4;
/// One decrease takes the rate to at least half its value times the factor, whatever the
/// delivered rate says: early rounds measure few packets.
const MIN_BASE_FRACTION: f64 = 0.5;
/// Growth never takes the rate above this multiple of what the last rounds delivered: a
/// sender that cannot use its rate (its own CPU, timer granularity) must not inflate it.
const MAX_OVER_DELIVERED: f64 = 2.0;

/// The smallest sample over the last one to two windows (two buckets: no allocation).
#[derive(Debug, Clone, Default)]
struct WindowedMin {
    current: Option<(Instant, Duration)>,
    previous: Option<Duration>,
}

impl WindowedMin {
    fn update(&mut self, now: Instant, sample: Duration, window: Duration) {
        match &mut self.current {
            Some((start, min)) if now.saturating_duration_since(*start) < window => {
                *min = (*min).min(sample);
            }
            current => {
                let fresh =
                    current.filter(|(start, _)| now.saturating_duration_since(*start) < window * 2);
                self.previous = fresh.map(|(_, min)| min);
                *current = Some((now, sample));
            }
        }
    }

    fn get(&self) -> Option<Duration> {
        let current = self.current.map(|(_, min)| min);
        match (current, self.previous) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Per-connection rate controller (sans-IO: every call takes `now`).
#[derive(Debug, Clone)]
pub(crate) struct RateController {
    /// Packets per second, within `floor..=ceiling`.
    rate: f64,
    floor: f64,
    ceiling: f64,
    target: Duration,
    min_rtt: WindowedMin,
    standing: WindowedMin,
    /// Smoothed |difference| between consecutive RTT samples, and the last sample.
    jitter: Duration,
    last_sample: Option<Duration>,
    slow_start: bool,
    /// Growth step after slow start, in packets per round: 1 after a decrease, doubling
    /// each round that grows. The same for every flow, so flows that share a bottleneck
    /// converge to equal shares (each decrease takes a fraction, each increase a fixed step).
    step: f64,
    /// Signals about packets sent before this sequence belong to the last decrease.
    recovery_until: u64,
    /// Halfway from the last decrease's result back to its base (what the path carried when
    /// the signal came): growth closes half the gap to it per control round trip, then
    /// probes on additively from there (0 when the cut had no base to regain).
    regain: f64,
    round_start: Instant,
    /// The round ends when a packet sent at or after this sequence is acked.
    round_end: u64,
    round_acked: u64,
    round_sent: u64,
    /// Pacing held a payload back during this round.
    round_limited: bool,
    round_congested: bool,
    /// The last standing RTT was within the target of the minimum: no queue of ours.
    queue_ok: bool,
    /// A standing queue may trigger a decrease: set whenever the queue is within the
    /// target, spent by the decrease, so one queue costs one cut however long it drains.
    delay_armed: bool,
    rounds_since_cut: u32,
    /// Acked packets per second in the last two complete rounds, and whether pacing held
    /// the sender back in the last one (else the figure says what the application sent).
    delivered: [f64; 2],
    last_round_limited: bool,
    /// Bad mode: `bad_rate` caps the rate and is the reaction to the path, so signals are
    /// ignored (a 400 ms round trip against a 50 ms minimum would otherwise cut the rate to
    /// the floor, and the game would be held back for seconds once the path recovered).
    held: bool,
    /// Packets per second the connection sent in the last complete round.
    sent: f64,
}

impl RateController {
    pub(crate) fn new(now: Instant, config: &Config) -> Self {
        let ceiling = f64::from(config.good_rate.packets_per_second);
        let floor = f64::from(config.min_rate).min(ceiling);
        Self {
            rate: INITIAL_RATE.clamp(floor, ceiling),
            floor,
            ceiling,
            target: config.queue_delay_target,
            min_rtt: WindowedMin::default(),
            standing: WindowedMin::default(),
            jitter: Duration::ZERO,
            last_sample: None,
            slow_start: true,
            step: 1.0,
            recovery_until: 0,
            regain: 0.0,
            round_start: now,
            round_end: 0,
            round_acked: 0,
            round_sent: 0,
            round_limited: false,
            round_congested: false,
            queue_ok: true,
            delay_armed: true,
            rounds_since_cut: 0,
            delivered: [0.0; 2],
            last_round_limited: false,
            sent: 0.0,
            held: false,
        }
    }

    /// The rate in force, in packets per second.
    pub(crate) fn rate(&self) -> f64 {
        self.rate
    }

    /// Bad mode began (`true`) or ended: signals are ignored meanwhile.
    pub(crate) fn hold(&mut self, held: bool) {
        self.held = held;
    }

    /// Whether the rate may move at all (the floor is below the ceiling).
    pub(crate) fn adapts(&self) -> bool {
        self.floor < self.ceiling
    }

    /// An ack-eliciting packet was sent.
    pub(crate) fn on_sent(&mut self) {
        self.round_sent += 1;
    }

    /// Pacing refused a payload: the rate, not the application, limits this round.
    pub(crate) fn on_paced(&mut self) {
        self.round_limited = true;
    }

    /// Payload or keepalive `seq` was acked at `now`; `rtt` is its RTT sample (ack delay
    /// taken out) if it gave one, `srtt` the smoothed RTT, `next_seq` the next sequence the
    /// connection will send.
    pub(crate) fn on_ack(
        &mut self,
        now: Instant,
        seq: u64,
        rtt: Option<Duration>,
        srtt: Duration,
        next_seq: u64,
    ) {
        self.round_acked += 1;
        if let Some(sample) = rtt {
            self.min_rtt.update(now, sample, MIN_RTT_WINDOW);
            self.standing
                .update(now, sample, (srtt / 2).max(STANDING_WINDOW));
            if let Some(last) = self.last_sample.replace(sample) {
                let delta = sample.abs_diff(last);
                // EWMA 1/16, as RFC 3550.
                self.jitter = (self.jitter * 15 + delta) / 16;
            }
            let target = self.target.max(self.jitter * JITTER_TARGET);
            if let (Some(standing), Some(min)) = (self.standing.get(), self.min_rtt.get()) {
                self.queue_ok = standing.saturating_sub(min) <= target;
                if self.queue_ok {
                    self.delay_armed = true;
                } else if self.delay_armed && self.congestion(seq, next_seq, DELAY_DECREASE) {
                    self.delay_armed = false;
                }
            }
        }
        if seq >= self.round_end && now.saturating_duration_since(self.round_start) >= MIN_ROUND {
            self.end_round(now, next_seq);
        }
    }

    /// Packet `seq` was lost (or is missing from acks that name three newer packets).
    pub(crate) fn on_loss(&mut self, seq: u64, next_seq: u64) {
        let _ = self.congestion(seq, next_seq, LOSS_DECREASE);
    }

    fn delivered(&self) -> f64 {
        self.delivered[0].max(self.delivered[1])
    }

    /// The control loop's round trip: the path's, at least `GROWTH_RTT`.
    fn control_rtt(&self) -> Duration {
        self.min_rtt.get().unwrap_or(GROWTH_RTT).max(GROWTH_RTT)
    }

    /// Acts on a congestion signal about packet `seq`; `false` if it belongs to the last
    /// decrease (the packet was sent before it took effect).
    fn congestion(&mut self, seq: u64, next_seq: u64, factor: f64) -> bool {
        if seq < self.recovery_until || self.held {
            return false;
        }
        let delivered = self.delivered();
        let limited = self.last_round_limited || self.round_limited;
        self.rate = if limited && delivered > 0.0 {
            // What the path carried while the sender pushed it: under a rate far above the
            // bottleneck (slow start's overshoot) the delivered rate is the bottleneck's.
            let base = self.rate.min(delivered).max(self.rate * MIN_BASE_FRACTION);
            self.regain = base * (1.0 + factor) / 2.0;
            base * factor
        } else {
            // The application sends less than the rate: cut, but keep room for twice what it
            // sends, so that jitter or random loss never throttles a game's steady stream
            // (bad mode is what tells a game to send less).
            self.regain = 0.0;
            (self.rate * factor).max(delivered.max(self.sent) * MAX_OVER_DELIVERED)
        }
        .clamp(self.floor, self.ceiling);
        self.slow_start = false;
        self.step = 1.0;
        self.recovery_until = next_seq;
        self.round_congested = true;
        self.rounds_since_cut = 0;
        true
    }

    fn end_round(&mut self, now: Instant, next_seq: u64) {
        let elapsed = now
            .saturating_duration_since(self.round_start)
            .as_secs_f64();
        self.delivered = [self.delivered[1], self.round_acked as f64 / elapsed];
        self.sent = self.round_sent as f64 / elapsed;
        // Growth only while pacing binds and nothing went wrong this round.
        if self.round_limited && !self.round_congested {
            let grown = if self.slow_start {
                self.rate * 2.0
            } else {
                // `step` packets per path round trip, per round trip of time: growth per second
                // depends on the path, not on how long this flow's acks took (a slow flow's
                // acks wait for the peer's ack delay), so flows on one path grow alike.
                let rtt = self.control_rtt().as_secs_f64();
                let probe = self.step * elapsed / (rtt * rtt);
                self.step = (self.step * 2.0).min(MAX_STEP);
                // Below the regain point: the path carried more a moment ago. Half the gap
                // per control round trip (BIC's binary search), so one cut costs a few round
                // trips, not the seconds additive steps would take at a high rate.
                let back = (self.regain - self.rate).max(0.0) / 2.0 * (elapsed / rtt).min(1.0);
                self.rate + probe.max(back)
            };
            let cap = self.rate.max(self.delivered() * MAX_OVER_DELIVERED);
            self.rate = grown.min(cap).clamp(self.floor, self.ceiling);
        }
        self.last_round_limited = self.round_limited;
        // A queue that has not drained within a few rounds of its cut is a new one.
        self.rounds_since_cut += 1;
        if self.rounds_since_cut >= REARM_ROUNDS {
            self.delay_armed = true;
        }
        self.round_start = now;
        self.round_end = next_seq;
        self.round_acked = 0;
        self.round_sent = 0;
        self.round_limited = false;
        self.round_congested = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn windowed_min_forgets_after_two_windows() {
        let t0 = Instant::now();
        let mut m = WindowedMin::default();
        m.update(t0, 10 * MS, 100 * MS);
        m.update(t0 + 50 * MS, 20 * MS, 100 * MS);
        assert_eq!(m.get(), Some(10 * MS));
        m.update(t0 + 150 * MS, 30 * MS, 100 * MS); // new bucket, the old one still counts
        assert_eq!(m.get(), Some(10 * MS));
        m.update(t0 + 260 * MS, 40 * MS, 100 * MS); // the 10 ms bucket is gone
        assert_eq!(m.get(), Some(30 * MS));
        m.update(t0 + 600 * MS, 50 * MS, 100 * MS); // a long gap forgets everything older
        assert_eq!(m.get(), Some(50 * MS));
    }

    /// A sender held back by pacing on a clean path doubles per round; one loss cuts it to
    /// 0.7 of what the path delivered, and a second loss of the same round trip does not.
    #[test]
    fn slow_start_then_one_decrease_per_round() {
        let t0 = Instant::now();
        let mut c = RateController::new(t0, &Config::default());
        let rtt = 10 * MS;
        let (mut now, mut seq) = (t0, 0u64);
        for _ in 0..3 {
            // One round: 20 packets acked over 10 ms, pacing refusing some.
            for _ in 0..20 {
                c.on_paced();
                now += rtt / 20;
                c.on_ack(now, seq, Some(rtt), rtt, seq + 20);
                seq += 1;
            }
        }
        // Doubling, but never above twice what the rounds delivered (2,000/s).
        assert_eq!(c.rate(), 4_000.0);
        // Delivered 2,000/s (20 per 10 ms): the loss sets 0.7 × 2,000.
        c.on_loss(seq, seq + 20);
        assert!((c.rate() - 1_400.0).abs() < 1.0, "{}", c.rate());
        c.on_loss(seq + 1, seq + 20);
        assert!((c.rate() - 1_400.0).abs() < 1.0, "{}", c.rate());
    }

    /// A queue standing above the target is a signal; jitter that leaves low samples is not.
    /// (The sender is held back by pacing throughout, delivering 1,000 packets a second:
    /// the rate stays at its cap of twice that until the queue stands.)
    #[test]
    fn standing_queue_is_a_signal_jitter_is_not() {
        let t0 = Instant::now();
        let mut c = RateController::new(t0, &Config::default());
        let before = c.rate();
        let mut now = t0;
        for i in 0..100u64 {
            c.on_paced();
            now += MS;
            // Every other sample is late by 50 ms: the minimum over the window stays low.
            let rtt = if i % 2 == 0 { 20 * MS } else { 70 * MS };
            c.on_ack(now, i, Some(rtt), 20 * MS, i + 1);
        }
        assert_eq!(c.rate(), before);
        for i in 100..200u64 {
            c.on_paced();
            now += MS;
            c.on_ack(now, i, Some(40 * MS), 40 * MS, i + 1);
        }
        assert!(c.rate() < before, "{}", c.rate());
    }

    /// An application that sends less than its rate never grows it.
    #[test]
    fn no_growth_without_pacing() {
        let t0 = Instant::now();
        let mut c = RateController::new(t0, &Config::default());
        let mut now = t0;
        for i in 0..1_000u64 {
            now += 10 * MS;
            c.on_ack(now, i, Some(5 * MS), 5 * MS, i + 1);
        }
        assert_eq!(c.rate(), INITIAL_RATE);
    }
}
