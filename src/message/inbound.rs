//! The receiving path: validating a payload as a whole, then taking its frames into the
//! reliable windows, the unreliable reassembly pool and the ready queue.

use std::time::Instant;

use super::fragment::{PartialOutcome, MESSAGE_OVERHEAD};
use super::frame::{decode, Frame, FrameError, MAX_CHANNELS};
use super::outcome::push_event;
use super::recv::Received;
use super::{Message, MessageConnection, MessageEvent, ReceiveError, RecvChannel, ACK_FRAME_DELAY};
use crate::protocol::seq::sequence_greater_than;

impl MessageConnection {
    /// Bytes of received message data held: out-of-order and partial reliable messages,
    /// partial unreliable messages, and messages waiting for
    /// [`poll_message`](Self::poll_message). Never above
    /// [`MessageConfig::max_receive_memory`](super::MessageConfig::max_receive_memory).
    ///
    /// ```
    /// # use gudp::message::{MessageConfig, MessageConnection};
    /// let conn = MessageConnection::new(MessageConfig::default()).unwrap();
    /// assert_eq!(conn.receive_memory(), 0);
    /// ```
    pub fn receive_memory(&self) -> usize {
        let reliable: usize = self
            .recv
            .iter()
            .map(|r| match r {
                RecvChannel::Reliable(r) => r.held(),
                RecvChannel::Unreliable { .. } => 0,
            })
            .sum();
        reliable + self.partials.bytes() + self.ready_bytes
    }

    /// Takes one received packet payload. `Ok`: pass the packet's receipt to
    /// `Endpoint::deliver` (so it is acked). `Err`: nothing was taken; do not deliver, and
    /// the sender will resend what was reliable. A payload is taken whole or not at all.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use gudp::message::{FrameError, MessageConfig, MessageConnection, ReceiveError};
    /// let mut conn = MessageConnection::new(MessageConfig::default()).unwrap();
    /// let now = Instant::now();
    /// // "hi" on channel 1 (sequenced), id 5; then a truncated frame.
    /// assert_eq!(conn.handle_payload(now, &[0x01, 0, 5, 0, 2, b'h', b'i']), Ok(()));
    /// assert_eq!(conn.handle_payload(now, &[0x01, 0, 6, 0, 2, b'h']), Err(ReceiveError::Frame(FrameError::Truncated)));
    /// assert_eq!(conn.poll_message().unwrap().data, b"hi");
    /// ```
    pub fn handle_payload(&mut self, now: Instant, payload: &[u8]) -> Result<(), ReceiveError> {
        let checked = self.check_payload(payload);
        if let Err(e) = checked {
            match e {
                ReceiveError::Full => self.counters.payloads_refused += 1,
                _ => self.counters.payloads_malformed += 1,
            }
            return checked;
        }
        self.counters.payloads_received += 1;
        let fs = self.geometry.fragment_size;
        let mut late = false;
        for frame in decode(payload, fs) {
            let (channel, id, data, fragment) = match frame.expect("checked") {
                Frame::Ack {
                    channel,
                    next,
                    blocks,
                } => {
                    let (events, counters) = (&mut self.events, &mut self.counters);
                    let max_events = self.config.max_events;
                    let ch = &mut self.send[usize::from(channel)];
                    let sent_at = ch.on_ack_frame(next, blocks, &mut self.pool, &mut |id| {
                        counters.messages_acked += 1;
                        counters.acked_by_frame += 1;
                        push_event(events, counters, max_events, MessageEvent::Acked(id));
                    });
                    counters.ack_frames_received += 1;
                    if let Some(at) = sent_at {
                        self.rto.sample_reordered(now.saturating_duration_since(at));
                        self.last_ack = Some(now);
                    }
                    continue;
                }
                Frame::Message { channel, id, data } | Frame::NextMessage { channel, id, data } => {
                    (channel, id, data, None)
                }
                Frame::Fragment {
                    channel,
                    id,
                    total,
                    index,
                    data,
                } => (channel, id, data, Some((index, total as usize))),
            };
            let c = usize::from(channel);
            match &mut self.recv[c] {
                RecvChannel::Reliable(r) => {
                    late |= r.note_arrival(id, fragment.map_or(0, |(i, _)| i));
                    let pool = &mut self.pool;
                    let got = r.receive(id, data, fragment.map(|(i, t)| (i, t, fs)), |b| {
                        pool.copy_of(b)
                    });
                    match got {
                        // Only a payload contradicting itself (one id both whole and in
                        // fragments) gets here past the check: skip the frame.
                        Err(_) => self.counters.payloads_malformed += 1,
                        Ok(Received::Duplicate) => self.counters.duplicates += 1,
                        Ok(Received::Stored) => {}
                        Ok(Received::Ready(data)) => {
                            self.push_ready(channel, data);
                            while let RecvChannel::Reliable(r) = &mut self.recv[c] {
                                let Some(data) = r.next_ready() else { break };
                                self.push_ready(channel, data);
                            }
                        }
                    }
                }
                RecvChannel::Unreliable { .. } => {
                    let data = match fragment {
                        None => self.pool.copy_of(data),
                        Some((index, total)) => {
                            let got = self.partials.insert(
                                now,
                                channel,
                                id,
                                total,
                                index,
                                data,
                                fs,
                                &mut self.counters.reassembly_evicted,
                            );
                            match got {
                                PartialOutcome::Stored => continue,
                                PartialOutcome::TooLarge => {
                                    self.counters.reassembly_too_large += 1;
                                    continue;
                                }
                                PartialOutcome::Complete(data) => data,
                            }
                        }
                    };
                    let RecvChannel::Unreliable { sequenced, latest } = &mut self.recv[c] else {
                        unreachable!("matched above")
                    };
                    if *sequenced {
                        if latest.is_some_and(|l| !sequence_greater_than(id, l)) {
                            self.counters.sequenced_dropped += 1;
                            self.pool.put(data);
                            continue;
                        }
                        *latest = Some(id);
                    }
                    self.push_ready(channel, data);
                }
            }
        }
        if late {
            // Reordering is the path's, not one channel's: a packet of another channel may
            // have fallen out of the packet layer's ack range with it. Every reliable
            // channel that has received something reports what it holds.
            for r in &mut self.recv {
                if let RecvChannel::Reliable(r) = r {
                    if r.has_received() && r.ack.at.is_none() {
                        r.ack.at = Some(now + ACK_FRAME_DELAY);
                    }
                }
            }
        }
        Ok(())
    }

