//! Congestion avoidance: Fiedler's good/bad mode (here), the token-bucket pacer (`pacer.rs`)
//! and the rate controller that finds what the path sustains (`rate.rs`, §6.4).
//!
//! The mode is driven by the smoothed RTT. A connection starts in good mode. Good → bad
//! happens as soon as the RTT exceeds the threshold. Bad → good happens only after `penalty`
//! of continuous good conditions. The penalty starts at 4 s, doubles (up to 60 s) when a good
//! period that followed a bad one lasted under 10 s before the relapse, and halves (down to
//! 1 s) for every 10 s spent in good mode. The connection's initial good period is not a
//! relapse: the first bad episode lasts the initial penalty, as in Fiedler's article.
//!
//! Time-driven transitions are computed exactly from instants rather than from per-frame
//! deltas: [`CongestionController::deadline`] says when the next one falls due.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use gudp::protocol::{Config, CongestionController, CongestionMode};
//! let t0 = Instant::now();
//! let mut c = CongestionController::new(t0, &Config::default());
//! // Bad at once: the first bad episode is no relapse, the penalty stays 4 s.
//! assert_eq!(c.on_rtt(t0, Duration::from_millis(400)), Some(CongestionMode::Bad));
//! assert_eq!(c.penalty(), Duration::from_secs(4));
//! c.on_rtt(t0 + Duration::from_secs(1), Duration::from_millis(50));
//! assert_eq!(c.deadline(), Some(t0 + Duration::from_secs(5)));
//! // Good at 5 s, bad again 1 s later (a good period under 10 s): the penalty doubles.
//! assert_eq!(c.advance(t0 + Duration::from_secs(5)), Some(CongestionMode::Good));
//! c.on_rtt(t0 + Duration::from_secs(6), Duration::from_millis(400));
//! assert_eq!(c.penalty(), Duration::from_secs(8));
//! ```

use std::time::{Duration, Instant};

mod pacer;
mod rate;

use super::config::Config;
pub use pacer::Pacer;
pub(crate) use rate::RateController;

pub use crate::core::status::CongestionMode;

/// Fiedler's good/bad mode state machine, evaluated on exact instants.
///
/// ```
/// # use std::time::{Duration, Instant};
/// # use gudp::protocol::{Config, CongestionController, CongestionMode};
/// # let t0 = Instant::now();
/// # let ms = Duration::from_millis;
/// let mut c = CongestionController::new(t0, &Config::default());
/// assert_eq!(c.on_rtt(t0, ms(100)), None); // good conditions: no change
/// assert_eq!(c.on_rtt(t0, ms(300)), Some(CongestionMode::Bad)); // above 250 ms: bad at once
/// assert_eq!(c.on_rtt(t0 + ms(500), ms(100)), None); // good again, but the penalty runs first
/// assert_eq!(c.advance(t0 + ms(500) + c.penalty()), Some(CongestionMode::Good));
/// ```
#[derive(Debug, Clone)]
pub struct CongestionController {
    mode: CongestionMode,
    penalty: Duration,
    /// Good mode: when it began after a bad episode (a relapse before `good_period` doubles
    /// the penalty); `None` in the initial good period, whose end is no relapse.
    good_since: Option<Instant>,
    /// Good mode: start of the current halving period.
    halving_from: Instant,
    /// Bad mode: since when conditions have been continuously good.
    good_conditions_since: Option<Instant>,
    threshold: Duration,
    min_penalty: Duration,
    max_penalty: Duration,
    good_period: Duration,
}

