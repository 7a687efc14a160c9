//! The sans-IO protocol core: wire format, handshake, acks, estimates, congestion avoidance.
//!
//! Nothing here reads a clock, touches a socket or starts a thread. The caller passes the
//! current [`Instant`] into every call, feeds received datagrams to
//! [`Endpoint::handle_datagram`], and sends whatever [`Endpoint::send`] and
//! [`Endpoint::poll_transmit`] write; it calls [`Endpoint::handle_timeout`] at
//! [`Endpoint::next_deadline`]. `docs/protocol.md` specifies the wire format.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use gudp::protocol::{Config, Endpoint, Event, Incoming};
//!
//! let t0 = Instant::now();
//! let (client_addr, server_addr) = ("127.0.0.1:5000".parse().unwrap(), "127.0.0.1:6000".parse().unwrap());
//! let mut client = Endpoint::new(Config::default(), [1; 16]);
//! let mut server = Endpoint::new(Config::default(), [2; 16]);
//! let conn = client.connect(t0, server_addr).unwrap();
//! let mut buf = [0u8; 1500];
//! // A lossless, instantaneous network: hand every datagram straight to the other side.
//! for _ in 0..3 {
//!     while let Some(t) = client.poll_transmit(t0, &mut buf) {
//!         server.handle_datagram(t0, client_addr, &buf[..t.len]);
//!     }
//!     while let Some(t) = server.poll_transmit(t0, &mut buf) {
//!         client.handle_datagram(t0, server_addr, &buf[..t.len]);
//!     }
//! }
//! assert!(matches!(client.poll_event(), Some(Event::Connected { .. })));
//! let t = client.send(t0, conn, b"hello", &mut buf).unwrap();
//! match server.handle_datagram(t0, client_addr, &buf[..t.len]) {
//!     Incoming::Payload { payload, receipt, .. } => {
//!         assert_eq!(payload, b"hello");
//!         server.deliver(t0, receipt); // the application has it: now it will be acked
//!     }
//!     other => panic!("{other:?}"),
//! }
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub mod config;
pub mod congestion;
mod connection;
mod counters;
mod endpoint;
mod estimate;
mod handshake;
pub mod protection;
pub mod secure;
pub mod seq;
mod seq_buffer;
mod table;
mod timer_heap;
mod token;
pub mod wire;

pub use config::{Config, PacingRate};
pub use congestion::{CongestionController, CongestionMode, Pacer};
pub use counters::{ConnectionCounters, EndpointCounters};
pub use endpoint::Endpoint;
pub use wire::DecodeError;

/// Identifies a connection of one [`Endpoint`]: a slab index and a generation, so an id of a
/// closed connection never names a later one.
///
/// ```
/// # use std::time::{Duration, Instant};
/// # use gudp::protocol::*;
/// # let t0 = Instant::now();
/// # let (ca, sa): (std::net::SocketAddr, std::net::SocketAddr) =
/// #     ("10.0.0.1:5000".parse().unwrap(), "10.0.0.2:6000".parse().unwrap());
/// # let mut buf = [0u8; 1500];
/// let mut endpoint = Endpoint::new(Config::default(), [0; 16]);
/// let first = endpoint.connect(t0, sa).unwrap();
/// endpoint.close(t0, first);
/// let second = endpoint.connect(t0, sa).unwrap();
/// assert_eq!(first.index(), second.index()); // the slot is reused...
/// assert_ne!(first, second); // ...but the id is not
/// assert!(endpoint.connection_stats(first).is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId {
    index: u32,
    generation: u32,
}

impl ConnectionId {
    /// The slab index (unique among live connections; reused after a close).
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::protocol::*;
    /// # let t0 = Instant::now();
    /// # let (ca, sa): (std::net::SocketAddr, std::net::SocketAddr) =
    /// #     ("10.0.0.1:5000".parse().unwrap(), "10.0.0.2:6000".parse().unwrap());
    /// # let mut buf = [0u8; 1500];
    /// let mut endpoint = Endpoint::new(Config::default(), [0; 16]);
    /// let a = endpoint.connect(t0, ca).unwrap();
    /// let b = endpoint.connect(t0, sa).unwrap();
    /// assert_eq!((a.index(), b.index()), (0, 1));
    /// ```
    pub fn index(self) -> u32 {
        self.index
    }

