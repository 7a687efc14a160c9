//! The server's side of the secure handshake, on the endpoint: the stateless first step
//! (a secure request earns a challenge, and nothing is stored) and the response that
//! creates the connection. Each refusal has its own reason and counter.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use super::aead;
use super::conn::SecureSide;
use super::hello::{SecureHello, RESPONSE_TAG_OFFSET};
use super::private::{self, Opened, SEALED_LEN};
use super::{SecureServer, TokenInfo};
use crate::protocol::endpoint::Endpoint;
use crate::protocol::handshake::Reply;
use crate::protocol::protection::PacketProtection;
use crate::protocol::token;
use crate::protocol::wire::DenyReason;
use crate::protocol::wire::{MAC_LEN, TOKEN_LEN};
use crate::protocol::{ConnectionId, DropReason, Role};

/// A server endpoint's secure mode and the connect tokens that created its connections.
#[derive(Debug)]
pub(crate) struct SecureState {
    server: SecureServer,
    /// netcode's token entries: the tag of each sealed part that created a connection,
    /// the address it came from and when the token expires (Unix seconds).
    entries: HashMap<[u8; MAC_LEN], (SocketAddr, u64)>,
    /// The client id of every live connection (netcode's rule: one connection per client
    /// id). Kept by `Endpoint::end`, which removes a connection's id with the connection.
    pub(crate) clients: HashMap<u64, ConnectionId>,
    /// Entry count at which expired entries are next swept (twice the count after a sweep,
    /// so sweeping costs O(1) per entry).
    sweep_at: usize,
}

fn sealed_tag(sealed: &[u8; SEALED_LEN]) -> [u8; MAC_LEN] {
    sealed[SEALED_LEN - MAC_LEN..].try_into().expect("16 bytes")
}

impl Endpoint {
    /// Puts this endpoint's server side in secure mode: from now on it accepts only clients
    /// holding a valid connect token minted with `server.key` that lists
    /// `server.public_addr`, refuses the plain handshake
    /// ([`DropReason::WrongModeHandshake`]), and encrypts every packet of its connections.
    /// Feed it received datagrams with [`handle_datagram_mut`](Self::handle_datagram_mut).
    ///
    /// ```
    /// use gudp::protocol::{Config, Endpoint};
    /// use gudp::secure::{PrivateKey, SecureServer, UnixClock};
    /// let mut server = Endpoint::new(Config::default(), [2; 16]);
    /// let key = PrivateKey::generate().unwrap();
    /// server.set_secure(SecureServer::new(key, "127.0.0.1:40000".parse().unwrap(), UnixClock::system()));
    /// assert!(server.is_secure());
    /// ```
    pub fn set_secure(&mut self, server: SecureServer) {
        self.secure = Some(Box::new(SecureState {
            server,
            entries: HashMap::new(),
            clients: HashMap::new(),
            sweep_at: 64,
        }));
    }

    /// Whether [`set_secure`](Self::set_secure) put this endpoint in secure mode.
    ///
    /// ```
    /// use gudp::protocol::{Config, Endpoint};
    /// assert!(!Endpoint::new(Config::default(), [2; 16]).is_secure());
    /// ```
    pub fn is_secure(&self) -> bool {
        self.secure.is_some()
    }

    /// What the connect token of a secure-mode server connection says about its client;
    /// `None` for other connections and unknown ids.
    ///
    /// ```
    /// use gudp::protocol::{Config, ConnectionId, Endpoint};
    /// let mut client = Endpoint::new(Config::default(), [2; 16]);
    /// let conn = client.connect(std::time::Instant::now(), "127.0.0.1:9".parse().unwrap()).unwrap();
    /// assert!(client.token_info(conn).is_none()); // not a secure server connection
    /// ```
    pub fn token_info(&self, conn: ConnectionId) -> Option<&TokenInfo> {
        match self.table.get(conn)?.secure.as_ref()? {
            SecureSide::Server(info) => Some(info),
            SecureSide::Client(_) => None,
        }
    }

