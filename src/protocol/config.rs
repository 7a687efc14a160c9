//! Endpoint configuration: every timeout, rate and size, with documented defaults.
//!
//! ```
//! use gudp::protocol::config::{Config, PacingRate};
//! let bad_rate = PacingRate::new(10, 2);
//! let mut config = Config::default();
//! config.bad_rate = bad_rate;
//! assert_eq!(config.sanitized().bad_rate.packets_per_second, 10); // valid: kept
//! ```

use std::time::Duration;

use super::wire::DEFAULT_PROTOCOL_ID;

/// The longest any configured duration may be (one day): `Instant` arithmetic on larger
/// values could overflow.
///
/// ```
/// use gudp::protocol::{config::MAX_DURATION, Config};
/// use std::time::Duration;
/// let mut config = Config::default();
/// config.idle_timeout = Duration::MAX;
/// let config = config.sanitized();
/// assert_eq!(config.idle_timeout, MAX_DURATION);
/// ```
pub const MAX_DURATION: Duration = Duration::from_secs(86_400);

/// A token-bucket pacing rate: `packets_per_second` sustained, up to `burst` back to back.
///
/// ```
/// use gudp::protocol::{Config, PacingRate};
/// // One packet per frame at 60 Hz, no bursts, while conditions are bad.
/// let bad_rate = PacingRate::new(60, 1);
/// let mut config = Config::default();
/// config.bad_rate = bad_rate;
/// assert_eq!(config.good_rate, PacingRate::new(1_000_000, 64)); // the controller's ceiling
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PacingRate {
    /// Sustained application packets per second (at least 1).
    pub packets_per_second: u32,
    /// Packets that may be sent back to back after a quiet period (at least 1).
    pub burst: u32,
}

impl PacingRate {
    /// `packets_per_second` sustained, up to `burst` back to back (each at least 1 once
    /// sanitized).
    ///
    /// ```
    /// use gudp::protocol::PacingRate;
    /// let rate = PacingRate::new(60, 1); // one packet per 60 Hz frame
    /// assert_eq!((rate.packets_per_second, rate.burst), (60, 1));
    /// ```
    pub const fn new(packets_per_second: u32, burst: u32) -> Self {
        Self {
            packets_per_second,
            burst,
        }
    }
}

