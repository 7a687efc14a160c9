//! One connection's state machine: its handshake phase (`handshake.rs`), sequence and ack
//! bookkeeping (`acks.rs`), and here: loss detection, estimates, congestion mode, pacing,
//! timers and its place in the endpoint's schedule.

mod acks;
mod handshake;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::congestion::{CongestionController, Pacer, RateController};
use super::estimate::{LossEstimator, RateMeter, RttEstimator};
use super::protection::PacketProtection;
use super::secure::conn::SecureSide;
use super::seq_buffer::SequenceBuffer;
use super::wire::{AckFields, WirePacket, CONNECTED_HEADER_LEN};
use super::{
    CloseReason, Config, CongestionMode, ConnectionCounters, ConnectionId, EndpointCounters, Event,
    ProtocolStats, Role, TransmitError,
};
use acks::report_lost;
use handshake::Phase;

/// What kind of tracked packet a sent-buffer entry is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Kind {
    /// An application payload, with the caller's tag for its notification.
    Payload { tag: u64 },
    #[default]
    Keepalive,
}

/// An ack-eliciting packet in flight. (Ack-only packets are not tracked.)
///
/// A packet declared lost stays in the buffer (flagged) until its slot is reused, so that a
/// late ack still yields an RTT sample: otherwise a path whose RTT exceeds the loss timeout
/// would never be measured, and every packet would keep timing out.
#[derive(Debug, Clone, Copy, Default)]
struct SentPacket {
    /// Nanoseconds after the connection's creation.
    sent_at: u64,
    bytes: u32,
    kind: Kind,
    lost: bool,
    /// Missing from acks that name three newer packets and older than the reordering
    /// allowance: the rate controller took it as a loss and it no longer counts in flight.
    /// Its notification still waits for its ack or its loss timeout.
    suspected: bool,
}

/// Payloads in flight and the rate controller, which every ack and loss updates together.
#[derive(Debug)]
struct Flight {
    /// Payloads sent and neither acked, lost nor suspected.
    payloads: u32,
    rate: RateController,
}

impl Flight {
    /// `p` left the flight (acked, lost or suspected), if it was in it.
    fn leave(&mut self, p: &SentPacket) {
        if matches!(p.kind, Kind::Payload { .. }) && !p.lost && !p.suspected {
            self.payloads = self.payloads.saturating_sub(1);
        }
    }
}

/// Below this many payloads in flight a payload is never paced in good mode: one request
/// waiting for its response cannot congest a path, and a request/response loop then runs
/// at the speed of the round trip.
const UNPACED_IN_FLIGHT: u32 = 2;
/// Longest a sender whose window is full is told to wait before it looks again.
const MAX_WINDOW_WAIT: Duration = Duration::from_millis(50);
/// At high rates the burst is this much time's worth of packets: the daemon's timers wake
/// it no more often than once a millisecond.
const BURST_TIME: Duration = Duration::from_millis(1);

/// The shared state a connection reports into.
pub(crate) struct Ctx<'a> {
    pub(crate) id: ConnectionId,
    pub(crate) config: &'a Config,
    pub(crate) events: &'a mut VecDeque<Event>,
    pub(crate) counters: &'a mut EndpointCounters,
}

/// What the endpoint should do with an accepted connected packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Received {
    /// Deliver the payload (sequence `seq`, not yet recorded).
    Deliver { seq: u64 },
    /// A protocol-only packet.
    Consumed,
    /// The peer closed the connection.
    Closed,
}

/// The connected-packet types, without their bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectedKind {
    Payload,
    Keepalive,
    Ack,
    Disconnect,
}

