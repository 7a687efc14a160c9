//! A token's private part: laid out as netcode 1.02 does, sealed with XChaCha20-Poly1305
//! under the backend's private key, opened by the server.
//!
//! | bytes (plaintext) | field |
//! | --- | --- |
//! | 0..8 | client id |
//! | 8..12 | timeout seconds (i32) |
//! | 12.. | address count (u32) and addresses |
//! | then | client → server key (32), server → client key (32), user data (256), zeros to 1,008 |
//!
//! The 1,008 bytes are encrypted and followed by their 16-byte tag; the associated data
//! is the version info, the protocol id and the expire timestamp (29 bytes), so none of
//! the public fields the server reads from a request can be changed either.

use std::net::SocketAddr;

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305};

use super::address;
use super::key::{PrivateKey, KEY_LEN};
use super::token::{TokenParams, TokenSecrets, TOKEN_NONCE_LEN, USER_DATA_LEN, VERSION_INFO};
use super::{TokenError, TokenInfo};

/// Bytes of the sealed private part: 1,008 encrypted and a 16-byte tag.
pub(crate) const SEALED_LEN: usize = 1024;
const PLAIN_LEN: usize = SEALED_LEN - 16;

fn associated_data(protocol_id: u64, expire_timestamp: u64) -> [u8; 29] {
    let mut ad = [0u8; 29];
    ad[..13].copy_from_slice(VERSION_INFO);
    ad[13..21].copy_from_slice(&protocol_id.to_le_bytes());
    ad[21..29].copy_from_slice(&expire_timestamp.to_le_bytes());
    ad
}

/// Seals the private part of a token with `params` and `secrets` (the caller checked the
/// address count).
pub(super) fn seal(
    key: &PrivateKey,
    params: &TokenParams,
    expire_timestamp: u64,
    secrets: &TokenSecrets,
) -> [u8; SEALED_LEN] {
    let mut out = [0u8; SEALED_LEN];
    out[0..8].copy_from_slice(&params.client_id.to_le_bytes());
    out[8..12].copy_from_slice(&params.timeout_seconds.to_le_bytes());
    let mut at = 12 + address::write_list(&params.server_addresses, &mut out[12..]);
    for part in [
        &secrets.client_to_server_key[..],
        &secrets.server_to_client_key[..],
        &params.user_data[..],
    ] {
        out[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    let ad = associated_data(params.protocol_id, expire_timestamp);
    let (plain, tag_out) = out.split_at_mut(PLAIN_LEN);
    let tag = XChaCha20Poly1305::new(key.as_bytes().into())
        .encrypt_in_place_detached(&secrets.nonce.into(), &ad, plain)
        .expect("1,008 bytes is far below the AEAD's limit");
    tag_out.copy_from_slice(&tag);
    out
}

/// What a server learns from a private part that opened.
#[derive(Clone)]
pub(crate) struct Opened {
    pub(crate) info: TokenInfo,
    pub(crate) client_to_server_key: [u8; KEY_LEN],
    pub(crate) server_to_client_key: [u8; KEY_LEN],
    /// Whether `server` (the address asked about) is among the token's servers.
    pub(crate) lists_server: bool,
}

/// Opens a sealed private part minted under `key` for `protocol_id` with this expiry and
/// nonce, and finds out whether it lists `server`. Allocates nothing.
pub(crate) fn open(
    key: &PrivateKey,
    protocol_id: u64,
    expire_timestamp: u64,
    nonce: &[u8; TOKEN_NONCE_LEN],
    sealed: &[u8; SEALED_LEN],
    server: SocketAddr,
) -> Result<Opened, TokenError> {
    let mut plain = [0u8; PLAIN_LEN];
    plain.copy_from_slice(&sealed[..PLAIN_LEN]);
    let ad = associated_data(protocol_id, expire_timestamp);
    XChaCha20Poly1305::new(key.as_bytes().into())
        .decrypt_in_place_detached(nonce.into(), &ad, &mut plain, sealed[PLAIN_LEN..].into())
        .map_err(|_| TokenError::Forged)?;
    let mut lists_server = false;
    let mut at = 12 + address::read_list(&plain[12..], |a| lists_server |= a == server)?;
    let mut take = |n: usize| {
        let part = &plain[at..at + n];
        at += n;
        part
    };
    // At most 12 + 4 + 32 * 19 + 64 + 256 = 948 bytes: always inside the 1,008.
    let client_to_server_key = take(KEY_LEN).try_into().expect("32 bytes");
    let server_to_client_key = take(KEY_LEN).try_into().expect("32 bytes");
    let user_data: [u8; USER_DATA_LEN] = take(USER_DATA_LEN).try_into().expect("256 bytes");
    Ok(Opened {
        info: TokenInfo {
            client_id: u64::from_le_bytes(plain[0..8].try_into().expect("8 bytes")),
            user_data,
        },
        client_to_server_key,
        server_to_client_key,
        lists_server,
    })
}