    /// The slab slot's generation when the connection was created.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::protocol::*;
    /// # let t0 = Instant::now();
    /// # let (ca, sa): (std::net::SocketAddr, std::net::SocketAddr) =
    /// #     ("10.0.0.1:5000".parse().unwrap(), "10.0.0.2:6000".parse().unwrap());
    /// # let mut buf = [0u8; 1500];
    /// let mut endpoint = Endpoint::new(Config::default(), [0; 16]);
    /// let first = endpoint.connect(t0, sa).unwrap();
    /// endpoint.close(t0, first);
    /// let second = endpoint.connect(t0, sa).unwrap();
    /// assert_eq!((first.generation(), second.generation()), (0, 1));
    /// ```
    pub fn generation(self) -> u32 {
        self.generation
    }
}

/// Identifies one packet of one connection: its 64-bit extended sequence number. Ids increase
/// with every packet sent and never wrap; protocol packets (keepalives, acks) take ids too, so
/// the ids of application packets have gaps. The daemon API's [`crate::PacketId`] is another
/// id: a per-connection counter that only application sends take.
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
/// let a = client.send(t0, conn, b"a", &mut buf).unwrap().packet_id;
/// // A keepalive, due after 2 s of silence, takes the next id.
/// let later = t0 + Duration::from_secs(2);
/// client.handle_timeout(later);
/// while client.poll_transmit(later, &mut buf).is_some() {}
/// let b = client.send(later, conn, b"b", &mut buf).unwrap().packet_id;
/// assert_eq!((a, b), (Some(PacketNumber(0)), Some(PacketNumber(2))));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PacketNumber(pub u64);

/// Which side of the handshake a connection is.
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
/// let sconn = server.connection_by_addr(ca).unwrap();
/// assert_eq!(client.connection_stats(conn).unwrap().role, Role::Client);
/// assert_eq!(server.connection_stats(sconn).unwrap().role, Role::Server);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// This endpoint called [`Endpoint::connect`].
    Client,
    /// This endpoint accepted the peer's handshake.
    Server,
}

/// Why a connection ended: the crate's one [`CloseReason`]. The protocol reports `Closed`
/// ([`Endpoint::close`] was called), `ClosedByPeer`, `TimedOut`, `ConnectTimedOut` and
/// `ConnectionDenied`; the daemon adds `DaemonStopped` and `SocketError`.
///
/// ```
/// # use std::time::{Duration, Instant};
/// # use gudp::protocol::*;
/// # let t0 = Instant::now();
/// # let (ca, sa): (std::net::SocketAddr, std::net::SocketAddr) =
/// #     ("10.0.0.1:5000".parse().unwrap(), "10.0.0.2:6000".parse().unwrap());
/// # let mut buf = [0u8; 1500];
/// // A server at its connection limit denies the request.
/// let mut full = Config::default();
/// full.max_connections = 0;
/// let mut server = Endpoint::new(full, [2; 16]);
/// let mut client = Endpoint::new(Config::default(), [1; 16]);
/// let conn = client.connect(t0, sa).unwrap();
/// let t = client.poll_transmit(t0, &mut buf).unwrap();
/// server.handle_datagram(t0, ca, &buf[..t.len]);
/// let t = server.poll_transmit(t0, &mut buf).unwrap();
/// client.handle_datagram(t0, sa, &buf[..t.len]);
/// let denied = Event::Disconnected { conn, reason: CloseReason::ConnectionDenied };
/// assert_eq!(client.poll_event(), Some(denied));
/// ```
pub use crate::core::status::CloseReason;

