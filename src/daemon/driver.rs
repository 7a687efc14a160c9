//! The event loop's state and its work: sockets, protocol endpoints, timers, counters.
//!
//! One [`Driver`] per daemon. The event-loop thread (or the caller of `Daemon::poll`) calls
//! [`Driver::turn`] after each `mio::Poll::poll`; control-plane calls (listen, connect, stats)
//! run on the caller's thread under the same lock. Nothing in here blocks: sockets are
//! non-blocking, inbox pushes hand the packet back when full, outbox pops never wait.

use super::batch::{self, Flushed, Received, RecvBatch, SendBatch};
use super::shared::{DaemonShared, Ready};
use super::timers::{Timer, Timers};
use super::{DaemonConfig, DaemonCounters};
use crate::conditioner::{LinkConditioner, LinkConfig};
use crate::connection::{ConnKey, ConnShared, Connection, Delivery, PacketId};
use crate::inbox::Inbox;
use crate::listener::Listener;
use crate::pool::Packet;
use crate::protocol::{
    self, ConnectionId, ConnectionStats, DisconnectReason, Endpoint, EndpointCounters, Event,
    Incoming, Role,
};
use crate::status::CloseReason;
use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The token of the daemon's `mio::Waker`; socket slot `i` has token `i + 1`.
pub(crate) const WAKER: Token = Token(0);

/// What `connect` waits on: the connection, or why it failed.
pub(crate) type ConnectReply = Inbox<Result<Connection, CloseReason>>;

struct ConnState {
    shared: Arc<ConnShared>,
    /// The user's packet id for each protocol packet id still awaiting its ack or loss,
    /// indexed by protocol id modulo the window (the protocol resolves every packet within
    /// its sent window; a slot reused while its `Lost` event is still queued is reported by
    /// `record_user_id`). `(u64::MAX, _)` marks a free slot.
    user_ids: Box<[(u64, u64)]>,
    /// The instant of this connection's live pacing entry in the timer heap, if any: one
    /// is enough, and an entry that does not match it is stale.
    pacing_at: Option<Instant>,
}

struct SocketState {
    socket: UdpSocket,
    local: SocketAddr,
    endpoint: Endpoint,
    /// Indexed by `ConnectionId::index`.
    conns: Vec<Option<ConnState>>,
    listener: Option<Inbox<Connection>>,
    connecting: Option<(ConnectionId, ConnectReply)>,
    /// The instant of this socket's earliest live entry in the timer heap.
    deadline: Option<Instant>,
    /// The kernel's running count of datagrams it dropped on this socket, as last reported.
    kernel_drops: u32,
}

impl SocketState {
    fn conn(&self, id: ConnectionId) -> Option<&ConnState> {
        let state = self.conns.get(id.index() as usize)?.as_ref()?;
        (state.shared.key.conn == id).then_some(state)
    }

    fn conn_mut(&mut self, id: ConnectionId) -> Option<&mut ConnState> {
        let state = self.conns.get_mut(id.index() as usize)?.as_mut()?;
        (state.shared.key.conn == id).then_some(state)
    }

    /// A client socket whose connection is gone and whose endpoint has nothing left to send
    /// (disconnect copies) can be closed.
    fn is_idle_client(&self) -> bool {
        self.listener.is_none()
            && self.connecting.is_none()
            && self.endpoint.connection_count() == 0
            && self.endpoint.next_deadline().is_none()
    }
}

/// The link conditioner in front of every socket's outgoing datagrams.
struct Link {
    conditioner: LinkConditioner,
    /// Which socket sends a datagram leaving the conditioner, by its local address.
    sockets: HashMap<SocketAddr, usize>,
}

