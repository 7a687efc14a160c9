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
//! The layers, bottom up: the concurrent core ([`ring`], [`status`], [`inbox`],
//! [`wake_gate`]), proven with
//! loom; the sans-IO [`protocol`] core, the sans-IO [`message`] layer above it (channels,
//! reliability, fragmentation) and the [`conditioner`]; and the [`Daemon`], which joins
//! them over real UDP sockets. See `docs/architecture.md`.
#![deny(missing_docs)]
#![warn(unsafe_op_in_unsafe_fn)]

// The concurrent core: model-checked with loom (`--cfg loom`).
pub mod inbox;
#[cfg(not(feature = "naive-mutex"))]
mod parker;
pub mod ring;
pub mod status;
mod sync;
pub mod wake_gate;

pub mod error;
mod trace;

// The sans-IO protocol core.
pub mod conditioner;
pub mod message;
pub mod protocol;

// The daemon over real sockets (not part of the loom build).
#[cfg(not(loom))]
mod connection;
#[cfg(not(loom))]
mod daemon;
#[cfg(not(loom))]
mod listener;
#[cfg(not(loom))]
mod outbox;
#[cfg(not(loom))]
mod pool;

#[cfg(not(loom))]
pub use connection::{Connection, ConnectionStats, Delivery, PacketId};
#[cfg(not(loom))]
pub use daemon::{
    Daemon, DaemonConfig, DaemonCounters, LinkSetup, ManualDaemon, PendingConnection,
};
pub use error::{ConnectError, RecvTimeoutError, SendError, TryRecvError};
#[cfg(not(loom))]
pub use listener::Listener;
#[cfg(not(loom))]
pub use pool::Packet;
pub use status::{CloseReason, CongestionMode, Status};

/// The README's example, compiled and run as a doctest so it cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
