//! What the protocol counts: one definition per counter, summed with `+=`.
//!
//! A connection counts its own traffic ([`ConnectionCounters`]); the endpoint counts what
//! belongs to no connection (drops by reason, the handshake, timers) and reports its
//! connections' counters summed, the live ones and the ended ones together
//! ([`EndpointCounters::connections`]). Each event is counted once, where it happens.
//!
//! ```
//! use gudp::protocol::ConnectionCounters;
//! let mut total = ConnectionCounters::default();
//! let mut one = ConnectionCounters::default();
//! one.acked = 3;
//! total += one;
//! total += one;
//! assert_eq!(total.acked, 6);
//! ```

/// Declares a counters struct once: its fields (all `u64`, documented), `Default`, and a
/// field-by-field `AddAssign`, so no list of fields is ever written twice.
macro_rules! counters {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$field_meta:meta])* pub $field:ident, )*
            $( nested: $(#[$nested_meta:meta])* pub $nested:ident: $nested_ty:ty, )?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct $name {
            $( $(#[$field_meta])* pub $field: u64, )*
            $( $(#[$nested_meta])* pub $nested: $nested_ty, )?
        }

        impl std::ops::AddAssign for $name {
            fn add_assign(&mut self, other: Self) {
                $( self.$field += other.$field; )*
                $( self.$nested += other.$nested; )?
            }
        }
    };
}

counters! {
    /// One connection's traffic, from its own point of view.
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
    /// for _ in 0..3 {
    ///     let t = client.send(t0, conn, b"tick", &mut buf).unwrap();
    ///     if let Incoming::Payload { receipt, .. } = server.handle_datagram(t0, ca, &buf[..t.len]) {
    ///         server.deliver(t0, receipt);
    ///     }
    /// }
    /// let sent = client.connection_stats(conn).unwrap().counters;
    /// assert_eq!((sent.payloads_sent, sent.packets_sent), (3, 3));
    /// let sconn = server.connection_by_addr(ca).unwrap();
    /// assert_eq!(server.connection_stats(sconn).unwrap().counters.payloads_received, 3);
    /// assert_eq!(server.counters().connections.payloads_received, 3); // summed
    /// ```
    pub struct ConnectionCounters {
        /// Connected packets sent (payloads, keepalives, acks).
        pub packets_sent,
        /// Connected packets accepted (not duplicate or stale).
        pub packets_received,
        /// Application payloads sent.
        pub payloads_sent,
        /// Application payloads the application took ([`Endpoint::deliver`](super::Endpoint::deliver)).
        pub payloads_received,
        /// Keepalives sent.
        pub keepalives_sent,
        /// Ack-only packets sent.
        pub acks_sent,
        /// Application packets acknowledged.
        pub acked,
        /// Application packets lost.
        pub lost,
        /// Acks that arrived for packets already reported lost (used as RTT samples only).
        pub late_acks,
        /// Duplicate packets dropped.
        pub duplicates,
        /// Stale packets dropped.
        pub stale,
        /// Sends refused by pacing.
        pub paced,
        /// Payloads refused as too large to send.
        pub too_large_to_send,
        /// Payloads dropped as too large to receive.
        pub too_large_to_receive,
    }
}

counters! {
    /// Endpoint-wide counters: every drop by reason, handshake progress, timers, and the
    /// traffic of all its connections summed.
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
    pub struct EndpointCounters {
        /// Datagrams passed to [`Endpoint::handle_datagram`](super::Endpoint::handle_datagram).
        pub datagrams_received,
        /// Datagrams shorter than the prefix.
        pub invalid_too_short,
        /// Datagrams with an unknown type byte.
        pub invalid_unknown_type,
        /// Datagrams whose length does not fit their type.
        pub invalid_bad_length,
        /// Datagrams with a non-canonical field.
        pub invalid_non_canonical,
        /// Datagrams with another protocol id.
        pub wrong_protocol_id,
        /// Connected packets from addresses with no connection.
        pub unknown_peer,
        /// Connected packets from a connection's address whose MAC does not verify: dropped
        /// before they touched the connection.
        pub bad_mac,
        /// Packets not valid in their connection's state.
        pub unexpected,
        /// Handshake replies with a foreign nonce, disconnects with a foreign session.
        pub mismatched,
        /// Connection requests received.
        pub handshake_requests,
        /// Challenges queued in reply.
        pub handshake_challenges,
        /// Challenge responses received.
        pub handshake_responses,
        /// Accept packets sent.
        pub handshake_accepts,
        /// Denied packets queued (connection limit).
        pub handshake_denials,
        /// Challenge responses with a token that does not verify.
        pub handshake_bad_tokens,
        /// Challenge responses with an expired token.
        pub handshake_expired_tokens,
        /// Challenge responses replaying a token that already created a connection.
        pub handshake_replayed_tokens,
        /// Handshake packets from an address that already has a connection.
        pub handshake_already_connected,
        /// Retransmitted handshake packets answered or ignored idempotently.
        pub handshake_duplicates,
        /// Secure requests and responses whose connect token had expired.
        pub connect_token_expired,
        /// Secure requests and responses whose connect token did not open under the key
        /// (forged, corrupted, or minted with another key or protocol id).
        pub connect_token_forged,
        /// Secure requests and responses whose connect token does not list this server.
        pub connect_token_wrong_server,
        /// Secure requests and responses whose connect token already created a connection
        /// from another address (netcode's token-entry rule).
        pub connect_token_in_use,
        /// Secure requests and responses whose token's client id already has a live
        /// connection (netcode's one connection per client id).
        pub client_id_in_use,
        /// Plain requests and responses refused by a server in secure mode, and secure ones
        /// by a server that is not.
        pub wrong_mode_handshakes,
        /// Secure-mode connected packets given to `Endpoint::handle_datagram`, which cannot
        /// decrypt in place (`handle_datagram_mut` can).
        pub read_only_buffer,
        /// Connection requests sent (client).
        pub requests_sent,
        /// Challenge responses sent (client).
        pub responses_sent,
        /// Replies dropped because the reply queue was full.
        pub replies_dropped,
        /// Connections established (both roles).
        pub connections_opened,
        /// Connections ended (both roles, every reason).
        pub connections_closed,
        /// Connections ended by the idle timeout.
        pub timeouts,
        /// Connection attempts that timed out.
        pub connect_timeouts,
        /// Connection attempts the server denied.
        pub denied,
        /// Disconnect packets sent.
        pub disconnects_sent,
        /// Timer-heap entries that fired for their connection.
        pub timers_fired,
        /// Timer-heap entries discarded because an earlier deadline superseded them.
        pub timers_superseded,
        /// Connections closed by the peer.
        pub disconnects_received,
        nested:
        /// Every connection's own counters, summed: the live ones and the ended ones.
        pub connections: ConnectionCounters,
    }
}
