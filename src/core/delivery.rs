//! What a connection tells its sender about each packet: its id, and whether it was acked or
//! lost. Public API (re-exported from the crate root); the daemon and the core produce them.

/// Identifies one packet sent on a [`Connection`](crate::Connection). Ids are unique per connection and taken
/// in increasing order from 0 by `send`/`try_send` (a refused send may leave a gap).
/// Delivery notifications name packets by it.
///
/// ```
/// # use gudp::{Daemon, DaemonConfig};
/// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
/// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
/// # let client = daemon.connect(listener.local_addr()).unwrap();
/// # let server = listener.accept().unwrap();
/// // `client` and `server` are the two ends of one connection over loopback.
/// let first = client.send(b"a").unwrap();
/// let second = client.send(b"b").unwrap();
/// assert_eq!((first, second), (gudp::PacketId(0), gudp::PacketId(1)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PacketId(pub u64);

/// What happened to a sent packet. Each packet whose send returned an id gets exactly one of
/// the two, and it is the truth:
///
/// - `Acked`: the peer's daemon placed the payload in the peer's inbox, where its application
///   will read it. A payload the peer refused (its inbox was full, or the connection was
///   closing there) is never acked.
/// - `Lost`: no ack arrived within the loss timeout, or the packet was dropped unsent (it
///   waited longer than `DaemonConfig::max_send_delay`, or the connection ended first). A lost
///   packet may still have arrived if only its acks were lost: build reliability on `Acked`.
///
/// Notifications wait in a ring of `DaemonConfig::delivery_capacity` (4,096 by default): poll
/// them at least that often, or the excess is dropped and counted
/// ([`ConnectionStats::dropped_deliveries`](crate::ConnectionStats::dropped_deliveries)).
///
/// ```
/// # use gudp::{Daemon, DaemonConfig};
/// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
/// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
/// # let client = daemon.connect(listener.local_addr()).unwrap();
/// # let server = listener.accept().unwrap();
/// // `client` and `server` are the two ends of one connection over loopback.
/// # use gudp::Delivery;
/// let id = client.send(b"ping").unwrap();
/// server.send(&server.recv().unwrap()).unwrap(); // the echo carries the ack
/// let delivery = loop {
///     if let Some(delivery) = client.poll_delivery() {
///         break delivery;
///     }
///     std::thread::yield_now();
/// };
/// assert_eq!(delivery, Delivery::Acked(id));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Delivery {
    /// The peer acknowledged the packet.
    Acked(PacketId),
    /// The packet was not acknowledged in time (or the connection ended first).
    Lost(PacketId),
}

impl Delivery {
    /// The packet this is about.
    ///
    /// ```
    /// use gudp::{Delivery, PacketId};
    /// assert_eq!(Delivery::Lost(PacketId(7)).id(), PacketId(7));
    /// ```
    pub fn id(self) -> PacketId {
        match self {
            Delivery::Acked(id) | Delivery::Lost(id) => id,
        }
    }

    /// Whether the peer's application got the packet.
    ///
    /// ```
    /// use gudp::{Delivery, PacketId};
    /// assert!(Delivery::Acked(PacketId(7)).is_acked());
    /// assert!(!Delivery::Lost(PacketId(7)).is_acked());
    /// ```
    pub fn is_acked(self) -> bool {
        matches!(self, Delivery::Acked(_))
    }
}