    /// Opens a request's connect token and checks it, cheapest first: expiry, the seal,
    /// this server in its list, no connection from another address made with it, no live
    /// connection with its client id.
    fn open_hello(
        &mut self,
        now: Instant,
        from: SocketAddr,
        hello: &SecureHello<'_>,
    ) -> Result<Opened, DropReason> {
        let protocol_id = u64::from(self.config.protocol_id);
        let state = self
            .secure
            .as_deref()
            .ok_or(DropReason::WrongModeHandshake)?;
        let unix_now = state.server.clock.seconds(now);
        if hello.expire_timestamp <= unix_now {
            return Err(DropReason::ConnectTokenExpired);
        }
        let opened = private::open(
            &state.server.key,
            protocol_id,
            hello.expire_timestamp,
            &hello.token_nonce,
            hello.sealed,
            state.server.public_addr,
        )
        .map_err(|_| DropReason::ConnectTokenForged)?;
        if !opened.lists_server {
            return Err(DropReason::ConnectTokenWrongServer);
        }
        let in_use = state
            .entries
            .get(&sealed_tag(hello.sealed))
            .is_some_and(|&(addr, expires)| addr != from && expires > unix_now);
        if in_use {
            return Err(DropReason::ConnectTokenInUse);
        }
        if state.clients.contains_key(&opened.info.client_id) {
            return Err(DropReason::ClientIdInUse);
        }
        Ok(opened)
    }

    /// The challenge token for a secure request: bound to the address, time and nonce as a
    /// plain one is, and to the connect token.
    fn secure_challenge(
        &self,
        from: SocketAddr,
        timestamp: u64,
        hello: &SecureHello<'_>,
    ) -> [u8; TOKEN_LEN] {
        let binding = sealed_tag(hello.sealed);
        token::compute_bound(
            &self.secret,
            self.config.protocol_id,
            from,
            timestamp,
            hello.nonce,
            &binding,
        )
    }

    pub(crate) fn on_secure_request(
        &mut self,
        now: Instant,
        from: SocketAddr,
        hello: SecureHello<'_>,
    ) -> Result<(), DropReason> {
        self.counters.handshake_requests += 1;
        if self.table.by_addr(from).is_some() {
            return Err(DropReason::AlreadyConnected);
        }
        self.open_hello(now, from, &hello)?;
        self.deny_or_challenge(
            now,
            from,
            hello.nonce,
            hello.fingerprint,
            |ep, timestamp| ep.secure_challenge(from, timestamp, &hello),
        )
    }

    #[allow(clippy::too_many_arguments)] // the response's fields, as decoded
    pub(crate) fn on_secure_response(
        &mut self,
        now: Instant,
        from: SocketAddr,
        hello: SecureHello<'_>,
        timestamp: u64,
        received: [u8; TOKEN_LEN],
        tag: [u8; MAC_LEN],
        datagram: &[u8],
    ) -> Result<(), DropReason> {
        self.counters.handshake_responses += 1;
        if self.secure.is_none() {
            return Err(DropReason::WrongModeHandshake);
        }
        let nonce = hello.nonce;
        if let Some(repeat) = self.repeated_response(now, from, nonce) {
            return repeat;
        }
        let expected = self.secure_challenge(from, timestamp, &hello);
        self.check_challenge(now, &expected, &received, timestamp)?;
        let opened = self.open_hello(now, from, &hello)?;
        let protection = PacketProtection::secure(
            Role::Server,
            &opened.client_to_server_key,
            &opened.server_to_client_key,
            nonce,
            timestamp,
        );
        let data = &datagram[..RESPONSE_TAG_OFFSET];
        let proof = protection.handshake_tag(false, aead::RESPONSE_SEQUENCE, data);
        if !proof.is_some_and(|proof| token::verify(&proof, &tag)) {
            return Err(DropReason::BadMac);
        }
        if hello.fingerprint != self.config.message_fingerprint {
            let reason = DenyReason::ChannelMismatch;
            self.queue_reply(from, Reply::Denied { nonce, reason })?;
            self.counters.handshake_denials += 1;
            return Ok(());
        }
        let Some(id) = self.admit(now, from, nonce, timestamp, received, protection)? else {
            return Ok(());
        };
        let client_id = opened.info.client_id;
        if let Some(conn) = self.table.get_mut(id) {
            conn.secure = Some(SecureSide::Server(Box::new(opened.info)));
        }
        let state = self.secure.as_deref_mut().expect("checked above");
        state.clients.insert(client_id, id);
        let unix_now = state.server.clock.seconds(now);
        if state.entries.len() >= state.sweep_at {
            state
                .entries
                .retain(|_, &mut (_, expires)| expires > unix_now);
            state.sweep_at = (2 * state.entries.len()).max(64);
        }
        state
            .entries
            .insert(sealed_tag(hello.sealed), (from, hello.expire_timestamp));
        Ok(())
    }
}
