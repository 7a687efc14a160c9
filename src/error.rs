//! Every error the handles return, in one place. Each enum is `#[non_exhaustive]`: match
//! with a wildcard arm, so that a variant added later does not break your build.
//!
//! ```
//! use gudp::error::SendError;
//! fn should_retry(error: SendError) -> bool {
//!     match error {
//!         SendError::OutboxFull | SendError::Paced => true,
//!         SendError::TooLarge { .. } | SendError::Closed(_) => false,
//!         _ => false,
//!     }
//! }
//! assert!(should_retry(SendError::Paced));
//! ```

use crate::core::status::CloseReason;
use std::fmt;
use std::io;

pub use crate::core::inbox::{RecvTimeoutError, TryRecvError};

/// Why a send was refused. The payload was not queued and consumed no packet id.
///
/// ```
/// # use gudp::{Daemon, DaemonConfig};
/// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
/// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
/// # let client = daemon.connect(listener.local_addr()).unwrap();
/// # let server = listener.accept().unwrap();
/// // `client` and `server` are the two ends of one connection over loopback.
/// # use gudp::{CloseReason, SendError};
/// let max = DaemonConfig::default().protocol.max_payload;
/// let too_big = vec![0; max + 1];
/// assert_eq!(client.try_send(&too_big), Err(SendError::TooLarge { len: max + 1, max }));
/// client.close();
/// assert_eq!(client.try_send(b"late"), Err(SendError::Closed(CloseReason::Closed)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The payload is larger than the configured maximum.
    TooLarge {
        /// Payload bytes.
        len: usize,
        /// The configured maximum payload.
        max: usize,
    },
    /// The outbox is full: the daemon has not caught up (`try_send`, or `send_timeout` ran
    /// out of time).
    OutboxFull,
    /// The outbox is full because the connection's pacing budget is spent: the congestion
    /// mode's send rate is the limit, not the daemon.
    Paced,
    /// The connection finished, for this reason.
    Closed(CloseReason),
    /// A packet call on a connection in message mode (`DaemonConfig::messages` is set), or a
    /// message call on one in packet mode: nothing was queued, so the framing of what goes
    /// out is never mixed.
    WrongMode,
    /// A message for a channel the connection's `MessageConfig` does not have.
    UnknownChannel {
        /// The channel asked for.
        channel: u8,
    },
    /// The channel's byte budget (`ChannelConfig::budget`: queued plus unacked messages) has
    /// no room for this message: backpressure, never a disconnect. Retry once acks have
    /// freed room, or wait with `send_message`. `needed` above the whole budget never fits.
    ChannelFull {
        /// The channel.
        channel: u8,
        /// The message's cost: its bytes and the layer's bookkeeping.
        needed: usize,
        /// What the budget had left.
        available: usize,
    },
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::TooLarge { len, max } => {
                write!(f, "payload of {len} bytes exceeds the maximum of {max}")
            }
            SendError::OutboxFull => f.write_str("outbox full"),
            SendError::Paced => f.write_str("outbox full: pacing budget exhausted"),
            SendError::Closed(reason) => write!(f, "connection finished: {reason}"),
            SendError::WrongMode => f.write_str(
                "wrong mode: packet calls need packet mode, message calls need DaemonConfig::messages",
            ),
            SendError::UnknownChannel { channel } => write!(f, "unknown channel {channel}"),
            SendError::ChannelFull {
                channel,
                needed,
                available,
            } => write!(
                f,
                "channel {channel} is full: {needed} bytes needed, {available} available"
            ),
        }
    }
}

impl std::error::Error for SendError {}

/// Why [`Daemon::connect`](crate::Daemon::connect) failed.
///
/// ```
/// use gudp::{CloseReason, ConnectError, Daemon, DaemonConfig};
/// use std::time::Duration;
/// let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap(); // never answers
/// let mut config = DaemonConfig::default();
/// config.protocol.connect_timeout = Duration::from_millis(20);
/// let daemon = Daemon::spawn(config).unwrap();
/// match daemon.connect(silent.local_addr().unwrap()) {
///     Err(ConnectError::Failed(reason)) => assert_eq!(reason, CloseReason::ConnectTimedOut),
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The local socket could not be created (or the daemon has stopped).
    Io(io::Error),
    /// No server can be at this address (port 0, an unspecified, multicast or broadcast
    /// address): refused before anything is sent.
    InvalidAddress(std::net::SocketAddr),
    /// The handshake failed: `ConnectTimedOut` (no answer: wrong address, no server, or the
    /// network drops everything), `ConnectionDenied` (the server is full), `DaemonStopped`.
    Failed(CloseReason),
    /// The server refused: its message channels (`DaemonConfig::messages`, compared by
    /// `MessageConfig::fingerprint`) are not this daemon's, or one end is in packet mode
    /// and the other in message mode. Configure both ends alike.
    ChannelMismatch,
}

impl ConnectError {
    /// The error for a handshake that ended with `reason`.
    pub(crate) fn failed(reason: CloseReason) -> Self {
        match reason {
            CloseReason::ChannelMismatch => ConnectError::ChannelMismatch,
            reason => ConnectError::Failed(reason),
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Io(error) => write!(f, "cannot open a socket: {error}"),
            ConnectError::InvalidAddress(addr) => {
                write!(f, "no server can listen at {addr} (port 0, unspecified, multicast or broadcast address)")
            }
            ConnectError::Failed(reason) => write!(f, "connection failed: {reason}"),
            ConnectError::ChannelMismatch => f.write_str(
                "connection denied: the server's message channels differ from ours (DaemonConfig::messages)",
            ),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectError::Io(error) => Some(error),
            ConnectError::Failed(reason) => Some(reason),
            ConnectError::InvalidAddress(_) | ConnectError::ChannelMismatch => None,
        }
    }
}
