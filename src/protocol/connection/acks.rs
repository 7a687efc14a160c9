//! Sequence numbers and acknowledgements: what a connection sends, what it records as
//! received, and how acks resolve its packets in flight.

use std::time::{Duration, Instant};

use super::{ConnectedKind, Connection, Ctx, Kind, Received, SentPacket};
use crate::protocol::estimate::LossEstimator;
use crate::protocol::seq::{extend_backwards, extend_sequence};
use crate::protocol::wire::{
    AckFields, BufferTooSmall, ConnectedHeader, WirePacket, ACK_DELAY_UNIT_MICROS,
    CONNECTED_HEADER_LEN,
};
use crate::protocol::{
    CongestionMode, ConnectionCounters, DropReason, Event, PacketNumber, TransmitError,
};

impl Connection {
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
    pub(super) fn extend_received(&self, seq: u16) -> Option<u64> {
        extend_sequence(self.received.next().saturating_sub(1), seq)
    }

    /// Takes the next sequence number for an outgoing connected packet.
    pub(crate) fn take_header(&mut self, now: Instant) -> (u64, ConnectedHeader) {
        let seq = self.next_seq;
        self.next_seq += 1;
        (seq, ConnectedHeader::new(seq as u16, self.ack_fields(now)))
    }

    /// Encodes connected `packet`, whose extended sequence is `seq`, into `out` and seals it
    /// with the connection's keys. A connection without keys (a client still requesting)
    /// writes nothing: it has no connected packet to send.
    pub(crate) fn seal(
        &self,
        seq: u64,
        packet: WirePacket<'_>,
        protocol_id: u32,
        out: &mut [u8],
    ) -> Result<usize, BufferTooSmall> {
        let needed = packet.encoded_len();
        let Some(keys) = &self.protection else {
            return Err(BufferTooSmall { needed });
        };
        let len = packet.encode(protocol_id, out)?;
        keys.seal(seq, &mut out[..len]);
        Ok(len)
    }

    /// Checks a received connected packet before anything else looks at it: extends its
    /// wire sequence against the received window without changing it, and verifies the MAC
    /// over the datagram and that extended sequence. Returns the extended sequence of an
    /// authentic packet, which may still be stale or a duplicate (`on_packet` decides).
    /// Secure-mode packets cannot be checked read-only: `decrypted` is what
    /// [`open`](Self::open) found when the endpoint decrypted this one in place, and
    /// without it the packet is refused.
    ///
    /// A sequence that extends to no value (§4.1: before the start, or exactly half the
    /// space ahead) is verified as the sender would have numbered it, the value ahead of the
    /// newest, and if authentic is stale: so stale drops, like every other drop of a
    /// connection, only ever count authentic packets.
    pub(crate) fn authenticate(
        &self,
        sequence: u16,
        datagram: &[u8],
        decrypted: Option<Result<u64, DropReason>>,
    ) -> Result<u64, DropReason> {
        let keys = self.protection.as_ref().ok_or(DropReason::Unexpected)?;
        if keys.is_encrypting() {
            return decrypted.unwrap_or(Err(DropReason::ReadOnlyBuffer));
        }
        let (extended, candidate) = self.candidate(sequence);
        if !keys.verify(candidate, datagram) {
            return Err(DropReason::BadMac);
        }
        extended.ok_or(DropReason::Stale)
    }

    /// As [`authenticate`](Self::authenticate), for a datagram that may be changed: opens it
    /// with the connection's keys, which in secure mode decrypts it in place. A packet that
    /// fails is dropped (in secure mode with its body wiped), and nothing about the connection
    /// changes either way.
    pub(crate) fn open(&self, sequence: u16, datagram: &mut [u8]) -> Result<u64, DropReason> {
        let keys = self.protection.as_ref().ok_or(DropReason::Unexpected)?;
        let (extended, candidate) = self.candidate(sequence);
        if !keys.open(candidate, datagram) {
            return Err(DropReason::BadMac);
        }
        extended.ok_or(DropReason::Stale)
    }

