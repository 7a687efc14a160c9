//! The event loop's state and its work: sockets, protocol endpoints, timers, counters.
//!
//! One [`Driver`] per daemon. The event-loop thread (or the caller of `Daemon::poll`) calls
//! [`Driver::turn`] after each `mio::Poll::poll`; control-plane calls (listen, connect, stats)
//! run on the caller's thread under the same lock. Nothing in here blocks: sockets are
//! non-blocking, inbox pushes hand the packet back when full, outbox pops never wait.

use super::batch::{self, Flushed, Received, RecvBatch, SendBatch};
use super::shared::{DaemonShared, Ready};
use super::timers::{Timer, Timers};
use super::{DaemonConfig, DaemonCounters, SocketKey};
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
    /// Set when the application closed the connection (or the daemon is stopping): its
    /// inbox is finished, and its outbox drains until every packet is sent and resolved, or
    /// until this instant, whichever comes first; then the disconnect goes out.
    closing_until: Option<Instant>,
}

struct SocketState {
    key: SocketKey,
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

/// Where the daemon stands in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    Running,
    /// Shutting down: no new sockets; connections linger until this instant at the latest.
    Stopping {
        until: Instant,
    },
    Stopped,
}

pub(crate) struct Driver {
    registry: Registry,
    sockets: Vec<Option<SocketState>>,
    /// The generation each slot's next socket gets (bumped when a socket is released).
    generations: Vec<u32>,
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
    /// Connections lingering after a close, checked at the end of every turn.
    closing: Vec<ConnKey>,
    link: Option<Link>,
    secret_seed: u64,
    linger: Duration,
    max_send_delay: Duration,
    life: Life,
}

impl Driver {
    pub(crate) fn new(registry: Registry, config: &DaemonConfig, secret_seed: u64) -> Self {
        let datagram = config.protocol.max_datagram_size();
        Self {
            registry,
            sockets: Vec::new(),
            generations: Vec::new(),
            free_slots: Vec::new(),
            timers: Timers::default(),
            counters: DaemonCounters::default(),
            retired: EndpointCounters::default(),
            recv_batch: RecvBatch::new(config.io_batch, datagram + 1),
            send_batch: SendBatch::new(config.io_batch, datagram),
            ready: Vec::new(),
            touched: Vec::new(),
            closing: Vec::new(),
            link: config.link.map(|setup| Link {
                conditioner: LinkConditioner::new(setup.config, setup.seed),
                sockets: HashMap::new(),
            }),
            secret_seed,
            linger: config.close_linger,
            max_send_delay: config.max_send_delay,
            life: Life::Running,
        }
    }

    fn socket(&self, key: SocketKey) -> Option<&SocketState> {
        let socket = self.sockets.get(key.slot)?.as_ref()?;
        (socket.key == key).then_some(socket)
    }

    fn socket_mut(&mut self, key: SocketKey) -> Option<&mut SocketState> {
        let socket = self.sockets.get_mut(key.slot)?.as_mut()?;
        (socket.key == key).then_some(socket)
    }

    // ---- control plane (caller's thread, under the driver lock) ----

