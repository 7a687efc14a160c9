//! The endpoint: one per UDP socket. Routes datagrams to connections by peer address, runs
//! the stateless server handshake, owns the timers, the event queue and the counters.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use super::connection::{ConnectedKind, Connection, Ctx, Phase, Received};
use super::token;
use super::wire::{self, ConnectedHeader, DecodeError, Packet, TOKEN_LEN};
use super::{
    Config, ConnectError, ConnectionId, ConnectionStats, DisconnectReason, DropReason, Event,
    Incoming, Role, SendError, Transmit,
};

/// Endpoint-wide counters: every drop by reason, handshake progress, traffic totals.
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
/// let c = server.counters();
/// assert_eq!((c.handshake_requests, c.handshake_challenges, c.handshake_accepts), (1, 1, 1));
/// assert_eq!(c.connections_opened, 1);
/// server.handle_datagram(t0, ca, b"hello, not gudp");
/// assert_eq!(server.counters().wrong_protocol_id, 1);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointCounters {
    /// Datagrams passed to [`Endpoint::handle_datagram`].
    pub datagrams_received: u64,
    /// Connected packets sent (payloads, keepalives, acks).
    pub packets_sent: u64,
    /// Connected packets accepted.
    pub packets_received: u64,
    /// Application payloads sent.
    pub payloads_sent: u64,
    /// Application payloads delivered.
    pub payloads_received: u64,
    /// Keepalives sent.
    pub keepalives_sent: u64,
    /// Ack-only packets sent.
    pub acks_sent: u64,
    /// Application packets acknowledged.
    pub acked: u64,
    /// Application packets lost.
    pub lost: u64,
    /// Acks that arrived for packets already reported lost (used as RTT samples only).
    pub late_acks: u64,
    /// Duplicate packets dropped.
    pub duplicates: u64,
    /// Stale packets dropped.
    pub stale: u64,
    /// Sends refused by pacing.
    pub paced: u64,
    /// Payloads refused as too large to send.
    pub too_large_to_send: u64,
    /// Payloads dropped as too large to receive.
    pub too_large_to_receive: u64,
    /// Datagrams shorter than the prefix.
    pub invalid_too_short: u64,
    /// Datagrams with an unknown type byte.
    pub invalid_unknown_type: u64,
    /// Datagrams whose length does not fit their type.
    pub invalid_bad_length: u64,
    /// Datagrams with a non-canonical field.
    pub invalid_non_canonical: u64,
    /// Datagrams with another protocol id.
    pub wrong_protocol_id: u64,
    /// Connected packets from addresses with no connection.
    pub unknown_peer: u64,
    /// Packets not valid in their connection's state.
    pub unexpected: u64,
    /// Handshake replies with a foreign nonce, disconnects with a foreign session.
    pub mismatched: u64,
    /// Connection requests received.
    pub handshake_requests: u64,
    /// Challenges queued in reply.
    pub handshake_challenges: u64,
    /// Challenge responses received.
    pub handshake_responses: u64,
    /// Accept packets sent.
    pub handshake_accepts: u64,
    /// Denied packets queued (connection limit).
    pub handshake_denials: u64,
    /// Challenge responses with a token that does not verify.
    pub handshake_bad_tokens: u64,
    /// Challenge responses with an expired token.
    pub handshake_expired_tokens: u64,
    /// Challenge responses replaying a token that already created a connection.
    pub handshake_replayed_tokens: u64,
    /// Handshake packets from an address that already has a connection.
    pub handshake_already_connected: u64,
    /// Retransmitted handshake packets answered or ignored idempotently.
    pub handshake_duplicates: u64,
    /// Connection requests sent (client).
    pub requests_sent: u64,
    /// Challenge responses sent (client).
    pub responses_sent: u64,
    /// Replies dropped because the reply queue was full.
    pub replies_dropped: u64,
    /// Connections established (both roles).
    pub connections_opened: u64,
    /// Connections ended (both roles, every reason).
    pub connections_closed: u64,
    /// Connections ended by the idle timeout.
    pub timeouts: u64,
    /// Connection attempts that timed out.
    pub connect_timeouts: u64,
    /// Connection attempts the server denied.
    pub denied: u64,
    /// Disconnect packets sent.
    pub disconnects_sent: u64,
    /// Timer-heap entries that fired for their connection.
    pub timers_fired: u64,
    /// Timer-heap entries discarded because an earlier deadline superseded them.
    pub timers_superseded: u64,
    /// Connections closed by the peer.
    pub disconnects_received: u64,
}

