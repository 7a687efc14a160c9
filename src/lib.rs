//! GUDP: a UDP transport for games and real-time applications, with virtual connections,
//! per-packet acks and delivery notifications, RTT / loss / bandwidth estimates and good/bad
//! congestion avoidance.
//!
//! ```
//! use gudp::{Daemon, DaemonConfig};
//!
//! let daemon = Daemon::spawn(DaemonConfig::default())?;
//! let listener = daemon.listen("127.0.0.1:0".parse().unwrap())?;
//! let client = daemon.connect(listener.local_addr())?;
//! let server = listener.accept()?;
//!
//! client.send(b"hello")?;
//! let packet = server.recv()?;
//! server.send(&packet)?; // echo
//! assert_eq!(&client.recv()?[..], b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The layers, bottom up: the concurrent core (everything user threads share with the daemon:
//! lock-free rings, read and write buffers, the ready list and its wake gate), model-checked
//! with loom and not public; the sans-IO [`protocol`] core, the sans-IO [`message`] layer
//! above it (channels, reliability, fragmentation) and the [`conditioner`]; and the
//! [`Daemon`], which joins them over real UDP sockets. See `docs/architecture.md`.
#![deny(missing_docs)]
#![warn(unsafe_op_in_unsafe_fn)]

// The concurrent core: mio-free, model-checked with loom (`--cfg loom`).
mod core;

pub mod error;
#[cfg(not(loom))]
mod trace;

// The sans-IO protocol core.
pub mod conditioner;
pub mod message;
pub mod protocol;
#[cfg(test)]
mod test_hex;

// The daemon over real sockets, and the user's handles (not part of the loom build).
#[cfg(not(loom))]
mod connection;
#[cfg(not(loom))]
mod daemon;
#[cfg(not(loom))]
mod listener;

#[cfg(not(loom))]
pub use connection::{Connection, ConnectionStats, QuickStats, ReceivedMessage};
pub use core::delivery::{Delivery, PacketId};
pub use core::inbox::IMPLEMENTATION;
pub use core::pool::Packet;
pub use core::status::{CloseReason, CongestionMode, Status};
#[cfg(not(loom))]
pub use daemon::{
    Daemon, DaemonConfig, DaemonCounters, LinkSetup, ManualDaemon, PendingConnection,
    ShardedListener,
};
pub use error::{ConnectError, RecvTimeoutError, SendError, TryRecvError};
#[cfg(not(loom))]
pub use listener::{Listener, ServerEvent};
/// Secure mode: connect tokens and encrypted connections ([`protocol::secure`]).
pub use protocol::secure;

/// The concurrent core, for `loom-tests/` and the benches only (cargo feature `internals`).
/// Not part of the API: it changes without notice.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod internals {
    pub use crate::core::{
        conn, delivery, inbox, messages, outbox, pool, ready, ring, status, wake_gate,
    };
}

/// The README's example, compiled and run as a doctest so it cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