#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) peer: SocketAddr,
    pub(crate) role: Role,
    /// The client's request nonce: names the handshake and authenticates disconnects.
    pub(crate) session: u64,
    /// The keys that seal and verify connected packets: from the creation of a server
    /// connection, from the challenge on a client.
    pub(crate) protection: Option<PacketProtection>,
    /// Secure mode: the client's token, or what the server learnt from it.
    pub(crate) secure: Option<SecureSide>,
    phase: Phase,
    epoch: Instant,
    connect_deadline: Instant,
    next_seq: u64,
    sent: SequenceBuffer<SentPacket>,
    oldest_unresolved: u64,
    received: SequenceBuffer<()>,
    last_received: Instant,
    /// When the newest sequence (the one our acks name) arrived.
    latest_received_at: Instant,
    last_eliciting_sent: Instant,
    /// When the peer's last ack-eliciting packet (payload or keepalive) arrived, if one has:
    /// while they come, the peer is the one that keeps the connection alive
    /// (`Connection::keepalive_at`).
    last_eliciting_received: Option<Instant>,
    /// Set by the endpoint ([`Endpoint::align_keepalives`](crate::protocol::Endpoint)): the
    /// keepalive deadline is rounded up to the next instant `anchor + k × interval / 8`, so
    /// that every connection sharing the anchor sends its keepalives on the same ticks.
    pub(crate) keepalive_anchor: Option<Instant>,
    /// The newest Ack packet sent while we had sent nothing ack-eliciting for a keepalive
    /// interval, and when: the peer's next packet that names it as the newest it received
    /// gives an RTT sample (its ack delay says how long the peer held it), so an idle server
    /// measures the path from its acks of the client's keepalives, without keepalives of its own.
    idle_ack: Option<(u64, Instant)>,
    ack_due: Option<Instant>,
    eliciting_unacked: u32,
    /// The oldest ack-eliciting sequence received since the last packet we sent (which
    /// acked it, if it was still in range).
    oldest_unacked: Option<u64>,
    /// Acks taken just before a new arrival pushed an unacked packet out of the ack range,
    /// sent ahead of everything else so that the packet is still acknowledged.
    early_ack: Option<AckFields>,
    /// When the application last sent a payload, and the smoothed interval between its
    /// payloads: an application that sends every frame gets its acks carried by its next
    /// payload instead of a datagram of their own (`Connection::ack_hold`).
    last_payload_sent: Option<Instant>,
    payload_interval: Option<Duration>,
    /// Server: an accept is due (the handshake just completed, or the client's response
    /// came again).
    send_accept: bool,
    rtt: RttEstimator,
    loss: LossEstimator,
    sent_rate: RateMeter,
    received_rate: RateMeter,
    acked_rate: RateMeter,
    congestion: CongestionController,
    pacer: Pacer,
    flight: Flight,
    counters: ConnectionCounters,
    schedule: Schedule,
}

/// A connection's place in its endpoint's schedule: its live timer-heap entry and whether it
/// waits in the ready-to-transmit queue. Only the connection changes it; the endpoint asks.
#[derive(Debug, Default)]
struct Schedule {
    /// The deadline of the live timer-heap entry, if there is one.
    at: Option<Instant>,
    /// Token of the live timer-heap entry (incremented on every push).
    token: u32,
    /// Whether the connection is in the ready-to-transmit queue.
    queued: bool,
}

/// What [`Connection::plan`] asks of the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Put the connection in the ready-to-transmit queue.
    pub(crate) queue: bool,
    /// Push a timer-heap entry for this deadline, with this token.
    pub(crate) timer: Option<(Instant, u32)>,
}

/// Keepalive ticks per keepalive interval on an aligned endpoint: a keepalive goes out at
/// most an eighth of an interval late (a gap of 1.125 intervals, under a third of the idle
/// timeout), and the connections of one daemon share eight turns per interval instead of
/// one each.
pub(crate) const KEEPALIVE_TICKS: u32 = 8;