/// Something the application should know about, from [`Endpoint::poll_event`].
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
/// # while client.poll_event().is_some() {}
/// let t = client.send(t0, conn, b"hello", &mut buf).unwrap();
/// if let Incoming::Payload { receipt, .. } = server.handle_datagram(t0, ca, &buf[..t.len]) {
///     server.deliver(t0, receipt); // the application took it
/// }
/// // The server acknowledges within Config::max_ack_delay (10 ms).
/// let later = t0 + Duration::from_millis(10);
/// server.handle_timeout(later);
/// let ack = server.poll_transmit(later, &mut buf).unwrap();
/// client.handle_datagram(later, sa, &buf[..ack.len]);
/// let packet_id = t.packet_id.unwrap();
/// let acked = Event::Acked { conn, packet_id, tag: packet_id.0 };
/// assert_eq!(client.poll_event(), Some(acked));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// The handshake completed.
    Connected {
        /// The connection.
        conn: ConnectionId,
        /// The peer's address.
        peer: SocketAddr,
        /// This endpoint's side of it.
        role: Role,
    },
    /// The connection ended. Every one of its unresolved packets was reported lost first.
    Disconnected {
        /// The connection.
        conn: ConnectionId,
        /// Why.
        reason: CloseReason,
    },
    /// The peer acknowledged an application packet. Reported once; never after `Lost`.
    Acked {
        /// The connection.
        conn: ConnectionId,
        /// The packet.
        packet_id: PacketNumber,
        /// The tag it was sent with ([`Endpoint::send_tagged`]); its sequence for
        /// [`Endpoint::send`].
        tag: u64,
    },
    /// An application packet was not acknowledged in time. Reported once; never after `Acked`.
    Lost {
        /// The connection.
        conn: ConnectionId,
        /// The packet.
        packet_id: PacketNumber,
        /// The tag it was sent with ([`Endpoint::send_tagged`]); its sequence for
        /// [`Endpoint::send`].
        tag: u64,
    },
    /// The congestion mode changed (and with it the pacing rate).
    CongestionChanged {
        /// The connection.
        conn: ConnectionId,
        /// The new mode.
        mode: CongestionMode,
    },
}

/// A datagram written into the caller's buffer, to be sent to `destination`.
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
/// let t: Transmit = client.send(t0, conn, b"move", &mut buf).unwrap();
/// assert_eq!(t.destination, sa);
/// assert_eq!(t.len, 32 + 4); // the datagram is buf[..t.len]
/// assert!(t.packet_id.is_some()); // from poll_transmit it is None
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Transmit {
    /// Where to send it.
    pub destination: SocketAddr,
    /// Bytes written at the start of the buffer.
    pub len: usize,
    /// The application packet's id (only for [`Endpoint::send`]).
    pub packet_id: Option<PacketNumber>,
}

/// What a received datagram turned out to be.
///
/// ```
/// # use std::time::{Duration, Instant};
/// # use gudp::protocol::*;
/// # let t0 = Instant::now();
/// # let (ca, sa): (std::net::SocketAddr, std::net::SocketAddr) =
/// #     ("10.0.0.1:5000".parse().unwrap(), "10.0.0.2:6000".parse().unwrap());
/// # let mut buf = [0u8; 1500];
/// let mut server = Endpoint::new(Config::default(), [2; 16]);
/// let mut client = Endpoint::new(Config::default(), [1; 16]);
/// client.connect(t0, sa).unwrap();
/// let t = client.poll_transmit(t0, &mut buf).unwrap();
/// // A handshake packet is consumed by the protocol.
/// assert_eq!(server.handle_datagram(t0, ca, &buf[..t.len]), Incoming::Consumed);
/// let short = Incoming::Dropped(DropReason::Invalid(DecodeError::TooShort { len: 3 }));
/// assert_eq!(server.handle_datagram(t0, ca, &[0; 3]), short);
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Incoming<'a> {
    /// An application payload, borrowed from the datagram. It is **not yet received**: the
    /// endpoint records its receipt (and so acks it) only when the caller hands `receipt` to
    /// [`Endpoint::deliver`] after placing the payload where the application will read it.
    /// A caller that cannot take it (a full buffer, a closing connection) drops the receipt:
    /// the packet is never acked and its sender is told it was lost.
    Payload {
        /// The connection it arrived on.
        conn: ConnectionId,
        /// The payload bytes.
        payload: &'a [u8],
        /// Proof of arrival, for [`Endpoint::deliver`].
        receipt: Receipt,
    },
    /// A valid protocol packet (handshake, keepalive, ack, disconnect).
    Consumed,
    /// The datagram was dropped (and counted).
    Dropped(DropReason),
}

