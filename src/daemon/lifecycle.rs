//! A connection's life on the daemon: established (its handle goes to `connect` or the
//! accept queue), closed by the application (it lingers to send what was accepted), ended
//! by the protocol, and the daemon's own shutdown.

use super::driver::{Driver, Life};
use super::registry::{conn_key, ConnState, SocketKey};
use super::sending::notify;
use super::shared::DaemonShared;
use super::timers::Timer;
use crate::connection::{ConnKey, ConnShared, Connection};
use crate::core::delivery::Delivery;
use crate::core::status::CloseReason;
use crate::listener::ServerEvent;
use crate::protocol::{ConnectionId, Event, Role};
use crate::trace::event;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

impl Driver {
    /// The protocol established `conn`: give it a handle, and the handle to whoever waits.
    pub(super) fn connected(
        &mut self,
        slot: usize,
        conn: ConnectionId,
        peer: SocketAddr,
        role: Role,
        shared: &Arc<DaemonShared>,
        now: Instant,
    ) {
        let socket = self.sockets.at_mut(slot).expect("caller checked");
        let id = self.next_conn_id;
        self.next_conn_id += 1;
        let token = socket.endpoint.token_info(conn).cloned();
        let client_id = token.as_ref().map(|t| t.client_id);
        let conn_shared = ConnShared::new(
            conn_key(socket, conn),
            id,
            peer,
            socket.local,
            shared.clone(),
        );
        if let Some(token) = token {
            // Set before any handle exists: only this thread has the Arc yet.
            let _ = conn_shared.token.set(Box::new(token));
        }
        socket.insert(conn, ConnState::new(conn_shared.clone()));
        // A shared socket: no consumer may wait on it (`src/connection/lead.rs`). The second
        // connection stops both; each later one only itself (the others already were).
        match socket.endpoint.connection_count() {
            0 | 1 => {}
            2 => socket
                .conns
                .iter()
                .flatten()
                .for_each(|state| state.shared.stop_leading()),
            _ => conn_shared.stop_leading(),
        }
        super::sending::publish_estimates(socket, conn);
        self.update_send_limit(slot, conn);
        let socket = self.sockets.at_mut(slot).expect("caller checked");
        event!(info, %peer, local = %socket.local, ?role, ?conn, "connection established");
        let handle = Connection::new(conn_shared);
        let counters = &mut self.out.counters;
        let delivered = match role {
            Role::Client => match socket.connecting.take() {
                Some((pending, reply)) if pending == conn => reply.push(Ok(handle)).is_ok(),
                other => {
                    socket.connecting = other;
                    false
                }
            },
            Role::Server => match &socket.listener {
                Some(accept) if !accept.status().is_finished() => match accept.push(handle) {
                    Ok(()) => true,
                    Err(_refused) => {
                        counters.accept_queue_full += 1;
                        event!(warn, %peer, "connection closed: the accept queue is full");
                        false
                    }
                },
                _ => {
                    counters.refused_no_listener += 1;
                    event!(warn, %peer, "connection closed: no listener on its socket");
                    false
                }
            },
        };
        if !delivered {
            // Nobody will ever hold this connection: close it now (the handle, if any, was
            // dropped above and asked for the same; closing twice is harmless).
            socket.endpoint.close(now, conn);
        } else if role == Role::Server {
            if let Some(events) = &socket.events {
                events.push(ServerEvent::Connected {
                    id,
                    peer,
                    client_id,
                });
            }
            if let Some(state) = socket.conn_mut(conn) {
                state.announced = true;
            }
        }
    }

    /// The protocol ended `conn`: finish its handle (and a pending connect) with the reason.
    pub(super) fn disconnected(&mut self, slot: usize, conn: ConnectionId, reason: CloseReason) {
        let socket = self.sockets.at_mut(slot).expect("caller checked");
        if let Some((pending, reply)) = socket.connecting.take() {
            if pending == conn {
                let _ = reply.push(Err(reason));
            } else {
                socket.connecting = Some((pending, reply));
            }
        }
        if let Some(state) = socket.remove(conn) {
            event!(info, peer = %state.shared.peer, %reason, "connection ended");
            state.finish(reason, socket.events.as_deref());
        }
    }

    /// The application closed the connection (or the daemon is stopping): finish its inbox
    /// now, under the driver lock, then let its outbox drain. The disconnect goes out from
    /// [`Driver::settle_closing`].
    pub(super) fn begin_close(&mut self, key: ConnKey, reason: CloseReason, now: Instant) {
        let until = now + self.linger;
        let Some(state) = self
            .sockets
            .get_mut(key.socket)
            .and_then(|socket| socket.conn_mut(key.conn))
        else {
            return; // already gone (the peer closed it, or it timed out)
        };
        if state.closing_until.is_none() {
            event!(debug, peer = %state.shared.peer, %reason, "closing: sending what was accepted");
            state.shared.close_inbox(reason);
            state.closing_until = Some(until);
            self.out
                .push_timer(until, Timer::Linger(key.socket, key.conn));
            self.closing.push(key);
        }
        self.flush_outbox(key, now);
    }

