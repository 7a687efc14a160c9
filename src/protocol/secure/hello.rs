//! The secure handshake's two client packets, which carry a connect token's request part
//! (everything a server needs to open it) after the client's nonce and channel fingerprint.
//!
//! | bytes | field |
//! | --- | --- |
//! | 0..5 | prefix (protocol id, type `0x06` request or `0x07` response) |
//! | 5..13 | client nonce (the session), big-endian |
//! | 13..21 | channel fingerprint, big-endian (the same place as in the plain request) |
//! | 21..29 | token expire timestamp (Unix seconds), big-endian |
//! | 29..53 | token nonce |
//! | 53..1077 | sealed private part |
//! | response only: 1077..1085 | challenge timestamp, big-endian |
//! | response only: 1085..1101 | challenge token |
//! | response only: 1101..1117 | tag: the client proves it holds the token's keys |
//! | to 1200 | zeros |

use crate::protocol::wire::{DecodeError, NonCanonical, HANDSHAKE_PADDED_LEN, MAC_LEN, TOKEN_LEN};

use super::private::SEALED_LEN;
use super::TOKEN_NONCE_LEN;

/// End of the fields a request and a response share.
pub(crate) const HELLO_END: usize = 53 + SEALED_LEN;
/// Offset of the response's tag: it covers every byte before it.
pub(crate) const RESPONSE_TAG_OFFSET: usize = HELLO_END + 8 + TOKEN_LEN;
const RESPONSE_END: usize = RESPONSE_TAG_OFFSET + MAC_LEN;

/// A connect token's request part, as a secure request or response carries it (the sealed
/// part borrowed from the datagram).
///
/// ```
/// use gudp::protocol::wire::{decode, WirePacket, DEFAULT_PROTOCOL_ID};
/// use gudp::secure::SecureHello;
/// let sealed = [7u8; 1024];
/// let hello = SecureHello { nonce: 1, fingerprint: 2, expire_timestamp: 3, token_nonce: [4; 24], sealed: &sealed };
/// let mut buf = [0u8; 1200];
/// let n = WirePacket::SecureRequest(hello).encode(DEFAULT_PROTOCOL_ID, &mut buf).unwrap();
/// assert_eq!(n, 1200);
/// assert_eq!(decode(DEFAULT_PROTOCOL_ID, &buf), Ok(WirePacket::SecureRequest(hello)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecureHello<'a> {
    /// Random per-attempt value chosen by the client (the session).
    pub nonce: u64,
    /// The client's channel fingerprint (as in the plain request).
    pub fingerprint: u64,
    /// The token's expiry, Unix seconds.
    pub expire_timestamp: u64,
    /// The token's nonce.
    pub token_nonce: [u8; TOKEN_NONCE_LEN],
    /// The token's sealed private part.
    pub sealed: &'a [u8; SEALED_LEN],
}

fn u64_at(d: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(d[at..at + 8].try_into().expect("8 bytes"))
}

impl<'a> SecureHello<'a> {
    /// Reads the shared fields of a datagram the caller checked is 1,200 bytes, and checks
    /// that everything after `end` is zeros.
    pub(crate) fn decode(d: &'a [u8], end: usize) -> Result<Self, DecodeError> {
        debug_assert_eq!(d.len(), HANDSHAKE_PADDED_LEN);
        if d[end..].iter().any(|&b| b != 0) {
            return Err(DecodeError::NonCanonical(NonCanonical::Padding));
        }
        Ok(Self {
            nonce: u64_at(d, 5),
            fingerprint: u64_at(d, 13),
            expire_timestamp: u64_at(d, 21),
            token_nonce: d[29..53].try_into().expect("24 bytes"),
            sealed: d[53..HELLO_END].try_into().expect("1024 bytes"),
        })
    }

    /// Writes the shared fields after the prefix of a 1,200-byte `out`, zeros after them.
    pub(crate) fn encode(&self, out: &mut [u8]) {
        out[5..13].copy_from_slice(&self.nonce.to_be_bytes());
        out[13..21].copy_from_slice(&self.fingerprint.to_be_bytes());
        out[21..29].copy_from_slice(&self.expire_timestamp.to_be_bytes());
        out[29..53].copy_from_slice(&self.token_nonce);
        out[53..HELLO_END].copy_from_slice(self.sealed);
        out[HELLO_END..].fill(0);
    }
}