/// A payload that arrived but is not yet recorded as received: pass it to
/// [`Endpoint::deliver`] once the application has the payload, or drop it to refuse the
/// payload (it is then never acked). It is valid only until the endpoint's next
/// [`Endpoint::handle_datagram`]: a receipt left unresolved then counts as refused, so a
/// duplicate of the same packet can never be delivered twice.
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
/// let t = client.send(t0, conn, b"input", &mut buf).unwrap();
/// let mut inbox = Vec::new();
/// if let Incoming::Payload { payload, receipt, .. } = server.handle_datagram(t0, ca, &buf[..t.len]) {
///     inbox.push(payload.to_vec());
///     assert!(server.deliver(t0, receipt)); // now it will be acked
/// }
/// assert_eq!(server.counters().connections.payloads_received, 1);
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
#[must_use = "a payload is acked only once its receipt is passed to Endpoint::deliver"]
pub struct Receipt {
    conn: ConnectionId,
    seq: u64,
}

/// Why a received datagram was dropped. Each reason has a counter in [`EndpointCounters`].
///
/// ```
/// # use std::time::{Duration, Instant};
/// # use gudp::protocol::*;
/// # let t0 = Instant::now();
/// # let (ca, sa): (std::net::SocketAddr, std::net::SocketAddr) =
/// #     ("10.0.0.1:5000".parse().unwrap(), "10.0.0.2:6000".parse().unwrap());
/// # let mut buf = [0u8; 1500];
/// let mut server = Endpoint::new(Config::default(), [2; 16]);
/// // A well-formed keepalive (sequence 7) from an address with no connection.
/// let mut keepalive = [0u8; 32]; // its MAC field (bytes 16..32) is never looked at
/// keepalive[..8].copy_from_slice(&[0x47, 0x55, 0x44, 0x02, 0x11, 0, 0, 7]);
/// let dropped = server.handle_datagram(t0, ca, &keepalive);
/// assert_eq!(dropped, Incoming::Dropped(DropReason::UnknownPeer));
/// assert_eq!(server.counters().unknown_peer, 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// It could not be decoded.
    Invalid(DecodeError),
    /// A connected packet from an address with no connection.
    UnknownPeer,
    /// A packet whose sequence was already received.
    Duplicate,
    /// A packet older than the received window.
    Stale,
    /// A payload larger than the configured maximum.
    TooLarge {
        /// Payload bytes received.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A challenge response whose token does not verify.
    BadToken,
    /// A challenge response whose token is past its lifetime.
    ExpiredToken,
    /// A challenge response whose token already created a connection.
    ReplayedToken,
    /// A handshake packet from an address that already has a connection.
    AlreadyConnected,
    /// A packet that is valid but not in the connection's current state.
    Unexpected,
    /// A handshake reply whose nonce, or a disconnect whose session, is not this connection's.
    Mismatch,
    /// A reply was due but the reply queue is full.
    ReplyQueueFull,
    /// A connected packet from a connection's address whose MAC does not verify (forged,
    /// corrupted, truncated, from another connection, or from an earlier lap of the
    /// sequence). Nothing about the connection changed.
    BadMac,
    /// A secure request or response whose connect token has expired.
    ConnectTokenExpired,
    /// A secure request or response whose connect token does not open under the server's
    /// key (forged, corrupted, or minted with another key, protocol id or expiry).
    ConnectTokenForged,
    /// A secure request or response whose connect token does not list this server.
    ConnectTokenWrongServer,
    /// A secure request or response whose connect token already created a connection from
    /// another address.
    ConnectTokenInUse,
    /// A secure request or response whose connect token's client id already has a live
    /// connection (from another address: a repeat from the same one is
    /// [`AlreadyConnected`](Self::AlreadyConnected)); netcode's one connection per client id.
    ClientIdInUse,
    /// A plain handshake packet sent to a server in secure mode, or a secure one to a server
    /// that is not.
    WrongModeHandshake,
    /// A secure-mode connected packet given to
    /// [`Endpoint::handle_datagram`], which cannot decrypt in place: use
    /// [`Endpoint::handle_datagram_mut`]. Nothing about the connection changed.
    ReadOnlyBuffer,
}

