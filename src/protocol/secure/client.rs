//! The client's side of secure mode, on the endpoint: connecting with a token.

use std::time::Instant;

use super::aead;
use super::conn::{ClientToken, SecureSide};
use super::ConnectToken;
use crate::protocol::endpoint::Endpoint;
use crate::protocol::token;
use crate::protocol::wire::MAC_LEN;
use crate::protocol::{ConnectRefused, ConnectionId, DropReason};
use std::net::SocketAddr;

impl Endpoint {
    /// Starts a secure connection attempt to `server`, one of the addresses `token` lists
    /// (a client tries them in order, each until its connect timeout: the daemon's
    /// [`connect_with_token`](crate::Daemon::connect_with_token) does). As
    /// [`connect`](Self::connect) otherwise; the connection's packets are encrypted with the
    /// token's keys. Feed it received datagrams with
    /// [`handle_datagram_mut`](Self::handle_datagram_mut).
    ///
    /// ```
    /// use std::time::Instant;
    /// use gudp::protocol::{Config, ConnectRefused, Endpoint};
    /// use gudp::secure::{ConnectToken, PrivateKey, TokenParams};
    /// let key = PrivateKey::generate().unwrap();
    /// let server = "127.0.0.1:40000".parse().unwrap();
    /// let token = ConnectToken::mint(&key, &TokenParams::new(1, 2, vec![server])).unwrap();
    /// let mut client = Endpoint::new(Config::default(), [1; 16]);
    /// let elsewhere = "127.0.0.1:40001".parse().unwrap();
    /// assert_eq!(client.connect_with_token(Instant::now(), elsewhere, &token), Err(ConnectRefused::NotInToken));
    /// assert!(client.connect_with_token(Instant::now(), server, &token).is_ok());
    /// ```
    pub fn connect_with_token(
        &mut self,
        now: Instant,
        server: SocketAddr,
        token: &ConnectToken,
    ) -> Result<ConnectionId, ConnectRefused> {
        if !token.server_addresses().contains(&server) {
            return Err(ConnectRefused::NotInToken);
        }
        let id = self.connect(now, server)?;
        if let Some(conn) = self.table.get_mut(id) {
            conn.secure = Some(SecureSide::Client(Box::new(ClientToken::new(token))));
        }
        Ok(id)
    }
}

impl Endpoint {
    /// Client: a secure accept, whose tag must be the server's under the token's keys.
    pub(crate) fn on_secure_accept(
        &mut self,
        now: Instant,
        from: SocketAddr,
        nonce: u64,
        tag: [u8; MAC_LEN],
        datagram: &[u8],
    ) -> Result<(), DropReason> {
        let id = self.client_attempt(from, nonce)?;
        let (conn, mut cx) = self.parts(id).ok_or(DropReason::UnknownPeer)?;
        if !conn.is_secure_client() {
            return Err(DropReason::WrongModeHandshake);
        }
        let data = &datagram[..datagram.len() - MAC_LEN];
        let expected = conn
            .protection
            .and_then(|keys| keys.handshake_tag(false, aead::ACCEPT_SEQUENCE, data))
            .ok_or(DropReason::Unexpected)?;
        if !token::verify(&expected, &tag) {
            return Err(DropReason::BadMac);
        }
        if !conn.on_accept(now, &mut cx)? {
            cx.counters.handshake_duplicates += 1;
        }
        self.reschedule(id, now);
        Ok(())
    }
}