/// Configuration of an [`Endpoint`](super::Endpoint). Both peers must agree on
/// `protocol_id`; everything else is local policy.
///
/// ```
/// use std::time::Duration;
/// use gudp::protocol::Config;
/// let mut config = Config::default();
/// config.idle_timeout = Duration::from_secs(5);
/// assert_eq!(config.max_payload, 1200);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// Protocol id at the start of every datagram (default `0x47554402`, "GUD" v2).
    pub protocol_id: u32,
    /// Largest application payload in bytes (default 1200); the datagram adds a 32-byte
    /// connected header: 16 bytes of sequence and acks and a 16-byte MAC. With the default,
    /// the largest datagram (1232 bytes) plus IPv6 and UDP headers is exactly IPv6's minimum
    /// MTU of 1280.
    pub max_payload: usize,
    /// Most connections this endpoint holds, both roles together, client attempts included
    /// (default 16384). At the limit a connection request, and a challenge response even
    /// with a valid token, is answered `Denied` and creates nothing; `connect` fails with
    /// `ConnectionLimit`.
    pub max_connections: usize,
    /// Interval between connection request / challenge response retries (default 100 ms).
    pub connect_retry_interval: Duration,
    /// A connection attempt that is not accepted within this time fails (default 5 s).
    pub connect_timeout: Duration,
    /// How long a challenge token stays valid after it is issued (default 5 s).
    pub token_lifetime: Duration,
    /// A connection that receives nothing for this long ends with `TimedOut` (default 10 s).
    pub idle_timeout: Duration,
    /// A keepalive is sent when no ack-eliciting packet was sent for this long (default 2 s,
    /// and never more than a quarter of `idle_timeout`). A server whose client keeps sending
    /// waits half an interval longer: the client's keepalives and the server's acks keep an
    /// idle connection alive at two datagrams per interval. An idle connection therefore
    /// refreshes its RTT estimate once per interval.
    pub keepalive_interval: Duration,
    /// Longest time an ack for an ack-eliciting packet is held back waiting for an outgoing
    /// packet to ride on (default 10 ms). While the application sends payloads every frame
    /// (a steady interval under 25 ms), the ack waits instead for its next payload, up to
    /// 25 ms, so a 60 Hz game costs no ack-only datagrams.
    pub max_ack_delay: Duration,
    /// An ack is sent at once when this many ack-eliciting packets arrived since the last
    /// packet sent (default 16, half the 33 sequences one packet acknowledges).
    pub ack_threshold: u32,
    /// Copies of the disconnect packet sent on a clean close (default 3).
    pub disconnect_copies: u32,
    /// Sent-packet window: packets in flight kept for acking (default 512).
    pub sent_window: usize,
    /// Received-packet window: sequences remembered for duplicate detection (default 512).
    pub received_window: usize,
    /// Floor of the loss timeout (default 1 s, Fiedler's value).
    pub min_loss_timeout: Duration,
    /// RTT assumed before the first sample (default 250 ms).
    pub initial_rtt: Duration,
    /// EWMA factor for the smoothed RTT (default 0.1).
    pub rtt_smoothing: f64,
    /// EWMA factor for the RTT variation (default 0.25).
    pub rtt_variation_smoothing: f64,
    /// Resolved packets over which the loss percentage is computed (default 1024).
    pub loss_window: usize,
    /// Length of one bandwidth measurement period (default 1 s).
    pub bandwidth_period: Duration,
    /// Smoothed RTT above this means bad conditions (default 250 ms).
    pub bad_rtt_threshold: Duration,
    /// Penalty time on the first entry into bad mode (default 4 s).
    pub initial_penalty: Duration,
    /// Shortest penalty time (default 1 s).
    pub min_penalty: Duration,
    /// Longest penalty time (default 60 s).
    pub max_penalty: Duration,
    /// A good period that followed a bad one and lasted less than this doubles the penalty on
    /// relapse (the connection's initial good period never does); each such period spent in
    /// good mode halves it (default 10 s).
    pub good_period: Duration,
    /// Good mode: the ceiling of the rate controller (§6.4) and the burst allowed after a
    /// quiet period (default 1,000,000 packets/s, burst 64). The controller finds the rate
    /// the path sustains below it; at high rates the burst grows to 1 ms worth of packets.
    pub good_rate: PacingRate,
    /// Good mode: the floor of the rate controller, in packets per second (default 60, one
    /// per 60 Hz frame). Set it to `good_rate.packets_per_second` for a fixed rate.
    pub min_rate: u32,
    /// Queueing delay (the standing RTT above the path's minimum) at which the controller
    /// backs off before anything is lost (default 5 ms). On a jittery path the controller
    /// uses 3 × the measured jitter instead when that is larger (§6.4): a queue smaller than
    /// the jitter cannot be told from it.
    pub queue_delay_target: Duration,
    /// Pacing in bad mode: a cap on the controller's rate (default 30 packets/s, burst 4).
    pub bad_rate: PacingRate,
    /// Most protocol replies (challenges, denials, lingering disconnects) queued for
    /// [`poll_transmit`](super::Endpoint::poll_transmit); more are dropped and counted
    /// (default 1024).
    pub max_queued_replies: usize,
    /// The message layer's configuration fingerprint
    /// ([`MessageConfig::fingerprint`](crate::message::MessageConfig::fingerprint)), or 0
    /// in packet mode (the default). A client sends it in its request and challenge
    /// response; a server denies a client whose fingerprint is not its own
    /// ([`wire::DenyReason::ChannelMismatch`](super::wire::DenyReason::ChannelMismatch)),
    /// so both ends of a connection always frame payloads alike. The daemon sets it from
    /// `DaemonConfig::messages`.
    pub message_fingerprint: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            protocol_id: DEFAULT_PROTOCOL_ID,
            max_payload: 1200,
            max_connections: 16_384,
            connect_retry_interval: Duration::from_millis(100),
            connect_timeout: Duration::from_secs(5),
            token_lifetime: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(2),
            max_ack_delay: Duration::from_millis(10),
            ack_threshold: 16,
            disconnect_copies: 3,
            sent_window: 512,
            received_window: 512,
            min_loss_timeout: Duration::from_secs(1),
            initial_rtt: Duration::from_millis(250),
            rtt_smoothing: 0.1,
            rtt_variation_smoothing: 0.25,
            loss_window: 1024,
            bandwidth_period: Duration::from_secs(1),
            bad_rtt_threshold: Duration::from_millis(250),
            initial_penalty: Duration::from_secs(4),
            min_penalty: Duration::from_secs(1),
            max_penalty: Duration::from_secs(60),
            good_period: Duration::from_secs(10),
            good_rate: PacingRate {
                packets_per_second: 1_000_000,
                burst: 64,
            },
            min_rate: 60,
            queue_delay_target: Duration::from_millis(5),
            bad_rate: PacingRate {
                packets_per_second: 30,
                burst: 4,
            },
            max_queued_replies: 1024,
            message_fingerprint: 0,
        }
    }
}