pub(crate) struct Driver {
    registry: Registry,
    sockets: Vec<Option<SocketState>>,
    free_slots: Vec<usize>,
    timers: Timers,
    counters: DaemonCounters,
    /// Counters of endpoints whose sockets were closed, so totals never go backwards.
    retired: EndpointCounters,
    /// Datagrams read by one system call. Slots are one byte longer than the largest valid
    /// datagram, so an oversize one arrives cut but still too long, and is counted as such.
    recv_batch: RecvBatch,
    /// Datagrams encoded for the socket being worked on, sent by one system call when full
    /// and when that socket's work ends ([`Driver::after_work`]).
    send_batch: SendBatch,
    ready: Vec<Ready>,
    touched: Vec<usize>,
    link: Option<Link>,
    secret_seed: u64,
    stopped: bool,
}

impl Driver {
    pub(crate) fn new(registry: Registry, config: &DaemonConfig, secret_seed: u64) -> Self {
        let datagram = config.protocol.max_datagram_size();
        Self {
            registry,
            sockets: Vec::new(),
            free_slots: Vec::new(),
            timers: Timers::default(),
            counters: DaemonCounters::default(),
            retired: EndpointCounters::default(),
            recv_batch: RecvBatch::new(config.io_batch, datagram + 1),
            send_batch: SendBatch::new(config.io_batch, datagram),
            ready: Vec::new(),
            touched: Vec::new(),
            link: config.link.map(|setup| Link {
                conditioner: LinkConditioner::new(setup.config, setup.seed),
                sockets: HashMap::new(),
            }),
            secret_seed,
            stopped: false,
        }
    }

    // ---- control plane (caller's thread, under the driver lock) ----

    fn bind(&mut self, addr: SocketAddr, shared: &DaemonShared) -> io::Result<usize> {
        if self.stopped {
            return Err(io::Error::other("the daemon has stopped"));
        }
        let mut socket = UdpSocket::bind(addr)?;
        batch::report_kernel_drops(&socket)?;
        let local = socket.local_addr()?;
        let slot = self.free_slots.pop().unwrap_or(self.sockets.len());
        self.registry
            .register(&mut socket, Token(slot + 1), Interest::READABLE)?;
        let endpoint = Endpoint::new(shared.config.protocol.clone(), self.next_secret());
        let state = SocketState {
            socket,
            local,
            endpoint,
            conns: Vec::new(),
            listener: None,
            connecting: None,
            deadline: None,
            kernel_drops: 0,
        };
        if slot == self.sockets.len() {
            self.sockets.push(Some(state));
        } else {
            self.sockets[slot] = Some(state);
        }
        if let Some(link) = &mut self.link {
            link.sockets.insert(local, slot);
        }
        Ok(slot)
    }

    /// A per-socket MAC key: a SipHash of the daemon's random seed and a counter, so two
    /// sockets never share a key and no key is predictable from outside.
    fn next_secret(&mut self) -> [u8; 16] {
        use std::hash::{BuildHasher, Hasher};
        let mut secret = [0; 16];
        for half in secret.chunks_mut(8) {
            self.secret_seed = self.secret_seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u64(self.secret_seed);
            half.copy_from_slice(&hasher.finish().to_le_bytes());
        }
        secret
    }

    pub(crate) fn listen(
        &mut self,
        addr: SocketAddr,
        shared: &Arc<DaemonShared>,
    ) -> io::Result<Listener> {
        let slot = self.bind(addr, shared)?;
        let accept = Inbox::new(shared.config.accept_backlog);
        let socket = self.sockets[slot].as_mut().expect("just bound");
        socket.listener = Some(accept.clone());
        Ok(Listener::new(accept, socket.local, slot, shared.clone()))
    }

    pub(crate) fn connect(
        &mut self,
        peer: SocketAddr,
        shared: &DaemonShared,
        now: Instant,
    ) -> io::Result<ConnectReply> {
        let local: SocketAddr = if peer.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let slot = self.bind(local, shared)?;
        let socket = self.sockets[slot].as_mut().expect("just bound");
        let conn = socket
            .endpoint
            .connect(now, peer)
            .map_err(|error| io::Error::other(error.to_string()))?;
        let reply = Inbox::new(1);
        socket.connecting = Some((conn, reply.clone()));
        self.after_work(slot, now);
        Ok(reply)
    }

