//! Message mode on the daemon: one sans-IO `MessageConnection` per connection, driven
//! exactly as `docs/message-layer.md` §7 asks.
//!
//! * **Send** ([`Driver::flush_messages`], when a sender or a timer makes the connection
//!   ready): take what senders queued into the layer; fire its timers; then, while it
//!   wants to send and the endpoint's pacing allows, `poll_payload` → `Endpoint::send` →
//!   `on_packet_sent` (`on_packet_unsent` on a refusal). A paced connection keeps one live
//!   timer (`Timer::Pacing`, at the earlier of the pacing slot and the layer's own
//!   deadline), so its senders need not wake the loop meanwhile.
//! * **Outcomes** ([`on_outcome`]): the endpoint's `Acked` / `Lost` go to the layer; the
//!   connection is flushed once at the end of the turn (an ack may open the window).
//! * **Receive** ([`take_payload`]): `handle_payload`, and `Endpoint::deliver(receipt)`
//!   only on `Ok`, so a payload is acked only once the layer holds it.
//! * **Settle** (after each of these): the layer's events go to the user's ring, the bytes
//!   it released go back to the senders' budgets, and received messages move to the
//!   user's inbox while it has room (the rest wait in the layer: `core::messages`).

use super::counters::DaemonCounters;
use super::driver::Driver;
use super::output::Output;
use super::registry::SocketState;
use super::timers::Timer;
use crate::connection::{ConnKey, ConnShared, ReceivedMessage};
use crate::core::pool::{BufferPool, Packet};
use crate::message::{MessageConfig, MessageConnection, MessageEvent, MessageId, ReceiveError};
use crate::protocol::{ConnectionId, PacketNumber, Receipt, TransmitError};
use crate::trace::event;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// What the daemon keeps for one message-mode connection.
pub(super) struct MessageState {
    conn: MessageConnection,
    /// Budget bytes the layer holds, per channel, as last released: what the senders
    /// reserved for messages the daemon handed to the layer.
    accounted: Vec<usize>,
    /// A received message the inbox had no room for: offered first next time.
    pending: Option<ReceivedMessage>,
    /// One payload, written by the layer, read by `Endpoint::send`.
    payload: Vec<u8>,
    /// Queued on the driver's list of connections to flush at the end of the turn.
    dirty: bool,
}

impl MessageState {
    /// The state of a new connection of a daemon whose `DaemonConfig::validate` passed.
    pub(super) fn new(config: &MessageConfig) -> Box<Self> {
        let conn = MessageConnection::new(config.clone())
            .expect("DaemonConfig::validate checked the message configuration");
        Box::new(Self {
            conn,
            accounted: vec![0; config.channels.len()],
            pending: None,
            payload: vec![0; config.max_payload],
            dirty: false,
        })
    }

    /// Whether everything senders queued has been sent and every reliable message acked.
    pub(super) fn is_flushed(&self) -> bool {
        self.conn.is_flushed()
    }

    /// Senders' messages into the layer, in ring order (one sender's program order).
    fn take_queued(&mut self, shared: &ConnShared, counters: &mut DaemonCounters) {
        let core = &shared.messages;
        let mut took = false;
        while let Some(message) = core.pop() {
            took = true;
            let id = MessageId(message.id);
            match self.conn.send_as(id, message.channel, &message.bytes) {
                Ok(()) => self.accounted[usize::from(message.channel)] += message.cost,
                Err(_error) => {
                    // Not expected: the sender checked the channel and size and reserved
                    // the layer's exact cost. Reported, never silently dropped.
                    counters.sends_refused += 1;
                    event!(warn, error = %_error, "message refused by the message layer");
                    core.release(message.channel, message.cost);
                    core.notify_event(MessageEvent::Lost(id));
                }
            }
            core.pool().give(message.bytes);
        }
        if took {
            core.took_messages();
        }
    }

    /// Sends payloads while the layer has something due and pacing allows. Returns when
    /// pacing lets the next one go, if it held one back.
    fn send_due(
        &mut self,
        socket: &mut SocketState,
        conn: ConnectionId,
        now: Instant,
        out: &mut Output,
    ) -> Option<Instant> {
        while self.conn.wants_to_send() {
            match socket.endpoint.can_send(now, conn) {
                Ok(()) => {}
                Err(TransmitError::Paced { retry_at }) => return Some(retry_at),
                Err(_) => return None, // not connected (yet, or any more)
            }
            let len = self.conn.poll_payload(now, &mut self.payload)?;
            match socket
                .endpoint
                .send(now, conn, &self.payload[..len], out.slot())
            {
                Ok(transmit) => {
                    let id = transmit.packet_id.expect("a payload packet has an id");
                    self.conn.on_packet_sent(now, id);
                    out.transmit(socket, now, transmit);
                }
                Err(error) => {
                    self.conn.on_packet_unsent();
                    if let TransmitError::Paced { retry_at } = error {
                        return Some(retry_at);
                    }
                    return None;
                }
            }
        }
        None
    }