/// Decodes a secure response's fields after the shared ones: timestamp, token, tag.
pub(crate) fn decode_response(
    d: &[u8],
) -> Result<(SecureHello<'_>, u64, [u8; TOKEN_LEN], [u8; MAC_LEN]), DecodeError> {
    let hello = SecureHello::decode(d, RESPONSE_END)?;
    let token = d[HELLO_END + 8..RESPONSE_TAG_OFFSET]
        .try_into()
        .expect("16 bytes");
    let tag = d[RESPONSE_TAG_OFFSET..RESPONSE_END]
        .try_into()
        .expect("16 bytes");
    Ok((hello, u64_at(d, HELLO_END), token, tag))
}

/// Writes a secure response's fields after the shared ones (the tag as given).
pub(crate) fn encode_response(
    hello: &SecureHello<'_>,
    timestamp: u64,
    token: &[u8; TOKEN_LEN],
    tag: &[u8; MAC_LEN],
    out: &mut [u8],
) {
    hello.encode(out);
    out[HELLO_END..HELLO_END + 8].copy_from_slice(&timestamp.to_be_bytes());
    out[HELLO_END + 8..RESPONSE_TAG_OFFSET].copy_from_slice(token);
    out[RESPONSE_TAG_OFFSET..RESPONSE_END].copy_from_slice(tag);
}

/// The vectors of docs/protocol.md §12.3.
#[cfg(test)]
mod tests {
    use crate::protocol::wire::{decode, WirePacket, DEFAULT_PROTOCOL_ID};

    use super::*;
    use crate::test_hex::to_hex as hex;

    fn squeeze(s: &str) -> String {
        s.split_whitespace().collect()
    }

    #[test]
    fn secure_handshake_vectors() {
        let sealed = [0xab; SEALED_LEN];
        let hello = SecureHello {
            nonce: 7,
            fingerprint: 0x0102_0304_0506_0708,
            expire_timestamp: 1_700_000_030,
            token_nonce: core::array::from_fn(|i| i as u8),
            sealed: &sealed,
        };
        let mut buf = [0u8; HANDSHAKE_PADDED_LEN];
        let request = WirePacket::SecureRequest(hello);
        assert_eq!(request.encode(DEFAULT_PROTOCOL_ID, &mut buf), Ok(1200));
        assert_eq!(hex(&buf[..53]), squeeze(REQUEST_HEAD));
        assert!(buf[53..HELLO_END].iter().all(|&b| b == 0xab));
        assert!(buf[HELLO_END..].iter().all(|&b| b == 0));
        assert_eq!(decode(DEFAULT_PROTOCOL_ID, &buf), Ok(request));
        let response = WirePacket::SecureResponse {
            hello,
            timestamp: 1500,
            token: [0xcd; TOKEN_LEN],
            tag: [0xef; MAC_LEN],
        };
        assert_eq!(response.encode(DEFAULT_PROTOCOL_ID, &mut buf), Ok(1200));
        assert_eq!(buf[4], 0x07);
        assert_eq!(hex(&buf[HELLO_END..RESPONSE_END]), squeeze(RESPONSE_TAIL));
        assert!(buf[RESPONSE_END..].iter().all(|&b| b == 0));
        assert_eq!(decode(DEFAULT_PROTOCOL_ID, &buf), Ok(response));
        let accept = WirePacket::SecureAccept {
            nonce: 7,
            tag: [0xef; MAC_LEN],
        };
        let n = accept.encode(DEFAULT_PROTOCOL_ID, &mut buf).unwrap();
        assert_eq!(hex(&buf[..n]), squeeze(ACCEPT));
        assert_eq!(decode(DEFAULT_PROTOCOL_ID, &buf[..n]), Ok(accept));
        // Padding must be zeros.
        response.encode(DEFAULT_PROTOCOL_ID, &mut buf).unwrap();
        buf[1199] = 1;
        assert!(decode(DEFAULT_PROTOCOL_ID, &buf).is_err());
    }

    const REQUEST_HEAD: &str = "47554402 06 0000000000000007 0102030405060708 000000006553f11e
                                000102030405060708090a0b0c0d0e0f1011121314151617";
    const RESPONSE_TAIL: &str = "00000000000005dc cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd
                                 efefefefefefefefefefefefefefefef";
    const ACCEPT: &str = "47554402 08 0000000000000007 efefefefefefefefefefefefefefefef";
}