    pub(crate) fn connection_stats(&self, key: ConnKey) -> Option<ConnectionStats> {
        let socket = self.sockets.get(key.socket)?.as_ref()?;
        socket.conn(key.conn)?;
        socket.endpoint.connection_stats(key.conn)
    }

    pub(crate) fn counters(&self, shared: &DaemonShared) -> DaemonCounters {
        let mut counters = self.counters.clone();
        counters.wake_errors = shared.wake_errors.load(Ordering::Relaxed);
        counters.endpoints = self.retired;
        for socket in self.sockets.iter().flatten() {
            add_counters(&mut counters.endpoints, socket.endpoint.counters());
        }
        counters
    }

    pub(crate) fn set_link(&mut self, config: LinkConfig) -> bool {
        match &mut self.link {
            Some(link) => {
                link.conditioner.set_config(config);
                true
            }
            None => false,
        }
    }

    // ---- the event loop ----

    /// How long `poll` may sleep: until the earliest timer, if any.
    pub(crate) fn next_timeout(&self, now: Instant) -> Option<Duration> {
        self.timers
            .next()
            .map(|at| at.saturating_duration_since(now))
    }

    /// One turn: take the ready list, read every readable socket, fire due timers.
    pub(crate) fn turn(&mut self, shared: &Arc<DaemonShared>, events: &mio::Events, now: Instant) {
        // Every turn, not only on a wake: senders skip the wake while the loop is busy.
        self.take_ready(shared, now);
        for event in events.iter() {
            match event.token() {
                WAKER => {} // its work is the ready list, just taken
                Token(token) => self.read_socket(token - 1, shared, now),
            }
        }
        self.fire_timers(shared, now);
        self.finish_turn(now);
    }

    fn take_ready(&mut self, shared: &Arc<DaemonShared>, now: Instant) {
        let mut ready = std::mem::take(&mut self.ready);
        shared.take_ready(&mut ready);
        for item in ready.drain(..) {
            match item {
                Ready::Connection(conn) => {
                    let ConnKey { socket, conn: id } = conn.key;
                    if conn.close_requested.load(Ordering::Acquire) {
                        self.close_connection(socket, id, shared, now);
                    } else {
                        self.flush_outbox(socket, id, now);
                    }
                }
                Ready::ListenerClosed(socket) => self.close_listener(socket, now),
            }
        }
        self.ready = ready;
    }

