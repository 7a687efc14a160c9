//! The event loop's state and its turn: read sockets, fire timers, hand work to the
//! connection code (`lifecycle.rs`, `sending.rs`).
//!
//! One [`Driver`] per daemon. The event-loop thread (or the caller of `Daemon::poll`) calls
//! [`Driver::turn`] after each `mio::Poll::poll`; control-plane calls (listen, connect, stats)
//! run on the caller's thread under the same lock. Nothing in here blocks: sockets are
//! non-blocking, inbox pushes hand the packet back when full, outbox pops never wait.

use super::batch::{Received, RecvBatch, SendBatch};
use super::output::Output;
use super::registry::{ConnectReply, SocketKey, Sockets};
use super::shard::ShardKeys;
use super::shared::{DaemonShared, Ready};
use super::timers::Timer;
use super::{DaemonConfig, DaemonCounters};
use crate::conditioner::LinkConfig;
use crate::connection::{ConnKey, Connection};
use crate::core::delivery::Delivery;
use crate::core::inbox::Inbox;
use crate::core::pool::Packet;
use crate::core::status::CloseReason;
use crate::listener::{Listener, ListenerEvents};
use crate::protocol::secure::{ConnectToken, PrivateKey, SecureServer, UnixClock};
use crate::protocol::{Event, Incoming, ProtocolStats};
use crate::trace::event;
use mio::Token;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The token of the daemon's `mio::Waker`; socket slot `i` has token `i + 1`.
pub(crate) const WAKER: Token = Token(0);

/// Where the daemon stands in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Life {
    Running,
    /// Shutting down: no new sockets; connections linger until this instant at the latest.
    Stopping {
        until: Instant,
    },
    Stopped,
}

pub(crate) struct Driver {
    pub(super) sockets: Sockets,
    pub(super) out: Output,
    /// Datagrams read by one system call. Slots are one byte longer than the largest valid
    /// datagram, so an oversize one arrives cut but still too long, and is counted as such.
    recv_batch: RecvBatch,
    ready: Vec<Ready>,
    /// Sockets worked on this turn, rescheduled (or closed, if idle) at its end.
    touched: Vec<usize>,
    /// Connections lingering after a close, checked at the end of every turn.
    pub(super) closing: Vec<ConnKey>,
    secret_seed: u64,
    pub(super) linger: Duration,
    pub(super) max_send_delay: Duration,
    pub(super) life: Life,
    /// The id the next connection gets (`Connection::id`).
    pub(super) next_conn_id: u64,
    /// `protocol.max_payload`: the size of a pool buffer.
    pub(super) max_payload: usize,
    /// Message-mode connections whose layer learned outcomes this turn, flushed at its end.
    pub(super) messages_dirty: Vec<ConnKey>,
    /// When the loop's current (or last) sleep in `mio::Poll` ends at the latest: `None` for
    /// no deadline. A sender serving the sleeping loop wakes it if it armed an earlier timer.
    sleep_until: Option<Instant>,
    /// When a sender last served the sleeping loop (`Driver::may_serve`).
    last_served: Option<Instant>,
}

/// Sends closer together than this after a sender served the sleeping loop are a stream: the
/// next wakes the loop, which sends in batches. A round trip on loopback takes longer, so a
/// request/response exchange is always served.
const SERVE_GAP: Duration = Duration::from_micros(20);

impl Driver {
    pub(crate) fn new(registry: mio::Registry, config: &DaemonConfig, secret_seed: u64) -> Self {
        let datagram = config.protocol.max_datagram_size();
        Self {
            sockets: Sockets::new(registry),
            out: Output::new(
                SendBatch::new(config.io_batch, datagram, config.udp_segmentation),
                config.link.map(|setup| (setup.config, setup.seed)),
            ),
            recv_batch: RecvBatch::new(config.io_batch, datagram + 1, config.udp_gro),
            ready: Vec::new(),
            touched: Vec::new(),
            closing: Vec::new(),
            secret_seed,
            linger: config.close_linger,
            max_send_delay: config.max_send_delay,
            life: Life::Running,
            next_conn_id: 0,
            max_payload: config.protocol.max_payload,
            messages_dirty: Vec::new(),
            sleep_until: None,
            last_served: None,
        }
    }

