//! The endpoint: one per UDP socket. Routes datagrams to connections by peer address
//! (`table.rs`), runs the handshake (`handshake.rs`), keeps the timer heap (`timer_heap.rs`),
//! the event queue and the endpoint-wide counters.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::connection::{ConnectedKind, Connection, Ctx, Received};
use super::handshake::{ReplayCache, Reply};
use super::secure::conn::SecureSide;
use super::secure::server::SecureState;
use super::table::Table;
use super::timer_heap::TimerHeap;
use super::token;
use super::wire::{self, ConnectedHeader, DecodeError, WirePacket};
use super::{
    CloseReason, Config, ConnectRefused, ConnectionId, DropReason, EndpointCounters, Event,
    Incoming, ProtocolStats, Receipt, Transmit, TransmitError,
};

/// Events the queue holds before it first grows (see `Endpoint::new`).
const EVENTS_RESERVED: usize = 2 * 33;

/// One UDP socket's worth of protocol state, in both client and server roles.
///
/// ```
/// use std::time::{Duration, Instant};
/// use gudp::protocol::{Config, Endpoint, Event, TransmitError};
///
/// let t0 = Instant::now();
/// let server: std::net::SocketAddr = "192.0.2.1:4000".parse().unwrap();
/// let mut client = Endpoint::new(Config::default(), [7; 16]);
/// let conn = client.connect(t0, server).unwrap();
/// let mut buf = vec![0u8; client.max_datagram_size()];
/// // The first connection request is ready at once, padded to 1200 bytes.
/// let t = client.poll_transmit(t0, &mut buf).unwrap();
/// assert_eq!((t.destination, t.len), (server, 1200));
/// assert_eq!(client.send(t0, conn, b"too early", &mut buf), Err(TransmitError::NotConnected));
/// // With no answer, requests repeat every 100 ms until the connect timeout.
/// let mut now = t0;
/// while let Some(deadline) = client.next_deadline() {
///     now = deadline;
///     client.handle_timeout(now);
///     while client.poll_transmit(now, &mut buf).is_some() {}
/// }
/// assert_eq!(now - t0, Duration::from_secs(5));
/// assert!(matches!(client.poll_event(), Some(Event::Disconnected { .. })));
/// ```
///
/// The [module documentation](super) shows a complete exchange. The caller must, after
/// every call that takes `now`, drain [`poll_transmit`](Self::poll_transmit) and
/// [`poll_event`](Self::poll_event), and call [`handle_timeout`](Self::handle_timeout) no later
/// than [`next_deadline`](Self::next_deadline).
#[derive(Debug)]
pub struct Endpoint {
    pub(super) config: Config,
    pub(super) secret: [u8; 16],
    pub(super) epoch: Option<Instant>,
    /// The keepalive grid of the connections created from now on ([`Endpoint::align_keepalives`]).
    pub(super) keepalive_anchor: Option<Instant>,
    pub(super) table: Table,
    pub(super) timers: TimerHeap,
    pub(super) ready: VecDeque<ConnectionId>,
    pub(super) replies: VecDeque<(SocketAddr, Reply)>,
    pub(super) events: VecDeque<Event>,
    pub(super) replay: ReplayCache,
    pub(super) nonce_counter: u64,
    /// The payload last returned by `handle_datagram`, until [`Endpoint::deliver`] records
    /// it or the next datagram replaces it (then it was refused).
    pub(super) pending: Option<(ConnectionId, u64)>,
    pub(super) counters: EndpointCounters,
    /// Secure mode (server side), if set.
    pub(super) secure: Option<Box<SecureState>>,
    /// The secure-mode packet `handle_datagram_mut` just decrypted in place: its
    /// connection, wire sequence and what opening it found (its extended sequence, or
    /// why it is dropped). Cleared for every datagram.
    pub(super) decrypted: Option<(ConnectionId, u16, Result<u64, DropReason>)>,
}

impl Endpoint {
    /// An endpoint with `config` (see [`Config::sanitized`]) and a 16-byte secret that keys
    /// challenge tokens and client nonces. The secret must be random and private (the daemon
    /// draws it from the operating system); tests may pass any constant.
    ///
    /// ```
    /// use gudp::protocol::{Config, Endpoint};
    /// let mut config = Config::default();
    /// config.sent_window = 0;
    /// let endpoint = Endpoint::new(config, [0; 16]);
    /// assert_eq!(endpoint.config().sent_window, 33); // sanitized to the smallest valid window
    /// assert_eq!(endpoint.connection_count(), 0);
    /// ```
    pub fn new(config: Config, secret: [u8; 16]) -> Self {
        let config = config.sanitized();
        Self {
            replies: VecDeque::with_capacity(config.max_queued_replies.min(1024)),
            config,
            secret,
            epoch: None,
            keepalive_anchor: None,
            table: Table::default(),
            timers: TimerHeap::default(),
            ready: VecDeque::new(),
            // One datagram's ack resolves up to 33 packets: room for two, so that a burst of
            // acks on a busy machine does not grow the queue in the steady state.
            events: VecDeque::with_capacity(EVENTS_RESERVED),
            replay: ReplayCache::default(),
            nonce_counter: 0,
            pending: None,
            counters: EndpointCounters::default(),
            secure: None,
            decrypted: None,
        }
    }

    /// The configuration in force (after sanitizing).
    ///
    /// ```
    /// use gudp::protocol::{Config, Endpoint};
    /// let mut config = Config::default();
    /// config.max_payload = 500;
    /// let endpoint = Endpoint::new(config.clone(), [0; 16]);
    /// assert_eq!(endpoint.config(), &config); // already valid: kept as it was
    /// ```
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The largest datagram this endpoint writes: size `out` buffers at least this large.
    ///
    /// ```
    /// use gudp::protocol::{Config, Endpoint};
    /// assert_eq!(Endpoint::new(Config::default(), [0; 16]).max_datagram_size(), 1232);
    /// // Small payloads: the padded handshake packets are the largest datagrams.
    /// let mut small = Config::default();
    /// small.max_payload = 100;
    /// assert_eq!(Endpoint::new(small, [0; 16]).max_datagram_size(), 1200);
    /// ```
    pub fn max_datagram_size(&self) -> usize {
        self.config.max_datagram_size()
    }

    /// Endpoint-wide counters.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::protocol::*;
    /// # let t0 = Instant::now();
    /// # let (ca, sa): (std::net::SocketAddr, std::net::SocketAddr) =
    /// #     ("10.0.0.1:5000".parse().unwrap(), "10.0.0.2:6000".parse().unwrap());
    /// # let mut buf = [0u8; 1500];
    /// let mut endpoint = Endpoint::new(Config::default(), [0; 16]);
    /// endpoint.handle_datagram(t0, ca, &[0x47, 0x55, 0x44]);
    /// assert_eq!(endpoint.counters().datagrams_received, 1);
    /// assert_eq!(endpoint.counters().invalid_too_short, 1);
    /// ```
    pub fn counters(&self) -> EndpointCounters {
        let mut counters = self.counters;
        for conn in self.table.iter() {
            counters.connections += conn.counters();
        }
        counters
    }