    /// Reads until the socket has nothing left (mio's readiness is edge-triggered), sending
    /// what each batch called for before reading the next.
    fn read_socket(&mut self, slot: usize, shared: &Arc<DaemonShared>, now: Instant) {
        loop {
            let Some(socket) = self.sockets.get(slot).and_then(Option::as_ref) else {
                return; // closed earlier in this turn; a stale event
            };
            let count = match self.recv_batch.recv(&socket.socket) {
                Ok(Received::Datagrams(count)) => count,
                Ok(Received::WouldBlock) => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                // ICMP port unreachable from an earlier send: about a peer, not this socket.
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    self.counters.icmp_errors += 1;
                    continue;
                }
                Err(_) => {
                    self.socket_failed(slot, now);
                    return;
                }
            };
            self.counters.datagrams_received += count as u64;
            if let Some(total) = self.recv_batch.kernel_drops() {
                let socket = self.sockets[slot].as_mut().expect("checked above");
                let new = total.wrapping_sub(socket.kernel_drops);
                self.counters.dropped_by_kernel += u64::from(new);
                socket.kernel_drops = total;
            }
            for i in 0..count {
                self.handle_datagram(slot, i, shared, now);
                // Queue what the endpoint wants sent after each datagram (as its contract
                // asks): an ack due "at once" must not wait for the end of the batch, or the
                // packets read before the last 33 fall out of its range and are falsely lost.
                // The batch of replies goes out in one call below.
                self.queue_transmits(slot, now);
            }
            self.after_work(slot, now);
        }
    }

    /// Feeds datagram `i` of the receive batch to the socket's endpoint.
    fn handle_datagram(&mut self, slot: usize, i: usize, shared: &Arc<DaemonShared>, now: Instant) {
        let (from, datagram) = self.recv_batch.get(i);
        let Some(from) = from else {
            self.counters.dropped_unknown_source += 1;
            return;
        };
        let socket = self.sockets[slot].as_mut().expect("caller checked");
        match socket.endpoint.handle_datagram(now, from, datagram) {
            Incoming::Payload { conn, payload } => match socket.conn(conn) {
                Some(state) => {
                    let packet = Packet::new(shared.pool.copy_of(payload), shared.pool.clone());
                    if state.shared.inbox.push(packet).is_ok() {
                        self.counters.payloads_delivered += 1;
                    } else if state.shared.inbox.status().is_finished() {
                        // Refused after a close: no handle will read it.
                        self.counters.dropped_no_handle += 1;
                    } else {
                        // The packet (handed back) is dropped here and its buffer recycled.
                        self.counters.dropped_inbox_full += 1;
                        state
                            .shared
                            .counters
                            .dropped_inbox_full
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
                None => self.counters.dropped_no_handle += 1,
            },
            Incoming::Consumed => self.counters.protocol_packets += 1,
            Incoming::Dropped(_) => self.counters.dropped_by_protocol += 1,
        }
        // Events first: a connection the protocol just created must have its handle before
        // the next datagram, which may carry its first payload.
        self.handle_events(slot, shared, now);
    }

    fn handle_events(&mut self, slot: usize, shared: &Arc<DaemonShared>, now: Instant) {
        loop {
            let Some(socket) = self.sockets[slot].as_mut() else {
                return;
            };
            let Some(event) = socket.endpoint.poll_event() else {
                return;
            };
            match event {
                Event::Connected { conn, peer, role } => {
                    self.connected(slot, conn, peer, role, shared, now)
                }
                Event::Disconnected { conn, reason } => self.disconnected(slot, conn, reason),
                Event::Acked { conn, packet_id } => {
                    notify(socket, conn, packet_id, Delivery::Acked)
                }
                Event::Lost { conn, packet_id } => notify(socket, conn, packet_id, Delivery::Lost),
                Event::CongestionChanged { conn, mode } => {
                    if let Some(state) = socket.conn(conn) {
                        // Refused only once finished: then the mode no longer matters.
                        let _ = state.shared.inbox.status_word().set_congestion(mode);
                    }
                }
            }
        }
    }

    fn connected(
        &mut self,
        slot: usize,
        conn: ConnectionId,
        peer: SocketAddr,
        role: Role,
        shared: &Arc<DaemonShared>,
        now: Instant,
    ) {
        let socket = self.sockets[slot].as_mut().expect("caller checked");
        // The endpoint's window, after sanitizing (the configured value may be clamped).
        let window = socket.endpoint.config().sent_window;
        let key = ConnKey { socket: slot, conn };
        let conn_shared = ConnShared::new(key, peer, socket.local, shared.clone());
        let index = conn.index() as usize;
        if socket.conns.len() <= index {
            socket.conns.resize_with(index + 1, || None);
        }
        socket.conns[index] = Some(ConnState {
            shared: conn_shared.clone(),
            user_ids: vec![(u64::MAX, 0); window].into_boxed_slice(),
            pacing_at: None,
        });
        let handle = Connection::new(conn_shared);
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
                        self.counters.accept_queue_full += 1;
                        false
                    }
                },
                _ => {
                    self.counters.refused_no_listener += 1;
                    false
                }
            },
        };
        if !delivered {
            // Nobody will ever hold this connection: close it now (the handle, if any, was
            // dropped above and asked for the same; closing twice is harmless).
            socket.endpoint.close(now, conn);
        }
    }

    fn disconnected(&mut self, slot: usize, conn: ConnectionId, reason: DisconnectReason) {
        let reason = match reason {
            DisconnectReason::ClosedLocally => CloseReason::Closed,
            DisconnectReason::ClosedByPeer => CloseReason::ClosedByPeer,
            DisconnectReason::TimedOut => CloseReason::TimedOut,
            DisconnectReason::ConnectTimedOut => CloseReason::ConnectTimedOut,
            DisconnectReason::ConnectionDenied => CloseReason::ConnectionDenied,
        };
        let socket = self.sockets[slot].as_mut().expect("caller checked");
        if let Some((pending, reply)) = socket.connecting.take() {
            if pending == conn {
                let _ = reply.push(Err(reason));
            } else {
                socket.connecting = Some((pending, reply));
            }
        }
        if let Some(entry) = socket.conns.get_mut(conn.index() as usize) {
            if entry.as_ref().is_some_and(|s| s.shared.key.conn == conn) {
                let state = entry.take().expect("checked");
                state.shared.finish(reason);
            }
        }
    }

    fn close_connection(
        &mut self,
        slot: usize,
        conn: ConnectionId,
        shared: &Arc<DaemonShared>,
        now: Instant,
    ) {
        let Some(socket) = self.sockets.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if socket.conn(conn).is_none() {
            return; // already gone (the peer closed it, or it timed out)
        }
        socket.endpoint.close(now, conn);
        self.handle_events(slot, shared, now);
        self.after_work(slot, now);
    }

    fn close_listener(&mut self, slot: usize, now: Instant) {
        let Some(socket) = self.sockets.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if let Some(accept) = socket.listener.take() {
            // Connections nobody accepted: dropping them asks the daemon to close each.
            while accept.try_recv().is_ok() {}
        }
        self.after_work(slot, now);
    }

    /// Sends what the connection's outbox holds, as far as pacing allows.
    fn flush_outbox(&mut self, slot: usize, conn: ConnectionId, now: Instant) {
        let Driver {
            sockets,
            link,
            timers,
            counters,
            send_batch,
            ..
        } = self;
        let Some(socket) = sockets.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let Some(state) = socket.conn(conn) else {
            return;
        };
        let shared = state.shared.clone();
        // We look now: a packet pushed from here on must tell us again.
        shared.scheduled.swap(false, Ordering::AcqRel);
        loop {
            if let Err(protocol::SendError::Paced { retry_at }) =
                socket.endpoint.can_send(now, conn)
            {
                // Keep the packets in the outbox (backpressure) and come back when the budget
                // allows. Holding `scheduled` means senders need not wake us meanwhile.
                if shared.outbox.len() > 0 {
                    shared.paced.store(true, Ordering::Relaxed);
                    shared.scheduled.store(true, Ordering::Release);
                    // Without this check every flush while paced (a sender that slips in
                    // between our swap and store wakes us) added one more retry timer, and
                    // each of them re-arms itself on firing: the heap kept growing.
                    if let Some(state) = socket.conn_mut(conn) {
                        if state.pacing_at.is_none_or(|at| retry_at < at) {
                            state.pacing_at = Some(retry_at);
                            timers.push(retry_at, Timer::Pacing(slot, conn));
                        }
                    }
                }
                break;
            }
            let Some(packet) = shared.outbox.pop() else {
                break;
            };
            match socket
                .endpoint
                .send(now, conn, &packet.bytes, send_batch.slot())
            {
                Ok(transmit) => {
                    if let Some(protocol::PacketId(id)) = transmit.packet_id {
                        record_user_id(socket, conn, id, packet.id);
                    }
                    emit(socket, send_batch, link, timers, counters, now, transmit);
                }
                Err(_) => {
                    // Not sendable (the connection is ending): the packet will never be
                    // acked, so it is reported lost rather than silently dropped.
                    counters.sends_refused += 1;
                    shared.notify_delivery(Delivery::Lost(PacketId(packet.id)));
                }
            }
            shared.daemon.pool.give(packet.bytes);
        }
        if !shared.scheduled.load(Ordering::Relaxed) {
            shared.paced.store(false, Ordering::Relaxed);
        }
        self.after_work(slot, now);
    }

    fn fire_timers(&mut self, shared: &Arc<DaemonShared>, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                (at, Timer::Endpoint(slot)) => {
                    let Some(socket) = self.sockets.get_mut(slot).and_then(Option::as_mut) else {
                        continue;
                    };
                    if socket.deadline != Some(at) {
                        continue; // superseded by an earlier entry
                    }
                    socket.deadline = None;
                    socket.endpoint.handle_timeout(now);
                    self.handle_events(slot, shared, now);
                    self.after_work(slot, now);
                }
                (at, Timer::Pacing(slot, conn)) => {
                    let socket = self.sockets.get_mut(slot).and_then(Option::as_mut);
                    match socket.and_then(|socket| socket.conn_mut(conn)) {
                        Some(state) if state.pacing_at == Some(at) => state.pacing_at = None,
                        _ => continue, // superseded by an earlier entry, or gone
                    }
                    self.flush_outbox(slot, conn, now);
                }
                (_, Timer::Link) => self.deliver_link(now),
            }
        }
    }

    /// Sends the datagrams the link conditioner releases by `now`.
    fn deliver_link(&mut self, now: Instant) {
        let Some(link) = &mut self.link else {
            return;
        };
        while let Some(delivery) = link.conditioner.poll_deliver(now) {
            let Some(socket) = link
                .sockets
                .get(&delivery.from)
                .and_then(|&slot| self.sockets.get(slot))
                .and_then(Option::as_ref)
            else {
                self.counters.link_orphans += 1; // its socket closed while it was in flight
                continue;
            };
            let result = socket
                .socket
                .send_to(&delivery.data, delivery.to)
                .map(|_| ());
            let mut flushed = Flushed::default();
            flushed.record(result);
            self.counters.add_flushed(flushed);
        }
        if let Some(at) = link.conditioner.next_delivery() {
            self.timers.push(at, Timer::Link);
        }
    }

    /// Moves what the socket's endpoint wants sent into the send batch (which goes out when
    /// full, and at the latest in [`Driver::after_work`]).
    fn queue_transmits(&mut self, slot: usize, now: Instant) {
        let Driver {
            sockets,
            link,
            timers,
            counters,
            send_batch,
            ..
        } = self;
        if let Some(socket) = sockets.get_mut(slot).and_then(Option::as_mut) {
            queue_endpoint_transmits(socket, send_batch, link, timers, counters, now);
        }
    }

    /// After touching a socket: send what its endpoint queued and what the send batch holds,
    /// and remember to reschedule.
    fn after_work(&mut self, slot: usize, now: Instant) {
        let Driver {
            sockets,
            link,
            timers,
            counters,
            send_batch,
            touched,
            ..
        } = self;
        let Some(socket) = sockets.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        queue_endpoint_transmits(socket, send_batch, link, timers, counters, now);
        counters.add_flushed(send_batch.flush(&socket.socket));
        if !touched.contains(&slot) {
            touched.push(slot);
        }
    }

    /// Reschedules every socket touched this turn, and closes idle client sockets.
    fn finish_turn(&mut self, now: Instant) {
        let mut touched = std::mem::take(&mut self.touched);
        for slot in touched.drain(..) {
            let Some(socket) = self.sockets.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            if socket.is_idle_client() {
                self.release_socket(slot);
                continue;
            }
            if let Some(next) = socket.endpoint.next_deadline() {
                // Only an earlier deadline needs a new heap entry; a later one is found when
                // the current entry fires early (`handle_timeout` is then a no-op).
                if socket.deadline.is_none_or(|current| next < current) {
                    socket.deadline = Some(next.max(now));
                    self.timers.push(next.max(now), Timer::Endpoint(slot));
                }
            }
        }
        self.touched = touched;
        // Live as `fire_timers` judges them; link deliveries are always live.
        let sockets = &self.sockets;
        self.timers.compact(|at, timer| match timer {
            Timer::Endpoint(slot) => sockets
                .get(slot)
                .and_then(Option::as_ref)
                .is_some_and(|socket| socket.deadline == Some(at)),
            Timer::Pacing(slot, conn) => sockets
                .get(slot)
                .and_then(Option::as_ref)
                .and_then(|socket| socket.conn(conn))
                .is_some_and(|state| state.pacing_at == Some(at)),
            Timer::Link => true,
        });
    }

    fn release_socket(&mut self, slot: usize) {
        if let Some(mut socket) = self.sockets[slot].take() {
            let _ = self.registry.deregister(&mut socket.socket);
            add_counters(&mut self.retired, socket.endpoint.counters());
            if let Some(link) = &mut self.link {
                link.sockets.remove(&socket.local);
            }
            self.free_slots.push(slot);
        }
    }

    /// A socket failed for good: every connection on it ends with `SocketError`.
    fn socket_failed(&mut self, slot: usize, now: Instant) {
        self.counters.sockets_failed += 1;
        let _ = now;
        if let Some(socket) = self.sockets[slot].as_mut() {
            finish_socket(socket, CloseReason::SocketError);
        }
        self.release_socket(slot);
    }

    /// Shutdown: tell every peer (one disconnect per connection, best effort), then finish
    /// every connection, pending connect and listener with `DaemonStopped`.
    pub(crate) fn shutdown(&mut self, now: Instant) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        for slot in 0..self.sockets.len() {
            let Some(socket) = self.sockets[slot].as_mut() else {
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
            // Straight to the socket, past any link conditioner: nothing will deliver later.
            while let Some(transmit) = socket.endpoint.poll_transmit(now, self.send_batch.slot()) {
                let flushed =
                    self.send_batch
                        .commit(transmit.destination, transmit.len, &socket.socket);
                self.counters.add_flushed(flushed);
            }
            self.counters
                .add_flushed(self.send_batch.flush(&socket.socket));
            finish_socket(socket, CloseReason::DaemonStopped);
        }
        for slot in 0..self.sockets.len() {
            self.release_socket(slot);
        }
    }

    /// After a panic on the daemon thread: finish everything without sending.
    pub(crate) fn abandon(&mut self) {
        self.stopped = true;
        for socket in self.sockets.iter_mut().flatten() {
            finish_socket(socket, CloseReason::DaemonStopped);
        }
    }
}