    /// The extended sequence of a received wire sequence, if it has one, and the value its
    /// tag is checked against.
    fn candidate(&self, sequence: u16) -> (Option<u64>, u64) {
        let newest = self.received.next().saturating_sub(1);
        let extended = self.extend_received(sequence);
        let candidate =
            extended.unwrap_or_else(|| newest + u64::from(sequence.wrapping_sub(newest as u16)));
        (extended, candidate)
    }

    /// Bookkeeping common to every connected packet sent.
    pub(super) fn on_sent(
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
    pub(super) fn count_sent(
        &mut self,
        now: Instant,
        seq: u64,
        len: usize,
        kind: Option<Kind>,
        cx: &mut Ctx<'_>,
    ) {
        self.sent_rate.add(now, len);
        self.counters.packets_sent += 1;
        let Some(kind) = kind else { return };
        self.last_eliciting_sent = now;
        let packet = SentPacket {
            sent_at: self.at(now),
            bytes: len as u32,
            kind,
            lost: false,
            suspected: false,
        };
        if matches!(kind, Kind::Payload { .. }) {
            self.flight.payloads += 1;
        }
        self.flight.rate.on_sent();
        let next_seq = self.next_seq;
        let Self {
            sent,
            loss,
            counters,
            flight,
            ..
        } = self;
        // Inserting the next sequence overwrites the slot of the packet one window older:
        // if that packet is still unresolved, it can no longer be acked and is lost.
        let inserted = sent.insert(seq, packet, |old, p| {
            if !p.lost {
                report_lost(old, p, loss, counters, cx);
                flight.leave(&p);
                if !p.suspected {
                    flight.rate.on_loss(old, next_seq);
                }
            }
        });
        debug_assert!(inserted.is_ok(), "sequences are sent in order");
        self.advance_oldest();
    }

    /// Moves the oldest-unresolved cursor past resolved and overwritten entries.
    pub(super) fn advance_oldest(&mut self) {
        let floor = self.next_seq.saturating_sub(self.sent.capacity());
        self.oldest_unresolved = self.oldest_unresolved.max(floor);
        while self.oldest_unresolved < self.next_seq
            && self.sent.get(self.oldest_unresolved).is_none_or(|p| p.lost)
        {
            self.oldest_unresolved += 1;
        }
    }

    /// Encodes and records one application payload.
    /// `tag` comes back in the packet's `Acked` or `Lost` event (`None`: its sequence).
    pub(crate) fn send_payload(
        &mut self,
        now: Instant,
        payload: &[u8],
        tag: Option<u64>,
        out: &mut [u8],
        cx: &mut Ctx<'_>,
    ) -> Result<(usize, PacketNumber), TransmitError> {
        if !self.is_connected() {
            return Err(TransmitError::NotConnected);
        }
        let max = cx.config.max_payload;
        if payload.len() > max {
            self.counters.too_large_to_send += 1;
            return Err(TransmitError::TooLarge {
                len: payload.len(),
                max,
            });
        }
        let needed = CONNECTED_HEADER_LEN + payload.len();
        if out.len() < needed {
            return Err(TransmitError::BufferTooSmall { needed });
        }
        if let Some(retry_at) = self.window_full(now, cx.config) {
            self.counters.paced += 1;
            return Err(TransmitError::Paced { retry_at });
        }
        let rate = self.send_rate(cx.config);
        let unpaced = self.unpaced();
        match self.pacer.try_acquire(now, rate) {
            // Unpaced, it takes a token if there is one and is sent regardless.
            Err(_) if unpaced => {}
            Err(retry_at) => {
                self.counters.paced += 1;
                self.flight.rate.on_paced();
                return Err(TransmitError::Paced { retry_at });
            }
            Ok(()) => {}
        }
        let (seq, header) = self.take_header(now);
        let tag = tag.unwrap_or(seq);
        let len = self
            .seal(
                seq,
                WirePacket::Payload { header, payload },
                cx.config.protocol_id,
                out,
            )
            .map_err(|e| TransmitError::BufferTooSmall { needed: e.needed })?;
        self.counters.payloads_sent += 1;
        self.on_sent(now, seq, len, Some(Kind::Payload { tag }), cx);
        if let Some(last) = self.last_payload_sent {
            let gap = now.saturating_duration_since(last);
            // EWMA 1/8, as the RTT: a frame loop's interval, not one stall's.
            self.payload_interval = Some(self.payload_interval.map_or(gap, |i| (i * 7 + gap) / 8));
        }
        self.last_payload_sent = Some(now);
        Ok((len, PacketNumber(seq)))
    }

    /// Processes an authentic connected packet's sequence and acks: `seq` is the extended
    /// sequence [`Connection::authenticate`] verified the packet's MAC for.
    ///
    /// Returns the drop reason for duplicates and stale packets (which are not processed).
    /// A payload is checked but not recorded: [`Connection::record`] does that once the
    /// application has it (`Received::Deliver` carries the extended sequence for it).
    pub(crate) fn on_packet(
        &mut self,
        now: Instant,
        seq: u64,
        header: ConnectedHeader,
        kind: ConnectedKind,
        len: usize,
        cx: &mut Ctx<'_>,
    ) -> Result<Received, DropReason> {
        if self.received.is_stale(seq) {
            self.counters.stale += 1;
            return Err(DropReason::Stale);
        }
        if self.received.get(seq).is_some() {
            self.counters.duplicates += 1;
            return Err(DropReason::Duplicate);
        }
        self.last_received = now;
        self.received_rate.add(now, len);
        self.counters.packets_received += 1;
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
    pub(super) fn record(&mut self, now: Instant, seq: u64, eliciting: bool, cx: &mut Ctx<'_>) {
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
            self.last_eliciting_received = Some(now);
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
                now + self.ack_hold(now, cx.config.max_ack_delay)
            };
            self.ack_due = Some(self.ack_due.map_or(due, |d| d.min(due)));
        }
    }