    /// Live connections (connecting or connected).
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::protocol::*;
    /// # let t0 = Instant::now();
    /// # let (ca, sa): (std::net::SocketAddr, std::net::SocketAddr) =
    /// #     ("10.0.0.1:5000".parse().unwrap(), "10.0.0.2:6000".parse().unwrap());
    /// # let mut buf = [0u8; 1500];
    /// let mut endpoint = Endpoint::new(Config::default(), [0; 16]);
    /// endpoint.connect(t0, ca).unwrap();
    /// endpoint.connect(t0, sa).unwrap();
    /// assert_eq!(endpoint.connection_count(), 2); // connecting counts too
    /// ```
    pub fn connection_count(&self) -> usize {
        self.table.len()
    }

    /// The connection with `peer`, if any.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::protocol::*;
    /// # let t0 = Instant::now();
    /// # let (ca, sa): (std::net::SocketAddr, std::net::SocketAddr) =
    /// #     ("10.0.0.1:5000".parse().unwrap(), "10.0.0.2:6000".parse().unwrap());
    /// # let mut buf = [0u8; 1500];
    /// let mut endpoint = Endpoint::new(Config::default(), [0; 16]);
    /// let conn = endpoint.connect(t0, sa).unwrap();
    /// assert_eq!(endpoint.connection_by_addr(sa), Some(conn));
    /// assert_eq!(endpoint.connection_by_addr(ca), None);
    /// ```
    pub fn connection_by_addr(&self, peer: SocketAddr) -> Option<ConnectionId> {
        self.table.by_addr(peer)
    }

    /// A snapshot of one connection's estimates and counters; `None` for an unknown id.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::protocol::*;
    /// # let t0 = Instant::now();
    /// # let (ca, sa): (std::net::SocketAddr, std::net::SocketAddr) =
    /// #     ("10.0.0.1:5000".parse().unwrap(), "10.0.0.2:6000".parse().unwrap());
    /// # let mut client = Endpoint::new(Config::default(), [1; 16]);
    /// # let mut server = Endpoint::new(Config::default(), [2; 16]);
    /// # let conn = client.connect(t0, sa).unwrap();
    /// # let mut buf = [0u8; 1500];
    /// # for _ in 0..3 {
    /// #     while let Some(t) = client.poll_transmit(t0, &mut buf) {
    /// #         server.handle_datagram(t0, ca, &buf[..t.len]);
    /// #     }
    /// #     while let Some(t) = server.poll_transmit(t0, &mut buf) {
    /// #         client.handle_datagram(t0, sa, &buf[..t.len]);
    /// #     }
    /// # }
    /// // `client` (at `ca`) and `server` (at `sa`) have completed a handshake in memory.
    /// let stats = client.connection_stats(conn).unwrap();
    /// assert!(stats.connected);
    /// assert_eq!((stats.peer, stats.role), (sa, Role::Client));
    /// assert_eq!(stats.rtt, Duration::from_millis(250)); // Config::initial_rtt: no sample yet
    /// ```
    pub fn connection_stats(&self, conn: ConnectionId) -> Option<ProtocolStats> {
        self.table.get(conn).map(|c| c.stats(&self.config))
    }

    /// The figures a game reads every frame, without building the whole
    /// [`ProtocolStats`]: smoothed RTT, its variation and the loss percentage.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::protocol::*;
    /// let mut client = Endpoint::new(Config::default(), [1; 16]);
    /// let conn = client.connect(Instant::now(), "10.0.0.2:6000".parse().unwrap()).unwrap();
    /// let (rtt, _variation, loss) = client.estimates(conn).unwrap();
    /// assert_eq!((rtt, loss), (Duration::from_millis(250), 0.0)); // no sample yet
    /// ```
    pub fn estimates(&self, conn: ConnectionId) -> Option<(Duration, Duration, f64)> {
        self.table.get(conn).map(Connection::estimates)
    }

    /// Puts the keepalives of the connections created from now on onto a grid of ticks
    /// (`anchor` plus multiples of an eighth of the keepalive interval): a keepalive is due
    /// at the first tick at or after the instant the protocol would send it, so that endpoints
    /// sharing an anchor (every socket of a daemon) send their keepalives in a few turns a
    /// second, batched, instead of one turn per connection. A keepalive goes out at most an
    /// eighth of an interval late. Without it (the default) deadlines are exact.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::protocol::*;
    /// let t0 = Instant::now();
    /// let mut client = Endpoint::new(Config::default(), [1; 16]);
    /// client.align_keepalives(t0 + Duration::from_millis(100)); // ticks every 250 ms from here
    /// client.connect(t0, "10.0.0.2:6000".parse().unwrap()).unwrap();
    /// # let mut buf = [0u8; 1500];
    /// client.poll_transmit(t0, &mut buf).unwrap(); // a request: handshake retries are exact
    /// assert_eq!(client.next_deadline(), Some(t0 + Duration::from_millis(100)));
    /// ```
    pub fn align_keepalives(&mut self, anchor: Instant) {
        self.keepalive_anchor = Some(anchor);
    }

    /// Counts challenge-token timestamps from `epoch` instead of the first instant the
    /// endpoint was given: endpoints that share a secret and an epoch (the shards of one
    /// listening port) accept each other's challenge responses.
    pub(crate) fn set_token_epoch(&mut self, epoch: Instant) {
        self.epoch = Some(epoch);
    }

