//! The resend timeout: TCP's RTO (RFC 6298) over per-packet RTT samples.
//!
//! Samples are unambiguous here (Karn's problem does not arise): every transmission is its
//! own packet with its own id, so an ack names exactly one send time.
//!
//! ```
//! use std::time::Duration;
//! use gudp::message::Rto;
//! let ms = Duration::from_millis;
//! let mut rto = Rto::new(ms(250), ms(20), ms(10_000));
//! rto.sample(ms(100)); // the first sample: srtt 100, rttvar 50
//! assert_eq!(rto.timeout(), ms(310)); // srtt + 4 × rttvar + the peer's ack delay
//! ```

use std::time::Duration;

/// The smallest margin for RTT variation (QUIC's timer granularity).
const GRANULARITY: Duration = Duration::from_millis(1);
/// How late a peer may ack beyond the smoothed RTT: the packet layer's default
/// `max_ack_delay`.
const ACK_DELAY: Duration = Duration::from_millis(10);

/// Smoothed RTT and its variation, and the timeout derived from them.
///
/// ```
/// use std::time::Duration;
/// use gudp::message::Rto;
/// let ms = Duration::from_millis;
/// let mut rto = Rto::new(ms(250), ms(20), ms(10_000));
/// rto.set(ms(40), ms(1)); // from the packet layer's estimate
/// assert_eq!(rto.timeout(), ms(54));
/// assert_eq!(rto.backed_off(3), ms(432)); // doubled per expiry, capped at the maximum
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rto {
    srtt: Duration,
    rttvar: Duration,
    /// How much later than the smoothed RTT acks that only an ack frame could give arrive
    /// (a decaying maximum): the room reordering needs on top of the RTT.
    reorder: Duration,
    sampled: bool,
    min: Duration,
    max: Duration,
}

impl Rto {
    /// An estimator assuming `initial` RTT (variation half of it) and clamping the timeout to
    /// `min..=max`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gudp::message::Rto;
    /// let rto = Rto::new(Duration::from_millis(250), Duration::from_millis(20), Duration::from_secs(10));
    /// assert_eq!(rto.timeout(), Duration::from_millis(760));
    /// ```
    pub fn new(initial: Duration, min: Duration, max: Duration) -> Self {
        Self {
            srtt: initial,
            rttvar: initial / 2,
            reorder: Duration::ZERO,
            sampled: false,
            min,
            max: max.max(min),
        }
    }

    /// Folds in one RTT sample (RFC 6298: α = 1/8, β = 1/4).
    ///
    /// ```
    /// use std::time::Duration;
    /// use gudp::message::Rto;
    /// let ms = Duration::from_millis;
    /// let mut rto = Rto::new(ms(250), ms(1), ms(10_000));
    /// rto.sample(ms(100));
    /// rto.sample(ms(100));
    /// assert_eq!(rto.smoothed(), ms(100));
    /// assert_eq!(rto.variation(), ms(37) + Duration::from_micros(500));
    /// ```
    pub fn sample(&mut self, rtt: Duration) {
        // The reorder room fades unless reordered samples keep renewing it (slowly: a
        // reordered burst gives dozens of packet acks for each ack frame).
        self.reorder -= self.reorder / 64;
        if !self.sampled {
            self.sampled = true;
            self.srtt = rtt;
            self.rttvar = rtt / 2;
            return;
        }
        let diff = self.srtt.abs_diff(rtt);
        self.rttvar = (self.rttvar * 3 + diff) / 4;
        self.srtt = (self.srtt * 7 + rtt) / 8;
    }