/// A reply that needs no connection: challenges, denials and lingering disconnects.
#[derive(Debug, Clone, Copy)]
enum Reply {
    Challenge {
        nonce: u64,
        timestamp: u64,
        token: [u8; TOKEN_LEN],
    },
    Denied {
        nonce: u64,
    },
    Disconnect {
        header: ConnectedHeader,
        session: u64,
        copies: u32,
    },
}

#[derive(Debug)]
struct Slot {
    generation: u32,
    conn: Option<Connection>,
}

/// Tokens that already created a connection, remembered until they expire.
#[derive(Debug, Default)]
struct ReplayCache {
    used: HashSet<[u8; TOKEN_LEN]>,
    expiry: VecDeque<(u64, [u8; TOKEN_LEN])>,
}

impl ReplayCache {
    fn prune(&mut self, now_ms: u64) {
        while let Some(&(expires, token)) = self.expiry.front() {
            if expires >= now_ms {
                break;
            }
            self.expiry.pop_front();
            self.used.remove(&token);
        }
    }
}

/// One UDP socket's worth of protocol state, in both client and server roles.
///
/// ```
/// use std::time::{Duration, Instant};
/// use gudp::protocol::{Config, Endpoint, Event, SendError};
///
/// let t0 = Instant::now();
/// let server: std::net::SocketAddr = "192.0.2.1:4000".parse().unwrap();
/// let mut client = Endpoint::new(Config::default(), [7; 16]);
/// let conn = client.connect(t0, server).unwrap();
/// let mut buf = vec![0u8; client.max_datagram_size()];
/// // The first connection request is ready at once, padded to 1200 bytes.
/// let t = client.poll_transmit(t0, &mut buf).unwrap();
/// assert_eq!((t.destination, t.len), (server, 1200));
/// assert_eq!(client.send(t0, conn, b"too early", &mut buf), Err(SendError::NotConnected));
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
    config: Config,
    secret: [u8; 16],
    epoch: Option<Instant>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
    by_addr: HashMap<SocketAddr, ConnectionId>,
    /// (deadline, slot index, generation, timer token): only the entry whose token matches
    /// its connection's latest is live; the others are skipped when they surface.
    timers: BinaryHeap<Reverse<(Instant, u32, u32, u32)>>,
    ready: VecDeque<ConnectionId>,
    replies: VecDeque<(SocketAddr, Reply)>,
    events: VecDeque<Event>,
    replay: ReplayCache,
    nonce_counter: u64,
    counters: EndpointCounters,
}

