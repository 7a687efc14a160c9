//! The token bucket that spaces application packets at the rate in force.

use std::time::{Duration, Instant};

use crate::protocol::config::PacingRate;

/// A token bucket (in its GCRA form: one "theoretical arrival time" instead of a token count,
/// so no floating point and no periodic refill).
///
/// ```
/// use std::time::{Duration, Instant};
/// use gudp::protocol::{PacingRate, Pacer};
/// let (t0, rate) = (Instant::now(), PacingRate::new(1000, 1));
/// let (mut pacer, mut now, mut sent) = (Pacer::new(), t0, 0);
/// while now < t0 + Duration::from_millis(100) {
///     match pacer.try_acquire(now, rate) {
///         Ok(()) => sent += 1,
///         Err(next) => now = next, // wait for the next token
///     }
/// }
/// assert_eq!(sent, 100); // 1000 per second for 100 ms
/// ```
#[derive(Debug, Clone, Default)]
pub struct Pacer {
    tat: Option<Instant>,
}

impl Pacer {
    /// A pacer with a full bucket.
    ///
    /// ```
    /// use gudp::protocol::{PacingRate, Pacer};
    /// let rate = PacingRate::new(1, 3);
    /// let (mut pacer, now) = (Pacer::new(), std::time::Instant::now());
    /// assert!((0..3).all(|_| pacer.try_acquire(now, rate).is_ok())); // a full bucket: the burst
    /// assert!(pacer.check(now, rate).is_err());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    fn interval(rate: PacingRate) -> Duration {
        Duration::from_secs(1) / rate.packets_per_second.max(1)
    }

    /// May one packet be sent at `now` under `rate`? Takes nothing: `Err` gives the instant
    /// when the next token is available.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use gudp::protocol::{PacingRate, Pacer};
    /// let (t0, rate) = (Instant::now(), PacingRate::new(10, 1));
    /// let mut pacer = Pacer::new();
    /// assert_eq!(pacer.check(t0, rate), Ok(()));
    /// assert_eq!(pacer.check(t0, rate), Ok(())); // checking takes nothing
    /// pacer.try_acquire(t0, rate).unwrap();
    /// assert_eq!(pacer.check(t0, rate), Err(t0 + Duration::from_millis(100)));
    /// ```
    pub fn check(&self, now: Instant, rate: PacingRate) -> Result<(), Instant> {
        self.next_tat(now, rate).map(|_| ())
    }

    /// Like [`check`](Self::check), but `Ok` takes the token.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use gudp::protocol::{PacingRate, Pacer};
    /// let (t0, rate) = (Instant::now(), PacingRate::new(10, 2));
    /// let mut p = Pacer::new();
    /// assert!(p.try_acquire(t0, rate).is_ok());
    /// assert!(p.try_acquire(t0, rate).is_ok());
    /// assert_eq!(p.check(t0, rate), Err(t0 + Duration::from_millis(100)));
    /// assert_eq!(p.try_acquire(t0, rate), Err(t0 + Duration::from_millis(100)));
    /// ```
    pub fn try_acquire(&mut self, now: Instant, rate: PacingRate) -> Result<(), Instant> {
        // Keep the clamped arrival time even on a refusal, so that the retry it names
        // succeeds (a no-op at a constant rate).
        self.tat = self.tat.map(|_| self.effective_tat(now, rate));
        self.tat = Some(self.next_tat(now, rate)?);
        Ok(())
    }

    /// The theoretical arrival time as seen at `now` under `rate`. At a constant rate it
    /// never runs more than a burst and one interval ahead; the clamp only matters after the
    /// rate rose (the rate controller moves it), so that time booked at the old, slower rate
    /// does not hold back the new one.
    fn effective_tat(&self, now: Instant, rate: PacingRate) -> Instant {
        let t = Self::interval(rate);
        let ahead = now.checked_add(t * rate.burst).unwrap_or(now);
        self.tat.map_or(now, |tat| tat.max(now).min(ahead))
    }

    /// The theoretical arrival time after sending one packet at `now`, or when sending is
    /// next allowed.
    fn next_tat(&self, now: Instant, rate: PacingRate) -> Result<Instant, Instant> {
        let t = Self::interval(rate);
        let tolerance = t * rate.burst.saturating_sub(1);
        let tat = self.effective_tat(now, rate);
        if now.checked_add(tolerance).is_some_and(|limit| tat > limit) {
            return Err(tat.checked_sub(tolerance).unwrap_or(now));
        }
        Ok(tat.checked_add(t).unwrap_or(tat))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacer_sustains_its_rate() {
        let t0 = Instant::now();
        let rate = PacingRate {
            packets_per_second: 100,
            burst: 5,
        };
        let mut p = Pacer::new();
        let mut sent = 0;
        let mut now = t0;
        while now < t0 + Duration::from_secs(10) {
            match p.try_acquire(now, rate) {
                Ok(()) => sent += 1,
                Err(at) => {
                    assert!(at > now);
                    now = at;
                }
            }
        }
        assert!((1000..=1005).contains(&sent), "{sent}");
    }

    /// Time booked at a slow rate does not hold back a faster one: after a burst of 100 at
    /// 10 packets/s (10 s booked), a rate of 1,000/s sends again within its own interval.
    #[test]
    fn a_faster_rate_takes_effect_at_once() {
        let t0 = Instant::now();
        let mut p = Pacer::new();
        let slow = PacingRate::new(10, 100);
        while p.try_acquire(t0, slow).is_ok() {}
        let fast = PacingRate::new(1_000, 100);
        let retry = p.try_acquire(t0, fast).unwrap_err();
        assert!(retry <= t0 + Duration::from_millis(1), "{:?}", retry - t0);
        assert_eq!(p.try_acquire(retry, fast), Ok(())); // and the retry it names succeeds
    }
}