    /// Events to the user's ring, released bytes to the budgets, received messages to the
    /// inbox.
    fn settle(&mut self, shared: &ConnShared, pool: &Arc<BufferPool>, max_payload: usize) {
        let core = &shared.messages;
        while let Some(event) = self.conn.poll_event() {
            core.notify_event(event);
        }
        for (channel, accounted) in self.accounted.iter_mut().enumerate() {
            let held = self.conn.channel_held(channel as u8);
            if held < *accounted {
                core.release(channel as u8, *accounted - held);
                *accounted = held;
            }
        }
        loop {
            let message = match self.pending.take() {
                Some(message) => message,
                None => {
                    let Some(message) = self.conn.poll_message() else {
                        return;
                    };
                    // Pool buffers are `max_payload` long: a larger copy gets its own.
                    let bytes = if message.data.len() <= max_payload {
                        pool.copy_of(message.data)
                    } else {
                        message.data.to_vec()
                    };
                    ReceivedMessage::new(message.channel, Packet::new(bytes, pool.clone()))
                }
            };
            if let Err(back) = core.deliver(message) {
                if core.inbox.status().is_finished() {
                    continue; // closing: nobody reads any more
                }
                self.pending = Some(back); // a consumer's take asks for a refill
                return;
            }
        }
    }
}

impl Driver {
    /// Message-mode counterpart of `flush_outbox`: take the senders' messages, fire the
    /// layer's timers, send what is due, settle, and keep one timer for what comes next.
    pub(super) fn flush_messages(&mut self, key: ConnKey, now: Instant) {
        let max_payload = self.max_payload;
        let Some(socket) = self.sockets.get_mut(key.socket) else {
            return;
        };
        let Some(state) = socket.conn_mut(key.conn) else {
            return;
        };
        let Some(mut m) = state.messages.take() else {
            return;
        };
        let shared = state.shared.clone();
        // We look now: a message pushed from here on must tell us again.
        shared.messages.begin_flush();
        m.take_queued(&shared, &mut self.out.counters);
        m.conn.handle_timeout(now);
        let paced = m.send_due(socket, key.conn, now, &mut self.out);
        m.settle(&shared, &shared.daemon.pool, max_payload);
        if paced.is_some() {
            shared.messages.hold_for_pacing();
        }
        let wake = match (paced, m.conn.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let state = socket
            .conn_mut(key.conn)
            .expect("sending ends no connection");
        state.messages = Some(m);
        // One live timer, as for pacing: an earlier want supersedes the entry, a later one
        // is re-armed when the entry fires.
        if let Some(at) = wake.map(|at| at.max(now)) {
            if state.pacing_at.is_none_or(|current| at < current) {
                state.pacing_at = Some(at);
                self.out.push_timer(at, Timer::Pacing(key.socket, key.conn));
            }
        }
        self.after_work(key.socket.slot, now);
    }

    /// Flushes the connections whose layer learned outcomes this turn (once each).
    pub(super) fn flush_dirty_messages(&mut self, now: Instant) {
        let mut dirty = std::mem::take(&mut self.messages_dirty);
        for key in dirty.drain(..) {
            let state = self
                .sockets
                .get_mut(key.socket)
                .and_then(|socket| socket.conn_mut(key.conn));
            if let Some(m) = state.and_then(|state| state.messages.as_mut()) {
                m.dirty = false;
                self.flush_messages(key, now);
            }
        }
        self.messages_dirty = dirty;
    }

    /// The endpoint reported `packet_id` acked or lost: if `conn` is in message mode, the
    /// layer learns it (and the connection is flushed at the end of the turn). Returns
    /// whether it was.
    pub(super) fn on_outcome(
        &mut self,
        slot: usize,
        conn: ConnectionId,
        packet_id: PacketNumber,
        acked: bool,
        now: Instant,
    ) -> bool {
        let Some(socket) = self.sockets.at_mut(slot) else {
            return false;
        };
        let key = super::registry::conn_key(socket, conn);
        let Some(m) = socket
            .conn_mut(conn)
            .and_then(|state| state.messages.as_mut())
        else {
            return false;
        };
        if acked {
            m.conn.on_packet_acked(now, packet_id);
        } else {
            m.conn.on_packet_lost(packet_id);
        }
        if !m.dirty {
            m.dirty = true;
            self.messages_dirty.push(key);
        }
        true
    }
}

/// A payload arrived on a message-mode connection: the layer takes it whole (then it is
/// delivered, so acked) or not at all (then it is dropped and counted, never acked).
pub(super) fn take_payload(
    socket: &mut SocketState,
    conn: ConnectionId,
    payload: &[u8],
    receipt: Receipt,
    now: Instant,
    counters: &mut DaemonCounters,
    max_payload: usize,
) {
    let Some(state) = socket.conn_mut(conn) else {
        return;
    };
    let shared = state.shared.clone();
    let Some(m) = state.messages.as_mut() else {
        return;
    };
    match m.conn.handle_payload(now, payload) {
        Ok(()) => {
            m.settle(&shared, &shared.daemon.pool, max_payload);
            counters.payloads_delivered += 1;
            socket.endpoint.deliver(now, receipt);
        }
        Err(ReceiveError::Full) => {
            counters.dropped_inbox_full += 1;
            shared.dropped_inbox_full.fetch_add(1, Ordering::Relaxed);
            event!(
                debug,
                ?conn,
                "payload dropped: message receive budget full (not acked)"
            );
        }
        Err(_error) => {
            counters.dropped_malformed_messages += 1;
            event!(debug, ?conn, error = %_error, "payload dropped: malformed messages (not acked)");
        }
    }
}