    // ---- control plane (caller's thread, under the driver lock) ----

    /// Binds a socket; a shard of a listening port (`shard`) binds with `SO_REUSEPORT` and
    /// the group's secret and clock (`src/daemon/shard.rs`).
    pub(super) fn bind(
        &mut self,
        addr: SocketAddr,
        shard: Option<&ShardKeys>,
        shared: &DaemonShared,
    ) -> io::Result<SocketKey> {
        if self.life != Life::Running {
            return Err(io::Error::other("the daemon has stopped"));
        }
        let secret = shard.map_or_else(|| self.next_secret(), |keys| keys.secret);
        let anchor = shard.map(|keys| keys.anchor);
        let key = self
            .sockets
            .bind(addr, &shared.config.protocol, secret, anchor)?;
        self.sockets
            .set_receive_buffer(key, shared.config.socket_receive_buffer);
        let socket = self.sockets.get(key).expect("just bound");
        self.recv_batch.offer_coalescing(&socket.socket);
        let local = socket.local;
        self.out.add_socket(local, key.slot);
        Ok(key)
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
        secure: Option<(PrivateKey, Option<SocketAddr>)>,
        shared: &Arc<DaemonShared>,
    ) -> io::Result<Listener> {
        let key = self.bind(addr, None, shared)?;
        if let Some((private_key, public_addr)) = secure {
            let socket = self.sockets.get_mut(key).expect("just bound");
            let public_addr = public_addr.unwrap_or(socket.local);
            let server = SecureServer::new(private_key, public_addr, UnixClock::system());
            socket.endpoint.set_secure(server);
        }
        let accept = Inbox::new(shared.config.accept_backlog);
        let events = ListenerEvents::new(4 * shared.config.accept_backlog);
        Ok(self.attach_listener(key, accept, events, shared))
    }

    /// Makes the socket `key` a listening one, queueing its connections on `accept` and its
    /// events on `events` (the shards of one port share both).
    pub(super) fn attach_listener(
        &mut self,
        key: SocketKey,
        accept: Inbox<Connection>,
        events: Arc<ListenerEvents>,
        shared: &Arc<DaemonShared>,
    ) -> Listener {
        let socket = self.sockets.get_mut(key).expect("just bound");
        socket.listener = Some(accept.clone());
        socket.events = Some(events.clone());
        Listener::new(accept, events, socket.local, key, shared.clone())
    }

    pub(crate) fn connect(
        &mut self,
        peer: SocketAddr,
        token: Option<&ConnectToken>,
        shared: &DaemonShared,
        now: Instant,
    ) -> io::Result<ConnectReply> {
        let local: SocketAddr = if peer.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let key = self.bind(local, None, shared)?;
        if let Err(error) = self.connect_socket(key, peer) {
            self.release_socket(key.slot);
            return Err(error);
        }
        let socket = self.sockets.get_mut(key).expect("just bound");
        let conn = match token {
            Some(token) => socket.endpoint.connect_with_token(now, peer, token),
            None => socket.endpoint.connect(now, peer),
        }
        .map_err(|error| io::Error::other(error.to_string()))?;
        let reply = Inbox::new(1);
        socket.connecting = Some((conn, reply.clone()));
        self.after_work(key.slot, now);
        // Arm the retry timer now, under this lock: the event loop may be between its last
        // look at the heap and its sleep, and then only sees a timer that is already there
        // when it looks again (`Loop::turn` raises the wake gate before it looks).
        self.finish_turn(now);
        Ok(reply)
    }