    /// How long an ack may wait for a packet to ride on: `max_ack_delay`, or, while the
    /// application sends payloads at a steady interval under 25 ms (a frame loop), until just
    /// after its next payload is due (at most 25 ms): that payload then carries the ack and
    /// no ack-only datagram is sent. The ack delay field tells the peer how long it was held,
    /// so its RTT sample stays honest, and its loss timeout (at least 1 s) is far longer.
    fn ack_hold(&self, now: Instant, max_ack_delay: Duration) -> Duration {
        const CAP: Duration = Duration::from_millis(25);
        const SLACK: Duration = Duration::from_millis(2);
        match (self.payload_interval, self.last_payload_sent) {
            (Some(interval), Some(last))
                if interval < CAP && now.saturating_duration_since(last) < interval * 2 =>
            {
                let next_payload = last + interval + SLACK;
                max_ack_delay
                    .max(next_payload.saturating_duration_since(now))
                    .min(CAP.max(max_ack_delay))
            }
            _ => max_ack_delay,
        }
    }

    /// The application took payload `seq` (checked by [`Connection::on_packet`] during the
    /// same datagram): record it, so that it is acked.
    pub(crate) fn deliver(&mut self, now: Instant, seq: u64, cx: &mut Ctx<'_>) {
        self.record(now, seq, true, cx);
        self.counters.payloads_received += 1;
    }

    pub(super) fn process_acks(&mut self, now: Instant, ack: AckFields, cx: &mut Ctx<'_>) {
        let Some(latest_sent) = self.next_seq.checked_sub(1) else {
            return;
        };
        let Some(head) = extend_backwards(latest_sent, ack.ack) else {
            return;
        };
        // A saturated delay says only "held for a long time": no usable RTT sample.
        let delay = (ack.ack_delay != u16::MAX)
            .then(|| Duration::from_micros(u64::from(ack.ack_delay) * ACK_DELAY_UNIT_MICROS));
        if let (Some((seq, sent_at)), Some(delay)) = (self.idle_ack, delay) {
            if seq == head {
                // The peer's packet names our idle Ack as the newest it received: the Ack
                // is not tracked, but its send time and the delay make a sample all the same.
                self.idle_ack = None;
                self.rtt_sample(now, sent_at, delay, cx);
            }
        }
        self.ack_one(now, head, delay, cx);
        for n in 0..32u64 {
            if ack.ack_bits & (1 << n) != 0 {
                if let Some(s) = head.checked_sub(n + 1) {
                    self.ack_one(now, s, None, cx);
                }
            }
        }
        self.suspect_holes(now, head, ack.ack_bits);
        self.advance_oldest();
    }

