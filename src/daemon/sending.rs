//! From a connection's outbox to the wire, and back as delivery notifications: pacing and
//! the queueing-delay bound.

use super::driver::Driver;
use super::registry::SocketState;
use super::timers::Timer;
use crate::connection::ConnKey;
use crate::core::delivery::{Delivery, PacketId};
use crate::protocol::{self, ConnectionId};
use crate::trace::event;
use std::time::Instant;

impl Driver {
    /// Sizes the connection's outbox to what its pacing rate sends within `max_send_delay`,
    /// so that an accepted packet never waits longer than that for its slot (if the rate
    /// controller cuts the rate meanwhile, what waits too long is dropped and reported lost). Called on every
    /// flush and mode change: the rate controller moves the rate as acks arrive.
    pub(super) fn update_send_limit(&mut self, slot: usize, conn: ConnectionId) {
        let Some(socket) = self.sockets.at(slot) else {
            return;
        };
        let (Some(rate), Some(state)) = (socket.endpoint.send_rate(conn), socket.conn(conn)) else {
            return;
        };
        let per_delay = f64::from(rate.packets_per_second) * self.max_send_delay.as_secs_f64();
        // At least one packet may always wait; a fraction rounds down (never over the bound).
        state
            .shared
            .core
            .outbox
            .set_limit((per_delay as usize).max(1));
    }

    /// Sends what the connection's outbox holds, as far as pacing allows. A packet that
    /// waited longer than `max_send_delay` for its pacing slot is dropped and reported lost,
    /// never sent late.
    pub(super) fn flush_outbox(&mut self, key: ConnKey, now: Instant) {
        let max_delay = self.max_send_delay;
        // The rate controller moves the rate with every ack: resize the outbox to it.
        self.update_send_limit(key.socket.slot, key.conn);
        let Some(socket) = self.sockets.get_mut(key.socket) else {
            return;
        };
        let conn = key.conn;
        let Some(state) = socket.conn(conn) else {
            return;
        };
        if state.messages.is_some() {
            return self.flush_messages(key, now);
        }
        let shared = state.shared.clone();
        let out = &mut self.out;
        // We look now: a packet pushed from here on must tell us again.
        shared.core.begin_flush();
        // The packet pacing held back last time goes first.
        let mut held = socket.conn_mut(conn).and_then(|state| state.held.take());
        if held.is_some() {
            shared.core.outbox.release();
        }
        loop {
            // Quietly: one wake for the flush's senders at its end, not one per packet.
            let Some(packet) = held.take().or_else(|| shared.core.outbox.pop_quietly()) else {
                if let Some(state) = socket.conn_mut(conn) {
                    state.paced_since = None; // drained: the next wait starts afresh
                }
                break;
            };
            let paced_since = socket.conn(conn).and_then(|state| state.paced_since);
            let waited =
                paced_since.map(|since| now.saturating_duration_since(since.max(packet.queued_at)));
            if waited.is_some_and(|waited| waited > max_delay) {
                out.counters.sends_expired += 1;
                event!(debug, peer = %shared.peer, "packet dropped unsent: waited past max_send_delay");
                shared
                    .core
                    .notify_delivery(Delivery::Lost(PacketId(packet.id)));
                shared.daemon.pool.give(packet.bytes);
                continue;
            }
            // The user's id rides as the tag: it comes back in the packet's event.
            let sent = socket
                .endpoint
                .send_tagged(now, conn, &packet.bytes, packet.id, out.slot());
            match sent {
                Ok(transmit) => out.transmit(socket, now, transmit),
                Err(protocol::TransmitError::Paced { retry_at }) => {
                    // Hold it (it still counts against the outbox limit) and come back when
                    // the budget allows. The flag stays set only if more packets wait: then
                    // senders need not wake us; else the next send schedules us again.
                    shared.core.outbox.hold();
                    shared.core.hold_for_pacing();
                    if let Some(state) = socket.conn_mut(conn) {
                        state.held = Some(packet);
                        state.paced_since.get_or_insert(now);
                        // One live retry timer: every flush while paced (a sender slipping in
                        // between our swap and store wakes us) must not add another.
                        if state.pacing_at.is_none_or(|at| retry_at < at) {
                            state.pacing_at = Some(retry_at);
                            out.push_timer(retry_at, Timer::Pacing(key.socket, conn));
                        }
                    }
                    break;
                }
                Err(_) => {
                    // Not sendable (the connection is ending): the packet will never be
                    // acked, so it is reported lost rather than silently dropped.
                    out.counters.sends_refused += 1;
                    event!(debug, peer = %shared.peer, "packet dropped unsent: the connection is ending");
                    shared
                        .core
                        .notify_delivery(Delivery::Lost(PacketId(packet.id)));
                }
            }
            shared.daemon.pool.give(packet.bytes);
        }
        shared.core.outbox.wake_if_drained();
        self.after_work(key.socket.slot, now);
    }
}

/// Turns the protocol's notification for the packet tagged `tag` (the user's packet id)
/// into the user's.
pub(super) fn notify(
    socket: &SocketState,
    conn: ConnectionId,
    tag: u64,
    delivery: fn(PacketId) -> Delivery,
) {
    // In message mode the message layer owns the packets (and reports per message).
    if let Some(state) = socket.conn(conn).filter(|state| state.messages.is_none()) {
        state.shared.core.notify_delivery(delivery(PacketId(tag)));
    }
}

/// Publishes `conn`'s estimates for `Connection::quick_stats` (they change on acks and
/// losses).
pub(super) fn publish_estimates(socket: &SocketState, conn: ConnectionId) {
    if let (Some(state), Some((rtt, variation, loss))) =
        (socket.conn(conn), socket.endpoint.estimates(conn))
    {
        state.shared.live.publish(rtt, variation, loss);
    }
}
