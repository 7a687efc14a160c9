//! The client's side of secure mode, on the endpoint: connecting with a token.

use std::time::Instant;

use super::conn::{ClientToken, SecureSide};
use super::ConnectToken;
use crate::protocol::endpoint::Endpoint;
use crate::protocol::{ConnectRefused, ConnectionId};
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