impl Endpoint {
    /// An endpoint with `config` (see [`Config::sanitized`]) and a 16-byte secret that keys
    /// challenge tokens and client nonces. The secret must be random and private (the daemon
    /// draws it from the operating system); tests may pass any constant.
    ///
    /// ```
    /// use gudp::protocol::{Config, Endpoint};
    /// let endpoint = Endpoint::new(Config { sent_window: 0, ..Config::default() }, [0; 16]);
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
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            by_addr: HashMap::new(),
            timers: BinaryHeap::new(),
            ready: VecDeque::new(),
            events: VecDeque::new(),
            replay: ReplayCache::default(),
            nonce_counter: 0,
            counters: EndpointCounters::default(),
        }
    }

    /// The configuration in force (after sanitizing).
    ///
    /// ```
    /// use gudp::protocol::{Config, Endpoint};
    /// let config = Config { max_payload: 500, ..Config::default() };
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
    /// assert_eq!(Endpoint::new(Config::default(), [0; 16]).max_datagram_size(), 1216);
    /// // Small payloads: the padded handshake packets are the largest datagrams.
    /// let small = Config { max_payload: 100, ..Config::default() };
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
    pub fn counters(&self) -> &EndpointCounters {
        &self.counters
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
        self.live
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
        self.by_addr.get(&peer).copied()
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
    pub fn connection_stats(&self, conn: ConnectionId) -> Option<ConnectionStats> {
        self.get(conn).map(|c| c.stats(&self.config))
    }

    fn millis(&mut self, now: Instant) -> u64 {
        let epoch = *self.epoch.get_or_insert(now);
        u64::try_from(now.saturating_duration_since(epoch).as_millis()).unwrap_or(u64::MAX)
    }

    fn get(&self, id: ConnectionId) -> Option<&Connection> {
        let slot = self.slots.get(id.index as usize)?;
        if slot.generation == id.generation {
            slot.conn.as_ref()
        } else {
            None
        }
    }

    /// Splits the borrows: the connection and a context over the rest of the endpoint.
    fn parts(&mut self, id: ConnectionId) -> Option<(&mut Connection, Ctx<'_>)> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let conn = slot.conn.as_mut()?;
        let cx = Ctx {
            id,
            config: &self.config,
            events: &mut self.events,
            counters: &mut self.counters,
        };
        Some((conn, cx))
    }

    fn insert(&mut self, conn: Connection) -> ConnectionId {
        let peer = conn.peer;
        let id = match self.free.pop() {
            Some(index) => {
                let slot = &mut self.slots[index as usize];
                slot.conn = Some(conn);
                ConnectionId {
                    index,
                    generation: slot.generation,
                }
            }
            None => {
                let index = self.slots.len() as u32;
                self.slots.push(Slot {
                    generation: 0,
                    conn: Some(conn),
                });
                ConnectionId {
                    index,
                    generation: 0,
                }
            }
        };
        self.by_addr.insert(peer, id);
        self.live += 1;
        // Room for the heap up to its compaction bound (see `reschedule`): it then never grows
        // in the steady state, where how many superseded entries pile up depends on timing.
        let bound = self.timer_bound() + 1;
        self.timers.reserve(bound.saturating_sub(self.timers.len()));
        id
    }

    /// Ends a connection: unresolved packets are reported lost, then `Disconnected`.
    fn end(&mut self, id: ConnectionId, reason: DisconnectReason) {
        let Some((conn, mut cx)) = self.parts(id) else {
            return;
        };
        conn.finish(&mut cx);
        let peer = conn.peer;
        let slot = &mut self.slots[id.index as usize];
        slot.conn = None;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        self.by_addr.remove(&peer);
        self.live -= 1;
        self.events
            .push_back(Event::Disconnected { conn: id, reason });
        let c = &mut self.counters;
        c.connections_closed += 1;
        match reason {
            DisconnectReason::TimedOut => c.timeouts += 1,
            DisconnectReason::ConnectTimedOut => c.connect_timeouts += 1,
            DisconnectReason::ConnectionDenied => c.denied += 1,
            DisconnectReason::ClosedByPeer => c.disconnects_received += 1,
            DisconnectReason::ClosedLocally => {}
        }
    }

    /// Puts the connection in the transmit queue if it has something due, and makes sure the
    /// timer heap holds an entry no later than its deadline.
    fn reschedule(&mut self, id: ConnectionId, now: Instant) {
        let Some(slot) = self.slots.get_mut(id.index as usize) else {
            return;
        };
        let Some(conn) = slot
            .conn
            .as_mut()
            .filter(|_| slot.generation == id.generation)
        else {
            return;
        };
        if !conn.queued && conn.wants_transmit(now, &self.config) {
            conn.queued = true;
            self.ready.push_back(id);
        }
        let deadline = conn.deadline(&self.config);
        // A due transmit is served by the ready queue; poll_transmit reschedules afterwards.
        if deadline <= now && conn.queued {
            return;
        }
        if conn.scheduled.is_none_or(|s| deadline < s) {
            conn.scheduled = Some(deadline);
            conn.timer_token = conn.timer_token.wrapping_add(1);
            let entry = (deadline, id.index, id.generation, conn.timer_token);
            self.timers.push(Reverse(entry));
            if self.timers.len() > self.timer_bound() {
                self.compact_timers();
            }
        }
    }

    /// How many heap entries, live and superseded, `reschedule` allows before compacting.
    fn timer_bound(&self) -> usize {
        2 * self.live + 64
    }

    /// Drops heap entries that no longer match their connection's scheduled deadline.
    fn compact_timers(&mut self) {
        let slots = &self.slots;
        self.timers
            .retain(|Reverse((_, index, generation, token))| {
                slots.get(*index as usize).is_some_and(|s| {
                    s.generation == *generation
                        && s.conn.as_ref().is_some_and(|c| c.is_timer_live(*token))
                })
            });
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
    /// assert_eq!(client.connect(t0, sa), Err(ConnectError::AlreadyConnected));
    /// let t = client.poll_transmit(t0, &mut buf).unwrap(); // the first connection request
    /// assert_eq!(t.destination, sa);
    /// assert!(client.connection_stats(conn).is_some_and(|s| !s.connected));
    /// ```
    pub fn connect(
        &mut self,
        now: Instant,
        server: SocketAddr,
    ) -> Result<ConnectionId, ConnectError> {
        if self.by_addr.contains_key(&server) {
            return Err(ConnectError::AlreadyConnected);
        }
        if self.live >= self.config.max_connections {
            return Err(ConnectError::ConnectionLimit);
        }
        let nonce = token::nonce(&self.secret, self.nonce_counter, server);
        self.nonce_counter += 1;
        let phase = Phase::Requesting { next_retry: now };
        let conn = Connection::new(now, server, Role::Client, nonce, phase, &self.config);
        let id = self.insert(conn);
        self.reschedule(id, now);
        Ok(id)
    }

    fn drop_with(&mut self, reason: DropReason) -> Incoming<'static> {
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
            // Counted where they are detected (with the connection's own counters).
            DropReason::Duplicate | DropReason::Stale | DropReason::TooLarge { .. } => {}
        }
        Incoming::Dropped(reason)
    }

    fn queue_reply(&mut self, to: SocketAddr, reply: Reply) -> Result<(), DropReason> {
        if self.replies.len() >= self.config.max_queued_replies {
            return Err(DropReason::ReplyQueueFull);
        }
        self.replies.push_back((to, reply));
        Ok(())
    }

    /// Feeds one received datagram from `from`. A payload is returned borrowed from
    /// `datagram`: nothing is copied or allocated.
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
    /// let delivered = Incoming::Payload { conn: sconn, payload: b"hi" };
    /// assert_eq!(server.handle_datagram(t0, ca, &datagram), delivered);
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
        self.counters.datagrams_received += 1;
        let packet = match wire::decode(self.config.protocol_id, datagram) {
            Ok(p) => p,
            Err(e) => return self.drop_with(DropReason::Invalid(e)),
        };
        let result = match packet {
            Packet::ConnectionRequest { nonce } => self.on_request(now, from, nonce),
            Packet::Challenge {
                nonce,
                timestamp,
                token,
            } => self.on_challenge(now, from, nonce, timestamp, token),
            Packet::ChallengeResponse {
                nonce,
                timestamp,
                token,
            } => self.on_response(now, from, nonce, timestamp, token),
            Packet::Accept { nonce } => self.on_accept(now, from, nonce),
            Packet::Denied { nonce } => self.on_denied(from, nonce),
            Packet::Payload { header, payload } => {
                let kind = ConnectedKind::Payload;
                return self.on_connected(now, from, header, kind, datagram.len(), payload);
            }
            Packet::Keepalive { header } => {
                let kind = ConnectedKind::Keepalive;
                return self.on_connected(now, from, header, kind, datagram.len(), &[]);
            }
            Packet::Ack { header } => {
                let kind = ConnectedKind::Ack;
                return self.on_connected(now, from, header, kind, datagram.len(), &[]);
            }
            Packet::Disconnect { header, session } => {
                self.on_disconnect(now, from, header, session, datagram.len())
            }
        };
        match result {
            Ok(()) => Incoming::Consumed,
            Err(reason) => self.drop_with(reason),
        }
    }

    fn on_request(&mut self, now: Instant, from: SocketAddr, nonce: u64) -> Result<(), DropReason> {
        self.counters.handshake_requests += 1;
        if self.by_addr.contains_key(&from) {
            return Err(DropReason::AlreadyConnected);
        }
        if self.live >= self.config.max_connections {
            self.queue_reply(from, Reply::Denied { nonce })?;
            self.counters.handshake_denials += 1;
            return Ok(());
        }
        let timestamp = self.millis(now);
        let token = token::compute(
            &self.secret,
            self.config.protocol_id,
            from,
            timestamp,
            nonce,
        );
        self.queue_reply(
            from,
            Reply::Challenge {
                nonce,
                timestamp,
                token,
            },
        )?;
        self.counters.handshake_challenges += 1;
        Ok(())
    }

    fn on_response(
        &mut self,
        now: Instant,
        from: SocketAddr,
        nonce: u64,
        timestamp: u64,
        received: [u8; TOKEN_LEN],
    ) -> Result<(), DropReason> {
        self.counters.handshake_responses += 1;
        if let Some(&id) = self.by_addr.get(&from) {
            let (conn, _) = self.parts(id).ok_or(DropReason::UnknownPeer)?;
            if conn.role == Role::Server && conn.session == nonce {
                // The client did not get our accept yet: send it again.
                conn.send_accept = true;
                self.counters.handshake_duplicates += 1;
                self.reschedule(id, now);
                return Ok(());
            }
            return Err(DropReason::AlreadyConnected);
        }
        let expected = token::compute(
            &self.secret,
            self.config.protocol_id,
            from,
            timestamp,
            nonce,
        );
        if !token::verify(&expected, &received) {
            return Err(DropReason::BadToken);
        }
        let now_ms = self.millis(now);
        let lifetime = u64::try_from(self.config.token_lifetime.as_millis()).unwrap_or(u64::MAX);
        if timestamp > now_ms || now_ms - timestamp > lifetime {
            return Err(DropReason::ExpiredToken);
        }
        self.replay.prune(now_ms);
        if self.replay.used.contains(&received) {
            return Err(DropReason::ReplayedToken);
        }
        if self.live >= self.config.max_connections {
            self.queue_reply(from, Reply::Denied { nonce })?;
            self.counters.handshake_denials += 1;
            return Ok(());
        }
        self.replay.used.insert(received);
        self.replay
            .expiry
            .push_back((timestamp.saturating_add(lifetime), received));
        let mut conn = Connection::new(
            now,
            from,
            Role::Server,
            nonce,
            Phase::Connected,
            &self.config,
        );
        conn.send_accept = true;
        let id = self.insert(conn);
        self.counters.connections_opened += 1;
        self.events.push_back(Event::Connected {
            conn: id,
            peer: from,
            role: Role::Server,
        });
        self.reschedule(id, now);
        Ok(())
    }

    /// The client-side connection with `from` whose session is `nonce`.
    fn client_attempt(&mut self, from: SocketAddr, nonce: u64) -> Result<ConnectionId, DropReason> {
        let id = *self.by_addr.get(&from).ok_or(DropReason::UnknownPeer)?;
        let conn = self.get(id).ok_or(DropReason::UnknownPeer)?;
        if conn.role != Role::Client {
            return Err(DropReason::Unexpected);
        }
        if conn.session != nonce {
            return Err(DropReason::Mismatch);
        }
        Ok(id)
    }

    fn on_challenge(
        &mut self,
        now: Instant,
        from: SocketAddr,
        nonce: u64,
        timestamp: u64,
        token: [u8; TOKEN_LEN],
    ) -> Result<(), DropReason> {
        let id = self.client_attempt(from, nonce)?;
        let (conn, cx) = self.parts(id).ok_or(DropReason::UnknownPeer)?;
        match conn.phase {
            Phase::Requesting { .. } => {
                conn.phase = Phase::Responding {
                    timestamp,
                    token,
                    next_retry: now,
                };
            }
            // Our retried requests earned more challenges: the first one is in use.
            Phase::Responding { .. } | Phase::Connected => cx.counters.handshake_duplicates += 1,
        }
        self.reschedule(id, now);
        Ok(())
    }

    fn on_accept(&mut self, now: Instant, from: SocketAddr, nonce: u64) -> Result<(), DropReason> {
        let id = self.client_attempt(from, nonce)?;
        let (conn, mut cx) = self.parts(id).ok_or(DropReason::UnknownPeer)?;
        match conn.phase {
            Phase::Responding { .. } => conn.establish(now, &mut cx),
            Phase::Connected => cx.counters.handshake_duplicates += 1,
            Phase::Requesting { .. } => return Err(DropReason::Unexpected),
        }
        self.reschedule(id, now);
        Ok(())
    }

    fn on_denied(&mut self, from: SocketAddr, nonce: u64) -> Result<(), DropReason> {
        let id = self.client_attempt(from, nonce)?;
        if self.get(id).is_some_and(Connection::is_connected) {
            return Err(DropReason::Unexpected);
        }
        self.end(id, DisconnectReason::ConnectionDenied);
        Ok(())
    }

    /// Finds the connection a connected packet belongs to, completing a client handshake
    /// whose accept was lost when the server's first connected packet arrives.
    fn connected_target(
        &mut self,
        now: Instant,
        from: SocketAddr,
    ) -> Result<ConnectionId, DropReason> {
        let id = *self.by_addr.get(&from).ok_or(DropReason::UnknownPeer)?;
        let (conn, mut cx) = self.parts(id).ok_or(DropReason::UnknownPeer)?;
        match conn.phase {
            Phase::Connected => {}
            Phase::Responding { .. } => conn.establish(now, &mut cx),
            Phase::Requesting { .. } => return Err(DropReason::Unexpected),
        }
        Ok(id)
    }

    fn on_connected<'a>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        header: ConnectedHeader,
        kind: ConnectedKind,
        len: usize,
        payload: &'a [u8],
    ) -> Incoming<'a> {
        let id = match self.connected_target(now, from) {
            Ok(id) => id,
            Err(reason) => return self.drop_with(reason),
        };
        let max = self.config.max_payload;
        let Some((conn, mut cx)) = self.parts(id) else {
            return self.drop_with(DropReason::UnknownPeer);
        };
        if payload.len() > max {
            conn.counters_mut().too_large_to_receive += 1;
            cx.counters.too_large_to_receive += 1;
            return Incoming::Dropped(DropReason::TooLarge {
                len: payload.len(),
                max,
            });
        }
        let result = conn.on_packet(now, header, kind, len, &mut cx);
        self.reschedule(id, now);
        match result {
            Ok(Received::Deliver) => Incoming::Payload { conn: id, payload },
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
        len: usize,
    ) -> Result<(), DropReason> {
        let id = *self.by_addr.get(&from).ok_or(DropReason::UnknownPeer)?;
        let (conn, mut cx) = self.parts(id).ok_or(DropReason::UnknownPeer)?;
        if conn.session != session {
            return Err(DropReason::Mismatch);
        }
        if matches!(conn.phase, Phase::Requesting { .. }) {
            return Err(DropReason::Unexpected);
        }
        // Take its acks if it is in the window; the connection ends either way.
        let _ = conn.on_packet(now, header, ConnectedKind::Disconnect, len, &mut cx);
        let reason = if conn.is_connected() {
            DisconnectReason::ClosedByPeer
        } else {
            DisconnectReason::ConnectionDenied
        };
        self.end(id, reason);
        Ok(())
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
    /// assert_eq!((t.destination, t.len), (sa, 16 + 5)); // header and payload
    /// assert_eq!(t.packet_id, Some(PacketId(0)));
    /// let too_big = client.send(t0, conn, &[0; 1201], &mut buf);
    /// assert_eq!(too_big, Err(SendError::TooLarge { len: 1201, max: 1200 }));
    /// ```
    pub fn send(
        &mut self,
        now: Instant,
        conn: ConnectionId,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<Transmit, SendError> {
        let (c, mut cx) = self.parts(conn).ok_or(SendError::UnknownConnection)?;
        let destination = c.peer;
        let (len, packet_id) = c.send_payload(now, payload, out, &mut cx)?;
        self.reschedule(conn, now);
        Ok(Transmit {
            destination,
            len,
            packet_id: Some(packet_id),
        })
    }

    /// Would [`send`](Self::send) accept a payload for `conn` at `now`? Checks that the
    /// connection exists and is connected and that the pacing budget allows a packet; takes
    /// nothing. `Err(SendError::Paced { retry_at })` says when to try again, so a caller can
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
    /// assert!(matches!(client.can_send(t0, conn), Err(SendError::Paced { .. })));
    /// ```
    pub fn can_send(&self, now: Instant, conn: ConnectionId) -> Result<(), SendError> {
        self.get(conn)
            .ok_or(SendError::UnknownConnection)?
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
    /// // After 250 ms without an ack-eliciting packet, a keepalive is due.
    /// let later = t0 + Duration::from_millis(250);
    /// client.handle_timeout(later);
    /// let t = client.poll_transmit(later, &mut buf).unwrap();
    /// assert_eq!((t.destination, t.len, t.packet_id), (sa, 16, None));
    /// ```
    pub fn poll_transmit(&mut self, now: Instant, out: &mut [u8]) -> Option<Transmit> {
        if let Some((destination, reply)) = self.replies.pop_front() {
            let id = self.config.protocol_id;
            let encoded = match reply {
                Reply::Challenge {
                    nonce,
                    timestamp,
                    token,
                } => Packet::Challenge {
                    nonce,
                    timestamp,
                    token,
                }
                .encode(id, out),
                Reply::Denied { nonce } => Packet::Denied { nonce }.encode(id, out),
                Reply::Disconnect {
                    header,
                    session,
                    copies,
                } => {
                    if copies > 1 {
                        let rest = Reply::Disconnect {
                            header,
                            session,
                            copies: copies - 1,
                        };
                        self.replies.push_front((destination, rest));
                    }
                    self.counters.disconnects_sent += 1;
                    Packet::Disconnect { header, session }.encode(id, out)
                }
            };
            return match encoded {
                Ok(len) => Some(Transmit {
                    destination,
                    len,
                    packet_id: None,
                }),
                Err(_) => {
                    self.counters.replies_dropped += 1;
                    None
                }
            };
        }
        while let Some(id) = self.ready.pop_front() {
            let Some((conn, mut cx)) = self.parts(id) else {
                continue;
            };
            conn.queued = false;
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
        while let Some(&Reverse((deadline, index, generation, token))) = self.timers.peek() {
            if deadline > now {
                break;
            }
            self.timers.pop();
            let id = ConnectionId { index, generation };
            let Some((conn, mut cx)) = self.parts(id) else {
                self.counters.timers_superseded += 1;
                continue;
            };
            if !conn.is_timer_live(token) {
                cx.counters.timers_superseded += 1;
                continue;
            }
            conn.scheduled = None;
            cx.counters.timers_fired += 1;
            match conn.on_timeout(now, &mut cx) {
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
        self.timers
            .peek()
            .map(|Reverse((deadline, _, _, _))| *deadline)
    }

    /// Closes a connection: a connected (or nearly connected) peer is sent
    /// [`Config::disconnect_copies`] disconnect packets through
    /// [`poll_transmit`](Self::poll_transmit); unresolved packets are reported lost and
    /// [`Event::Disconnected`] (`ClosedLocally`) is queued. An unknown id is ignored.
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
    /// let closed = Event::Disconnected { conn, reason: DisconnectReason::ClosedLocally };
    /// assert_eq!(client.poll_event(), Some(closed));
    /// let t = client.poll_transmit(t0, &mut buf).unwrap(); // the first of 3 disconnect copies
    /// server.handle_datagram(t0, ca, &buf[..t.len]);
    /// assert_eq!(server.connection_count(), 0); // the peer ended too
    /// ```
    pub fn close(&mut self, now: Instant, conn: ConnectionId) {
        let copies = self.config.disconnect_copies;
        let Some((c, _)) = self.parts(conn) else {
            return;
        };
        if !matches!(c.phase, Phase::Requesting { .. }) {
            let (_, header) = c.take_header(now);
            let (peer, session) = (c.peer, c.session);
            // A full reply queue only costs the peer an idle timeout; the close still happens.
            if self
                .queue_reply(
                    peer,
                    Reply::Disconnect {
                        header,
                        session,
                        copies,
                    },
                )
                .is_err()
            {
                self.counters.replies_dropped += 1;
            }
        }
        self.end(conn, DisconnectReason::ClosedLocally);
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
            let conn = Connection::new(
                t0,
                peer,
                Role::Server,
                u64::from(i),
                Phase::Connected,
                &ep.config,
            );
            let id = ep.insert(conn);
            ep.reschedule(id, t0);
        }
        assert_eq!(ep.timers.len(), 2_000);
        // Nothing is due before the first keepalive (250 ms): 10,000 calls fire nothing.
        let before = ep.counters;
        for i in 0..10_000u64 {
            ep.handle_timeout(t0 + Duration::from_micros(i * 20));
            assert!(ep.next_deadline() >= Some(t0 + Duration::from_millis(250)));
        }
        assert_eq!(ep.counters, before);
        // At the keepalive deadline each connection fires once and sends one keepalive.
        let t1 = t0 + Duration::from_millis(250);
        ep.handle_timeout(t1);
        assert_eq!(ep.counters.timers_fired, 2_000);
        let mut buf = [0u8; 64];
        let mut sent = 0;
        while ep.poll_transmit(t1, &mut buf).is_some() {
            sent += 1;
        }
        assert_eq!(sent, 2_000);
        // Repeated earlier deadlines (acks due) supersede entries; compaction bounds the heap.
        let id = ep.by_addr[&SocketAddr::from(([10, 0, 0, 1], 1000))];
        for k in 0..10_000u64 {
            let now = t1 + Duration::from_micros(k);
            let (conn, _) = ep.parts(id).unwrap();
            conn.scheduled = conn.scheduled.map(|d| d + Duration::from_secs(1));
            ep.reschedule(id, now);
            assert!(ep.timers.len() <= 2 * ep.live + 64);
        }
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
            Err(SendError::UnknownConnection)
        );
        assert!(a.connection_stats(ghost).is_none());
        a.close(now, ghost);
        assert!(a.poll_transmit(now, &mut buf).is_none());
        assert!(a.poll_event().is_none());
    }
}
