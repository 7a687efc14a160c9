//! What the daemon counts: every datagram it reads ends in exactly one counter.

use super::batch;
use crate::protocol::EndpointCounters;

/// What the daemon counted. Every datagram read ends in exactly one of `payloads_delivered`,
/// `protocol_packets`, `dropped_by_protocol` (by reason in `endpoints`), `dropped_inbox_full`,
/// `dropped_malformed_messages`, `dropped_no_handle` or `dropped_unknown_source`, so their sum equals `datagrams_received` — see
/// [`DaemonCounters::unaccounted`].
///
/// ```
/// # use gudp::{Daemon, DaemonConfig};
/// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
/// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
/// # let client = daemon.connect(listener.local_addr()).unwrap();
/// # let server = listener.accept().unwrap();
/// // `client` and `server` are the two ends of one connection over loopback.
/// client.send(b"x").unwrap();
/// server.recv().unwrap();
/// let counters: gudp::DaemonCounters = daemon.counters();
/// assert_eq!(counters.payloads_delivered, 1);
/// assert!(counters.protocol_packets >= 4); // the handshake, both ends on this daemon
/// assert_eq!(counters.unaccounted(), 0);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DaemonCounters {
    /// Datagrams read from sockets.
    pub datagrams_received: u64,
    /// Datagrams written to sockets.
    pub datagrams_sent: u64,
    /// Payloads pushed into a connection's inbox.
    pub payloads_delivered: u64,
    /// Valid protocol-only datagrams (handshake, keepalive, ack, disconnect).
    pub protocol_packets: u64,
    /// Datagrams the protocol dropped (invalid, wrong protocol id, unknown peer, duplicate,
    /// stale, too large, bad token, ...): see `endpoints` for the reasons.
    pub dropped_by_protocol: u64,
    /// Payloads dropped because the connection's inbox was full (in message mode: the
    /// message layer's receive budget).
    pub dropped_inbox_full: u64,
    /// Message-mode payloads the message layer rejected as malformed (bad framing, unknown
    /// channel, oversize message: `docs/message-layer.md` §2.3). Never acked.
    pub dropped_malformed_messages: u64,
    /// Payloads for a connection the application has closed (the daemon may still be sending
    /// its outbox) or that has no handle. Never acked: the sender sees them lost.
    pub dropped_no_handle: u64,
    /// Datagrams whose source the kernel gave in an address family other than IPv4 or IPv6
    /// (not seen on an IP socket; counted so that no datagram can vanish uncounted).
    pub dropped_unknown_source: u64,
    /// Datagrams the kernel dropped before the daemon could read them, because a socket's
    /// receive buffer was full (Linux, from `SO_RXQ_OVFL`). Not part of `datagrams_received`:
    /// the count arrives with the next datagram the socket receives.
    pub dropped_by_kernel: u64,
    /// Handshaken connections closed because the accept queue was full.
    pub accept_queue_full: u64,
    /// Handshaken connections closed because their socket no longer had a listener.
    pub refused_no_listener: u64,
    /// Packets a connection could not send any more (reported to it as lost).
    pub sends_refused: u64,
    /// Packets that waited in an outbox longer than `DaemonConfig::max_send_delay` and were
    /// dropped unsent (reported to their connection as lost).
    pub sends_expired: u64,
    /// Datagrams the kernel refused with "would block" (dropped; the protocol sees a loss).
    pub send_would_block: u64,
    /// Other send errors (dropped; the protocol sees a loss).
    pub send_errors: u64,
    /// ICMP errors (port unreachable) reported on a receive and skipped.
    pub icmp_errors: u64,
    /// Sockets that failed; their connections ended with `SocketError`.
    pub sockets_failed: u64,
    /// Link-conditioner datagrams whose socket had closed before their delivery time.
    pub link_orphans: u64,
    /// Failed wake-ups of the event loop.
    pub wake_errors: u64,
    /// The protocol endpoints' counters, summed over every socket, closed ones included.
    pub endpoints: EndpointCounters,
}

impl DaemonCounters {
    /// Datagrams read that no counter accounts for: always 0.
    ///
    /// ```
    /// let daemon = gudp::Daemon::spawn(gudp::DaemonConfig::default()).unwrap();
    /// assert_eq!(daemon.counters().unaccounted(), 0);
    /// ```
    pub fn unaccounted(&self) -> i128 {
        i128::from(self.datagrams_received)
            - i128::from(self.payloads_delivered)
            - i128::from(self.protocol_packets)
            - i128::from(self.dropped_by_protocol)
            - i128::from(self.dropped_inbox_full)
            - i128::from(self.dropped_malformed_messages)
            - i128::from(self.dropped_no_handle)
            - i128::from(self.dropped_unknown_source)
    }

    /// Adds what one flush of a send batch did.
    pub(super) fn add_flushed(&mut self, flushed: batch::Flushed) {
        self.datagrams_sent += flushed.sent;
        self.send_would_block += flushed.would_block;
        self.send_errors += flushed.errors;
    }
}
