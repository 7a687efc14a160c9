//! Link estimates: smoothed RTT and its variation, loss percentage, bandwidth.

use std::time::{Duration, Instant};

/// Smoothed round-trip time (EWMA) and its variation (EWMA of the absolute deviation).
#[derive(Debug, Clone)]
pub(crate) struct RttEstimator {
    smoothed: f64,
    variation: f64,
    alpha: f64,
    beta: f64,
    sampled: bool,
}

impl RttEstimator {
    /// An estimator that reports `initial` (and `initial / 2` variation) until the first sample.
    pub(crate) fn new(initial: Duration, alpha: f64, beta: f64) -> Self {
        let s = initial.as_secs_f64();
        Self {
            smoothed: s,
            variation: s / 2.0,
            alpha,
            beta,
            sampled: false,
        }
    }

    /// Folds in one round-trip sample. The first sample replaces the initial guess.
    pub(crate) fn sample(&mut self, rtt: Duration) {
        let r = rtt.as_secs_f64();
        if self.sampled {
            self.variation += self.beta * ((r - self.smoothed).abs() - self.variation);
            self.smoothed += self.alpha * (r - self.smoothed);
        } else {
            self.smoothed = r;
            self.variation = r / 2.0;
            self.sampled = true;
        }
    }

    /// The smoothed RTT.
    pub(crate) fn smoothed(&self) -> Duration {
        Duration::from_secs_f64(self.smoothed)
    }

    /// The RTT variation (jitter).
    pub(crate) fn variation(&self) -> Duration {
        Duration::from_secs_f64(self.variation)
    }
}

/// Loss percentage over the last `window` resolved packets (a ring of outcome bits).
#[derive(Debug, Clone)]
pub(crate) struct LossEstimator {
    bits: Box<[u64]>,
    window: usize,
    next: usize,
    filled: usize,
    lost: usize,
}

impl LossEstimator {
    pub(crate) fn new(window: usize) -> Self {
        let window = window.max(1);
        Self {
            bits: vec![0; window.div_ceil(64)].into_boxed_slice(),
            window,
            next: 0,
            filled: 0,
            lost: 0,
        }
    }

    /// Records one packet's outcome.
    pub(crate) fn record(&mut self, lost: bool) {
        let (word, bit) = (self.next / 64, 1u64 << (self.next % 64));
        if self.filled == self.window {
            if self.bits[word] & bit != 0 {
                self.lost -= 1;
            }
        } else {
            self.filled += 1;
        }
        if lost {
            self.bits[word] |= bit;
            self.lost += 1;
        } else {
            self.bits[word] &= !bit;
        }
        self.next = (self.next + 1) % self.window;
    }

    /// Percentage (0–100) of the recorded packets that were lost; 0 before any outcome.
    pub(crate) fn percent(&self) -> f64 {
        if self.filled == 0 {
            0.0
        } else {
            100.0 * self.lost as f64 / self.filled as f64
        }
    }
}

/// Bytes per second over the last complete measurement period.
#[derive(Debug, Clone)]
pub(crate) struct RateMeter {
    period: Duration,
    start: Instant,
    bytes: u64,
    rate: f64,
}

impl RateMeter {
    pub(crate) fn new(now: Instant, period: Duration) -> Self {
        Self {
            period,
            start: now,
            bytes: 0,
            rate: 0.0,
        }
    }

    /// Closes the current period if it has run its length.
    pub(crate) fn tick(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.start);
        if elapsed >= self.period {
            self.rate = self.bytes as f64 / elapsed.as_secs_f64();
            self.start = now;
            self.bytes = 0;
        }
    }

    /// Counts `bytes` at `now`.
    pub(crate) fn add(&mut self, now: Instant, bytes: usize) {
        self.tick(now);
        self.bytes += bytes as u64;
    }

    /// Bytes per second over the last complete period.
    pub(crate) fn rate(&self) -> f64 {
        self.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_converges_and_tracks_variation() {
        let mut e = RttEstimator::new(Duration::from_millis(250), 0.1, 0.25);
        e.sample(Duration::from_millis(100));
        assert_eq!(e.smoothed(), Duration::from_millis(100));
        for _ in 0..200 {
            e.sample(Duration::from_millis(200));
        }
        let ms = e.smoothed().as_secs_f64() * 1000.0;
        assert!((ms - 200.0).abs() < 0.01, "{ms}");
        assert!(e.variation() < Duration::from_millis(1));
        for i in 0..400 {
            e.sample(Duration::from_millis(if i % 2 == 0 { 150 } else { 250 }));
        }
        let var = e.variation().as_secs_f64() * 1000.0;
        assert!((var - 50.0).abs() < 5.0, "{var}");
    }

    #[test]
    fn loss_is_a_sliding_window() {
        let mut l = LossEstimator::new(100);
        assert_eq!(l.percent(), 0.0);
        for i in 0..100 {
            l.record(i % 10 == 0);
        }
        assert!((l.percent() - 10.0).abs() < 1e-9);
        for _ in 0..100 {
            l.record(false);
        }
        assert_eq!(l.percent(), 0.0);
        for _ in 0..50 {
            l.record(true);
        }
        assert!((l.percent() - 50.0).abs() < 1e-9);
    }

    #[test]
    fn rate_meter_reports_the_last_period() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(t0, Duration::from_secs(1));
        for ms in 0..1000 {
            m.add(t0 + Duration::from_millis(ms), 100);
        }
        assert_eq!(m.rate(), 0.0);
        m.tick(t0 + Duration::from_secs(1));
        assert!((m.rate() - 100_000.0).abs() < 1.0, "{}", m.rate());
    }
}