fn finish_socket(socket: &mut SocketState, reason: CloseReason) {
    for state in socket.conns.iter_mut().filter_map(Option::take) {
        state.shared.finish(reason);
    }
    if let Some((_, reply)) = socket.connecting.take() {
        let _ = reply.push(Err(reason));
    }
    if let Some(accept) = socket.listener.take() {
        accept.finish(reason);
        while accept.try_recv().is_ok() {}
    }
}

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

fn notify(
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

/// Encodes every datagram the endpoint has queued into the send batch (or the conditioner).
fn queue_endpoint_transmits(
    socket: &mut SocketState,
    send_batch: &mut SendBatch,
    link: &mut Option<Link>,
    timers: &mut Timers,
    counters: &mut DaemonCounters,
    now: Instant,
) {
    while let Some(transmit) = socket.endpoint.poll_transmit(now, send_batch.slot()) {
        emit(socket, send_batch, link, timers, counters, now, transmit);
    }
}

/// Sends the datagram just encoded into `send_batch.slot()`: into the link conditioner if
/// there is one, else into the batch, which goes out whenever it fills.
fn emit(
    socket: &SocketState,
    send_batch: &mut SendBatch,
    link: &mut Option<Link>,
    timers: &mut Timers,
    counters: &mut DaemonCounters,
    now: Instant,
    transmit: protocol::Transmit,
) {
    match link {
        Some(link) => {
            let bytes = &send_batch.slot()[..transmit.len];
            link.conditioner
                .send(now, socket.local, transmit.destination, bytes);
            if let Some(at) = link.conditioner.next_delivery() {
                timers.push(at, Timer::Link);
            }
        }
        None => counters.add_flushed(send_batch.commit(
            transmit.destination,
            transmit.len,
            &socket.socket,
        )),
    }
}

/// Adds `from` into `into`, field by field. The destructuring names every field, so a counter
/// added to `EndpointCounters` later fails to compile here until it is summed too.
fn add_counters(into: &mut EndpointCounters, from: &EndpointCounters) {
    let EndpointCounters {
        datagrams_received,
        packets_sent,
        packets_received,
        payloads_sent,
        payloads_received,
        keepalives_sent,
        acks_sent,
        acked,
        lost,
        late_acks,
        duplicates,
        stale,
        paced,
        too_large_to_send,
        too_large_to_receive,
        invalid_too_short,
        invalid_unknown_type,
        invalid_bad_length,
        invalid_non_canonical,
        wrong_protocol_id,
        unknown_peer,
        unexpected,
        mismatched,
        handshake_requests,
        handshake_challenges,
        handshake_responses,
        handshake_accepts,
        handshake_denials,
        handshake_bad_tokens,
        handshake_expired_tokens,
        handshake_replayed_tokens,
        handshake_already_connected,
        handshake_duplicates,
        requests_sent,
        responses_sent,
        replies_dropped,
        connections_opened,
        connections_closed,
        timeouts,
        connect_timeouts,
        denied,
        disconnects_sent,
        timers_fired,
        timers_superseded,
        disconnects_received,
    } = from;
    into.datagrams_received += datagrams_received;
    into.packets_sent += packets_sent;
    into.packets_received += packets_received;
    into.payloads_sent += payloads_sent;
    into.payloads_received += payloads_received;
    into.keepalives_sent += keepalives_sent;
    into.acks_sent += acks_sent;
    into.acked += acked;
    into.lost += lost;
    into.late_acks += late_acks;
    into.duplicates += duplicates;
    into.stale += stale;
    into.paced += paced;
    into.too_large_to_send += too_large_to_send;
    into.too_large_to_receive += too_large_to_receive;
    into.invalid_too_short += invalid_too_short;
    into.invalid_unknown_type += invalid_unknown_type;
    into.invalid_bad_length += invalid_bad_length;
    into.invalid_non_canonical += invalid_non_canonical;
    into.wrong_protocol_id += wrong_protocol_id;
    into.unknown_peer += unknown_peer;
    into.unexpected += unexpected;
    into.mismatched += mismatched;
    into.handshake_requests += handshake_requests;
    into.handshake_challenges += handshake_challenges;
    into.handshake_responses += handshake_responses;
    into.handshake_accepts += handshake_accepts;
    into.handshake_denials += handshake_denials;
    into.handshake_bad_tokens += handshake_bad_tokens;
    into.handshake_expired_tokens += handshake_expired_tokens;
    into.handshake_replayed_tokens += handshake_replayed_tokens;
    into.handshake_already_connected += handshake_already_connected;
    into.handshake_duplicates += handshake_duplicates;
    into.requests_sent += requests_sent;
    into.responses_sent += responses_sent;
    into.replies_dropped += replies_dropped;
    into.connections_opened += connections_opened;
    into.connections_closed += connections_closed;
    into.timeouts += timeouts;
    into.connect_timeouts += connect_timeouts;
    into.denied += denied;
    into.disconnects_sent += disconnects_sent;
    into.timers_fired += timers_fired;
    into.timers_superseded += timers_superseded;
    into.disconnects_received += disconnects_received;
}