/// Why [`Endpoint::send`] refused a payload. No error consumes a sequence number.
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
/// assert_eq!(client.send(t0, conn, b"x", &mut buf), Err(TransmitError::NotConnected));
/// client.close(t0, conn);
/// assert_eq!(client.send(t0, conn, b"x", &mut buf), Err(TransmitError::UnknownConnection));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransmitError {
    /// The payload is larger than [`Config::max_payload`].
    TooLarge {
        /// Payload bytes.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The pacing budget is spent: retry at `retry_at`.
    Paced {
        /// When the next packet may be sent.
        retry_at: Instant,
    },
    /// No live connection has this id.
    UnknownConnection,
    /// The handshake has not completed yet.
    NotConnected,
    /// `out` cannot hold the datagram.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
}

impl fmt::Display for TransmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len, max } => write!(f, "payload of {len} bytes exceeds {max}"),
            Self::Paced { .. } => write!(f, "pacing budget exhausted"),
            Self::UnknownConnection => write!(f, "unknown connection"),
            Self::NotConnected => write!(f, "connection not established"),
            Self::BufferTooSmall { needed } => write!(f, "output buffer needs {needed} bytes"),
        }
    }
}

impl std::error::Error for TransmitError {}

/// Why [`Endpoint::connect`] refused.
///
/// ```
/// # use std::time::{Duration, Instant};
/// # use gudp::protocol::*;
/// # let t0 = Instant::now();
/// # let (ca, sa): (std::net::SocketAddr, std::net::SocketAddr) =
/// #     ("10.0.0.1:5000".parse().unwrap(), "10.0.0.2:6000".parse().unwrap());
/// # let mut buf = [0u8; 1500];
/// let mut config = Config::default();
/// config.max_connections = 1;
/// let mut endpoint = Endpoint::new(config, [0; 16]);
/// endpoint.connect(t0, sa).unwrap();
/// assert_eq!(endpoint.connect(t0, sa), Err(ConnectRefused::AlreadyConnected));
/// assert_eq!(endpoint.connect(t0, ca), Err(ConnectRefused::ConnectionLimit));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectRefused {
    /// This endpoint already has a connection with that address.
    AlreadyConnected,
    /// This endpoint holds [`Config::max_connections`] connections.
    ConnectionLimit,
    /// The connect token does not list that server address.
    NotInToken,
}

impl fmt::Display for ConnectRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlreadyConnected => write!(f, "already connected to that address"),
            Self::ConnectionLimit => write!(f, "connection limit reached"),
            Self::NotInToken => write!(f, "the connect token does not list that server"),
        }
    }
}

impl std::error::Error for ConnectRefused {}

/// A snapshot of one connection's estimates and counters.
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
/// let stats: ProtocolStats = client.connection_stats(conn).unwrap();
/// assert_eq!(stats.congestion_mode, CongestionMode::Good);
/// assert_eq!(stats.send_rate, PacingRate::new(2000, 64)); // the controller's starting rate
/// assert_eq!(stats.packet_loss_percent, 0.0);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ProtocolStats {
    /// The peer's address.
    pub peer: SocketAddr,
    /// This endpoint's side.
    pub role: Role,
    /// Whether the handshake has completed.
    pub connected: bool,
    /// Smoothed round-trip time (the configured initial RTT before the first sample).
    pub rtt: Duration,
    /// Round-trip time variation (jitter).
    pub rtt_variation: Duration,
    /// Percentage (0–100) of recent ack-eliciting packets that were lost.
    pub packet_loss_percent: f64,
    /// Bytes per second sent (whole datagrams) over the last measurement period.
    pub sent_bytes_per_second: f64,
    /// Bytes per second received (whole datagrams) over the last measurement period.
    pub received_bytes_per_second: f64,
    /// Bytes per second of sent datagrams acknowledged over the last measurement period.
    pub acked_bytes_per_second: f64,
    /// The congestion mode.
    pub congestion_mode: CongestionMode,
    /// The pacing rate in force: the rate controller's (§6.4), capped by `bad_rate` in
    /// bad mode.
    pub send_rate: PacingRate,
    /// The current bad → good penalty.
    pub penalty: Duration,
    /// Counters.
    pub counters: ConnectionCounters,
}
