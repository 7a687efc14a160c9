//! Secure mode: connect tokens (netcode 1.02's model) and authenticated encryption of every
//! connected packet.
//!
//! A backend that shares a 32-byte [`PrivateKey`] with its game servers mints a
//! [`ConnectToken`] for each client it lets in: the servers it may join, until when, its
//! client id, a key per direction and 256 bytes of user data, the private part sealed with
//! the key. The client connects with the token; a server in secure mode
//! ([`SecureServer`]) opens the sealed part without asking the backend, accepts only tokens
//! minted for it and still valid, and encrypts every packet of the connection with
//! ChaCha20-Poly1305 under keys only the client and the server know. `docs/protocol.md` §12
//! gives the formats and their test vectors.
//!
//! ```
//! use std::time::Instant;
//! use gudp::protocol::{Config, Endpoint, Event, Incoming};
//! use gudp::secure::{ConnectToken, PrivateKey, SecureServer, TokenParams, UnixClock};
//!
//! let t0 = Instant::now();
//! let (client_addr, server_addr) = ("127.0.0.1:5000".parse().unwrap(), "127.0.0.1:6000".parse().unwrap());
//! let key = PrivateKey::from_bytes([9; 32]);
//! // The backend mints a token for client 42 on this server.
//! let mut params = TokenParams::new(Config::default().protocol_id.into(), 42, vec![server_addr]);
//! params.create_timestamp = 1_000_000;
//! let token = ConnectToken::mint(&key, &params).unwrap();
//! // The server knows the key, its public address and the time.
//! let mut server = Endpoint::new(Config::default(), [2; 16]);
//! server.set_secure(SecureServer::new(key, server_addr, UnixClock::new(t0, 1_000_001)));
//! let mut client = Endpoint::new(Config::default(), [1; 16]);
//! let conn = client.connect_with_token(t0, server_addr, &token).unwrap();
//! let mut buf = [0u8; 1500];
//! for _ in 0..3 {
//!     while let Some(t) = client.poll_transmit(t0, &mut buf) {
//!         server.handle_datagram_mut(t0, client_addr, &mut buf[..t.len]);
//!     }
//!     while let Some(t) = server.poll_transmit(t0, &mut buf) {
//!         client.handle_datagram_mut(t0, server_addr, &mut buf[..t.len]);
//!     }
//! }
//! assert!(matches!(client.poll_event(), Some(Event::Connected { .. })));
//! let sconn = server.connection_by_addr(client_addr).unwrap();
//! assert_eq!(server.token_info(sconn).unwrap().client_id, 42);
//! let t = client.send(t0, conn, b"hello", &mut buf).unwrap();
//! assert!(!buf[..t.len].windows(5).any(|w| w == b"hello")); // encrypted on the wire
//! match server.handle_datagram_mut(t0, client_addr, &mut buf[..t.len]) {
//!     Incoming::Payload { payload, .. } => assert_eq!(payload, b"hello"),
//!     other => panic!("{other:?}"),
//! }
//! ```

mod address;
pub(crate) mod aead;
mod client;
pub(crate) mod conn;
pub(crate) mod hello;
mod key;
pub(crate) mod private;
pub(crate) mod server;
mod token;

use std::fmt;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub use address::MAX_SERVER_ADDRESSES;
pub use hello::SecureHello;
pub use key::{PrivateKey, KEY_LEN};
pub use token::{
    ConnectToken, TokenParams, TokenSecrets, CONNECT_TOKEN_LEN, TOKEN_NONCE_LEN, USER_DATA_LEN,
    VERSION_INFO,
};

/// Why a token could not be minted, parsed or opened.
///
/// ```
/// use gudp::secure::{ConnectToken, TokenError};
/// let error = ConnectToken::from_bytes(b"short").unwrap_err();
/// assert_eq!(error, TokenError::Length { len: 5 });
/// assert_eq!(error.to_string(), "a connect token is 2048 bytes, got 5");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenError {
    /// Not [`CONNECT_TOKEN_LEN`] bytes.
    Length {
        /// Bytes given.
        len: usize,
    },
    /// It does not start with [`VERSION_INFO`].
    Version,
    /// The address list runs past its field.
    Truncated,
    /// An address type other than 1 (IPv4) or 2 (IPv6).
    AddressType(u8),
    /// No server address, or more than [`MAX_SERVER_ADDRESSES`].
    AddressCount(u32),
    /// The zero padding is not zeros.
    Padding,
    /// It expires before it was created (or its expiry overflows).
    Lifetime,
    /// The sealed part does not open under the key: forged, corrupted, or minted with
    /// another key, protocol id or expiry.
    Forged,
    /// The operating system had no randomness to give.
    Random,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length { len } => {
                write!(f, "a connect token is {CONNECT_TOKEN_LEN} bytes, got {len}")
            }
            Self::Version => write!(f, "not a netcode 1.02 connect token"),
            Self::Truncated => write!(f, "the server address list is truncated"),
            Self::AddressType(t) => write!(f, "unknown server address type {t}"),
            Self::AddressCount(n) => write!(
                f,
                "a token lists 1 to {MAX_SERVER_ADDRESSES} server addresses, got {n}"
            ),
            Self::Padding => write!(f, "the token's padding is not zeros"),
            Self::Lifetime => write!(f, "the token expires before it was created"),
            Self::Forged => write!(f, "the token's private part does not open under this key"),
            Self::Random => write!(f, "the operating system had no randomness to give"),
        }
    }
}