    pub(super) fn millis(&mut self, now: Instant) -> u64 {
        let epoch = *self.epoch.get_or_insert(now);
        u64::try_from(now.saturating_duration_since(epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// Splits the borrows: the connection and a context over the rest of the endpoint.
    pub(super) fn parts(&mut self, id: ConnectionId) -> Option<(&mut Connection, Ctx<'_>)> {
        let conn = self.table.get_mut(id)?;
        let cx = Ctx {
            id,
            config: &self.config,
            events: &mut self.events,
            counters: &mut self.counters,
        };
        Some((conn, cx))
    }

    /// Ends a connection: unresolved packets are reported lost, then `Disconnected`.
    pub(super) fn end(&mut self, id: ConnectionId, reason: CloseReason) {
        let Some((conn, mut cx)) = self.parts(id) else {
            return;
        };
        conn.finish(&mut cx);
        let conn = self.table.remove(id).expect("found above");
        if let (Some(SecureSide::Server(info)), Some(state)) = (&conn.secure, &mut self.secure) {
            state.clients.remove(&info.client_id);
        }
        // Its traffic stays in the endpoint's totals.
        self.counters.connections += conn.counters();
        self.events
            .push_back(Event::Disconnected { conn: id, reason });
        let c = &mut self.counters;
        c.connections_closed += 1;
        match reason {
            CloseReason::TimedOut => c.timeouts += 1,
            CloseReason::ConnectTimedOut => c.connect_timeouts += 1,
            CloseReason::ConnectionDenied | CloseReason::ChannelMismatch => c.denied += 1,
            CloseReason::ClosedByPeer => c.disconnects_received += 1,
            // Closed locally; the daemon's own reasons never reach an endpoint.
            _ => {}
        }
    }

    /// Puts the connection in the transmit queue if it has something due, and makes sure the
    /// timer heap holds an entry no later than its deadline (the connection decides both).
    pub(super) fn reschedule(&mut self, id: ConnectionId, now: Instant) {
        let Some(conn) = self.table.get_mut(id) else {
            return;
        };
        let plan = conn.plan(now, &self.config);
        if plan.queue {
            self.ready.push_back(id);
        }
        if let Some((deadline, token)) = plan.timer {
            self.timers.push(deadline, id, token, &self.table);
        }
    }

    /// Starts a connection attempt to `server`. Requests go out through
    /// [`poll_transmit`](Self::poll_transmit); the result arrives as
    /// [`Event::Connected`] or [`Event::Disconnected`] (`ConnectTimedOut`, `ConnectionDenied`).
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::protocol::*;
    /// # let t0 = Instant::now();
    /// # let (ca, sa): (std::net::SocketAddr, std::net::SocketAddr) =
    /// #     ("10.0.0.1:5000".parse().unwrap(), "10.0.0.2:6000".parse().unwrap());
    /// # let mut buf = [0u8; 1500];
    /// let mut client = Endpoint::new(Config::default(), [1; 16]);
    /// let conn = client.connect(t0, sa).unwrap();
    /// assert_eq!(client.connect(t0, sa), Err(ConnectRefused::AlreadyConnected));
    /// let t = client.poll_transmit(t0, &mut buf).unwrap(); // the first connection request
    /// assert_eq!(t.destination, sa);
    /// assert!(client.connection_stats(conn).is_some_and(|s| !s.connected));
    /// ```
    pub fn connect(
        &mut self,
        now: Instant,
        server: SocketAddr,
    ) -> Result<ConnectionId, ConnectRefused> {
        if self.table.by_addr(server).is_some() {
            return Err(ConnectRefused::AlreadyConnected);
        }
        if self.table.len() >= self.config.max_connections {
            return Err(ConnectRefused::ConnectionLimit);
        }
        let nonce = token::nonce(&self.secret, self.nonce_counter, server);
        self.nonce_counter += 1;
        let mut conn = Connection::client(now, server, nonce, &self.config);
        conn.keepalive_anchor = self.keepalive_anchor;
        let id = self.table.insert(conn);
        self.timers.reserve_for(&self.table);
        self.reschedule(id, now);
        Ok(id)
    }

    pub(super) fn drop_with(&mut self, reason: DropReason) -> Incoming<'static> {
        let c = &mut self.counters;
        match reason {
            DropReason::Invalid(e) => match e {
                DecodeError::TooShort { .. } => c.invalid_too_short += 1,
                DecodeError::WrongProtocolId { .. } => c.wrong_protocol_id += 1,
                DecodeError::UnknownType { .. } => c.invalid_unknown_type += 1,
                DecodeError::BadLength { .. } => c.invalid_bad_length += 1,
                DecodeError::NonCanonical(_) => c.invalid_non_canonical += 1,
            },
            DropReason::UnknownPeer => c.unknown_peer += 1,
            DropReason::BadToken => c.handshake_bad_tokens += 1,
            DropReason::ExpiredToken => c.handshake_expired_tokens += 1,
            DropReason::ReplayedToken => c.handshake_replayed_tokens += 1,
            DropReason::AlreadyConnected => c.handshake_already_connected += 1,
            DropReason::Unexpected => c.unexpected += 1,
            DropReason::Mismatch => c.mismatched += 1,
            DropReason::ReplyQueueFull => c.replies_dropped += 1,
            DropReason::BadMac => c.bad_mac += 1,
            DropReason::ConnectTokenExpired => c.connect_token_expired += 1,
            DropReason::ConnectTokenForged => c.connect_token_forged += 1,
            DropReason::ConnectTokenWrongServer => c.connect_token_wrong_server += 1,
            DropReason::ConnectTokenInUse => c.connect_token_in_use += 1,
            DropReason::ClientIdInUse => c.client_id_in_use += 1,
            DropReason::WrongModeHandshake => c.wrong_mode_handshakes += 1,
            DropReason::ReadOnlyBuffer => c.read_only_buffer += 1,
            // Counted where they are detected (with the connection's own counters).
            DropReason::Duplicate | DropReason::Stale | DropReason::TooLarge { .. } => {}
        }
        Incoming::Dropped(reason)
    }

    /// Feeds one received datagram from `from`. A payload is returned borrowed from
    /// `datagram`: nothing is copied or allocated. It counts as received only once its
    /// receipt goes to [`Endpoint::deliver`]; until then it is not acked, and a copy of it
    /// is not a duplicate.
    ///
    /// Secure-mode connections (`protocol::secure`) encrypt their packets, which can only be
    /// decrypted in place: feed their datagrams to
    /// [`handle_datagram_mut`](Self::handle_datagram_mut) (here they are dropped as
    /// [`DropReason::ReadOnlyBuffer`]).
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::protocol::*;
    /// # let t0 = Instant::now();
    /// # let (ca, sa): (std::net::SocketAddr, std::net::SocketAddr) =
    /// #     ("10.0.0.1:5000".parse().unwrap(), "10.0.0.2:6000".parse().unwrap());
    /// # let mut client = Endpoint::new(Config::default(), [1; 16]);
    /// # let mut server = Endpoint::new(Config::default(), [2; 16]);
    /// # let conn = client.connect(t0, sa).unwrap();
    /// # let mut buf = [0u8; 1500];
    /// # for _ in 0..3 {
    /// #     while let Some(t) = client.poll_transmit(t0, &mut buf) {
    /// #         server.handle_datagram(t0, ca, &buf[..t.len]);
    /// #     }
    /// #     while let Some(t) = server.poll_transmit(t0, &mut buf) {
    /// #         client.handle_datagram(t0, sa, &buf[..t.len]);
    /// #     }
    /// # }
    /// // `client` (at `ca`) and `server` (at `sa`) have completed a handshake in memory.
    /// let t = client.send(t0, conn, b"hi", &mut buf).unwrap();
    /// let datagram = buf[..t.len].to_vec();
    /// let sconn = server.connection_by_addr(ca).unwrap();
    /// let Incoming::Payload { conn: on, payload, receipt } = server.handle_datagram(t0, ca, &datagram)
    /// else { panic!("a payload") };
    /// assert_eq!((on, payload), (sconn, &b"hi"[..]));
    /// assert!(server.deliver(t0, receipt));
    /// // The same datagram again is a duplicate.
    /// let duplicate = Incoming::Dropped(DropReason::Duplicate);
    /// assert_eq!(server.handle_datagram(t0, ca, &datagram), duplicate);
    /// ```
    pub fn handle_datagram<'a>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &'a [u8],
    ) -> Incoming<'a> {
        self.decrypted = None;
        self.handle_decrypted(now, from, datagram)
    }

