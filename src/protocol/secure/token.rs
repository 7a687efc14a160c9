//! Connect tokens in netcode 1.02's layout: minting (the backend), serializing to the
//! 2,048 bytes a client is handed, and parsing them back (the client).
//!
//! Every integer in a token is little-endian, as netcode writes it, so that a backend that
//! already mints netcode 1.02 tokens mints GUDP's (`docs/protocol.md` §12.2).

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use super::address::{self, MAX_SERVER_ADDRESSES};
use super::key::{random_bytes, PrivateKey, KEY_LEN};
use super::private::{self, SEALED_LEN};
use super::TokenError;

/// Bytes of a serialized connect token (netcode's fixed size, zero-padded).
///
/// ```
/// assert_eq!(gudp::secure::CONNECT_TOKEN_LEN, 2048);
/// ```
pub const CONNECT_TOKEN_LEN: usize = 2048;
/// The version string that starts every token and is bound into its sealed part:
/// netcode 1.02's, so netcode backends' tokens are GUDP's.
///
/// ```
/// assert_eq!(gudp::secure::VERSION_INFO, b"NETCODE 1.02\0");
/// ```
pub const VERSION_INFO: &[u8; 13] = b"NETCODE 1.02\0";
/// Bytes of a token nonce (XChaCha20-Poly1305's extended nonce).
///
/// ```
/// assert_eq!(gudp::secure::TOKEN_NONCE_LEN, 24);
/// ```
pub const TOKEN_NONCE_LEN: usize = 24;
/// Bytes of a token's user data, opaque to GUDP and handed to the server's application.
///
/// ```
/// assert_eq!(gudp::secure::USER_DATA_LEN, 256);
/// ```
pub const USER_DATA_LEN: usize = 256;

/// What a backend decides about one token.
///
/// ```
/// use gudp::secure::TokenParams;
/// let mut params = TokenParams::new(0x4755_4402, 77, vec!["127.0.0.1:40000".parse().unwrap()]);
/// params.lifetime_seconds = 45;
/// params.user_data[..5].copy_from_slice(b"alice");
/// assert_eq!(params.timeout_seconds, 10);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenParams {
    /// The game's protocol id: a server accepts only tokens minted for its own
    /// (GUDP's protocol id, [`Config::protocol_id`](crate::protocol::Config::protocol_id),
    /// widened to the 64 bits netcode uses).
    pub protocol_id: u64,
    /// Who the client is, as the backend knows it; the server's application reads it.
    pub client_id: u64,
    /// The servers the token is valid for, tried by the client in this order (1 to
    /// [`MAX_SERVER_ADDRESSES`]).
    pub server_addresses: Vec<SocketAddr>,
    /// Seconds since the Unix epoch at minting (default: the system clock's now).
    pub create_timestamp: u64,
    /// Seconds from creation until a server refuses the token (default 30).
    pub lifetime_seconds: u64,
    /// netcode's connection timeout in seconds, carried for netcode backends (default 10);
    /// a GUDP connection times out after its [`Config::idle_timeout`](crate::protocol::Config::idle_timeout).
    pub timeout_seconds: i32,
    /// Opaque bytes for the server's application (zeros by default).
    pub user_data: [u8; USER_DATA_LEN],
}

impl TokenParams {
    /// Parameters for `client_id` on `server_addresses`, created now, valid for 30 s.
    ///
    /// ```
    /// use gudp::secure::TokenParams;
    /// let params = TokenParams::new(1, 2, vec!["127.0.0.1:9".parse().unwrap()]);
    /// assert_eq!((params.client_id, params.lifetime_seconds), (2, 30));
    /// ```
    pub fn new(protocol_id: u64, client_id: u64, server_addresses: Vec<SocketAddr>) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self {
            protocol_id,
            client_id,
            server_addresses,
            create_timestamp: now,
            lifetime_seconds: 30,
            timeout_seconds: 10,
            user_data: [0; USER_DATA_LEN],
        }
    }
}

/// A token's random parts: its nonce and the two per-direction keys. [`ConnectToken::mint`]
/// draws them from the operating system; a test vector fixes them.
///
/// ```
/// use gudp::secure::TokenSecrets;
/// let a = TokenSecrets::generate().unwrap();
/// assert_ne!(a.client_to_server_key, a.server_to_client_key);
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenSecrets {
    /// The XChaCha20-Poly1305 nonce that seals the private part (unique per token).
    pub nonce: [u8; TOKEN_NONCE_LEN],
    /// Key of the client → server direction.
    pub client_to_server_key: [u8; KEY_LEN],
    /// Key of the server → client direction.
    pub server_to_client_key: [u8; KEY_LEN],
}