    /// Ends every lingering connection whose outbox is empty and whose packets are all acked
    /// or lost, or whose linger time is over: the disconnect goes out, and whatever is still
    /// unresolved or queued is reported lost.
    pub(super) fn settle_closing(&mut self, now: Instant) {
        let mut closing = std::mem::take(&mut self.closing);
        closing.retain(|&key| {
            let Some(socket) = self.sockets.get_mut(key.socket) else {
                return false;
            };
            let Some(state) = socket.conn(key.conn) else {
                return false; // ended meanwhile (the peer closed it, or it timed out)
            };
            let until = state
                .closing_until
                .expect("only closing connections are listed");
            let flushed = state.is_drained() && !socket.endpoint.has_unresolved_payloads(key.conn);
            if !flushed && now < until {
                return true;
            }
            socket.endpoint.close(now, key.conn);
            let slot = key.socket.slot;
            self.handle_closed_events(slot);
            self.after_work(slot, now);
            false
        });
        self.closing = closing;
    }

    /// Handles the events `Endpoint::close` queued: only notifications and the disconnect.
    fn handle_closed_events(&mut self, slot: usize) {
        while let Some(event) = self
            .sockets
            .at_mut(slot)
            .and_then(|socket| socket.endpoint.poll_event())
        {
            let socket = self.sockets.at_mut(slot).expect("checked");
            match event {
                Event::Disconnected { conn, reason } => self.disconnected(slot, conn, reason),
                Event::Acked { conn, tag, .. } => notify(socket, conn, tag, Delivery::Acked),
                Event::Lost { conn, tag, .. } => notify(socket, conn, tag, Delivery::Lost),
                Event::Connected { .. } | Event::CongestionChanged { .. } => {}
            }
        }
    }

    /// The last `Listener` handle went away.
    pub(super) fn close_listener(&mut self, key: SocketKey, now: Instant) {
        let Some(socket) = self.sockets.get_mut(key) else {
            return;
        };
        if let Some(accept) = socket.listener.take() {
            // Connections nobody accepted: dropping them asks the daemon to close each.
            while accept.try_recv().is_ok() {}
        }
        self.after_work(key.slot, now);
    }

    /// The first step of a shutdown: refuse new sockets, finish every listener and pending
    /// connect with `DaemonStopped`, and start closing every connection, which lingers to
    /// send what was accepted (as a close does). Returns when the linger ends at the latest;
    /// the event loop keeps turning until then or until [`Driver::is_settled`].
    pub(crate) fn begin_shutdown(&mut self, now: Instant) -> Option<Instant> {
        match self.life {
            Life::Running => {}
            Life::Stopping { until } => return Some(until),
            Life::Stopped => return None,
        }
        let until = now + self.linger;
        self.life = Life::Stopping { until };
        let mut keys = Vec::new();
        for socket in self.sockets.iter_mut() {
            if let Some((conn, reply)) = socket.connecting.take() {
                let _ = reply.push(Err(CloseReason::DaemonStopped));
                socket.endpoint.close(now, conn);
            }
            if let Some(accept) = socket.listener.take() {
                accept.finish(CloseReason::DaemonStopped);
                while accept.try_recv().is_ok() {}
            }
            keys.extend(socket.conns.iter().flatten().map(|state| state.shared.key));
        }
        for key in keys {
            self.begin_close(key, CloseReason::DaemonStopped, now);
        }
        self.finish_turn(now);
        Some(until)
    }

    /// Whether no connection is lingering any more (a shutdown may then finish at once).
    pub(crate) fn is_settled(&self) -> bool {
        self.closing.is_empty()
    }

    /// The end of a shutdown: tell every peer (one disconnect per connection, best effort),
    /// then finish every connection, pending connect and listener with `DaemonStopped`.
    pub(crate) fn shutdown(&mut self, now: Instant) {
        if self.life == Life::Stopped {
            return;
        }
        self.life = Life::Stopped;
        for slot in 0..self.sockets.slots() {
            let Some(socket) = self.sockets.at_mut(slot) else {
                continue;
            };
            for state in socket.conns.iter().flatten() {
                state.shared.finish(CloseReason::DaemonStopped);
            }
            let ids: Vec<ConnectionId> = socket
                .conns
                .iter()
                .flatten()
                .map(|s| s.shared.key.conn)
                .collect();
            for id in ids {
                socket.endpoint.close(now, id);
            }
            // Every packet still in flight gets its notification (lost), as at any end.
            self.handle_closed_events(slot);
            let socket = self.sockets.at_mut(slot).expect("still open");
            self.out.drain_endpoint_now(socket, now);
            socket.finish_all(CloseReason::DaemonStopped);
        }
        for slot in 0..self.sockets.slots() {
            self.release_socket(slot);
        }
    }

    /// After a panic on the daemon thread: finish everything without sending.
    pub(crate) fn abandon(&mut self) {
        self.life = Life::Stopped;
        for socket in self.sockets.iter_mut() {
            socket.finish_all(CloseReason::DaemonStopped);
        }
    }
}