    /// Connects a client socket to its server: its local address becomes the one the server
    /// sees (not the wildcard), and the kernel hands it only the server's datagrams.
    fn connect_socket(&mut self, key: SocketKey, peer: SocketAddr) -> io::Result<()> {
        let socket = self.sockets.get_mut(key).expect("just bound");
        socket.socket.connect(peer)?;
        let local = socket.socket.local_addr()?;
        let wildcard = std::mem::replace(&mut socket.local, local);
        self.out.remove_socket(wildcard);
        self.out.add_socket(local, key.slot);
        Ok(())
    }

    pub(crate) fn connection_stats(&self, key: ConnKey) -> Option<ProtocolStats> {
        let socket = self.sockets.get(key.socket)?;
        socket.conn(key.conn)?;
        socket.endpoint.connection_stats(key.conn)
    }

    pub(crate) fn counters(&self, shared: &DaemonShared) -> DaemonCounters {
        let mut counters = self.out.counters.clone();
        counters.wake_errors = shared.wake_errors.load(Ordering::Relaxed);
        counters.endpoints = self.sockets.endpoint_counters();
        counters
    }

    pub(crate) fn set_link(&mut self, config: LinkConfig) -> bool {
        self.out.set_link(config)
    }

    // ---- the event loop ----

    /// How long `poll` may sleep: until the earliest timer, if any.
    pub(crate) fn next_timeout(&self, now: Instant) -> Option<Duration> {
        self.out
            .timers
            .next()
            .map(|at| at.saturating_duration_since(now))
    }

    /// The loop is about to sleep in `mio::Poll` for at most `timeout` from `now`.
    pub(crate) fn sleeping(&mut self, now: Instant, timeout: Option<Duration>) {
        self.sleep_until = timeout.map(|timeout| now + timeout);
    }

    /// Whether a sender may serve the sleeping loop at `now`: not within `SERVE_GAP` of the
    /// last serve, when sends come as a stream that the loop sends better in batches.
    pub(crate) fn may_serve(&self, now: Instant) -> bool {
        self.last_served
            .is_none_or(|at| now.saturating_duration_since(at) >= SERVE_GAP)
    }

    /// A sender's work on the ready list, done for the sleeping loop
    /// (`DaemonShared::serve_sleeping_loop`): the first and last steps of a turn.
    pub(crate) fn serve_ready(&mut self, shared: &Arc<DaemonShared>, now: Instant) {
        self.last_served = Some(now);
        self.take_ready(shared, now);
        self.finish_turn(now);
    }

