//! One connection's state machine: handshake phase, sequence and ack bookkeeping, loss
//! detection, estimates, congestion mode and pacing.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::congestion::{CongestionController, CongestionMode, Pacer};
use super::estimate::{LossEstimator, RateMeter, RttEstimator};
use super::seq::{extend_backwards, extend_sequence};
use super::seq_buffer::SequenceBuffer;
use super::wire::{
    AckFields, ConnectedHeader, Packet, ACK_DELAY_UNIT_MICROS, CONNECTED_HEADER_LEN, TOKEN_LEN,
};
use super::{
    Config, ConnectionCounters, ConnectionId, ConnectionStats, DisconnectReason, DropReason,
    EndpointCounters, Event, PacketId, Role, SendError,
};

/// Where the handshake stands.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Phase {
    /// Client: sending connection requests.
    Requesting { next_retry: Instant },
    /// Client: echoing the challenge token.
    Responding {
        timestamp: u64,
        token: [u8; TOKEN_LEN],
        next_retry: Instant,
    },
    /// Handshake complete.
    Connected,
}

/// What kind of tracked packet a sent-buffer entry is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Kind {
    #[default]
    Payload,
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
}

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
    pub(crate) phase: Phase,
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
    ack_due: Option<Instant>,
    eliciting_unacked: u32,
    /// The oldest ack-eliciting sequence received since the last packet we sent (which
    /// acked it, if it was still in range).
    oldest_unacked: Option<u64>,
    /// Acks taken just before a new arrival pushed an unacked packet out of the ack range,
    /// sent ahead of everything else so that the packet is still acknowledged.
    early_ack: Option<AckFields>,
    pub(crate) send_accept: bool,
    rtt: RttEstimator,
    loss: LossEstimator,
    sent_rate: RateMeter,
    received_rate: RateMeter,
    acked_rate: RateMeter,
    congestion: CongestionController,
    pacer: Pacer,
    counters: ConnectionCounters,
    /// The deadline of this connection's live timer-heap entry, if it has one.
    pub(crate) scheduled: Option<Instant>,
    /// Token of the live timer-heap entry (incremented on every push).
    pub(crate) timer_token: u32,
    /// Whether this connection is in the endpoint's ready-to-transmit queue.
    pub(crate) queued: bool,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Connection {
    pub(crate) fn new(
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
            ack_due: None,
            eliciting_unacked: 0,
            oldest_unacked: None,
            early_ack: None,
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
            counters: ConnectionCounters::default(),
            scheduled: None,
            timer_token: 0,
            queued: false,
        }
    }

    /// Whether a timer-heap entry carrying `token` is this connection's live one.
    pub(crate) fn is_timer_live(&self, token: u32) -> bool {
        self.scheduled.is_some() && token == self.timer_token
    }

    pub(crate) fn is_connected(&self) -> bool {
        matches!(self.phase, Phase::Connected)
    }

    /// Marks the handshake complete (client side) and reports it.
    pub(crate) fn establish(&mut self, now: Instant, cx: &mut Ctx<'_>) {
        self.phase = Phase::Connected;
        self.last_received = now;
        self.last_eliciting_sent = now;
        cx.counters.connections_opened += 1;
        cx.events.push_back(Event::Connected {
            conn: cx.id,
            peer: self.peer,
            role: self.role,
        });
    }

    fn at(&self, now: Instant) -> u64 {
        nanos(now.saturating_duration_since(self.epoch))
    }

    fn loss_timeout(&self, config: &Config) -> Duration {
        let rto = self.rtt.smoothed() + 4 * self.rtt.variation() + config.max_ack_delay;
        rto.max(config.min_loss_timeout)
    }

    /// Acknowledgement fields for a packet sent at `now`.
    pub(crate) fn ack_fields(&self, now: Instant) -> Option<AckFields> {
        let latest = self.received.next().checked_sub(1)?;
        let mut ack_bits = 0u32;
        for n in 0..32u64 {
            if latest
                .checked_sub(n + 1)
                .is_some_and(|s| self.received.get(s).is_some())
            {
                ack_bits |= 1 << n;
            }
        }
        let held = now.saturating_duration_since(self.latest_received_at);
        let units = held.as_micros() / u128::from(ACK_DELAY_UNIT_MICROS);
        let ack_delay = u16::try_from(units).unwrap_or(u16::MAX);
        Some(AckFields {
            ack: latest as u16,
            ack_bits,
            ack_delay,
        })
    }

    /// Extends a received wire sequence relative to the newest held (0 before the first), not
    /// one past it: a packet exactly half the space ahead must extend backwards, as neither
    /// is newer (§4.1).
    fn extend_received(&self, seq: u16) -> Option<u64> {
        extend_sequence(self.received.next().saturating_sub(1), seq)
    }

    /// Takes the next sequence number for an outgoing connected packet.
    pub(crate) fn take_header(&mut self, now: Instant) -> (u64, ConnectedHeader) {
        let seq = self.next_seq;
        self.next_seq += 1;
        (
            seq,
            ConnectedHeader {
                sequence: seq as u16,
                ack: self.ack_fields(now),
            },
        )
    }

    /// Bookkeeping common to every connected packet sent.
    fn on_sent(
        &mut self,
        now: Instant,
        seq: u64,
        len: usize,
        kind: Option<Kind>,
        cx: &mut Ctx<'_>,
    ) {
        // It carries our current acks: nothing received is waiting for one any more.
        self.ack_due = None;
        self.eliciting_unacked = 0;
        self.oldest_unacked = None;
        self.count_sent(now, seq, len, kind, cx);
    }

    /// Books a sent packet: rates, counters and, for an ack-eliciting one, the sent window.
    fn count_sent(
        &mut self,
        now: Instant,
        seq: u64,
        len: usize,
        kind: Option<Kind>,
        cx: &mut Ctx<'_>,
    ) {
        self.sent_rate.add(now, len);
        self.counters.packets_sent += 1;
        cx.counters.packets_sent += 1;
        let Some(kind) = kind else { return };
        self.last_eliciting_sent = now;
        let packet = SentPacket {
            sent_at: self.at(now),
            bytes: len as u32,
            kind,
            lost: false,
        };
        let Self {
            sent,
            loss,
            counters,
            ..
        } = self;
        // Inserting the next sequence overwrites the slot of the packet one window older:
        // if that packet is still unresolved, it can no longer be acked and is lost.
        let inserted = sent.insert(seq, packet, |old, p| {
            if !p.lost {
                report_lost(old, p, loss, counters, cx);
            }
        });
        debug_assert!(inserted.is_ok(), "sequences are sent in order");
        self.advance_oldest();
    }

    /// Moves the oldest-unresolved cursor past resolved and overwritten entries.
    fn advance_oldest(&mut self) {
        let floor = self.next_seq.saturating_sub(self.sent.capacity());
        self.oldest_unresolved = self.oldest_unresolved.max(floor);
        while self.oldest_unresolved < self.next_seq
            && self.sent.get(self.oldest_unresolved).is_none_or(|p| p.lost)
        {
            self.oldest_unresolved += 1;
        }
    }

    /// Encodes and records one application payload.
    pub(crate) fn send_payload(
        &mut self,
        now: Instant,
        payload: &[u8],
        out: &mut [u8],
        cx: &mut Ctx<'_>,
    ) -> Result<(usize, PacketId), SendError> {
        if !self.is_connected() {
            return Err(SendError::NotConnected);
        }
        let max = cx.config.max_payload;
        if payload.len() > max {
            self.counters.too_large_to_send += 1;
            cx.counters.too_large_to_send += 1;
            return Err(SendError::TooLarge {
                len: payload.len(),
                max,
            });
        }
        let needed = CONNECTED_HEADER_LEN + payload.len();
        if out.len() < needed {
            return Err(SendError::BufferTooSmall { needed });
        }
        let rate = self.send_rate(cx.config);
        if let Err(retry_at) = self.pacer.try_acquire(now, rate) {
            self.counters.paced += 1;
            cx.counters.paced += 1;
            return Err(SendError::Paced { retry_at });
        }
        let (seq, header) = self.take_header(now);
        let len = Packet::Payload { header, payload }
            .encode(cx.config.protocol_id, out)
            .map_err(|e| SendError::BufferTooSmall { needed: e.needed })?;
        self.counters.payloads_sent += 1;
        cx.counters.payloads_sent += 1;
        self.on_sent(now, seq, len, Some(Kind::Payload), cx);
        Ok((len, PacketId(seq)))
    }

    /// Whether a payload could be sent at `now` (connected, pacing budget available).
    /// Whether a payload in the sent window is neither acked nor reported lost.
    pub(crate) fn has_unresolved_payloads(&self) -> bool {
        (self.oldest_unresolved..self.next_seq).any(|seq| {
            self.sent
                .get(seq)
                .is_some_and(|p| !p.lost && p.kind == Kind::Payload)
        })
    }

    pub(crate) fn can_send(&self, now: Instant, config: &Config) -> Result<(), SendError> {
        if !self.is_connected() {
            return Err(SendError::NotConnected);
        }
        self.pacer
            .check(now, self.send_rate(config))
            .map_err(|retry_at| SendError::Paced { retry_at })
    }

    /// The pacing rate the current congestion mode allows.
    pub(crate) fn send_rate(&self, config: &Config) -> super::PacingRate {
        match self.congestion.mode() {
            CongestionMode::Good => config.good_rate,
            CongestionMode::Bad => config.bad_rate,
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
                    || now >= self.last_eliciting_sent + config.keepalive_interval
            }
        }
    }

    /// Writes the most urgent due protocol packet into `out`.
    pub(crate) fn poll_transmit(
        &mut self,
        now: Instant,
        out: &mut [u8],
        cx: &mut Ctx<'_>,
    ) -> Option<usize> {
        let id = cx.config.protocol_id;
        match self.phase {
            Phase::Requesting { next_retry } => {
                if now < next_retry {
                    return None;
                }
                let len = Packet::ConnectionRequest {
                    nonce: self.session,
                }
                .encode(id, out)
                .ok()?;
                self.phase = Phase::Requesting {
                    next_retry: now + cx.config.connect_retry_interval,
                };
                cx.counters.requests_sent += 1;
                Some(len)
            }
            Phase::Responding {
                timestamp,
                token,
                next_retry,
            } => {
                if now < next_retry {
                    return None;
                }
                let len = Packet::ChallengeResponse {
                    nonce: self.session,
                    timestamp,
                    token,
                }
                .encode(id, out)
                .ok()?;
                self.phase = Phase::Responding {
                    timestamp,
                    token,
                    next_retry: now + cx.config.connect_retry_interval,
                };
                cx.counters.responses_sent += 1;
                Some(len)
            }
            Phase::Connected if self.send_accept => {
                let len = Packet::Accept {
                    nonce: self.session,
                }
                .encode(id, out)
                .ok()?;
                self.send_accept = false;
                cx.counters.handshake_accepts += 1;
                Some(len)
            }
            Phase::Connected if self.early_ack.is_some() && out.len() >= CONNECTED_HEADER_LEN => {
                let (seq, mut header) = self.take_header(now);
                header.ack = self.early_ack.take();
                let len = Packet::Ack { header }.encode(id, out).ok()?;
                cx.counters.acks_sent += 1;
                // What arrived after these acks were taken is still unacked: keep its due time.
                self.count_sent(now, seq, len, None, cx);
                Some(len)
            }
            Phase::Connected => {
                let keepalive = now >= self.last_eliciting_sent + cx.config.keepalive_interval;
                let ack = self.ack_due.is_some_and(|due| now >= due);
                if !(keepalive || ack) || out.len() < CONNECTED_HEADER_LEN {
                    return None;
                }
                let (seq, header) = self.take_header(now);
                if keepalive {
                    let len = Packet::Keepalive { header }.encode(id, out).ok()?;
                    cx.counters.keepalives_sent += 1;
                    self.on_sent(now, seq, len, Some(Kind::Keepalive), cx);
                    Some(len)
                } else {
                    let len = Packet::Ack { header }.encode(id, out).ok()?;
                    cx.counters.acks_sent += 1;
                    self.on_sent(now, seq, len, None, cx);
                    Some(len)
                }
            }
        }
    }

    /// Processes an accepted connected packet's sequence and acks.
    ///
    /// Returns the drop reason for duplicates and stale packets (which are not processed).
    /// A payload is checked but not recorded: [`Connection::record`] does that once the
    /// application has it (`Received::Deliver` carries the extended sequence for it).
    pub(crate) fn on_packet(
        &mut self,
        now: Instant,
        header: ConnectedHeader,
        kind: ConnectedKind,
        len: usize,
        cx: &mut Ctx<'_>,
    ) -> Result<Received, DropReason> {
        let seq = self.extend_received(header.sequence);
        let Some(seq) = seq.filter(|&s| !self.received.is_stale(s)) else {
            self.counters.stale += 1;
            cx.counters.stale += 1;
            return Err(DropReason::Stale);
        };
        if self.received.get(seq).is_some() {
            self.counters.duplicates += 1;
            cx.counters.duplicates += 1;
            return Err(DropReason::Duplicate);
        }
        self.last_received = now;
        self.received_rate.add(now, len);
        self.counters.packets_received += 1;
        cx.counters.packets_received += 1;
        if let Some(ack) = header.ack {
            self.process_acks(now, ack, cx);
        }
        Ok(match kind {
            ConnectedKind::Payload => Received::Deliver { seq },
            ConnectedKind::Keepalive => {
                self.record(now, seq, true, cx);
                Received::Consumed
            }
            ConnectedKind::Ack => {
                self.record(now, seq, false, cx);
                Received::Consumed
            }
            ConnectedKind::Disconnect => {
                self.record(now, seq, false, cx);
                Received::Closed
            }
        })
    }

    /// Records `seq` as received, so that it is acked; `eliciting` packets (payloads and
    /// keepalives) make an ack due. `seq` passed [`Connection::on_packet`]'s checks and
    /// nothing was recorded since, so it is neither stale nor a duplicate.
    fn record(&mut self, now: Instant, seq: u64, eliciting: bool, cx: &mut Ctx<'_>) {
        if self.oldest_unacked.is_some_and(|oldest| seq > oldest + 32) {
            // `seq` becomes the newest and pushes an unacked packet out of the 33-sequence
            // ack range (payloads lost or refused in between): take the acks as they stand,
            // to be sent first, or that packet would be reported lost although it arrived.
            self.early_ack = self.ack_fields(now);
            self.oldest_unacked = None;
            self.eliciting_unacked = 0;
        }
        if seq >= self.received.next() {
            self.latest_received_at = now;
        }
        // Not stale, so the insert cannot fail; skipped slots are cleared.
        let _ = self.received.insert(seq, (), |_, ()| {});
        if eliciting {
            self.eliciting_unacked += 1;
            let oldest = self.oldest_unacked.map_or(seq, |o| o.min(seq));
            self.oldest_unacked = Some(oldest);
            // An unacked packet 16 or more behind the newest leaves the 33-sequence ack range
            // soon: acknowledge it before it does. (It may be far behind although few packets
            // were recorded since: a late arrival, or payloads refused in between.)
            let far_behind = oldest + 16 < self.received.next();
            let due = if self.eliciting_unacked >= cx.config.ack_threshold || far_behind {
                now
            } else {
                now + cx.config.max_ack_delay
            };
            self.ack_due = Some(self.ack_due.map_or(due, |d| d.min(due)));
        }
    }

    /// The application took payload `seq` (checked by [`Connection::on_packet`] during the
    /// same datagram): record it, so that it is acked.
    pub(crate) fn deliver(&mut self, now: Instant, seq: u64, cx: &mut Ctx<'_>) {
        self.record(now, seq, true, cx);
        self.counters.payloads_received += 1;
        cx.counters.payloads_received += 1;
    }

    fn process_acks(&mut self, now: Instant, ack: AckFields, cx: &mut Ctx<'_>) {
        let Some(latest_sent) = self.next_seq.checked_sub(1) else {
            return;
        };
        let Some(head) = extend_backwards(latest_sent, ack.ack) else {
            return;
        };
        // A saturated delay says only "held for a long time": no usable RTT sample.
        let delay = (ack.ack_delay != u16::MAX)
            .then(|| Duration::from_micros(u64::from(ack.ack_delay) * ACK_DELAY_UNIT_MICROS));
        self.ack_one(now, head, delay, cx);
        for n in 0..32u64 {
            if ack.ack_bits & (1 << n) != 0 {
                if let Some(s) = head.checked_sub(n + 1) {
                    self.ack_one(now, s, None, cx);
                }
            }
        }
        self.advance_oldest();
    }

    /// Resolves one acked sequence; `rtt_delay` is the peer's ack delay when `seq` is the
    /// newest sequence the ack names (the only one that gives an RTT sample).
    fn ack_one(&mut self, now: Instant, seq: u64, rtt_delay: Option<Duration>, cx: &mut Ctx<'_>) {
        let Some(p) = self.sent.remove(seq) else {
            return;
        };
        if let Some(delay) = rtt_delay {
            let sent_at = self.epoch + Duration::from_nanos(p.sent_at);
            let raw = now.saturating_duration_since(sent_at);
            // A delay larger than the whole round trip is bogus: keep the raw sample.
            self.rtt.sample(if delay < raw { raw - delay } else { raw });
            if let Some(mode) = self.congestion.on_rtt(now, self.rtt.smoothed()) {
                cx.events
                    .push_back(Event::CongestionChanged { conn: cx.id, mode });
            }
        }
        if p.lost {
            // Already reported lost: the late ack only served as an RTT sample.
            self.counters.late_acks += 1;
            cx.counters.late_acks += 1;
            return;
        }
        self.loss.record(false);
        self.acked_rate.add(now, p.bytes as usize);
        if p.kind == Kind::Payload {
            self.counters.acked += 1;
            cx.counters.acked += 1;
            cx.events.push_back(Event::Acked {
                conn: cx.id,
                packet_id: PacketId(seq),
            });
        }
    }

    /// Runs every timer due at `now`. Returns a reason if the connection must end.
    pub(crate) fn on_timeout(
        &mut self,
        now: Instant,
        cx: &mut Ctx<'_>,
    ) -> Option<DisconnectReason> {
        if !self.is_connected() {
            return (now >= self.connect_deadline).then_some(DisconnectReason::ConnectTimedOut);
        }
        if now >= self.last_received + cx.config.idle_timeout {
            return Some(DisconnectReason::TimedOut);
        }
        let timeout = nanos(self.loss_timeout(cx.config));
        let at = self.at(now);
        while self.oldest_unresolved < self.next_seq {
            let seq = self.oldest_unresolved;
            if let Some(p) = self.sent.get_mut(seq).filter(|p| !p.lost) {
                if at < p.sent_at.saturating_add(timeout) {
                    break;
                }
                p.lost = true;
                let p = *p;
                report_lost(seq, p, &mut self.loss, &mut self.counters, cx);
            }
            self.oldest_unresolved += 1;
        }
        if let Some(mode) = self.congestion.advance(now) {
            cx.events
                .push_back(Event::CongestionChanged { conn: cx.id, mode });
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

    /// The earliest instant at which this connection has something to do.
    pub(crate) fn deadline(&self, config: &Config) -> Instant {
        match self.phase {
            Phase::Requesting { next_retry } | Phase::Responding { next_retry, .. } => {
                next_retry.min(self.connect_deadline)
            }
            Phase::Connected => {
                let mut d = (self.last_received + config.idle_timeout)
                    .min(self.last_eliciting_sent + config.keepalive_interval);
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
    }

    pub(crate) fn stats(&self, config: &Config) -> ConnectionStats {
        ConnectionStats {
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

    pub(crate) fn counters_mut(&mut self) -> &mut ConnectionCounters {
        &mut self.counters
    }
}

fn report_lost(
    seq: u64,
    p: SentPacket,
    loss: &mut LossEstimator,
    counters: &mut ConnectionCounters,
    cx: &mut Ctx<'_>,
) {
    loss.record(true);
    if p.kind == Kind::Payload {
        counters.lost += 1;
        cx.counters.lost += 1;
        cx.events.push_back(Event::Lost {
            conn: cx.id,
            packet_id: PacketId(seq),
        });
    }
}
