//! The server's stateless handshake (request, challenge, response, accept or deny) and the
//! client's handling of the server's replies, on the endpoint. Nothing is allocated for a
//! peer until it echoes a token only we could have computed, and no reply is larger than
//! the request it answers.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use super::connection::Connection;
use super::endpoint::Endpoint;
use super::protection::PacketProtection;
use super::token;
use super::wire::{ConnectedHeader, DenyReason, WirePacket, TOKEN_LEN};
use super::{CloseReason, ConnectionId, DropReason, Event, Role, Transmit};

/// A reply that needs no connection: challenges, denials and lingering disconnects.
#[derive(Debug, Clone, Copy)]
pub(super) enum Reply {
    Challenge {
        nonce: u64,
        timestamp: u64,
        token: [u8; TOKEN_LEN],
    },
    Denied {
        nonce: u64,
        reason: DenyReason,
    },
    /// Copies of a closed connection's disconnect, sealed with its keys (`seq` is the
    /// extended sequence of `header`).
    Disconnect {
        header: ConnectedHeader,
        seq: u64,
        session: u64,
        protection: PacketProtection,
        copies: u32,
    },
}

/// Tokens that already created a connection, remembered until they expire.
#[derive(Debug, Default)]
pub(super) struct ReplayCache {
    pub(super) used: HashSet<[u8; TOKEN_LEN]>,
    pub(super) expiry: VecDeque<(u64, [u8; TOKEN_LEN])>,
}

impl ReplayCache {
    pub(super) fn prune(&mut self, now_ms: u64) {
        while let Some(&(expires, token)) = self.expiry.front() {
            if expires >= now_ms {
                break;
            }
            self.expiry.pop_front();
            self.used.remove(&token);
        }
    }
}

impl Endpoint {
    pub(super) fn on_request(
        &mut self,
        now: Instant,
        from: SocketAddr,
        nonce: u64,
        fingerprint: u64,
    ) -> Result<(), DropReason> {
        self.counters.handshake_requests += 1;
        if self.secure.is_some() {
            return Err(DropReason::WrongModeHandshake);
        }
        if self.table.by_addr(from).is_some() {
            return Err(DropReason::AlreadyConnected);
        }
        self.deny_or_challenge(now, from, nonce, fingerprint, |ep, timestamp| {
            token::compute(&ep.secret, ep.config.protocol_id, from, timestamp, nonce)
        })
    }