    /// Validates a whole payload and checks that its reliable frames fit their channels'
    /// budgets, changing nothing.
    fn check_payload(&self, payload: &[u8]) -> Result<(), ReceiveError> {
        if self.ready_bytes >= self.config.max_ready_bytes {
            return Err(ReceiveError::Full);
        }
        let fs = self.geometry.fragment_size;
        let mut need = [0usize; MAX_CHANNELS];
        for frame in decode(payload, fs) {
            let (channel, id, len, total) = match frame? {
                Frame::Ack { channel, .. } => {
                    let reliable = self.config.channels.get(usize::from(channel));
                    if !reliable.is_some_and(|c| c.kind.is_reliable()) {
                        return Err(FrameError::BadAck.into());
                    }
                    continue;
                }
                Frame::Message { channel, id, data } | Frame::NextMessage { channel, id, data } => {
                    (channel, id, data.len(), None)
                }
                Frame::Fragment {
                    channel,
                    id,
                    total,
                    data,
                    ..
                } => (channel, id, data.len(), Some(total as usize)),
            };
            let c = usize::from(channel);
            let config = self
                .config
                .channels
                .get(c)
                .ok_or(FrameError::UnknownChannel(channel))?;
            let size = total.unwrap_or(len);
            if size > config.max_message_size {
                return Err(FrameError::TooLarge {
                    len: size,
                    max: config.max_message_size,
                }
                .into());
            }
            if let RecvChannel::Reliable(r) = &self.recv[c] {
                need[c] += r.cost_of(id, total.map(|t| (t, fs)), len)?;
            }
        }
        for (c, r) in self.recv.iter().enumerate() {
            if let RecvChannel::Reliable(r) = r {
                if need[c] > 0 && r.held() + need[c] > r.budget() {
                    return Err(ReceiveError::Full);
                }
            }
        }
        Ok(())
    }

    fn push_ready(&mut self, channel: u8, data: Vec<u8>) {
        self.counters.messages_received += 1;
        self.ready_bytes += data.len() + MESSAGE_OVERHEAD;
        self.ready.push_back((channel, data));
    }

    /// The next received message, in delivery order across channels. It borrows the
    /// connection's buffer until the next call, which recycles it: no allocation per small
    /// message once warm.
    ///
    /// ```
    /// # use gudp::message::{MessageConfig, MessageConnection};
    /// let mut conn = MessageConnection::new(MessageConfig::default()).unwrap();
    /// assert!(conn.poll_message().is_none());
    /// ```
    pub fn poll_message(&mut self) -> Option<Message<'_>> {
        if let Some((_, data)) = self.current.take() {
            self.pool.put(data);
        }
        let (channel, data) = self.ready.pop_front()?;
        self.ready_bytes -= data.len() + MESSAGE_OVERHEAD;
        let (channel, data) = self.current.insert((channel, data));
        Some(Message {
            channel: *channel,
            data,
        })
    }
}