    /// Packets this ack shows missing with at least three newer ones received (bits 2 and
    /// up: `head - 3` and older), sent longer ago than a round trip and its variation allow
    /// for reordering: the rate controller takes them as lost now, rather than at the loss
    /// timeout a second later. Their notification still waits for the ack or the timeout.
    fn suspect_holes(&mut self, now: Instant, head: u64, ack_bits: u32) {
        let allowance = self.rtt.smoothed() + 4 * self.rtt.variation();
        let sent_before = self.at(now).saturating_sub(super::nanos(allowance));
        let mut holes = !ack_bits & !0b11;
        while holes != 0 {
            let n = u64::from(holes.trailing_zeros());
            holes &= holes - 1;
            let Some(seq) = head.checked_sub(n + 1) else {
                break;
            };
            let Some(p) = self.sent.get_mut(seq) else {
                continue; // acked, or never tracked (an ack-only packet)
            };
            if p.lost || p.suspected || p.sent_at > sent_before {
                continue;
            }
            let was = *p;
            p.suspected = true;
            self.flight.leave(&was);
            self.flight.rate.on_loss(seq, self.next_seq);
        }
    }

    /// Takes an RTT sample from a packet sent at `sent_at` whose ack the peer held for
    /// `delay`, and returns it.
    fn rtt_sample(
        &mut self,
        now: Instant,
        sent_at: Instant,
        delay: Duration,
        cx: &mut Ctx<'_>,
    ) -> Duration {
        let raw = now.saturating_duration_since(sent_at);
        // A delay larger than the whole round trip is bogus: keep the raw sample.
        let rtt = if delay < raw { raw - delay } else { raw };
        self.rtt.sample(rtt);
        if let Some(mode) = self.congestion.on_rtt(now, self.rtt.smoothed()) {
            cx.events
                .push_back(Event::CongestionChanged { conn: cx.id, mode });
            self.flight.rate.hold(mode == CongestionMode::Bad);
        }
        rtt
    }

    /// Resolves one acked sequence; `rtt_delay` is the peer's ack delay when `seq` is the
    /// newest sequence the ack names (the only one that gives an RTT sample).
    pub(super) fn ack_one(
        &mut self,
        now: Instant,
        seq: u64,
        rtt_delay: Option<Duration>,
        cx: &mut Ctx<'_>,
    ) {
        let Some(p) = self.sent.remove(seq) else {
            return;
        };
        self.flight.leave(&p);
        let sample = rtt_delay.map(|delay| {
            let sent_at = self.epoch + Duration::from_nanos(p.sent_at);
            self.rtt_sample(now, sent_at, delay, cx)
        });
        let (srtt, next_seq) = (self.rtt.smoothed(), self.next_seq);
        self.flight.rate.on_ack(now, seq, sample, srtt, next_seq);
        if p.lost {
            // Already reported lost: the late ack only served as an RTT sample.
            self.counters.late_acks += 1;
            return;
        }
        self.loss.record(false);
        self.acked_rate.add(now, p.bytes as usize);
        if let Kind::Payload { tag } = p.kind {
            self.counters.acked += 1;
            cx.events.push_back(Event::Acked {
                conn: cx.id,
                packet_id: PacketNumber(seq),
                tag,
            });
        }
    }
}

pub(super) fn report_lost(
    seq: u64,
    p: SentPacket,
    loss: &mut LossEstimator,
    counters: &mut ConnectionCounters,
    cx: &mut Ctx<'_>,
) {
    loss.record(true);
    if let Kind::Payload { tag } = p.kind {
        counters.lost += 1;
        cx.events.push_back(Event::Lost {
            conn: cx.id,
            packet_id: PacketNumber(seq),
            tag,
        });
    }
}
