//! From a connection's outbox to the wire, and back as delivery notifications: pacing, the
//! queueing-delay bound, and the map from protocol packet ids to the user's.

use super::driver::Driver;
use super::registry::SocketState;
use super::timers::Timer;
use crate::connection::{ConnKey, Delivery, PacketId};
use crate::protocol::{self, ConnectionId};
use std::sync::atomic::Ordering;
use std::time::Instant;

impl Driver {
    /// Sizes the connection's outbox to what its pacing rate sends within `max_send_delay`,
    /// so that an accepted packet never waits longer than that for its slot.
    pub(super) fn update_send_limit(&mut self, slot: usize, conn: ConnectionId) {
        let Some(socket) = self.sockets.at(slot) else {
            return;
        };
        let (Some(rate), Some(state)) = (socket.endpoint.send_rate(conn), socket.conn(conn)) else {
            return;
        };
        let per_delay = f64::from(rate.packets_per_second) * self.max_send_delay.as_secs_f64();
        // At least one packet may always wait; a fraction rounds down (never over the bound).
        state.shared.outbox.set_limit((per_delay as usize).max(1));
    }

    /// Sends what the connection's outbox holds, as far as pacing allows. A packet that
    /// waited longer than `max_send_delay` for its pacing slot is dropped and reported lost,
    /// never sent late.
    pub(super) fn flush_outbox(&mut self, key: ConnKey, now: Instant) {
        let max_delay = self.max_send_delay;
        let Some(socket) = self.sockets.get_mut(key.socket) else {
            return;
        };
        let conn = key.conn;
        let Some(state) = socket.conn(conn) else {
            return;
        };
        let shared = state.shared.clone();
        let out = &mut self.out;
        // We look now: a packet pushed from here on must tell us again.
        shared.scheduled.swap(false, Ordering::AcqRel);
        loop {
            if let Err(protocol::SendError::Paced { retry_at }) =
                socket.endpoint.can_send(now, conn)
            {
                // Keep the packets in the outbox (backpressure) and come back when the budget
                // allows. Holding `scheduled` means senders need not wake us meanwhile.
                if shared.outbox.len() > 0 {
                    shared.scheduled.store(true, Ordering::Release);
                    if let Some(state) = socket.conn_mut(conn) {
                        state.paced_since.get_or_insert(now);
                    }
                    // Without this check every flush while paced (a sender that slips in
                    // between our swap and store wakes us) added one more retry timer, and
                    // each of them re-arms itself on firing: the heap kept growing.
                    if let Some(state) = socket.conn_mut(conn) {
                        if state.pacing_at.is_none_or(|at| retry_at < at) {
                            state.pacing_at = Some(retry_at);
                            out.push_timer(retry_at, Timer::Pacing(key.socket, conn));
                        }
                    }
                }
                break;
            }
            let Some(packet) = shared.outbox.pop() else {
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
                shared.notify_delivery(Delivery::Lost(PacketId(packet.id)));
            } else {
                match socket.endpoint.send(now, conn, &packet.bytes, out.slot()) {
                    Ok(transmit) => {
                        if let Some(protocol::PacketId(id)) = transmit.packet_id {
                            record_user_id(socket, conn, id, packet.id);
                        }
                        out.transmit(socket, now, transmit);
                    }
                    Err(_) => {
                        // Not sendable (the connection is ending): the packet will never be
                        // acked, so it is reported lost rather than silently dropped.
                        out.counters.sends_refused += 1;
                        shared.notify_delivery(Delivery::Lost(PacketId(packet.id)));
                    }
                }
            }
            shared.daemon.pool.give(packet.bytes);
        }
        self.after_work(key.socket.slot, now);
    }
}

/// Remembers that protocol packet `id` carries the user's packet `user`.
fn record_user_id(socket: &mut SocketState, conn: ConnectionId, id: u64, user: u64) {
    if let Some(state) = socket.conn_mut(conn) {
        let index = (id % state.user_ids.len() as u64) as usize;
        let (old, old_user) = state.user_ids[index];
        if old != u64::MAX {
            // Still unresolved one window later: sending `id` pushed it out of the
            // protocol's sent window. Its `Lost` event is queued but handled only after
            // this slot is overwritten, so report it here (the event then matches nothing).
            state
                .shared
                .notify_delivery(Delivery::Lost(PacketId(old_user)));
        }
        state.user_ids[index] = (id, user);
    }
}

/// Turns the protocol's notification for `packet_id` into the user's.
pub(super) fn notify(
    socket: &mut SocketState,
    conn: ConnectionId,
    packet_id: protocol::PacketId,
    delivery: fn(PacketId) -> Delivery,
) {
    let Some(state) = socket.conn_mut(conn) else {
        return;
    };
    let index = (packet_id.0 % state.user_ids.len() as u64) as usize;
    let (id, user) = state.user_ids[index];
    if id == packet_id.0 {
        state.shared.notify_delivery(delivery(PacketId(user)));
        state.user_ids[index] = (u64::MAX, 0); // resolved: nothing to report on reuse
    }
}