    /// Feeds one received datagram from `from` that may be changed in place: as
    /// [`handle_datagram`](Self::handle_datagram), and a secure-mode connected packet is
    /// authenticated and decrypted in place first (nothing about the connection changes
    /// if it fails), so the payload returned is the plaintext. Use it for every datagram
    /// of an endpoint with secure-mode connections.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use gudp::protocol::*;
    /// let mut server = Endpoint::new(Config::default(), [2; 16]);
    /// let mut datagram = [0x47, 0x55, 0x44];
    /// let dropped = server.handle_datagram_mut(Instant::now(), "10.0.0.1:5000".parse().unwrap(), &mut datagram);
    /// assert!(matches!(dropped, Incoming::Dropped(DropReason::Invalid(_))));
    /// ```
    pub fn handle_datagram_mut<'a>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &'a mut [u8],
    ) -> Incoming<'a> {
        self.decrypted = self.decrypt_in_place(from, datagram);
        self.handle_decrypted(now, from, datagram)
    }

    /// Opens a secure-mode connected packet in place, if `datagram` is one for a
    /// connection of `from` (an oversize payload is left for the size check).
    fn decrypt_in_place(
        &mut self,
        from: SocketAddr,
        datagram: &mut [u8],
    ) -> Option<(ConnectionId, u16, Result<u64, DropReason>)> {
        use wire::PacketType::{Ack, Disconnect, Keepalive, Payload};
        let kind = wire::peek_type(self.config.protocol_id, datagram).ok()?;
        if !matches!(kind, Payload | Keepalive | Ack | Disconnect)
            || datagram.len() < wire::CONNECTED_HEADER_LEN
            || (kind == Payload
                && datagram.len() - wire::CONNECTED_HEADER_LEN > self.config.max_payload)
        {
            return None;
        }
        let id = self.table.by_addr(from)?;
        let conn = self.table.get(id)?;
        if !conn.protection.is_some_and(|p| p.is_encrypting()) {
            return None;
        }
        let sequence = u16::from_be_bytes([datagram[6], datagram[7]]);
        Some((id, sequence, conn.open(sequence, datagram)))
    }

    /// The result of decrypting the datagram in hand in place, if it was and it is the
    /// packet with `sequence` for connection `id`.
    fn decrypted_for(&self, id: ConnectionId, sequence: u16) -> Option<Result<u64, DropReason>> {
        self.decrypted
            .filter(|&(on, seq, _)| on == id && seq == sequence)
            .map(|(_, _, result)| result)
    }

    fn handle_decrypted<'a>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &'a [u8],
    ) -> Incoming<'a> {
        self.counters.datagrams_received += 1;
        // An unresolved receipt is a refusal: a duplicate of it may be accepted below.
        self.pending = None;
        let packet = match wire::decode(self.config.protocol_id, datagram) {
            Ok(p) => p,
            Err(e) => return self.drop_with(DropReason::Invalid(e)),
        };
        let result = match packet {
            WirePacket::ConnectionRequest { nonce, fingerprint } => {
                self.on_request(now, from, nonce, fingerprint)
            }
            WirePacket::Challenge {
                nonce,
                timestamp,
                token,
            } => self.on_challenge(now, from, nonce, timestamp, token),
            WirePacket::ChallengeResponse {
                nonce,
                timestamp,
                token,
                fingerprint,
            } => self.on_response(now, from, nonce, timestamp, token, fingerprint),
            WirePacket::Accept { nonce } => self.on_accept(now, from, nonce),
            WirePacket::Denied { nonce, reason } => self.on_denied(from, nonce, reason),
            WirePacket::SecureAccept { nonce, tag } => {
                self.on_secure_accept(now, from, nonce, tag, datagram)
            }
            WirePacket::SecureRequest(hello) => self.on_secure_request(now, from, hello),
            WirePacket::SecureResponse {
                hello,
                timestamp,
                token,
                tag,
            } => self.on_secure_response(now, from, hello, timestamp, token, tag, datagram),
            WirePacket::Payload { header, payload } => {
                let kind = ConnectedKind::Payload;
                return self.on_connected(now, from, header, kind, datagram, payload);
            }
            WirePacket::Keepalive { header } => {
                let kind = ConnectedKind::Keepalive;
                return self.on_connected(now, from, header, kind, datagram, &[]);
            }
            WirePacket::Ack { header } => {
                let kind = ConnectedKind::Ack;
                return self.on_connected(now, from, header, kind, datagram, &[]);
            }
            WirePacket::Disconnect { header, session } => {
                self.on_disconnect(now, from, header, session, datagram)
            }
        };
        match result {
            Ok(()) => Incoming::Consumed,
            Err(reason) => self.drop_with(reason),
        }
    }

    /// Finds the connection a connected packet belongs to and authenticates the packet
    /// (MAC over the datagram and its extended sequence) before anything is changed; then
    /// completes a client handshake whose accept was lost, if this is the server's first
    /// connected packet. Returns the connection and the packet's extended sequence.
    fn connected_target(
        &mut self,
        now: Instant,
        from: SocketAddr,
        sequence: u16,
        datagram: &[u8],
    ) -> Result<(ConnectionId, u64), DropReason> {
        let id = self.table.by_addr(from).ok_or(DropReason::UnknownPeer)?;
        let decrypted = self.decrypted_for(id, sequence);
        let (conn, mut cx) = self.parts(id).ok_or(DropReason::UnknownPeer)?;
        let seq = conn
            .authenticate(sequence, datagram, decrypted)
            .inspect_err(|reason| {
                if *reason == DropReason::Stale {
                    conn.counters_mut().stale += 1;
                }
            })?;
        conn.accept_connected(now, &mut cx)?;
        Ok((id, seq))
    }

    fn on_connected<'a>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        header: ConnectedHeader,
        kind: ConnectedKind,
        datagram: &[u8],
        payload: &'a [u8],
    ) -> Incoming<'a> {
        // An oversize payload is refused before anything, its MAC included, is computed.
        let max = self.config.max_payload;
        if payload.len() > max {
            let Some(conn) = self
                .table
                .by_addr(from)
                .and_then(|id| self.table.get_mut(id))
            else {
                return self.drop_with(DropReason::UnknownPeer);
            };
            conn.counters_mut().too_large_to_receive += 1;
            return Incoming::Dropped(DropReason::TooLarge {
                len: payload.len(),
                max,
            });
        }
        let (id, seq) = match self.connected_target(now, from, header.sequence, datagram) {
            Ok(target) => target,
            Err(reason) => return self.drop_with(reason),
        };
        let Some((conn, mut cx)) = self.parts(id) else {
            return self.drop_with(DropReason::UnknownPeer);
        };
        let result = conn.on_packet(now, seq, header, kind, datagram.len(), &mut cx);
        self.reschedule(id, now);
        match result {
            Ok(Received::Deliver { seq }) => {
                self.pending = Some((id, seq));
                let receipt = Receipt { conn: id, seq };
                Incoming::Payload {
                    conn: id,
                    payload,
                    receipt,
                }
            }
            Ok(Received::Consumed | Received::Closed) => Incoming::Consumed,
            Err(reason) => self.drop_with(reason),
        }
    }

    fn on_disconnect(
        &mut self,
        now: Instant,
        from: SocketAddr,
        header: ConnectedHeader,
        session: u64,
        datagram: &[u8],
    ) -> Result<(), DropReason> {
        let id = self.table.by_addr(from).ok_or(DropReason::UnknownPeer)?;
        let decrypted = self.decrypted_for(id, header.sequence);
        let (conn, mut cx) = self.parts(id).ok_or(DropReason::UnknownPeer)?;
        if conn.session != session {
            return Err(DropReason::Mismatch);
        }
        if conn.is_requesting() {
            return Err(DropReason::Unexpected);
        }
        // Only an authentic disconnect ends the connection (a forged one changes nothing).
        // Take its acks if it is in the window; an authentic one ends the connection either
        // way, even stale: only the peer could have sent it.
        match conn.authenticate(header.sequence, datagram, decrypted) {
            Ok(seq) => {
                let len = datagram.len();
                let _ = conn.on_packet(now, seq, header, ConnectedKind::Disconnect, len, &mut cx);
            }
            Err(DropReason::Stale) => {}
            Err(reason) => return Err(reason),
        }
        let reason = if conn.is_connected() {
            CloseReason::ClosedByPeer
        } else {
            CloseReason::ConnectionDenied
        };
        self.end(id, reason);
        Ok(())
    }

    /// The pacing rate `conn` sends at now (the rate controller's, capped by `bad_rate` in
    /// bad mode; §6.4), or `None` for an unknown connection. A new connection starts at
    /// 2,000 packets/s and finds the path's rate from there.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use gudp::protocol::*;
    /// let mut client = Endpoint::new(Config::default(), [1; 16]);
    /// let conn = client.connect(Instant::now(), "10.0.0.2:6000".parse().unwrap()).unwrap();
    /// assert_eq!(client.send_rate(conn), Some(PacingRate::new(2000, 64))); // starts good
    /// ```
    pub fn send_rate(&self, conn: ConnectionId) -> Option<super::PacingRate> {
        self.table.get(conn).map(|c| c.send_rate(&self.config))
    }

    /// Whether a payload sent on `conn` still awaits its [`Event::Acked`] or
    /// [`Event::Lost`] (`false` for an unknown connection). A closing connection uses it
    /// to wait for the fate of what it sent before it disconnects.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use gudp::protocol::*;
    /// let mut client = Endpoint::new(Config::default(), [1; 16]);
    /// let conn = client.connect(Instant::now(), "10.0.0.2:6000".parse().unwrap()).unwrap();
    /// assert!(!client.has_unresolved_payloads(conn)); // nothing sent yet
    /// ```
    pub fn has_unresolved_payloads(&self, conn: ConnectionId) -> bool {
        self.table
            .get(conn)
            .is_some_and(Connection::has_unresolved_payloads)
    }

    /// Records the payload of `receipt` as received, once the application has it: only then
    /// is it acked (so `Acked` at the sender means the application got the payload). Returns
    /// `false`, recording nothing, if the receipt is no longer valid: another datagram was
    /// handled since, or its connection ended.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use gudp::protocol::*;
    /// # let t0 = Instant::now();
    /// # let (ca, sa): (std::net::SocketAddr, std::net::SocketAddr) =
    /// #     ("10.0.0.1:5000".parse().unwrap(), "10.0.0.2:6000".parse().unwrap());
    /// # let mut buf = [0u8; 1500];
    /// # let mut client = Endpoint::new(Config::default(), [1; 16]);
    /// # let mut server = Endpoint::new(Config::default(), [2; 16]);
    /// # let conn = client.connect(t0, sa).unwrap();
    /// # for _ in 0..3 {
    /// #     while let Some(t) = client.poll_transmit(t0, &mut buf) { server.handle_datagram(t0, ca, &buf[..t.len]); }
    /// #     while let Some(t) = server.poll_transmit(t0, &mut buf) { client.handle_datagram(t0, sa, &buf[..t.len]); }
    /// # }
    /// let t = client.send(t0, conn, b"refused", &mut buf).unwrap();
    /// let copy = buf[..t.len].to_vec();
    /// // The application's buffer is full: drop the receipt, and the packet is not acked...
    /// assert!(matches!(server.handle_datagram(t0, ca, &copy), Incoming::Payload { .. }));
    /// // ...so a retransmitted copy is a new arrival, not a duplicate.
    /// let Incoming::Payload { receipt, .. } = server.handle_datagram(t0, ca, &copy) else { panic!() };
    /// assert!(server.deliver(t0, receipt));
    /// assert_eq!(server.counters().connections.duplicates, 0);
    /// ```
    pub fn deliver(&mut self, now: Instant, receipt: Receipt) -> bool {
        let Receipt { conn, seq } = receipt;
        if self.pending.take() != Some((conn, seq)) {
            return false;
        }
        let Some((c, mut cx)) = self.parts(conn) else {
            return false;
        };
        c.deliver(now, seq, &mut cx);
        self.reschedule(conn, now);
        true
    }

    /// Encodes one application packet for `conn` into `out` (header and payload) and returns
    /// where to send it and the packet's id; exactly one [`Event::Acked`] or [`Event::Lost`]
    /// will follow for that id. No error consumes a sequence number.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::protocol::*;
    /// # let t0 = Instant::now();
    /// # let (ca, sa): (std::net::SocketAddr, std::net::SocketAddr) =
    /// #     ("10.0.0.1:5000".parse().unwrap(), "10.0.0.2:6000".parse().unwrap());
    /// # let mut client = Endpoint::new(Config::default(), [1; 16]);
    /// # let mut server = Endpoint::new(Config::default(), [2; 16]);
    /// # let conn = client.connect(t0, sa).unwrap();
    /// # let mut buf = [0u8; 1500];
    /// # for _ in 0..3 {
    /// #     while let Some(t) = client.poll_transmit(t0, &mut buf) {
    /// #         server.handle_datagram(t0, ca, &buf[..t.len]);
    /// #     }
    /// #     while let Some(t) = server.poll_transmit(t0, &mut buf) {
    /// #         client.handle_datagram(t0, sa, &buf[..t.len]);
    /// #     }
    /// # }
    /// // `client` (at `ca`) and `server` (at `sa`) have completed a handshake in memory.
    /// let t = client.send(t0, conn, b"state", &mut buf).unwrap();
    /// assert_eq!((t.destination, t.len), (sa, 32 + 5)); // header (MAC included) and payload
    /// assert_eq!(t.packet_id, Some(PacketNumber(0)));
    /// let too_big = client.send(t0, conn, &[0; 1201], &mut buf);
    /// assert_eq!(too_big, Err(TransmitError::TooLarge { len: 1201, max: 1200 }));
    /// ```
    pub fn send(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<Transmit, TransmitError> {
        let (c, mut cx) = self.parts(conn).ok_or(TransmitError::UnknownConnection)?;
        let destination = c.peer;
        let (len, packet_id) = c.send_payload(now, payload, None, out, &mut cx)?;
        self.reschedule(conn, now);
        Ok(Transmit {
            destination,
            len,
            packet_id: Some(packet_id),
        })
    }

    /// Like [`send`](Self::send), but the packet's [`Event::Acked`] or [`Event::Lost`] carries
    /// `tag` instead of its sequence, so a caller can name its own packets (the daemon passes
    /// the user's packet id) without a table of its own.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::protocol::*;
    /// # let t0 = Instant::now();
    /// # let (ca, sa): (std::net::SocketAddr, std::net::SocketAddr) =
    /// #     ("10.0.0.1:5000".parse().unwrap(), "10.0.0.2:6000".parse().unwrap());
    /// # let mut client = Endpoint::new(Config::default(), [1; 16]);
    /// # let mut server = Endpoint::new(Config::default(), [2; 16]);
    /// # let conn = client.connect(t0, sa).unwrap();
    /// # let mut buf = [0u8; 1500];
    /// # for _ in 0..3 {
    /// #     while let Some(t) = client.poll_transmit(t0, &mut buf) { server.handle_datagram(t0, ca, &buf[..t.len]); }
    /// #     while let Some(t) = server.poll_transmit(t0, &mut buf) { client.handle_datagram(t0, sa, &buf[..t.len]); }
    /// # }
    /// # while client.poll_event().is_some() {}
    /// let t = client.send_tagged(t0, conn, b"input", 42, &mut buf).unwrap();
    /// if let Incoming::Payload { receipt, .. } = server.handle_datagram(t0, ca, &buf[..t.len]) {
    ///     server.deliver(t0, receipt);
    /// }
    /// let later = t0 + Duration::from_millis(10); // the server's ack delay
    /// server.handle_timeout(later);
    /// let ack = server.poll_transmit(later, &mut buf).unwrap();
    /// client.handle_datagram(later, sa, &buf[..ack.len]);
    /// assert!(matches!(client.poll_event(), Some(Event::Acked { tag: 42, .. })));
    /// ```
    pub fn send_tagged(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        payload: &[u8],
        tag: u64,
        out: &mut [u8],
    ) -> Result<Transmit, TransmitError> {
        let (c, mut cx) = self.parts(conn).ok_or(TransmitError::UnknownConnection)?;
        let destination = c.peer;
        let (len, packet_id) = c.send_payload(now, payload, Some(tag), out, &mut cx)?;
        self.reschedule(conn, now);
        Ok(Transmit {
            destination,
            len,
            packet_id: Some(packet_id),
        })
    }

    /// Would [`send`](Self::send) accept a payload for `conn` at `now`? Checks that the
    /// connection exists and is connected and that the pacing budget allows a packet; takes
    /// nothing. `Err(TransmitError::Paced { retry_at })` says when to try again, so a caller can
    /// leave a packet in its outbox without encoding it.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::protocol::*;
    /// # let t0 = Instant::now();
    /// # let (ca, sa): (std::net::SocketAddr, std::net::SocketAddr) =
    /// #     ("10.0.0.1:5000".parse().unwrap(), "10.0.0.2:6000".parse().unwrap());
    /// # let mut client = Endpoint::new(Config::default(), [1; 16]);
    /// # let mut server = Endpoint::new(Config::default(), [2; 16]);
    /// # let conn = client.connect(t0, sa).unwrap();
    /// # let mut buf = [0u8; 1500];
    /// # for _ in 0..3 {
    /// #     while let Some(t) = client.poll_transmit(t0, &mut buf) {
    /// #         server.handle_datagram(t0, ca, &buf[..t.len]);
    /// #     }
    /// #     while let Some(t) = server.poll_transmit(t0, &mut buf) {
    /// #         client.handle_datagram(t0, sa, &buf[..t.len]);
    /// #     }
    /// # }
    /// // `client` (at `ca`) and `server` (at `sa`) have completed a handshake in memory.
    /// assert_eq!(client.can_send(t0, conn), Ok(()));
    /// for _ in 0..64 {
    ///     client.send(t0, conn, b"burst", &mut buf).unwrap(); // the good-mode burst
    /// }
    /// assert!(matches!(client.can_send(t0, conn), Err(TransmitError::Paced { .. })));
    /// ```
    pub fn can_send(&self, now: Instant, conn: ConnectionId) -> Result<(), TransmitError> {
        self.table
            .get(conn)
            .ok_or(TransmitError::UnknownConnection)?
            .can_send(now, &self.config)
    }

    /// Writes the next protocol-generated datagram (handshake, challenge, accept, denial,
    /// keepalive, ack, disconnect) into `out`, which should hold
    /// [`max_datagram_size`](Self::max_datagram_size) bytes. Call until it returns `None`.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::protocol::*;
    /// # let t0 = Instant::now();
    /// # let (ca, sa): (std::net::SocketAddr, std::net::SocketAddr) =
    /// #     ("10.0.0.1:5000".parse().unwrap(), "10.0.0.2:6000".parse().unwrap());
    /// # let mut client = Endpoint::new(Config::default(), [1; 16]);
    /// # let mut server = Endpoint::new(Config::default(), [2; 16]);
    /// # let conn = client.connect(t0, sa).unwrap();
    /// # let mut buf = [0u8; 1500];
    /// # for _ in 0..3 {
    /// #     while let Some(t) = client.poll_transmit(t0, &mut buf) {
    /// #         server.handle_datagram(t0, ca, &buf[..t.len]);
    /// #     }
    /// #     while let Some(t) = server.poll_transmit(t0, &mut buf) {
    /// #         client.handle_datagram(t0, sa, &buf[..t.len]);
    /// #     }
    /// # }
    /// // `client` (at `ca`) and `server` (at `sa`) have completed a handshake in memory.
    /// // Nothing is due right after the handshake.
    /// assert!(client.poll_transmit(t0, &mut buf).is_none());
    /// // After 2 s without an ack-eliciting packet, a keepalive is due.
    /// let later = t0 + Duration::from_secs(2);
    /// client.handle_timeout(later);
    /// let t = client.poll_transmit(later, &mut buf).unwrap();
    /// assert_eq!((t.destination, t.len, t.packet_id), (sa, 32, None));
    /// ```
    pub fn poll_transmit(&mut self, now: Instant, out: &mut [u8]) -> Option<Transmit> {
        if let Some(transmit) = self.poll_reply(out) {
            return Some(transmit);
        }
        while let Some(id) = self.ready.pop_front() {
            let Some((conn, mut cx)) = self.parts(id) else {
                continue;
            };
            conn.dequeue();
            let destination = conn.peer;
            let written = conn.poll_transmit(now, out, &mut cx);
            self.reschedule(id, now);
            if let Some(len) = written {
                return Some(Transmit {
                    destination,
                    len,
                    packet_id: None,
                });
            }
        }
        None
    }

    /// The next queued event.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::protocol::*;
    /// # let t0 = Instant::now();
    /// # let (ca, sa): (std::net::SocketAddr, std::net::SocketAddr) =
    /// #     ("10.0.0.1:5000".parse().unwrap(), "10.0.0.2:6000".parse().unwrap());
    /// # let mut client = Endpoint::new(Config::default(), [1; 16]);
    /// # let mut server = Endpoint::new(Config::default(), [2; 16]);
    /// # let conn = client.connect(t0, sa).unwrap();
    /// # let mut buf = [0u8; 1500];
    /// # for _ in 0..3 {
    /// #     while let Some(t) = client.poll_transmit(t0, &mut buf) {
    /// #         server.handle_datagram(t0, ca, &buf[..t.len]);
    /// #     }
    /// #     while let Some(t) = server.poll_transmit(t0, &mut buf) {
    /// #         client.handle_datagram(t0, sa, &buf[..t.len]);
    /// #     }
    /// # }
    /// // `client` (at `ca`) and `server` (at `sa`) have completed a handshake in memory.
    /// let connected = Event::Connected { conn, peer: sa, role: Role::Client };
    /// assert_eq!(client.poll_event(), Some(connected));
    /// assert_eq!(client.poll_event(), None);
    /// ```
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Runs every timer due at `now`: handshake retries and timeouts, loss detection, acks,
    /// keepalives, idle timeouts, congestion mode changes. Costs O(log n) per due timer,
    /// independent of the number of idle connections.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::protocol::*;
    /// # let t0 = Instant::now();
    /// # let (ca, sa): (std::net::SocketAddr, std::net::SocketAddr) =
    /// #     ("10.0.0.1:5000".parse().unwrap(), "10.0.0.2:6000".parse().unwrap());
    /// # let mut client = Endpoint::new(Config::default(), [1; 16]);
    /// # let mut server = Endpoint::new(Config::default(), [2; 16]);
    /// # let conn = client.connect(t0, sa).unwrap();
    /// # let mut buf = [0u8; 1500];
    /// # for _ in 0..3 {
    /// #     while let Some(t) = client.poll_transmit(t0, &mut buf) {
    /// #         server.handle_datagram(t0, ca, &buf[..t.len]);
    /// #     }
    /// #     while let Some(t) = server.poll_transmit(t0, &mut buf) {
    /// #         client.handle_datagram(t0, sa, &buf[..t.len]);
    /// #     }
    /// # }
    /// // `client` (at `ca`) and `server` (at `sa`) have completed a handshake in memory.
    /// // The server hears nothing more: its connection ends at the idle timeout.
    /// let mut now = t0;
    /// while server.connection_count() > 0 {
    ///     now = server.next_deadline().unwrap();
    ///     server.handle_timeout(now);
    ///     while server.poll_transmit(now, &mut buf).is_some() {} // keepalives, lost
    /// }
    /// assert_eq!(now - t0, Duration::from_secs(10)); // Config::idle_timeout
    /// assert_eq!(server.counters().timeouts, 1);
    /// ```
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((id, token)) = self.timers.pop_due(now) {
            let Some((conn, mut cx)) = self.parts(id) else {
                self.counters.timers_superseded += 1;
                continue;
            };
            if !conn.fire_timer(token) {
                cx.counters.timers_superseded += 1;
                continue;
            }
            cx.counters.timers_fired += 1;
            match conn.on_timeout(now, &mut cx) {
                Some(CloseReason::ConnectTimedOut) => {
                    // A client that sent its response may have a connection on the server
                    // (its accept was lost): end it there too, or it holds a place until
                    // the server's idle timeout.
                    self.queue_disconnect(now, id);
                    self.end(id, CloseReason::ConnectTimedOut);
                }
                Some(reason) => self.end(id, reason),
                None => self.reschedule(id, now),
            }
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called. May be early
    /// (a superseded timer); never late.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::protocol::*;
    /// # let t0 = Instant::now();
    /// # let (ca, sa): (std::net::SocketAddr, std::net::SocketAddr) =
    /// #     ("10.0.0.1:5000".parse().unwrap(), "10.0.0.2:6000".parse().unwrap());
    /// # let mut buf = [0u8; 1500];
    /// let mut client = Endpoint::new(Config::default(), [1; 16]);
    /// assert_eq!(client.next_deadline(), None); // no connections, no timers
    /// client.connect(t0, sa).unwrap();
    /// client.poll_transmit(t0, &mut buf).unwrap(); // the first request
    /// assert_eq!(client.next_deadline(), Some(t0 + Duration::from_millis(100))); // its retry
    /// ```
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Closes a connection: a connected (or nearly connected) peer is sent
    /// [`Config::disconnect_copies`] disconnect packets through
    /// [`poll_transmit`](Self::poll_transmit); unresolved packets are reported lost and
    /// [`Event::Disconnected`] (`CloseReason::Closed`) is queued. An unknown id is ignored.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::protocol::*;
    /// # let t0 = Instant::now();
    /// # let (ca, sa): (std::net::SocketAddr, std::net::SocketAddr) =
    /// #     ("10.0.0.1:5000".parse().unwrap(), "10.0.0.2:6000".parse().unwrap());
    /// # let mut client = Endpoint::new(Config::default(), [1; 16]);
    /// # let mut server = Endpoint::new(Config::default(), [2; 16]);
    /// # let conn = client.connect(t0, sa).unwrap();
    /// # let mut buf = [0u8; 1500];
    /// # for _ in 0..3 {
    /// #     while let Some(t) = client.poll_transmit(t0, &mut buf) {
    /// #         server.handle_datagram(t0, ca, &buf[..t.len]);
    /// #     }
    /// #     while let Some(t) = server.poll_transmit(t0, &mut buf) {
    /// #         client.handle_datagram(t0, sa, &buf[..t.len]);
    /// #     }
    /// # }
    /// // `client` (at `ca`) and `server` (at `sa`) have completed a handshake in memory.
    /// # assert!(matches!(client.poll_event(), Some(Event::Connected { .. })));
    /// client.close(t0, conn);
    /// let closed = Event::Disconnected { conn, reason: CloseReason::Closed };
    /// assert_eq!(client.poll_event(), Some(closed));
    /// let t = client.poll_transmit(t0, &mut buf).unwrap(); // the first of 3 disconnect copies
    /// server.handle_datagram(t0, ca, &buf[..t.len]);
    /// assert_eq!(server.connection_count(), 0); // the peer ended too
    /// ```
    pub fn close(&mut self, now: Instant, conn: ConnectionId) {
        if self.table.get(conn).is_none() {
            return;
        }
        self.queue_disconnect(now, conn);
        self.end(conn, CloseReason::Closed);
    }

    /// Queues the disconnect copies of a connection that got past its request (a client
    /// with the challenge's keys, or any server connection): the peer may hold a connection.
    fn queue_disconnect(&mut self, now: Instant, conn: ConnectionId) {
        let copies = self.config.disconnect_copies;
        let Some((c, _)) = self.parts(conn) else {
            return;
        };
        if let (false, Some(protection)) = (c.is_requesting(), c.protection) {
            let (seq, header) = c.take_header(now);
            let (peer, session) = (c.peer, c.session);
            // A full reply queue only costs the peer an idle timeout; the close still happens.
            if self
                .queue_reply(
                    peer,
                    Reply::Disconnect {
                        header,
                        seq,
                        session,
                        protection,
                        copies,
                    },
                )
                .is_err()
            {
                self.counters.replies_dropped += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Absurd configurations are sanitized: a whole exchange runs without panicking.
    #[test]
    fn extreme_configs_do_not_panic() {
        let t0 = Instant::now();
        let huge = Duration::MAX;
        let configs = [
            Config {
                connect_retry_interval: huge,
                connect_timeout: huge,
                token_lifetime: huge,
                idle_timeout: huge,
                keepalive_interval: huge,
                max_ack_delay: huge,
                min_loss_timeout: huge,
                initial_rtt: huge,
                bandwidth_period: huge,
                bad_rtt_threshold: huge,
                initial_penalty: huge,
                min_penalty: huge,
                max_penalty: huge,
                good_period: huge,
                rtt_smoothing: f64::NAN,
                rtt_variation_smoothing: -1.0,
                ..Config::default()
            },
            Config {
                connect_retry_interval: Duration::ZERO,
                connect_timeout: Duration::ZERO,
                idle_timeout: Duration::ZERO,
                keepalive_interval: Duration::ZERO,
                sent_window: 0,
                received_window: 0,
                loss_window: 0,
                max_queued_replies: 0,
                ack_threshold: 0,
                disconnect_copies: 0,
                good_rate: crate::protocol::PacingRate {
                    packets_per_second: 0,
                    burst: 0,
                },
                max_payload: 0,
                ..Config::default()
            },
        ];
        for config in configs {
            let (ca, sa): (SocketAddr, SocketAddr) =
                ("10.0.0.1:1".parse().unwrap(), "10.0.0.2:2".parse().unwrap());
            let mut c = Endpoint::new(config.clone(), [1; 16]);
            let mut s = Endpoint::new(config, [2; 16]);
            let conn = c.connect(t0, sa).unwrap();
            let mut buf = vec![0u8; 1500];
            let mut now = t0;
            for i in 0..200u64 {
                now += Duration::from_millis(5);
                c.handle_timeout(now);
                s.handle_timeout(now);
                let _ = c.send(now, conn, &i.to_be_bytes(), &mut buf);
                while let Some(t) = c.poll_transmit(now, &mut buf) {
                    s.handle_datagram(now, ca, &buf[..t.len]);
                }
                while let Some(t) = s.poll_transmit(now, &mut buf) {
                    c.handle_datagram(now, sa, &buf[..t.len]);
                }
                let _ = c.connection_stats(conn);
            }
            c.close(now, conn);
            while c.poll_transmit(now, &mut buf).is_some() {}
            assert!(c.poll_event().is_some());
        }
    }

    /// Many idle connections cost nothing between their deadlines, and superseded timer
    /// entries do not pile up.
    #[test]
    fn timers_scale_with_due_work_not_with_connections() {
        let t0 = Instant::now();
        let mut ep = Endpoint::new(Config::default(), [0; 16]);
        for i in 0..2_000u32 {
            let peer = SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 1000));
            let keys = crate::protocol::protection::PacketProtection::derive(
                crate::protocol::Role::Server,
                ep.config.protocol_id,
                &[3; 16],
                u64::from(i),
                0,
            );
            let conn = Connection::server(t0, peer, u64::from(i), keys, &ep.config);
            let id = ep.table.insert(conn);
            ep.reschedule(id, t0);
        }
        // Each new server connection owes its client an accept, at once.
        let mut buf = [0u8; 64];
        let mut accepts = 0;
        while ep.poll_transmit(t0, &mut buf).is_some() {
            accepts += 1;
        }
        assert_eq!(accepts, 2_000);
        assert_eq!(ep.timers.len(), 2_000);
        // Nothing is due before the first keepalive (2 s): 10,000 calls fire nothing.
        let before = ep.counters;
        for i in 0..10_000u64 {
            ep.handle_timeout(t0 + Duration::from_micros(i * 20));
            assert!(ep.next_deadline() >= Some(t0 + Duration::from_secs(2)));
        }
        assert_eq!(ep.counters, before);
        // At the keepalive deadline each connection fires once and sends one keepalive.
        let t1 = t0 + Duration::from_secs(2);
        ep.handle_timeout(t1);
        assert_eq!(ep.counters.timers_fired, 2_000);
        let mut sent = 0;
        while ep.poll_transmit(t1, &mut buf).is_some() {
            sent += 1;
        }
        assert_eq!(sent, 2_000);
        // Repeated earlier deadlines (acks due) supersede entries; compaction bounds the heap.
        let id = ep
            .table
            .by_addr(SocketAddr::from(([10, 0, 0, 1], 1000)))
            .unwrap();
        for k in 0..10_000u64 {
            let now = t1 + Duration::from_micros(k);
            let (conn, _) = ep.parts(id).unwrap();
            conn.forget_timer();
            ep.reschedule(id, now);
            assert!(ep.timers.len() <= 2 * ep.table.len() + 64);
        }
    }

    /// A client whose handshake times out after its response went out (everything the server
    /// sends after its challenge is lost) sends its disconnect copies: the server's connection ends at once, not
    /// at its idle timeout, and no longer counts against `max_connections`.
    #[test]
    fn a_connect_timeout_after_the_response_ends_the_servers_connection() {
        let t0 = Instant::now();
        let (ca, sa): (SocketAddr, SocketAddr) = (
            "10.0.0.1:5000".parse().unwrap(),
            "10.0.0.2:6000".parse().unwrap(),
        );
        let mut client = Endpoint::new(Config::default(), [1; 16]);
        let mut server = Endpoint::new(Config::default(), [2; 16]);
        client.connect(t0, sa).unwrap();
        let mut buf = [0u8; 1500];
        let mut now = t0;
        let end = t0 + Duration::from_secs(8); // the client gives up at 5 s
        while now < end {
            while let Some(t) = client.poll_transmit(now, &mut buf) {
                let _ = server.handle_datagram(now, ca, &buf[..t.len]);
            }
            while let Some(t) = server.poll_transmit(now, &mut buf) {
                // Only the challenge gets through: the accepts (and the server's connected
                // packets, which would complete the handshake too) are lost.
                if buf[4] == 0x02 {
                    let _ = client.handle_datagram(now, sa, &buf[..t.len]);
                }
            }
            now = [client.next_deadline(), server.next_deadline()]
                .into_iter()
                .flatten()
                .min()
                .map_or(end, |at| at.max(now + Duration::from_millis(1)));
            client.handle_timeout(now);
            server.handle_timeout(now);
        }
        assert_eq!(client.counters().connect_timeouts, 1);
        assert_eq!(
            server.counters().connections_opened,
            1,
            "the response arrived"
        );
        assert_eq!(server.connection_count(), 0, "the server still holds it");
        assert_eq!(server.counters().disconnects_received, 1);
    }

    /// An aligned endpoint sends the keepalives of connections made at 100 different
    /// instants in a handful of turns (one per tick of an eighth of the interval), each one
    /// no earlier than the protocol's own deadline and at most a tick after it.
    #[test]
    fn aligned_keepalives_share_ticks_and_are_at_most_a_tick_late() {
        let t0 = Instant::now();
        let mut ep = Endpoint::new(Config::default(), [0; 16]);
        ep.align_keepalives(t0 + Duration::from_millis(3)); // any anchor will do
        let (interval, tick) = (Duration::from_secs(2), Duration::from_millis(250));
        let mut buf = [0u8; 64];
        let mut created = Vec::new();
        for i in 0..100u32 {
            let now = t0 + Duration::from_millis(7 * u64::from(i)); // over 700 ms
            let peer = SocketAddr::from(([10, 0, 0, i as u8], 1000));
            let keys = crate::protocol::protection::PacketProtection::derive(
                crate::protocol::Role::Server,
                ep.config.protocol_id,
                &[3; 16],
                u64::from(i),
                0,
            );
            let mut conn = Connection::server(now, peer, u64::from(i), keys, &ep.config);
            conn.keepalive_anchor = ep.keepalive_anchor;
            let id = ep.table.insert(conn);
            ep.reschedule(id, now);
            while ep.poll_transmit(now, &mut buf).is_some() {} // the accept
            created.push((peer, now));
        }
        // Nothing answers: the first keepalive of each connection, and when it went out.
        let mut first = std::collections::HashMap::new();
        let mut turns = std::collections::BTreeSet::new();
        while first.len() < created.len() {
            let now = ep.next_deadline().unwrap();
            ep.handle_timeout(now);
            while let Some(t) = ep.poll_transmit(now, &mut buf) {
                first.entry(t.destination).or_insert(now);
                turns.insert(now);
            }
        }
        for (peer, at) in created {
            let sent = first[&peer] - at;
            assert!(
                sent >= interval && sent <= interval + tick,
                "{peer}: keepalive {sent:?} after the last packet"
            );
        }
        // 700 ms of creation instants fall on at most four ticks of 250 ms.
        assert!(
            turns.len() <= 4,
            "keepalives went out at {} instants",
            turns.len()
        );
    }

    #[test]
    fn unknown_ids_are_errors_not_panics() {
        let mut a = Endpoint::new(Config::default(), [0; 16]);
        let ghost = ConnectionId {
            index: 7,
            generation: 3,
        };
        let now = Instant::now();
        let mut buf = [0u8; 64];
        assert_eq!(
            a.send(now, ghost, b"x", &mut buf),
            Err(TransmitError::UnknownConnection)
        );
        assert!(a.connection_stats(ghost).is_none());
        a.close(now, ghost);
        assert!(a.poll_transmit(now, &mut buf).is_none());
        assert!(a.poll_event().is_none());
    }
}
