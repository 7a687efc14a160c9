//! What a secure-mode connection keeps of its token: the client the parts it sends in its
//! requests and the keys, the server what its application may ask about the client.

use super::hello::SecureHello;
use super::key::KEY_LEN;
use super::private::SEALED_LEN;
use super::{ConnectToken, TokenInfo, TOKEN_NONCE_LEN};

/// A connection's side of secure mode.
#[derive(Debug)]
pub(crate) enum SecureSide {
    Client(Box<ClientToken>),
    Server(Box<TokenInfo>),
}

/// The parts of a connect token a client needs to connect.
pub(crate) struct ClientToken {
    expire_timestamp: u64,
    token_nonce: [u8; TOKEN_NONCE_LEN],
    sealed: [u8; SEALED_LEN],
    pub(crate) client_to_server_key: [u8; KEY_LEN],
    pub(crate) server_to_client_key: [u8; KEY_LEN],
}

impl std::fmt::Debug for ClientToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientToken { .. }") // keys stay out of logs
    }
}

impl ClientToken {
    pub(crate) fn new(token: &ConnectToken) -> Self {
        let (c2s, s2c) = token.keys();
        Self {
            expire_timestamp: token.timestamps().1,
            token_nonce: *token.nonce(),
            sealed: *token.sealed(),
            client_to_server_key: *c2s,
            server_to_client_key: *s2c,
        }
    }

    /// The request part for a request or response with this session and fingerprint.
    pub(crate) fn hello(&self, nonce: u64, fingerprint: u64) -> SecureHello<'_> {
        SecureHello {
            nonce,
            fingerprint,
            expire_timestamp: self.expire_timestamp,
            token_nonce: self.token_nonce,
            sealed: &self.sealed,
        }
    }
}