impl std::fmt::Debug for TokenSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSecrets { .. }")
    }
}

impl TokenSecrets {
    /// Secrets from the operating system's randomness.
    ///
    /// # Errors
    ///
    /// [`TokenError::Random`] if the operating system has no randomness to give.
    ///
    /// ```
    /// use gudp::secure::TokenSecrets;
    /// assert_ne!(TokenSecrets::generate().unwrap(), TokenSecrets::generate().unwrap());
    /// ```
    pub fn generate() -> Result<Self, TokenError> {
        let mut s = Self::from_parts([0; TOKEN_NONCE_LEN], [0; KEY_LEN], [0; KEY_LEN]);
        for part in [
            &mut s.nonce[..],
            &mut s.client_to_server_key[..],
            &mut s.server_to_client_key[..],
        ] {
            random_bytes(part).map_err(|_| TokenError::Random)?;
        }
        Ok(s)
    }

    /// Secrets from given bytes (test vectors; a backend with its own generator).
    ///
    /// ```
    /// use gudp::secure::TokenSecrets;
    /// let s = TokenSecrets::from_parts([1; 24], [2; 32], [3; 32]);
    /// assert_eq!(s.nonce, [1; 24]);
    /// ```
    pub fn from_parts(
        nonce: [u8; TOKEN_NONCE_LEN],
        client_to_server_key: [u8; KEY_LEN],
        server_to_client_key: [u8; KEY_LEN],
    ) -> Self {
        Self {
            nonce,
            client_to_server_key,
            server_to_client_key,
        }
    }
}

/// A connect token: what a backend hands a client so that it may connect to the servers the
/// token lists, until it expires. Its private part (client id, keys, user data, server
/// addresses) is sealed with the [`PrivateKey`]; the rest is for the client.
///
/// ```
/// use gudp::secure::{ConnectToken, PrivateKey, TokenParams};
/// let key = PrivateKey::generate().unwrap();
/// let server = "127.0.0.1:40000".parse().unwrap();
/// let token = ConnectToken::mint(&key, &TokenParams::new(0x4755_4402, 7, vec![server])).unwrap();
/// let bytes = token.to_bytes(); // the 2,048 bytes the client is given
/// let parsed = ConnectToken::from_bytes(&bytes).unwrap();
/// assert_eq!(parsed, token);
/// assert_eq!(parsed.server_addresses(), &[server]);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectToken {
    protocol_id: u64,
    create_timestamp: u64,
    expire_timestamp: u64,
    nonce: [u8; TOKEN_NONCE_LEN],
    sealed: [u8; SEALED_LEN],
    timeout_seconds: i32,
    server_addresses: Vec<SocketAddr>,
    client_to_server_key: [u8; KEY_LEN],
    server_to_client_key: [u8; KEY_LEN],
}

impl std::fmt::Debug for ConnectToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectToken")
            .field("protocol_id", &self.protocol_id)
            .field("create_timestamp", &self.create_timestamp)
            .field("expire_timestamp", &self.expire_timestamp)
            .field("server_addresses", &self.server_addresses)
            .finish_non_exhaustive() // keys stay out of logs
    }
}

impl ConnectToken {
    /// Mints a token under `key` with fresh random secrets.
    ///
    /// # Errors
    ///
    /// [`TokenError::AddressCount`] for no address or more than [`MAX_SERVER_ADDRESSES`];
    /// [`TokenError::Lifetime`] if the expiry overflows; [`TokenError::Random`].
    ///
    /// ```
    /// use gudp::secure::{ConnectToken, PrivateKey, TokenError, TokenParams};
    /// let key = PrivateKey::from_bytes([1; 32]);
    /// let none = TokenParams::new(1, 2, vec![]);
    /// assert_eq!(ConnectToken::mint(&key, &none).unwrap_err(), TokenError::AddressCount(0));
    /// ```
    pub fn mint(key: &PrivateKey, params: &TokenParams) -> Result<Self, TokenError> {
        Self::mint_with(key, params, &TokenSecrets::generate()?)
    }