impl CongestionController {
    /// A controller in good mode with the initial penalty (its first drop to bad mode does
    /// not double it).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use gudp::protocol::{Config, CongestionController, CongestionMode};
    /// let t0 = Instant::now();
    /// let mut c = CongestionController::new(t0, &Config::default());
    /// // After 12 s of good conditions the 4 s penalty has halved once, to 2 s.
    /// let t = t0 + Duration::from_secs(12);
    /// assert_eq!(c.on_rtt(t, Duration::from_millis(300)), Some(CongestionMode::Bad));
    /// assert_eq!(c.penalty(), Duration::from_secs(2));
    /// // Good conditions from 13 s on: good again 2 s (the penalty) later.
    /// c.on_rtt(t + Duration::from_secs(1), Duration::from_millis(100));
    /// assert_eq!(c.deadline(), Some(t + Duration::from_secs(3)));
    /// assert_eq!(c.advance(t + Duration::from_secs(3)), Some(CongestionMode::Good));
    /// ```
    pub fn new(now: Instant, config: &Config) -> Self {
        Self {
            mode: CongestionMode::Good,
            penalty: config.initial_penalty,
            good_since: None,
            halving_from: now,
            good_conditions_since: None,
            threshold: config.bad_rtt_threshold,
            min_penalty: config.min_penalty,
            max_penalty: config.max_penalty,
            good_period: config.good_period,
        }
    }

    /// The current mode.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::protocol::{Config, CongestionController, CongestionMode};
    /// # let t0 = Instant::now();
    /// # let ms = Duration::from_millis;
    /// let mut c = CongestionController::new(t0, &Config::default());
    /// assert_eq!(c.mode(), CongestionMode::Good);
    /// c.on_rtt(t0, ms(400));
    /// assert_eq!(c.mode(), CongestionMode::Bad);
    /// ```
    pub fn mode(&self) -> CongestionMode {
        self.mode
    }

    /// The current penalty time (halvings earned in good mode are applied by
    /// [`advance`](Self::advance) and [`on_rtt`](Self::on_rtt)).
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::protocol::{Config, CongestionController, CongestionMode};
    /// # let t0 = Instant::now();
    /// # let ms = Duration::from_millis;
    /// let mut c = CongestionController::new(t0, &Config::default());
    /// assert_eq!(c.penalty(), Duration::from_secs(4)); // Config::initial_penalty
    /// c.advance(t0 + Duration::from_secs(20)); // two good periods: halved twice, to the 1 s floor
    /// assert_eq!(c.penalty(), Duration::from_secs(1));
    /// ```
    pub fn penalty(&self) -> Duration {
        self.penalty
    }

