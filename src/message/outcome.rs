//! What the packet layer's outcomes mean for messages: acks, losses and the events they
//! produce.

use std::collections::VecDeque;
use std::time::Instant;

use super::{MessageConnection, MessageCounters, MessageEvent, MessageId, RecvChannel, SentItem};
use crate::protocol::PacketNumber;

impl MessageConnection {
    /// The payload last written was not sent (e.g. `Endpoint::send` refused it): its
    /// reliable frames are queued again, its unreliable messages reported
    /// [`Lost`](MessageEvent::Lost). Checking `Endpoint::can_send` before polling avoids it.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use gudp::message::{MessageConfig, MessageConnection, MessageEvent};
    /// let mut conn = MessageConnection::new(MessageConfig::default()).unwrap();
    /// let id = conn.send(0, b"x").unwrap();
    /// let mut out = [0u8; 1200];
    /// conn.poll_payload(Instant::now(), &mut out).unwrap();
    /// conn.on_packet_unsent();
    /// assert_eq!(conn.poll_event(), Some(MessageEvent::Lost(id)));
    /// ```
    pub fn on_packet_unsent(&mut self) {
        if std::mem::take(&mut self.pending_acks) {
            self.acks_lost();
        }
        let mut items = std::mem::take(&mut self.pending);
        for item in items.drain(..) {
            self.resolve_item(item, false);
        }
        self.pending = items;
    }

    /// The packet layer reported packet `packet_id` acked (`Event::Acked`): every message
    /// part it carried is acked. Its round trip also feeds the resend timeout.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::message::{MessageConfig, MessageConnection, MessageEvent};
    /// # use gudp::protocol::PacketNumber;
    /// let t0 = Instant::now();
    /// let mut conn = MessageConnection::new(MessageConfig::default()).unwrap();
    /// let id = conn.send(3, b"x").unwrap();
    /// let mut out = [0u8; 1200];
    /// conn.poll_payload(t0, &mut out).unwrap();
    /// conn.on_packet_sent(t0, PacketNumber(0));
    /// conn.on_packet_acked(t0 + Duration::from_millis(40), PacketNumber(0));
    /// assert_eq!(conn.poll_event(), Some(MessageEvent::Acked(id)));
    /// assert_eq!(conn.rto().smoothed(), Duration::from_millis(40));
    /// ```
    pub fn on_packet_acked(&mut self, now: Instant, packet_id: PacketNumber) {
        let mut items = std::mem::take(&mut self.scratch);
        match self.tracker.resolve(packet_id, &mut items) {
            Some((sent_at, _)) => {
                self.rto.sample(now.saturating_duration_since(sent_at));
                self.last_ack = Some(now);
            }
            None => self.counters.unknown_packets += 1,
        }
        for item in items.drain(..) {
            self.resolve_item(item, true);
        }
        self.scratch = items;
        self.drop_stale_timers();
    }

    /// The packet layer reported packet `packet_id` lost (`Event::Lost`): its reliable
    /// parts are resent (unless another copy is in flight), its unreliable messages are
    /// [`Lost`](MessageEvent::Lost).
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use gudp::message::{MessageConfig, MessageConnection};
    /// # use gudp::protocol::PacketNumber;
    /// let now = Instant::now();
    /// let mut conn = MessageConnection::new(MessageConfig::default()).unwrap();
    /// conn.send(3, b"x").unwrap();
    /// let mut out = [0u8; 1200];
    /// conn.poll_payload(now, &mut out).unwrap();
    /// conn.on_packet_sent(now, PacketNumber(0));
    /// conn.on_packet_lost(PacketNumber(0));
    /// assert_eq!(conn.poll_payload(now, &mut out), Some(6)); // resent at once
    /// assert_eq!(conn.counters().resends, 1);
    /// ```
    pub fn on_packet_lost(&mut self, packet_id: PacketNumber) {
        let mut items = std::mem::take(&mut self.scratch);
        match self.tracker.resolve(packet_id, &mut items) {
            Some((_, true)) => self.acks_lost(),
            Some(_) => {}
            None => self.counters.unknown_packets += 1,
        }
        for item in items.drain(..) {
            self.resolve_item(item, false);
        }
        self.scratch = items;
        self.drop_stale_timers();
    }

    /// Ack frames went out in a packet that was lost (or never sent): every reliable
    /// channel that has received something acks again at once.
    fn acks_lost(&mut self) {
        for r in &mut self.recv {
            if let RecvChannel::Reliable(r) = r {
                r.ack.ready |= r.has_received();
            }
        }
    }

    fn resolve_item(&mut self, item: SentItem, acked: bool) {
        if self.is_reliable(item.channel) {
            let ch = &mut self.send[usize::from(item.channel)];
            if acked {
                if let Some(id) = ch.on_acked(&item, &mut self.pool) {
                    self.counters.messages_acked += 1;
                    self.push_event(MessageEvent::Acked(id));
                }
            } else {
                ch.on_lost(&item);
            }
            return;
        }
        if item.frag.is_none() {
            return self.unreliable_outcome(item.msg, acked);
        }
        let Some(i) = self.fragmented.iter().position(|f| f.msg == item.msg) else {
            return;
        };
        let f = &mut self.fragmented[i];
        f.remaining -= 1;
        f.lost |= !acked;
        if f.remaining == 0 {
            let f = self.fragmented.remove(i).expect("found");
            self.unreliable_outcome(f.msg, !f.lost);
        }
    }

    fn is_reliable(&self, channel: u8) -> bool {
        self.config.channels[usize::from(channel)]
            .kind
            .is_reliable()
    }

    fn unreliable_outcome(&mut self, msg: MessageId, acked: bool) {
        if acked {
            self.counters.messages_acked += 1;
            self.push_event(MessageEvent::Acked(msg));
        } else {
            self.counters.messages_lost += 1;
            self.push_event(MessageEvent::Lost(msg));
        }
    }

    fn push_event(&mut self, e: MessageEvent) {
        push_event(
            &mut self.events,
            &mut self.counters,
            self.config.max_events,
            e,
        );
    }

    /// The next outcome of a sent message, oldest first.
    ///
    /// ```
    /// # use gudp::message::{MessageConfig, MessageConnection};
    /// let mut conn = MessageConnection::new(MessageConfig::default()).unwrap();
    /// assert_eq!(conn.poll_event(), None);
    /// ```
    pub fn poll_event(&mut self) -> Option<MessageEvent> {
        self.events.pop_front()
    }
}

/// Queues an event, dropping (and counting) the oldest beyond `max`.
pub(super) fn push_event(
    events: &mut VecDeque<MessageEvent>,
    counters: &mut MessageCounters,
    max: usize,
    e: MessageEvent,
) {
    if events.len() >= max {
        events.pop_front();
        counters.events_dropped += 1;
    }
    events.push_back(e);
}