    /// Folds in the RTT of a part acked by an ack frame (the receiver's report of what
    /// arrived out of order): an ordinary sample, and how far beyond the smoothed RTT it
    /// came beyond the smoothed RTT and the ack delay, so that the timeout leaves that much
    /// room (a maximum that fades by 1/64 with every sample).
    ///
    /// ```
    /// use std::time::Duration;
    /// use gudp::message::Rto;
    /// let ms = Duration::from_millis;
    /// let mut rto = Rto::new(ms(250), ms(1), ms(10_000));
    /// rto.set(ms(88), ms(4));
    /// assert_eq!(rto.timeout(), ms(88 + 16 + 10));
    /// rto.sample_reordered(ms(130)); // srtt becomes 93.25 ms, 26.75 ms of reorder room
    /// assert!(rto.timeout() >= ms(130));
    /// ```
    pub fn sample_reordered(&mut self, rtt: Duration) {
        self.sample(rtt);
        // The ack delay is in the margin already: the room is what lies beyond it, so that
        // the timeout covers this sample.
        let excess = rtt.saturating_sub(self.srtt + ACK_DELAY);
        self.reorder = excess.max(self.reorder);
    }

    /// Has reordering widened the timeout (see [`sample_reordered`](Self::sample_reordered))?
    pub(crate) fn reordering(&self) -> bool {
        self.reorder > GRANULARITY
    }

    /// Replaces the estimate (e.g. with the packet layer's `ConnectionStats::rtt` and
    /// `rtt_variation`); later samples continue from it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gudp::message::Rto;
    /// let ms = Duration::from_millis;
    /// let mut rto = Rto::new(ms(250), ms(20), ms(10_000));
    /// rto.set(ms(2000), ms(100));
    /// assert_eq!(rto.timeout(), ms(2410));
    /// ```
    pub fn set(&mut self, srtt: Duration, rttvar: Duration) {
        self.sampled = true;
        self.srtt = srtt;
        self.rttvar = rttvar;
    }

    /// The smoothed RTT.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gudp::message::Rto;
    /// let rto = Rto::new(Duration::from_millis(80), Duration::from_millis(20), Duration::from_secs(10));
    /// assert_eq!(rto.smoothed(), Duration::from_millis(80));
    /// ```
    pub fn smoothed(&self) -> Duration {
        self.srtt
    }

    /// The RTT variation.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gudp::message::Rto;
    /// let rto = Rto::new(Duration::from_millis(80), Duration::from_millis(20), Duration::from_secs(10));
    /// assert_eq!(rto.variation(), Duration::from_millis(40));
    /// ```
    pub fn variation(&self) -> Duration {
        self.rttvar
    }

    /// `srtt + max(4 × rttvar, reorder room, 1 ms) + 10 ms` (the reorder room comes from
    /// [`sample_reordered`](Self::sample_reordered)), clamped to the configured bounds (QUIC's probe
    /// timeout shape): the 10 ms is the packet layer's default `max_ack_delay`, by which an
    /// ack may come later than the smoothed RTT even on a link whose RTT never varies (every
    /// ack held the same time makes rttvar tend to zero, and a timeout of srtt alone would
    /// then resend whatever was acked a frame late).
    ///
    /// ```
    /// use std::time::Duration;
    /// use gudp::message::Rto;
    /// let ms = Duration::from_millis;
    /// let mut rto = Rto::new(ms(250), ms(20), ms(10_000));
    /// rto.set(ms(1), ms(0));
    /// assert_eq!(rto.timeout(), ms(20)); // the minimum
    /// ```
    pub fn timeout(&self) -> Duration {
        let margin = (self.rttvar * 4).max(self.reorder).max(GRANULARITY) + ACK_DELAY;
        (self.srtt + margin).clamp(self.min, self.max)
    }

    /// The timeout after `expiries` consecutive expiries of the same message: doubled each
    /// time (at most 2^6), clamped to the maximum.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gudp::message::Rto;
    /// let ms = Duration::from_millis;
    /// let rto = Rto::new(ms(250), ms(20), ms(1_000));
    /// assert_eq!(rto.backed_off(0), ms(760));
    /// assert_eq!(rto.backed_off(1), ms(1_000));
    /// ```
    pub fn backed_off(&self, expiries: u8) -> Duration {
        (self.timeout() * (1u32 << expiries.min(6))).min(self.max)
    }
}