    /// The fd of `socket`, for a consumer that leads (`src/connection/lead.rs`).
    #[cfg(target_os = "linux")]
    pub(crate) fn socket_fd(&self, socket: SocketKey) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        Some(self.sockets.get(socket)?.socket.as_raw_fd())
    }

    /// A leading consumer's read of `socket`, done for the loop: what a turn does for a
    /// readable socket, then the end of a turn (so timers its datagrams armed are in the
    /// heap; `DaemonShared::lead_read` wakes the loop if one is due before its sleep ends).
    /// `false` if the socket is gone.
    #[cfg(target_os = "linux")]
    pub(crate) fn lead_read(
        &mut self,
        socket: SocketKey,
        shared: &Arc<DaemonShared>,
        now: Instant,
    ) -> bool {
        if self.sockets.get(socket).is_none() {
            return false;
        }
        self.read_socket(socket.slot, shared, now);
        self.finish_turn(now);
        true
    }

    /// Whether a timer is due before the loop's sleep ends (then it must be woken). Once
    /// told, the loop counts as woken at that timer, so that later senders do not wake it
    /// again for the same one.
    pub(crate) fn sleep_ends_too_late(&mut self) -> bool {
        let Some(next) = self.out.timers.next() else {
            return false;
        };
        if self.sleep_until.is_some_and(|until| until <= next) {
            return false;
        }
        self.sleep_until = Some(next);
        true
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
                    if conn.core.close_requested() {
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
            let Some(socket) = self.sockets.at(slot) else {
                return; // closed earlier in this turn; a stale event
            };
            let counters = &mut self.out.counters;
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
                    counters.icmp_errors += 1;
                    event!(debug, %error, "ICMP error on a socket: skipped");
                    continue;
                }
                Err(_error) => {
                    event!(error, error = %_error, local = %socket.local, "socket failed");
                    self.socket_failed(slot);
                    return;
                }
            };
            counters.datagrams_received += count as u64;
            if let Some(total) = self.recv_batch.kernel_drops() {
                let socket = self.sockets.at_mut(slot).expect("checked above");
                let new = total.wrapping_sub(socket.kernel_drops);
                counters.dropped_by_kernel += u64::from(new);
                if new > 0 {
                    event!(warn, dropped = new, local = %socket.local, "the kernel dropped datagrams: receive buffer full");
                }
                socket.kernel_drops = total;
            }
            for i in 0..count {
                self.handle_datagram(slot, i, shared, now);
                // Queue what the endpoint wants sent after each datagram (as its contract
                // asks): an ack due "at once" must not wait for the end of the batch, or the
                // packets read before the last 33 fall out of its range and are falsely lost.
                // The batch of replies goes out in one call below.
                if let Some(socket) = self.sockets.at_mut(slot) {
                    self.out.drain_endpoint(socket, now);
                }
            }
            self.after_work(slot, now);
            if self.recv_batch.drained() {
                break; // the WouldBlock call would cost a system call per wake
            }
        }
    }

    /// Feeds datagram `i` of the receive batch to the socket's endpoint. A payload is
    /// recorded as received (and so acked) only once it is in the inbox.
    fn handle_datagram(&mut self, slot: usize, i: usize, shared: &Arc<DaemonShared>, now: Instant) {
        let (from, datagram) = self.recv_batch.get_mut(i);
        let counters = &mut self.out.counters;
        let Some(from) = from else {
            counters.dropped_unknown_source += 1;
            event!(
                warn,
                "datagram dropped: source address of an unknown family"
            );
            return;
        };
        let socket = self.sockets.at_mut(slot).expect("caller checked");
        match socket.endpoint.handle_datagram_mut(now, from, datagram) {
            Incoming::Payload {
                conn,
                payload,
                receipt,
            } => match socket.conn(conn) {
                Some(state)
                    if state.messages.is_some()
                        && !state.shared.core.inbox.status().is_finished() =>
                {
                    let max_payload = self.max_payload;
                    super::messages::take_payload(
                        socket,
                        conn,
                        payload,
                        receipt,
                        now,
                        counters,
                        max_payload,
                    );
                }
                // Finished means closing or ended: the application reads nothing more, and
                // only this thread finishes an inbox, so no payload can follow its close.
                Some(state) if !state.shared.core.inbox.status().is_finished() => {
                    let packet = Packet::new(shared.pool.copy_of(payload), shared.pool.clone());
                    if state.shared.core.inbox.push(packet).is_ok() {
                        state.shared.signal_leader();
                        counters.payloads_delivered += 1;
                        socket.endpoint.deliver(now, receipt);
                    } else {
                        // The packet (handed back) is dropped here and its buffer recycled;
                        // without its receipt the protocol never acks it.
                        counters.dropped_inbox_full += 1;
                        event!(debug, ?conn, "payload dropped: inbox full (not acked)");
                        state
                            .shared
                            .dropped_inbox_full
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
                _ => {
                    counters.dropped_no_handle += 1;
                    event!(
                        debug,
                        ?conn,
                        "payload dropped: connection closed (not acked)"
                    );
                }
            },
            Incoming::Consumed => counters.protocol_packets += 1,
            Incoming::Dropped(_reason) => {
                counters.dropped_by_protocol += 1;
                event!(debug, %from, reason = ?_reason, "datagram dropped by the protocol");
            }
        }
        // Events first: a connection the protocol just created must have its handle before
        // the next datagram, which may carry its first payload.
        self.handle_events(slot, shared, now);
    }

    pub(super) fn handle_events(&mut self, slot: usize, shared: &Arc<DaemonShared>, now: Instant) {
        loop {
            let Some(socket) = self.sockets.at_mut(slot) else {
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
                Event::Acked {
                    conn,
                    tag,
                    packet_id,
                } => {
                    super::sending::publish_estimates(socket, conn);
                    super::sending::notify(socket, conn, tag, Delivery::Acked);
                    self.on_outcome(slot, conn, packet_id, true, now);
                }
                Event::Lost {
                    conn,
                    tag,
                    packet_id,
                } => {
                    super::sending::publish_estimates(socket, conn);
                    super::sending::notify(socket, conn, tag, Delivery::Lost);
                    self.on_outcome(slot, conn, packet_id, false, now);
                }
                Event::CongestionChanged { conn, mode } => {
                    if let Some(state) = socket.conn(conn) {
                        // Refused only once finished: then the mode no longer matters.
                        let _ = state.shared.core.inbox.status_word().set_congestion(mode);
                    }
                    self.update_send_limit(slot, conn);
                }
            }
        }
    }

    fn fire_timers(&mut self, shared: &Arc<DaemonShared>, now: Instant) {
        while let Some(timer) = self.out.timers.pop_due(now) {
            match timer {
                (at, Timer::Endpoint(key)) => {
                    let Some(socket) = self.sockets.get_mut(key) else {
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
                    let socket = self.sockets.get_mut(key);
                    match socket.and_then(|socket| socket.conn_mut(conn)) {
                        Some(state) if state.pacing_at == Some(at) => state.pacing_at = None,
                        _ => continue, // superseded by an earlier entry, or gone
                    }
                    self.flush_outbox(ConnKey { socket: key, conn }, now);
                }
                // `settle_closing`, at the end of this turn, ends it.
                (_, Timer::Linger(..)) => {}
                (_, Timer::Link) => self.out.deliver_link(&self.sockets, now),
            }
        }
    }

    /// Link entries in the timer heap, and datagrams in the conditioner.
    #[cfg(test)]
    pub(crate) fn link_load(&self) -> (usize, usize) {
        self.out.link_load()
    }

    /// After touching a socket: send what its endpoint queued and what the send batch holds,
    /// and remember to reschedule.
    pub(super) fn after_work(&mut self, slot: usize, now: Instant) {
        let Some(socket) = self.sockets.at_mut(slot) else {
            return;
        };
        self.out.drain_endpoint(socket, now);
        self.out.flush(socket);
        if !self.touched.contains(&slot) {
            self.touched.push(slot);
        }
    }

    /// Ends lingering connections that are done, reschedules every socket touched this
    /// turn, and closes idle client sockets.
    pub(super) fn finish_turn(&mut self, now: Instant) {
        if !self.messages_dirty.is_empty() {
            self.flush_dirty_messages(now);
        }
        if !self.closing.is_empty() {
            self.settle_closing(now);
        }
        let mut touched = std::mem::take(&mut self.touched);
        for slot in touched.drain(..) {
            let Some(socket) = self.sockets.at_mut(slot) else {
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
                    self.out
                        .push_timer(next.max(now), Timer::Endpoint(socket.key));
                }
            }
        }
        self.touched = touched;
        // Live as `fire_timers` judges them; link deliveries and linger ends are always live.
        let sockets = &self.sockets;
        self.out.timers.compact(|at, timer| match timer {
            Timer::Endpoint(key) => sockets
                .get(key)
                .is_some_and(|socket| socket.deadline == Some(at)),
            Timer::Pacing(key, conn) => sockets
                .get(key)
                .and_then(|socket| socket.conn(conn))
                .is_some_and(|state| state.pacing_at == Some(at)),
            Timer::Linger(..) | Timer::Link => true,
        });
    }

    pub(super) fn release_socket(&mut self, slot: usize) {
        if let Some(socket) = self.sockets.release(slot) {
            self.out.remove_socket(socket.local);
        }
    }

    /// A socket failed for good: every connection on it ends with `SocketError`.
    fn socket_failed(&mut self, slot: usize) {
        self.out.counters.sockets_failed += 1;
        if let Some(socket) = self.sockets.at_mut(slot) {
            socket.finish_all(CloseReason::SocketError);
        }
        self.release_socket(slot);
    }
}