impl std::error::Error for TokenError {}

/// What a server's application learns about a client from its token.
///
/// ```
/// use gudp::secure::TokenInfo;
/// let info = TokenInfo::new(7, [0; 256]);
/// assert_eq!((info.client_id, info.user_data.len()), (7, 256));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenInfo {
    /// The client id the backend minted the token for.
    pub client_id: u64,
    /// The token's user data.
    pub user_data: [u8; USER_DATA_LEN],
}

impl TokenInfo {
    /// Token information with these values.
    ///
    /// ```
    /// use gudp::secure::TokenInfo;
    /// assert_eq!(TokenInfo::new(1, [2; 256]).user_data[0], 2);
    /// ```
    pub fn new(client_id: u64, user_data: [u8; USER_DATA_LEN]) -> Self {
        Self {
            client_id,
            user_data,
        }
    }
}

/// Maps the protocol core's [`Instant`]s to Unix seconds, which token expiry is written in,
/// without the core ever reading a clock: an instant and the Unix time it was.
///
/// ```
/// use std::time::{Duration, Instant};
/// use gudp::secure::UnixClock;
/// let t0 = Instant::now();
/// let clock = UnixClock::new(t0, 1_000);
/// assert_eq!(clock.seconds(t0 + Duration::from_millis(2_500)), 1_002);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnixClock {
    at: Instant,
    unix_seconds: u64,
}

impl UnixClock {
    /// A clock that reads `unix_seconds` at `at`.
    ///
    /// ```
    /// # use gudp::secure::UnixClock;
    /// let clock = UnixClock::new(std::time::Instant::now(), 5);
    /// ```
    pub fn new(at: Instant, unix_seconds: u64) -> Self {
        Self { at, unix_seconds }
    }

    /// The system clock, read now (for the daemon; tests use [`new`](Self::new)).
    ///
    /// ```
    /// # use gudp::secure::UnixClock;
    /// let clock = UnixClock::system();
    /// assert!(clock.seconds(std::time::Instant::now()) > 1_700_000_000);
    /// ```
    pub fn system() -> Self {
        let unix_seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self::new(Instant::now(), unix_seconds)
    }

    /// Unix seconds at `now`.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use gudp::secure::UnixClock;
    /// let t0 = Instant::now() + Duration::from_secs(10);
    /// assert_eq!(UnixClock::new(t0, 100).seconds(t0 - Duration::from_secs(3)), 97);
    /// ```
    pub fn seconds(&self, now: Instant) -> u64 {
        match now.checked_duration_since(self.at) {
            Some(after) => self.unix_seconds.saturating_add(after.as_secs()),
            None => {
                let before = self.at.saturating_duration_since(now);
                self.unix_seconds
                    .saturating_sub(before.as_secs() + u64::from(before.subsec_nanos() > 0))
            }
        }
    }
}

/// A server endpoint's secure mode: the key tokens are sealed with, the address clients are
/// told to reach it at (a token must list it), and the time. An endpoint in secure mode
/// accepts only clients with a valid token for it, and refuses the plain handshake
/// ([`Endpoint::set_secure`](crate::protocol::Endpoint::set_secure)).
///
/// ```
/// use gudp::secure::{PrivateKey, SecureServer, UnixClock};
/// let server = SecureServer::new(PrivateKey::from_bytes([1; 32]), "127.0.0.1:40000".parse().unwrap(), UnixClock::system());
/// assert_eq!(server.public_addr, "127.0.0.1:40000".parse().unwrap());
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SecureServer {
    /// The key shared with the backend that mints tokens.
    pub key: PrivateKey,
    /// The address tokens must list for this server.
    pub public_addr: SocketAddr,
    /// Unix time, for token expiry.
    pub clock: UnixClock,
}

impl SecureServer {
    /// Secure mode with `key`, reachable at `public_addr`, telling time by `clock`.
    ///
    /// ```
    /// use gudp::secure::{PrivateKey, SecureServer, UnixClock};
    /// let s = SecureServer::new(PrivateKey::from_bytes([1; 32]), "127.0.0.1:1".parse().unwrap(), UnixClock::system());
    /// assert_eq!(s.key, PrivateKey::from_bytes([1; 32]));
    /// ```
    pub fn new(key: PrivateKey, public_addr: SocketAddr, clock: UnixClock) -> Self {
        Self {
            key,
            public_addr,
            clock,
        }
    }
}

#[cfg(test)]
mod tests;