/// `at` rounded up to the next `anchor + k × tick` (unchanged before the anchor).
fn on_tick(at: Instant, anchor: Instant, tick: Duration) -> Instant {
    let (Some(since), Ok(tick)) = (
        at.checked_duration_since(anchor),
        u64::try_from(tick.as_nanos()),
    ) else {
        return at;
    };
    if tick == 0 {
        return at;
    }
    let ticks = nanos(since).div_ceil(tick);
    anchor + Duration::from_nanos(ticks.saturating_mul(tick))
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Connection {
    /// A client connection to `server`, about to send its first request (at `now`).
    pub(crate) fn client(now: Instant, server: SocketAddr, nonce: u64, config: &Config) -> Self {
        let phase = Phase::Requesting { next_retry: now };
        Self::new(now, server, Role::Client, nonce, phase, config)
    }

    /// A server connection to `client`, established by a valid challenge response (whose
    /// token, nonce and timestamp gave `protection`): the accept is due at once.
    pub(crate) fn server(
        now: Instant,
        client: SocketAddr,
        nonce: u64,
        protection: PacketProtection,
        config: &Config,
    ) -> Self {
        let mut conn = Self::new(now, client, Role::Server, nonce, Phase::Connected, config);
        conn.protection = Some(protection);
        conn.send_accept = true;
        conn
    }

    fn new(
        now: Instant,
        peer: SocketAddr,
        role: Role,
        session: u64,
        phase: Phase,
        config: &Config,
    ) -> Self {
        Self {
            peer,
            role,
            session,
            protection: None,
            secure: None,
            phase,
            epoch: now,
            connect_deadline: now + config.connect_timeout,
            next_seq: 0,
            sent: SequenceBuffer::new(config.sent_window),
            oldest_unresolved: 0,
            received: SequenceBuffer::new(config.received_window),
            last_received: now,
            latest_received_at: now,
            last_eliciting_sent: now,
            last_eliciting_received: None,
            keepalive_anchor: None,
            idle_ack: None,
            ack_due: None,
            eliciting_unacked: 0,
            oldest_unacked: None,
            early_ack: None,
            last_payload_sent: None,
            payload_interval: None,
            send_accept: false,
            rtt: RttEstimator::new(
                config.initial_rtt,
                config.rtt_smoothing,
                config.rtt_variation_smoothing,
            ),
            loss: LossEstimator::new(config.loss_window),
            sent_rate: RateMeter::new(now, config.bandwidth_period),
            received_rate: RateMeter::new(now, config.bandwidth_period),
            acked_rate: RateMeter::new(now, config.bandwidth_period),
            congestion: CongestionController::new(now, config),
            pacer: Pacer::new(),
            flight: Flight {
                payloads: 0,
                rate: RateController::new(now, config),
            },
            counters: ConnectionCounters::default(),
            schedule: Schedule::default(),
        }
    }

    /// What the endpoint must do after anything touched this connection at `now`: queue it
    /// if a transmit is due, and push a timer entry if its deadline moved earlier.
    pub(crate) fn plan(&mut self, now: Instant, config: &Config) -> Plan {
        let queue = !self.schedule.queued && self.wants_transmit(now, config);
        self.schedule.queued |= queue;
        let deadline = self.deadline(config);
        // A due transmit is served by the ready queue; poll_transmit plans again afterwards.
        let served = deadline <= now && self.schedule.queued;
        let timer = (!served && self.schedule.at.is_none_or(|at| deadline < at)).then(|| {
            self.schedule.at = Some(deadline);
            self.schedule.token = self.schedule.token.wrapping_add(1);
            (deadline, self.schedule.token)
        });
        Plan { queue, timer }
    }

    /// Forgets the live timer entry, so that the next plan pushes a new one (the old entry
    /// then surfaces as superseded): how a test makes stale entries pile up.
    #[cfg(test)]
    pub(crate) fn forget_timer(&mut self) {
        self.schedule.at = None;
    }

    /// The endpoint took the connection off its ready-to-transmit queue.
    pub(crate) fn dequeue(&mut self) {
        self.schedule.queued = false;
    }

    /// A timer entry with `token` surfaced: `true` (and the entry is spent) if it is the
    /// live one, `false` if a later push superseded it.
    pub(crate) fn fire_timer(&mut self, token: u32) -> bool {
        let live = self.is_timer_live(token);
        if live {
            self.schedule.at = None;
        }
        live
    }

    /// Whether a timer-heap entry carrying `token` is this connection's live one.
    pub(crate) fn is_timer_live(&self, token: u32) -> bool {
        self.schedule.at.is_some() && token == self.schedule.token
    }

    fn at(&self, now: Instant) -> u64 {
        nanos(now.saturating_duration_since(self.epoch))
    }

    fn loss_timeout(&self, config: &Config) -> Duration {
        let rto = self.rtt.smoothed() + 4 * self.rtt.variation() + config.max_ack_delay;
        rto.max(config.min_loss_timeout)
    }

    /// Whether a payload could be sent at `now` (connected, pacing budget available).
    /// Whether a payload in the sent window is neither acked nor reported lost.
    pub(crate) fn has_unresolved_payloads(&self) -> bool {
        (self.oldest_unresolved..self.next_seq).any(|seq| {
            self.sent
                .get(seq)
                .is_some_and(|p| !p.lost && matches!(p.kind, Kind::Payload { .. }))
        })
    }

    pub(crate) fn can_send(&self, now: Instant, config: &Config) -> Result<(), TransmitError> {
        if !self.is_connected() {
            return Err(TransmitError::NotConnected);
        }
        if self.unpaced() {
            return Ok(());
        }
        if let Some(retry_at) = self.window_full(now, config) {
            return Err(TransmitError::Paced { retry_at });
        }
        self.pacer
            .check(now, self.send_rate(config))
            .map_err(|retry_at| TransmitError::Paced { retry_at })
    }

    /// When the payloads in flight fill three quarters of the sent window, whatever the
    /// rate: one more would soon push an unacked packet out of the window, and it would be
    /// reported lost although it arrived. Returns when to look again (acks free the window;
    /// a quarter of the round trip is soon enough to keep it full).
    ///
    /// Unless nothing has arrived from the peer for a round trip, its variation and the ack
    /// delay: then the whole flight may be gone (a receiver that refused it all sends no
    /// ack), and only a newer packet's ack can show the holes before the loss timeout, so
    /// sending resumes (into the last quarter of the window) as a probe.
    pub(crate) fn window_full(&self, now: Instant, config: &Config) -> Option<Instant> {
        let limit = config.sent_window - config.sent_window / 4;
        if (self.flight.payloads as usize) < limit {
            return None;
        }
        let probe_at = self.last_received
            + self.rtt.smoothed()
            + 4 * self.rtt.variation()
            + config.max_ack_delay;
        if now >= probe_at {
            return None;
        }
        let wait = (self.rtt.smoothed() / 4).clamp(Duration::from_micros(100), MAX_WINDOW_WAIT);
        Some((now + wait).min(probe_at))
    }

    /// Whether the next payload goes out whatever the pacer says (§6.4): good mode, the
    /// rate controller at work (a fixed rate, `min_rate` at the ceiling, is a hard cap), and
    /// fewer than [`UNPACED_IN_FLIGHT`] payloads in flight.
    pub(crate) fn unpaced(&self) -> bool {
        self.congestion.mode() == CongestionMode::Good
            && self.flight.rate.adapts()
            && self.flight.payloads < UNPACED_IN_FLIGHT
    }

    /// The pacing rate in force: the rate controller's, capped by `bad_rate` in bad mode.
    pub(crate) fn send_rate(&self, config: &Config) -> super::PacingRate {
        let found = self.flight.rate.rate();
        match self.congestion.mode() {
            CongestionMode::Good => {
                let burst = (found * BURST_TIME.as_secs_f64()) as u32;
                super::PacingRate::new(found as u32, burst.max(config.good_rate.burst))
            }
            CongestionMode::Bad => {
                let bad = config.bad_rate;
                super::PacingRate::new(bad.packets_per_second.min(found as u32), bad.burst)
            }
        }
    }

    /// Whether a protocol packet is due at `now`.
    pub(crate) fn wants_transmit(&self, now: Instant, config: &Config) -> bool {
        match self.phase {
            Phase::Requesting { next_retry } | Phase::Responding { next_retry, .. } => {
                now >= next_retry
            }
            Phase::Connected => {
                self.send_accept
                    || self.early_ack.is_some()
                    || self.ack_due.is_some_and(|due| now >= due)
                    || now >= self.keepalive_at(config)
            }
        }
    }

    /// The next packet due at `now`: a handshake packet, an early ack, a keepalive or an
    /// ack, written into `out`.
    pub(crate) fn poll_transmit(
        &mut self,
        now: Instant,
        out: &mut [u8],
        cx: &mut Ctx<'_>,
    ) -> Option<usize> {
        if let Some(handshake) = self.poll_handshake(now, out, cx) {
            return handshake;
        }
        let id = cx.config.protocol_id;
        match self.phase {
            // poll_handshake sent what the handshake phases have to send.
            Phase::Requesting { .. } | Phase::Responding { .. } => None,
            Phase::Connected if self.early_ack.is_some() && out.len() >= CONNECTED_HEADER_LEN => {
                let (seq, mut header) = self.take_header(now);
                header.ack = self.early_ack.take();
                let len = self.seal(seq, WirePacket::Ack { header }, id, out).ok()?;
                self.counters.acks_sent += 1;
                // What arrived after these acks were taken is still unacked: keep its due time.
                self.count_sent(now, seq, len, None, cx);
                Some(len)
            }
            Phase::Connected => {
                let ack = self.ack_due.is_some_and(|due| now >= due);
                let keepalive = now >= self.keepalive_at(cx.config);
                if !(keepalive || ack) || out.len() < CONNECTED_HEADER_LEN {
                    return None;
                }
                let (seq, header) = self.take_header(now);
                if keepalive {
                    let len = self
                        .seal(seq, WirePacket::Keepalive { header }, id, out)
                        .ok()?;
                    self.counters.keepalives_sent += 1;
                    self.on_sent(now, seq, len, Some(Kind::Keepalive), cx);
                    Some(len)
                } else {
                    let len = self.seal(seq, WirePacket::Ack { header }, id, out).ok()?;
                    self.counters.acks_sent += 1;
                    if now >= self.last_eliciting_sent + self.keepalive_interval(cx.config) {
                        self.idle_ack = Some((seq, now));
                    }
                    self.on_sent(now, seq, len, None, cx);
                    Some(len)
                }
            }
        }
    }

    /// Runs every timer due at `now`. Returns a reason if the connection must end.
    pub(crate) fn on_timeout(&mut self, now: Instant, cx: &mut Ctx<'_>) -> Option<CloseReason> {
        if !self.is_connected() {
            return (now >= self.connect_deadline).then_some(CloseReason::ConnectTimedOut);
        }
        if now >= self.last_received + cx.config.idle_timeout {
            return Some(CloseReason::TimedOut);
        }
        let timeout = nanos(self.loss_timeout(cx.config));
        let at = self.at(now);
        while self.oldest_unresolved < self.next_seq {
            let seq = self.oldest_unresolved;
            if let Some(p) = self.sent.get_mut(seq).filter(|p| !p.lost) {
                if at < p.sent_at.saturating_add(timeout) {
                    break;
                }
                let was = *p;
                p.lost = true;
                report_lost(seq, was, &mut self.loss, &mut self.counters, cx);
                self.flight.leave(&was);
                if !was.suspected {
                    self.flight.rate.on_loss(seq, self.next_seq);
                }
            }
            self.oldest_unresolved += 1;
        }
        if let Some(mode) = self.congestion.advance(now) {
            cx.events
                .push_back(Event::CongestionChanged { conn: cx.id, mode });
            self.flight.rate.hold(mode == CongestionMode::Bad);
        }
        for meter in [
            &mut self.sent_rate,
            &mut self.received_rate,
            &mut self.acked_rate,
        ] {
            meter.tick(now);
        }
        None
    }

    /// The keepalive interval: a quarter of the idle timeout at most, so that a short idle
    /// timeout never fires on an idle connection that is alive.
    fn keepalive_interval(&self, config: &Config) -> Duration {
        config.keepalive_interval.min(config.idle_timeout / 4)
    }

    /// When a keepalive is due: an interval after our last ack-eliciting packet. A
    /// server also waits, while its client's ack-eliciting packets (keepalives or payloads)
    /// keep coming, until one and a half intervals after the last of them: the client's
    /// keepalives and the server's acks of them prove both ends alive, so an idle connection
    /// costs two datagrams per interval instead of four (both ends' keepalives and both
    /// acks); the client's next keepalive acks the server's ack, which gives the server its
    /// RTT sample (`Connection::idle_ack`). If the client goes quiet, the server keeps the
    /// connection alive itself, half an interval later than the client would have. The roles are fixed, so the two ends
    /// never settle into both sending.
    fn keepalive_at(&self, config: &Config) -> Instant {
        let interval = self.keepalive_interval(config);
        let own = self.last_eliciting_sent + interval;
        let at = match (self.role, self.last_eliciting_received) {
            (Role::Server, Some(at)) => own.max(at + interval * 3 / 2),
            _ => own,
        };
        match self.keepalive_anchor {
            Some(anchor) => on_tick(at, anchor, interval / KEEPALIVE_TICKS),
            None => at,
        }
    }

    /// The earliest instant at which this connection has something to do.
    pub(crate) fn deadline(&self, config: &Config) -> Instant {
        match self.phase {
            Phase::Requesting { next_retry } | Phase::Responding { next_retry, .. } => {
                next_retry.min(self.connect_deadline)
            }
            Phase::Connected => {
                let mut d =
                    (self.last_received + config.idle_timeout).min(self.keepalive_at(config));
                if let Some(due) = self.ack_due {
                    d = d.min(due);
                }
                if let Some(p) = self.sent.get(self.oldest_unresolved).filter(|p| !p.lost) {
                    let lost_at =
                        self.epoch + Duration::from_nanos(p.sent_at) + self.loss_timeout(config);
                    d = d.min(lost_at);
                }
                if let Some(due) = self.congestion.deadline() {
                    d = d.min(due);
                }
                d
            }
        }
    }

    /// Reports every unresolved application packet lost: the connection is ending.
    pub(crate) fn finish(&mut self, cx: &mut Ctx<'_>) {
        for seq in self.oldest_unresolved..self.next_seq {
            if let Some(p) = self.sent.remove(seq).filter(|p| !p.lost) {
                report_lost(seq, p, &mut self.loss, &mut self.counters, cx);
            }
        }
        self.oldest_unresolved = self.next_seq;
        self.flight.payloads = 0;
    }

    /// Smoothed RTT, its variation and the loss percentage.
    pub(crate) fn estimates(&self) -> (Duration, Duration, f64) {
        (
            self.rtt.smoothed(),
            self.rtt.variation(),
            self.loss.percent(),
        )
    }

    pub(crate) fn stats(&self, config: &Config) -> ProtocolStats {
        ProtocolStats {
            peer: self.peer,
            role: self.role,
            connected: self.is_connected(),
            rtt: self.rtt.smoothed(),
            rtt_variation: self.rtt.variation(),
            packet_loss_percent: self.loss.percent(),
            sent_bytes_per_second: self.sent_rate.rate(),
            received_bytes_per_second: self.received_rate.rate(),
            acked_bytes_per_second: self.acked_rate.rate(),
            congestion_mode: self.congestion.mode(),
            send_rate: self.send_rate(config),
            penalty: self.congestion.penalty(),
            counters: self.counters,
        }
    }

    pub(crate) fn counters(&self) -> ConnectionCounters {
        self.counters
    }

    pub(crate) fn counters_mut(&mut self) -> &mut ConnectionCounters {
        &mut self.counters
    }
}