    /// Mints a token under `key` with the given secrets: for test vectors and for a backend
    /// that draws randomness its own way. Never reuse secrets for two tokens.
    ///
    /// # Errors
    ///
    /// As [`mint`](Self::mint), less the randomness.
    ///
    /// ```
    /// use gudp::secure::{ConnectToken, PrivateKey, TokenParams, TokenSecrets};
    /// let key = PrivateKey::from_bytes([1; 32]);
    /// let params = TokenParams::new(1, 2, vec!["127.0.0.1:9".parse().unwrap()]);
    /// let secrets = TokenSecrets::from_parts([3; 24], [4; 32], [5; 32]);
    /// let a = ConnectToken::mint_with(&key, &params, &secrets).unwrap();
    /// let b = ConnectToken::mint_with(&key, &params, &secrets).unwrap();
    /// assert_eq!(a.to_bytes(), b.to_bytes()); // deterministic
    /// ```
    pub fn mint_with(
        key: &PrivateKey,
        params: &TokenParams,
        secrets: &TokenSecrets,
    ) -> Result<Self, TokenError> {
        let count = params.server_addresses.len();
        if count == 0 || count > MAX_SERVER_ADDRESSES {
            return Err(TokenError::AddressCount(count as u32));
        }
        let expire_timestamp = params
            .create_timestamp
            .checked_add(params.lifetime_seconds)
            .ok_or(TokenError::Lifetime)?;
        let sealed = private::seal(key, params, expire_timestamp, secrets);
        Ok(Self {
            protocol_id: params.protocol_id,
            create_timestamp: params.create_timestamp,
            expire_timestamp,
            nonce: secrets.nonce,
            sealed,
            timeout_seconds: params.timeout_seconds,
            server_addresses: params.server_addresses.clone(),
            client_to_server_key: secrets.client_to_server_key,
            server_to_client_key: secrets.server_to_client_key,
        })
    }