    /// When a time-driven transition (bad → good) next falls due.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::protocol::{Config, CongestionController, CongestionMode};
    /// # let t0 = Instant::now();
    /// # let ms = Duration::from_millis;
    /// let mut c = CongestionController::new(t0, &Config::default());
    /// assert_eq!(c.deadline(), None); // good mode: nothing pending
    /// c.on_rtt(t0, ms(300));
    /// assert_eq!(c.deadline(), None); // bad conditions: no end in sight
    /// c.on_rtt(t0 + ms(100), ms(100));
    /// assert_eq!(c.deadline(), Some(t0 + ms(100) + c.penalty()));
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        match (self.mode, self.good_conditions_since) {
            (CongestionMode::Bad, Some(since)) => since.checked_add(self.penalty),
            _ => None,
        }
    }

    /// Applies every time-driven change up to `now`. Returns the new mode if it changed.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::protocol::{Config, CongestionController, CongestionMode};
    /// # let t0 = Instant::now();
    /// # let ms = Duration::from_millis;
    /// let mut c = CongestionController::new(t0, &Config::default());
    /// c.on_rtt(t0, ms(300)); // bad
    /// c.on_rtt(t0, ms(100)); // good conditions from t0
    /// let due = c.deadline().unwrap();
    /// assert_eq!(c.advance(due - ms(1)), None);
    /// assert_eq!(c.advance(due), Some(CongestionMode::Good));
    /// ```
    pub fn advance(&mut self, now: Instant) -> Option<CongestionMode> {
        let before = self.mode;
        if let Some(due) = self.deadline() {
            if now >= due {
                self.mode = CongestionMode::Good;
                self.good_since = Some(due);
                self.halving_from = due;
                self.good_conditions_since = None;
            }
        }
        if self.mode == CongestionMode::Good {
            let elapsed = now.saturating_duration_since(self.halving_from);
            let periods = (elapsed.as_nanos() / self.good_period.as_nanos().max(1)) as u64;
            if periods > 0 {
                let halved = if periods >= 64 {
                    0
                } else {
                    self.penalty.as_nanos() >> periods
                };
                self.penalty = Duration::from_nanos(halved as u64).max(self.min_penalty);
                self.halving_from += self.good_period * periods.min(u32::MAX as u64) as u32;
            }
        }
        (self.mode != before).then_some(self.mode)
    }

    /// Feeds the latest smoothed RTT at `now`. Returns the new mode if it changed.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::protocol::{Config, CongestionController, CongestionMode};
    /// # let t0 = Instant::now();
    /// # let ms = Duration::from_millis;
    /// let mut c = CongestionController::new(t0, &Config::default());
    /// assert_eq!(c.on_rtt(t0, ms(250)), None); // at the threshold is still good
    /// assert_eq!(c.on_rtt(t0, ms(251)), Some(CongestionMode::Bad));
    /// assert_eq!(c.on_rtt(t0, ms(900)), None); // no change, nothing reported
    /// ```
    pub fn on_rtt(&mut self, now: Instant, rtt: Duration) -> Option<CongestionMode> {
        let before = self.mode;
        self.advance(now);
        let bad = rtt > self.threshold;
        match self.mode {
            CongestionMode::Good if bad => {
                self.mode = CongestionMode::Bad;
                let relapse = self
                    .good_since
                    .is_some_and(|since| now.saturating_duration_since(since) < self.good_period);
                if relapse {
                    self.penalty = (self.penalty * 2).min(self.max_penalty);
                }
                self.good_conditions_since = None;
            }
            CongestionMode::Good => {}
            CongestionMode::Bad if bad => self.good_conditions_since = None,
            CongestionMode::Bad => {
                self.good_conditions_since.get_or_insert(now);
            }
        }
        (self.mode != before).then_some(self.mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn fiedler_timeline() {
        let t0 = Instant::now();
        let config = Config::default();
        let mut c = CongestionController::new(t0, &config);
        let (good, bad) = (100 * MS, 300 * MS);
        // 20 s of good: penalty halves twice from 4 s to the 1 s floor.
        assert_eq!(c.on_rtt(t0 + secs(20), good), None);
        assert_eq!(c.penalty(), secs(1));
        // Relapse after a long good period: no doubling.
        assert_eq!(c.on_rtt(t0 + secs(20), bad), Some(CongestionMode::Bad));
        assert_eq!(c.penalty(), secs(1));
        assert_eq!(c.on_rtt(t0 + secs(21), good), None);
        assert_eq!(c.advance(t0 + secs(22) - MS), None);
        assert_eq!(c.advance(t0 + secs(22)), Some(CongestionMode::Good));
        // Relapse 3 s later: doubled to 2 s.
        assert_eq!(c.on_rtt(t0 + secs(25), bad), Some(CongestionMode::Bad));
        assert_eq!(c.penalty(), secs(2));
        // A bad sample in the middle restarts the good-conditions clock.
        c.on_rtt(t0 + secs(26), good);
        c.on_rtt(t0 + secs(27), bad);
        c.on_rtt(t0 + secs(28), good);
        assert_eq!(c.deadline(), Some(t0 + secs(30)));
        assert_eq!(c.advance(t0 + secs(31)), Some(CongestionMode::Good));
        // Doubling saturates at 60 s.
        let mut t = t0 + secs(31);
        for _ in 0..10 {
            c.on_rtt(t, bad);
            c.on_rtt(t, good);
            t = c.deadline().unwrap();
            c.advance(t);
        }
        assert_eq!(c.penalty(), secs(60));
    }
}