    fn bind(&mut self, addr: SocketAddr, shared: &DaemonShared) -> io::Result<usize> {
        if self.life != Life::Running {
            return Err(io::Error::other("the daemon has stopped"));
        }
        let mut socket = UdpSocket::bind(addr)?;
        batch::report_kernel_drops(&socket)?;
        let local = socket.local_addr()?;
        let slot = self.free_slots.pop().unwrap_or(self.sockets.len());
        self.registry
            .register(&mut socket, Token(slot + 1), Interest::READABLE)?;
        let endpoint = Endpoint::new(shared.config.protocol.clone(), self.next_secret());
        if slot == self.generations.len() {
            self.generations.push(0);
        }
        let key = SocketKey {
            slot,
            generation: self.generations[slot],
        };
        let state = SocketState {
            key,
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
        Ok(Listener::new(
            accept,
            socket.local,
            socket.key,
            shared.clone(),
        ))
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
        // Arm the retry timer now, under this lock: the event loop may be between its last
        // look at the heap and its sleep, and then only sees a timer that is already there
        // when it looks again (`Loop::turn` raises the wake gate before it looks).
        self.finish_turn(now);
        Ok(reply)
    }

    pub(crate) fn connection_stats(&self, key: ConnKey) -> Option<ConnectionStats> {
        let socket = self.socket(key.socket)?;
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
                    if conn.close_requested.load(Ordering::Acquire) {
                        self.begin_close(conn.key, CloseReason::Closed, now);
                    } else {
                        self.flush_outbox(conn.key, now);
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

    /// Feeds datagram `i` of the receive batch to the socket's endpoint. A payload is
    /// recorded as received (and so acked) only once it is in the inbox.
    fn handle_datagram(&mut self, slot: usize, i: usize, shared: &Arc<DaemonShared>, now: Instant) {
        let (from, datagram) = self.recv_batch.get(i);
        let Some(from) = from else {
            self.counters.dropped_unknown_source += 1;
            return;
        };
        let socket = self.sockets[slot].as_mut().expect("caller checked");
        match socket.endpoint.handle_datagram(now, from, datagram) {
            Incoming::Payload {
                conn,
                payload,
                receipt,
            } => match socket.conn(conn) {
                // Finished means closing or ended: the application reads nothing more, and
                // only this thread finishes an inbox, so no payload can follow its close.
                Some(state) if !state.shared.inbox.status().is_finished() => {
                    let packet = Packet::new(shared.pool.copy_of(payload), shared.pool.clone());
                    if state.shared.inbox.push(packet).is_ok() {
                        self.counters.payloads_delivered += 1;
                        socket.endpoint.deliver(now, receipt);
                    } else {
                        // The packet (handed back) is dropped here and its buffer recycled;
                        // without its receipt the protocol never acks it.
                        self.counters.dropped_inbox_full += 1;
                        state
                            .shared
                            .counters
                            .dropped_inbox_full
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
                _ => self.counters.dropped_no_handle += 1,
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
                    self.update_send_limit(slot, conn);
                }
            }
        }
    }

    /// Sizes the connection's outbox to what its pacing rate sends within `max_send_delay`,
    /// so that an accepted packet never waits longer than that for its slot.
    fn update_send_limit(&mut self, slot: usize, conn: ConnectionId) {
        let Some(socket) = self.sockets[slot].as_mut() else {
            return;
        };
        let Some(rate) = socket.endpoint.send_rate(conn) else {
            return;
        };
        if let Some(state) = socket.conn(conn) {
            let per_delay = f64::from(rate.packets_per_second) * self.max_send_delay.as_secs_f64();
            // At least one packet may always wait; a fraction rounds down (never over the bound).
            state.shared.outbox.set_limit((per_delay as usize).max(1));
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
        let key = ConnKey {
            socket: socket.key,
            conn,
        };
        let conn_shared = ConnShared::new(key, peer, socket.local, shared.clone());
        let index = conn.index() as usize;
        if socket.conns.len() <= index {
            socket.conns.resize_with(index + 1, || None);
        }
        socket.conns[index] = Some(ConnState {
            shared: conn_shared.clone(),
            user_ids: vec![(u64::MAX, 0); window].into_boxed_slice(),
            pacing_at: None,
            closing_until: None,
        });
        self.update_send_limit(slot, conn);
        let socket = self.sockets[slot].as_mut().expect("caller checked");
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

    /// The application closed the connection (or the daemon is stopping): finish its inbox
    /// now, here on the only thread that pushes into it, then let its outbox drain. The
    /// disconnect goes out from [`Driver::settle_closing`].
    fn begin_close(&mut self, key: ConnKey, reason: CloseReason, now: Instant) {
        let until = now + self.linger;
        let Some(state) = self
            .socket_mut(key.socket)
            .and_then(|socket| socket.conn_mut(key.conn))
        else {
            return; // already gone (the peer closed it, or it timed out)
        };
        if state.closing_until.is_none() {
            state.shared.close_inbox(reason);
            state.closing_until = Some(until);
            self.timers.push(until, Timer::Linger(key.socket, key.conn));
            self.closing.push(key);
        }
        self.flush_outbox(key, now);
    }

    /// Ends every lingering connection whose outbox is empty and whose packets are all acked
    /// or lost, or whose linger time is over: the disconnect goes out, and whatever is still
    /// unresolved or queued is reported lost.
    fn settle_closing(&mut self, now: Instant) {
        let mut closing = std::mem::take(&mut self.closing);
        closing.retain(|&key| {
            let Some(socket) = self.socket_mut(key.socket) else {
                return false;
            };
            let Some(state) = socket.conn(key.conn) else {
                return false; // ended meanwhile (the peer closed it, or it timed out)
            };
            let until = state
                .closing_until
                .expect("only closing connections are listed");
            let flushed = state.shared.outbox.len() == 0
                && !socket.endpoint.has_unresolved_payloads(key.conn);
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
        while let Some(event) = self.sockets[slot]
            .as_mut()
            .and_then(|socket| socket.endpoint.poll_event())
        {
            let socket = self.sockets[slot].as_mut().expect("checked");
            match event {
                Event::Disconnected { conn, reason } => self.disconnected(slot, conn, reason),
                Event::Acked { conn, packet_id } => {
                    notify(socket, conn, packet_id, Delivery::Acked)
                }
                Event::Lost { conn, packet_id } => notify(socket, conn, packet_id, Delivery::Lost),
                Event::Connected { .. } | Event::CongestionChanged { .. } => {}
            }
        }
    }

    fn close_listener(&mut self, key: SocketKey, now: Instant) {
        let Some(socket) = self.socket_mut(key) else {
            return;
        };
        if let Some(accept) = socket.listener.take() {
            // Connections nobody accepted: dropping them asks the daemon to close each.
            while accept.try_recv().is_ok() {}
        }
        self.after_work(key.slot, now);
    }

    /// Sends what the connection's outbox holds, as far as pacing allows. A packet that
    /// waited longer than `max_send_delay` is dropped and reported lost, never sent late.
    fn flush_outbox(&mut self, key: ConnKey, now: Instant) {
        let slot = key.socket.slot;
        let conn = key.conn;
        let max_delay = self.max_send_delay;
        let Driver {
            sockets,
            link,
            timers,
            counters,
            send_batch,
            ..
        } = self;
        let Some(socket) = sockets
            .get_mut(slot)
            .and_then(Option::as_mut)
            .filter(|socket| socket.key == key.socket)
        else {
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
                    shared.scheduled.store(true, Ordering::Release);
                    // Without this check every flush while paced (a sender that slips in
                    // between our swap and store wakes us) added one more retry timer, and
                    // each of them re-arms itself on firing: the heap kept growing.
                    if let Some(state) = socket.conn_mut(conn) {
                        if state.pacing_at.is_none_or(|at| retry_at < at) {
                            state.pacing_at = Some(retry_at);
                            timers.push(retry_at, Timer::Pacing(key.socket, conn));
                        }
                    }
                }
                break;
            }
            let Some(packet) = shared.outbox.pop() else {
                break;
            };
            if now.saturating_duration_since(packet.queued_at) > max_delay {
                counters.sends_expired += 1;
                shared.notify_delivery(Delivery::Lost(PacketId(packet.id)));
            } else {
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
            }
            shared.daemon.pool.give(packet.bytes);
        }
        self.after_work(slot, now);
    }

    fn fire_timers(&mut self, shared: &Arc<DaemonShared>, now: Instant) {
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                (at, Timer::Endpoint(key)) => {
                    let Some(socket) = self.socket_mut(key) else {
                        continue;
                    };
                    if socket.deadline != Some(at) {
                        continue; // superseded by an earlier entry
                    }
                    socket.deadline = None;
                    socket.endpoint.handle_timeout(now);
                    self.handle_events(key.slot, shared, now);
                    self.after_work(key.slot, now);
                }
                (at, Timer::Pacing(key, conn)) => {
                    let socket = self.socket_mut(key);
                    match socket.and_then(|socket| socket.conn_mut(conn)) {
                        Some(state) if state.pacing_at == Some(at) => state.pacing_at = None,
                        _ => continue, // superseded by an earlier entry, or gone
                    }
                    self.flush_outbox(ConnKey { socket: key, conn }, now);
                }
                // `settle_closing`, at the end of this turn, ends it.
                (_, Timer::Linger(..)) => {}
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
            self.timers.arm_link(at);
        }
    }

    /// Link entries in the timer heap, and datagrams in the conditioner.
    #[cfg(test)]
    pub(crate) fn link_load(&self) -> (usize, usize) {
        let in_flight = self.link.as_ref().map(|l| l.conditioner.in_flight());
        (self.timers.link_entries(), in_flight.unwrap_or(0))
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

    /// Ends lingering connections that are done, reschedules every socket touched this
    /// turn, and closes idle client sockets.
    fn finish_turn(&mut self, now: Instant) {
        if !self.closing.is_empty() {
            self.settle_closing(now);
        }
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
                    self.timers.push(next.max(now), Timer::Endpoint(socket.key));
                }
            }
        }
        self.touched = touched;
    }

    fn release_socket(&mut self, slot: usize) {
        if let Some(mut socket) = self.sockets[slot].take() {
            let _ = self.registry.deregister(&mut socket.socket);
            add_counters(&mut self.retired, socket.endpoint.counters());
            if let Some(link) = &mut self.link {
                link.sockets.remove(&socket.local);
            }
            // Every key naming the old socket now matches nothing.
            self.generations[slot] = self.generations[slot].wrapping_add(1);
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

    /// The first step of a shutdown: refuse new sockets, finish every listener and pending
    /// connect with `DaemonStopped`, and start closing every connection, which lingers to
    /// send what was accepted (as a close does). Returns when the linger ends at the latest;
    /// the event loop keeps turning until then or until [`Driver::is_settled`].
    pub(crate) fn begin_shutdown(&mut self, now: Instant) -> Option<Instant> {
        if self.life != Life::Running {
            return match self.life {
                Life::Stopping { until } => Some(until),
                _ => None,
            };
        }
        let until = now + self.linger;
        self.life = Life::Stopping { until };
        let mut keys = Vec::new();
        for socket in self.sockets.iter_mut().flatten() {
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

    /// Shutdown: tell every peer (one disconnect per connection, best effort), then finish
    /// every connection, pending connect and listener with `DaemonStopped`.
    pub(crate) fn shutdown(&mut self, now: Instant) {
        if self.life == Life::Stopped {
            return;
        }
        self.life = Life::Stopped;
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
        self.life = Life::Stopped;
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
                timers.arm_link(at);
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