impl Config {
    /// The largest datagram an endpoint with this configuration writes or accepts: the
    /// connected header plus `max_payload`, or a padded handshake packet if that is larger.
    ///
    /// ```
    /// let config = gudp::protocol::Config::default();
    /// assert_eq!(config.max_datagram_size(), 1200 + 32);
    /// ```
    pub fn max_datagram_size(&self) -> usize {
        (self.max_payload + super::wire::CONNECTED_HEADER_LEN)
            .max(super::wire::HANDSHAKE_PADDED_LEN)
    }

    /// The configuration with every value brought into its valid range: windows within
    /// 33..=16384, factors within (0, 1], counts and rates at least 1, durations at most
    /// [`MAX_DURATION`] and non-zero where zero would spin, `min_rate` within
    /// `1..=good_rate.packets_per_second`,
    /// `min_penalty <= initial_penalty <= max_penalty`. [`Endpoint::new`](super::Endpoint::new)
    /// applies it, so no configuration can make the endpoint panic.
    ///
    /// ```
    /// use gudp::protocol::{Config, PacingRate};
    /// let mut wild = Config::default();
    /// wild.sent_window = 1;
    /// wild.rtt_smoothing = 5.0;
    /// wild.good_rate = PacingRate::new(0, 0);
    /// let fixed = wild.sanitized();
    /// assert_eq!((fixed.sent_window, fixed.rtt_smoothing), (33, 0.1));
    /// assert_eq!(fixed.good_rate, PacingRate::new(1, 1));
    /// ```
    pub fn sanitized(mut self) -> Self {
        let min = Duration::from_millis(1);
        self.sent_window = self.sent_window.clamp(33, 16_384);
        self.received_window = self.received_window.clamp(33, 16_384);
        self.loss_window = self.loss_window.clamp(1, 1 << 20);
        self.max_connections = self.max_connections.min(u32::MAX as usize - 1);
        self.ack_threshold = self.ack_threshold.clamp(1, 32);
        self.disconnect_copies = self.disconnect_copies.clamp(1, 16);
        for f in [&mut self.rtt_smoothing, &mut self.rtt_variation_smoothing] {
            if !(*f > 0.0 && *f <= 1.0) {
                *f = 0.1;
            }
        }
        for d in [
            &mut self.connect_retry_interval,
            &mut self.keepalive_interval,
            &mut self.bandwidth_period,
            &mut self.good_period,
            &mut self.min_penalty,
            &mut self.idle_timeout,
            &mut self.min_loss_timeout,
        ] {
            *d = (*d).max(min);
        }
        for d in [
            &mut self.connect_retry_interval,
            &mut self.connect_timeout,
            &mut self.token_lifetime,
            &mut self.idle_timeout,
            &mut self.keepalive_interval,
            &mut self.max_ack_delay,
            &mut self.min_loss_timeout,
            &mut self.initial_rtt,
            &mut self.bandwidth_period,
            &mut self.bad_rtt_threshold,
            &mut self.initial_penalty,
            &mut self.min_penalty,
            &mut self.max_penalty,
            &mut self.good_period,
            &mut self.queue_delay_target,
        ] {
            *d = (*d).min(MAX_DURATION);
        }
        self.max_penalty = self.max_penalty.max(self.min_penalty);
        self.max_queued_replies = self.max_queued_replies.max(1);
        self.initial_penalty = self
            .initial_penalty
            .clamp(self.min_penalty, self.max_penalty);
        for r in [&mut self.good_rate, &mut self.bad_rate] {
            r.packets_per_second = r.packets_per_second.max(1);
            r.burst = r.burst.max(1);
        }
        self.min_rate = self.min_rate.clamp(1, self.good_rate.packets_per_second);
        self
    }
}