    /// The token's 2,048 bytes (netcode 1.02's public connect token):
    ///
    /// | bytes | field |
    /// | --- | --- |
    /// | 0..13 | version info `"NETCODE 1.02\0"` |
    /// | 13..21 | protocol id |
    /// | 21..29 | create timestamp (Unix seconds) |
    /// | 29..37 | expire timestamp (Unix seconds) |
    /// | 37..61 | nonce |
    /// | 61..1085 | sealed private part |
    /// | 1085..1089 | timeout seconds (i32) |
    /// | 1089.. | address count (u32), addresses, client → server key, server → client key, zeros |
    ///
    /// ```
    /// use gudp::secure::{ConnectToken, PrivateKey, TokenParams, CONNECT_TOKEN_LEN};
    /// let key = PrivateKey::from_bytes([1; 32]);
    /// let token = ConnectToken::mint(&key, &TokenParams::new(1, 2, vec!["127.0.0.1:9".parse().unwrap()])).unwrap();
    /// let bytes = token.to_bytes();
    /// assert_eq!(bytes.len(), CONNECT_TOKEN_LEN);
    /// assert_eq!(&bytes[..13], b"NETCODE 1.02\0");
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8; CONNECT_TOKEN_LEN];
        out[0..13].copy_from_slice(VERSION_INFO);
        out[13..21].copy_from_slice(&self.protocol_id.to_le_bytes());
        out[21..29].copy_from_slice(&self.create_timestamp.to_le_bytes());
        out[29..37].copy_from_slice(&self.expire_timestamp.to_le_bytes());
        out[37..61].copy_from_slice(&self.nonce);
        out[61..1085].copy_from_slice(&self.sealed);
        out[1085..1089].copy_from_slice(&self.timeout_seconds.to_le_bytes());
        let mut at = 1089 + address::write_list(&self.server_addresses, &mut out[1089..]);
        out[at..at + KEY_LEN].copy_from_slice(&self.client_to_server_key);
        at += KEY_LEN;
        out[at..at + KEY_LEN].copy_from_slice(&self.server_to_client_key);
        out
    }

    /// Parses a token's 2,048 bytes. Checks the framing only: whether the sealed part is
    /// authentic is for the server to find out (only it has the key).
    ///
    /// # Errors
    ///
    /// [`TokenError::Length`], [`TokenError::Version`], [`TokenError::AddressCount`],
    /// [`TokenError::AddressType`], [`TokenError::Truncated`], [`TokenError::Padding`] (its
    /// zero padding is not zeros), [`TokenError::Lifetime`] (expires before it was created).
    ///
    /// ```
    /// use gudp::secure::{ConnectToken, TokenError};
    /// assert_eq!(ConnectToken::from_bytes(&[0; 10]), Err(TokenError::Length { len: 10 }));
    /// assert_eq!(ConnectToken::from_bytes(&[0; 2048]), Err(TokenError::Version));
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TokenError> {
        if bytes.len() != CONNECT_TOKEN_LEN {
            return Err(TokenError::Length { len: bytes.len() });
        }
        if &bytes[0..13] != VERSION_INFO {
            return Err(TokenError::Version);
        }
        let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        let (create_timestamp, expire_timestamp) = (u64_at(21), u64_at(29));
        if expire_timestamp < create_timestamp {
            return Err(TokenError::Lifetime);
        }
        let mut server_addresses = Vec::new();
        let mut at = 1089 + address::read_list(&bytes[1089..], |a| server_addresses.push(a))?;
        let mut key = || {
            let k: [u8; KEY_LEN] = bytes[at..at + KEY_LEN].try_into().expect("in bounds");
            at += KEY_LEN;
            k
        };
        // At most 4 + 32 * 19 address bytes: the keys always fit in the 2,048.
        let (client_to_server_key, server_to_client_key) = (key(), key());
        if bytes[at..].iter().any(|&b| b != 0) {
            return Err(TokenError::Padding);
        }
        Ok(Self {
            protocol_id: u64_at(13),
            create_timestamp,
            expire_timestamp,
            nonce: bytes[37..61].try_into().expect("24 bytes"),
            sealed: bytes[61..1085].try_into().expect("1024 bytes"),
            timeout_seconds: i32::from_le_bytes(bytes[1085..1089].try_into().expect("4 bytes")),
            server_addresses,
            client_to_server_key,
            server_to_client_key,
        })
    }

    /// The protocol id it was minted for.
    ///
    /// ```
    /// # use gudp::secure::*;
    /// # let key = PrivateKey::from_bytes([1; 32]);
    /// let token = ConnectToken::mint(&key, &TokenParams::new(9, 2, vec!["127.0.0.1:9".parse().unwrap()])).unwrap();
    /// assert_eq!(token.protocol_id(), 9);
    /// ```
    pub fn protocol_id(&self) -> u64 {
        self.protocol_id
    }

    /// When it was minted and when it expires, in seconds since the Unix epoch.
    ///
    /// ```
    /// # use gudp::secure::*;
    /// # let key = PrivateKey::from_bytes([1; 32]);
    /// let mut params = TokenParams::new(9, 2, vec!["127.0.0.1:9".parse().unwrap()]);
    /// params.create_timestamp = 1000;
    /// let token = ConnectToken::mint(&key, &params).unwrap();
    /// assert_eq!(token.timestamps(), (1000, 1030));
    /// ```
    pub fn timestamps(&self) -> (u64, u64) {
        (self.create_timestamp, self.expire_timestamp)
    }

    /// The servers it is valid for, in the order a client tries them.
    ///
    /// ```
    /// # use gudp::secure::*;
    /// # let key = PrivateKey::from_bytes([1; 32]);
    /// let servers = vec!["127.0.0.1:9".parse().unwrap(), "127.0.0.1:10".parse().unwrap()];
    /// let token = ConnectToken::mint(&key, &TokenParams::new(9, 2, servers.clone())).unwrap();
    /// assert_eq!(token.server_addresses(), &servers[..]);
    /// ```
    pub fn server_addresses(&self) -> &[SocketAddr] {
        &self.server_addresses
    }

    /// netcode's timeout, in seconds, as minted.
    ///
    /// ```
    /// # use gudp::secure::*;
    /// # let key = PrivateKey::from_bytes([1; 32]);
    /// let token = ConnectToken::mint(&key, &TokenParams::new(9, 2, vec!["127.0.0.1:9".parse().unwrap()])).unwrap();
    /// assert_eq!(token.timeout_seconds(), 10);
    /// ```
    pub fn timeout_seconds(&self) -> i32 {
        self.timeout_seconds
    }

    pub(crate) fn nonce(&self) -> &[u8; TOKEN_NONCE_LEN] {
        &self.nonce
    }

    pub(crate) fn sealed(&self) -> &[u8; SEALED_LEN] {
        &self.sealed
    }

    pub(crate) fn keys(&self) -> (&[u8; KEY_LEN], &[u8; KEY_LEN]) {
        (&self.client_to_server_key, &self.server_to_client_key)
    }
}