    /// Answers a request (plain or secure) that passed its own checks: Denied if the server
    /// refuses it (full, or another channel configuration), else a Challenge carrying the
    /// token `token` computes for the issue timestamp.
    pub(super) fn deny_or_challenge(
        &mut self,
        now: Instant,
        from: SocketAddr,
        nonce: u64,
        fingerprint: u64,
        token: impl FnOnce(&Self, u64) -> [u8; TOKEN_LEN],
    ) -> Result<(), DropReason> {
        if let Some(reason) = self.deny_reason(fingerprint) {
            self.queue_reply(from, Reply::Denied { nonce, reason })?;
            self.counters.handshake_denials += 1;
            return Ok(());
        }
        let timestamp = self.millis(now);
        let token = token(self, timestamp);
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

    pub(super) fn on_response(
        &mut self,
        now: Instant,
        from: SocketAddr,
        nonce: u64,
        timestamp: u64,
        received: [u8; TOKEN_LEN],
        fingerprint: u64,
    ) -> Result<(), DropReason> {
        self.counters.handshake_responses += 1;
        if self.secure.is_some() {
            return Err(DropReason::WrongModeHandshake);
        }
        if let Some(repeat) = self.repeated_response(now, from, nonce) {
            return repeat;
        }
        let expected = token::compute(
            &self.secret,
            self.config.protocol_id,
            from,
            timestamp,
            nonce,
        );
        self.check_challenge(now, &expected, &received, timestamp)?;
        if fingerprint != self.config.message_fingerprint {
            let reason = DenyReason::ChannelMismatch;
            self.queue_reply(from, Reply::Denied { nonce, reason })?;
            self.counters.handshake_denials += 1;
            return Ok(());
        }
        let protection = PacketProtection::derive(
            Role::Server,
            self.config.protocol_id,
            &received,
            nonce,
            timestamp,
        );
        self.admit(now, from, nonce, timestamp, received, protection)
            .map(drop)
    }

    /// A challenge response from an address that already has a connection: the client did
    /// not get our accept yet (send it again), or it is refused. `None` for a new address.
    pub(super) fn repeated_response(
        &mut self,
        now: Instant,
        from: SocketAddr,
        nonce: u64,
    ) -> Option<Result<(), DropReason>> {
        let id = self.table.by_addr(from)?;
        let Some((conn, _)) = self.parts(id) else {
            return Some(Err(DropReason::UnknownPeer));
        };
        if conn.role == Role::Server && conn.session == nonce {
            conn.resend_accept();
            self.counters.handshake_duplicates += 1;
            self.reschedule(id, now);
            return Some(Ok(()));
        }
        Some(Err(DropReason::AlreadyConnected))
    }

    /// Checks an echoed challenge token against the one we computed, and its age.
    pub(super) fn check_challenge(
        &mut self,
        now: Instant,
        expected: &[u8; TOKEN_LEN],
        received: &[u8; TOKEN_LEN],
        timestamp: u64,
    ) -> Result<(), DropReason> {
        if !token::verify(expected, received) {
            return Err(DropReason::BadToken);
        }
        let now_ms = self.millis(now);
        let lifetime = self.token_lifetime_ms();
        if timestamp > now_ms || now_ms - timestamp > lifetime {
            return Err(DropReason::ExpiredToken);
        }
        Ok(())
    }

    fn token_lifetime_ms(&self) -> u64 {
        u64::try_from(self.config.token_lifetime.as_millis()).unwrap_or(u64::MAX)
    }

    /// Creates the server connection for a verified challenge response, whose keys are
    /// `protection`, unless its challenge token was used already or the server is full (then
    /// a denial is queued and `None` returned).
    pub(super) fn admit(
        &mut self,
        now: Instant,
        from: SocketAddr,
        nonce: u64,
        timestamp: u64,
        received: [u8; TOKEN_LEN],
        protection: PacketProtection,
    ) -> Result<Option<ConnectionId>, DropReason> {
        let now_ms = self.millis(now);
        self.replay.prune(now_ms);
        if self.replay.used.contains(&received) {
            return Err(DropReason::ReplayedToken);
        }
        if self.table.len() >= self.config.max_connections {
            let reason = DenyReason::Full;
            self.queue_reply(from, Reply::Denied { nonce, reason })?;
            self.counters.handshake_denials += 1;
            return Ok(None);
        }
        self.replay.used.insert(received);
        self.replay
            .expiry
            .push_back((timestamp.saturating_add(self.token_lifetime_ms()), received));
        let mut conn = Connection::server(now, from, nonce, protection, &self.config);
        conn.keepalive_anchor = self.keepalive_anchor;
        let id = self.table.insert(conn);
        self.timers.reserve_for(&self.table);
        self.counters.connections_opened += 1;
        self.events.push_back(Event::Connected {
            conn: id,
            peer: from,
            role: Role::Server,
        });
        self.reschedule(id, now);
        Ok(Some(id))
    }

    /// Why a client with message-layer `fingerprint` must be denied now, if it must: a
    /// fingerprint other than ours (its payloads would be framed otherwise), or no room.
    pub(super) fn deny_reason(&self, fingerprint: u64) -> Option<DenyReason> {
        if fingerprint != self.config.message_fingerprint {
            Some(DenyReason::ChannelMismatch)
        } else if self.table.len() >= self.config.max_connections {
            Some(DenyReason::Full)
        } else {
            None
        }
    }

    /// The client-side connection with `from` whose session is `nonce`.
    pub(super) fn client_attempt(
        &mut self,
        from: SocketAddr,
        nonce: u64,
    ) -> Result<ConnectionId, DropReason> {
        let id = self.table.by_addr(from).ok_or(DropReason::UnknownPeer)?;
        let conn = self.table.get(id).ok_or(DropReason::UnknownPeer)?;
        if conn.role != Role::Client {
            return Err(DropReason::Unexpected);
        }
        if conn.session != nonce {
            return Err(DropReason::Mismatch);
        }
        Ok(id)
    }

    pub(super) fn on_challenge(
        &mut self,
        now: Instant,
        from: SocketAddr,
        nonce: u64,
        timestamp: u64,
        token: [u8; TOKEN_LEN],
    ) -> Result<(), DropReason> {
        let id = self.client_attempt(from, nonce)?;
        let (conn, cx) = self.parts(id).ok_or(DropReason::UnknownPeer)?;
        if !conn.on_challenge(now, cx.config.protocol_id, timestamp, token) {
            // Our retried requests earned more challenges: the first one is in use.
            cx.counters.handshake_duplicates += 1;
        }
        self.reschedule(id, now);
        Ok(())
    }

    pub(super) fn on_accept(
        &mut self,
        now: Instant,
        from: SocketAddr,
        nonce: u64,
    ) -> Result<(), DropReason> {
        let id = self.client_attempt(from, nonce)?;
        let (conn, mut cx) = self.parts(id).ok_or(DropReason::UnknownPeer)?;
        if conn.is_secure_client() {
            // Secure mode's accept carries a tag (`on_secure_accept`); a plain one is forged.
            return Err(DropReason::WrongModeHandshake);
        }
        if !conn.on_accept(now, &mut cx)? {
            cx.counters.handshake_duplicates += 1;
        }
        self.reschedule(id, now);
        Ok(())
    }

    pub(super) fn on_denied(
        &mut self,
        from: SocketAddr,
        nonce: u64,
        reason: DenyReason,
    ) -> Result<(), DropReason> {
        let id = self.client_attempt(from, nonce)?;
        if self.table.get(id).is_some_and(Connection::is_connected) {
            return Err(DropReason::Unexpected);
        }
        let reason = match reason {
            DenyReason::ChannelMismatch => CloseReason::ChannelMismatch,
            DenyReason::Full => CloseReason::ConnectionDenied,
        };
        self.end(id, reason);
        Ok(())
    }

    pub(super) fn queue_reply(&mut self, to: SocketAddr, reply: Reply) -> Result<(), DropReason> {
        if self.replies.len() >= self.config.max_queued_replies {
            return Err(DropReason::ReplyQueueFull);
        }
        self.replies.push_back((to, reply));
        Ok(())
    }

    /// Encodes the next queued reply (challenge, denial, disconnect copy), if any.
    pub(super) fn poll_reply(&mut self, out: &mut [u8]) -> Option<Transmit> {
        let (destination, reply) = self.replies.pop_front()?;
        let id = self.config.protocol_id;
        let encoded = match reply {
            Reply::Challenge {
                nonce,
                timestamp,
                token,
            } => WirePacket::Challenge {
                nonce,
                timestamp,
                token,
            }
            .encode(id, out),
            Reply::Denied { nonce, reason } => WirePacket::Denied { nonce, reason }.encode(id, out),
            Reply::Disconnect {
                header,
                seq,
                session,
                protection,
                copies,
            } => {
                if copies > 1 {
                    let rest = Reply::Disconnect {
                        header,
                        seq,
                        session,
                        protection,
                        copies: copies - 1,
                    };
                    self.replies.push_front((destination, rest));
                }
                self.counters.disconnects_sent += 1;
                WirePacket::Disconnect { header, session }
                    .encode(id, out)
                    .inspect(|&len| protection.seal(seq, &mut out[..len]))
            }
        };
        match encoded {
            Ok(len) => Some(Transmit {
                destination,
                len,
                packet_id: None,
            }),
            Err(_) => {
                self.counters.replies_dropped += 1;
                None
            }
        }
    }
}
