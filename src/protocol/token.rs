//! Stateless challenge tokens.
//!
//! A token is SipHash-2-4 with 128-bit output, keyed by the server endpoint's 16-byte secret,
//! over a fixed 39-byte message:
//!
//! | bytes | field |
//! | --- | --- |
//! | 0..4 | protocol id, big-endian |
//! | 4 | address family: 4 or 6 |
//! | 5..21 | IP address: IPv6 octets, or IPv4 octets followed by 12 zero bytes |
//! | 21..23 | UDP port, big-endian |
//! | 23..31 | timestamp (ms since the server's epoch), big-endian |
//! | 31..39 | client nonce, big-endian |
//!
//! In secure mode the message is followed by the 16-byte tag of the connect token's sealed
//! part (`protocol::secure`), binding the challenge to one token.
//!
//! SipHash is a pseudo-random function designed for exactly this: authenticating short
//! messages under a secret key (it was built to resist hash-flooding, where the attacker sees
//! outputs and chooses inputs). Without the key, producing a valid token for a new message
//! means guessing 128 bits. The server keeps no state per token, so a request costs it one
//! MAC computation and a fixed 37-byte reply.

use std::net::{IpAddr, SocketAddr};

use siphasher::sip128::{Hasher128, SipHasher24};

use super::wire::TOKEN_LEN;

const MESSAGE_LEN: usize = 39;

/// Computes the token for a client address, timestamp and nonce.
pub(crate) fn compute(
    secret: &[u8; 16],
    protocol_id: u32,
    client: SocketAddr,
    timestamp: u64,
    nonce: u64,
) -> [u8; TOKEN_LEN] {
    compute_bound(secret, protocol_id, client, timestamp, nonce, &[])
}

/// The token of a secure-mode challenge: the same message followed by `binding`, the tag
/// of the connect token's sealed part, so that a challenge answers one connect token only.
pub(crate) fn compute_bound(
    secret: &[u8; 16],
    protocol_id: u32,
    client: SocketAddr,
    timestamp: u64,
    nonce: u64,
    binding: &[u8],
) -> [u8; TOKEN_LEN] {
    let mut m = [0u8; MESSAGE_LEN];
    m[0..4].copy_from_slice(&protocol_id.to_be_bytes());
    match client.ip() {
        IpAddr::V4(ip) => {
            m[4] = 4;
            m[5..9].copy_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            m[4] = 6;
            m[5..21].copy_from_slice(&ip.octets());
        }
    }
    m[21..23].copy_from_slice(&client.port().to_be_bytes());
    m[23..31].copy_from_slice(&timestamp.to_be_bytes());
    m[31..39].copy_from_slice(&nonce.to_be_bytes());
    let mut h = SipHasher24::new_with_key(secret);
    std::hash::Hasher::write(&mut h, &m);
    std::hash::Hasher::write(&mut h, binding);
    h.finish128().as_bytes()
}

/// Compares a received token with the expected one in time independent of where they differ.
pub(crate) fn verify(expected: &[u8; TOKEN_LEN], received: &[u8; TOKEN_LEN]) -> bool {
    expected
        .iter()
        .zip(received)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// Derives a client nonce from the secret and a counter: unpredictable to anyone without
/// the secret, and different for every connection attempt of this endpoint.
pub(crate) fn nonce(secret: &[u8; 16], counter: u64, server: SocketAddr) -> u64 {
    let t = compute(secret, 0, server, counter, u64::MAX);
    u64::from_be_bytes([t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_binds_every_input() {
        let key = [7u8; 16];
        let a: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        let t = compute(&key, 1, a, 1000, 5);
        assert!(verify(&t, &compute(&key, 1, a, 1000, 5)));
        assert!(!verify(&t, &compute(&[8u8; 16], 1, a, 1000, 5)));
        assert!(!verify(&t, &compute(&key, 2, a, 1000, 5)));
        assert!(!verify(
            &t,
            &compute(&key, 1, "10.0.0.1:4001".parse().unwrap(), 1000, 5)
        ));
        assert!(!verify(
            &t,
            &compute(&key, 1, "10.0.0.2:4000".parse().unwrap(), 1000, 5)
        ));
        assert!(!verify(
            &t,
            &compute(&key, 1, "[::a00:1]:4000".parse().unwrap(), 1000, 5)
        ));
        assert!(!verify(&t, &compute(&key, 1, a, 1001, 5)));
        assert!(!verify(&t, &compute(&key, 1, a, 1000, 6)));
    }

    #[test]
    fn known_answer() {
        // SipHash-2-4-128 of the 39-byte message for key 00..0f, protocol id 0x47554401,
        // 127.0.0.1:9000, timestamp 1500, nonce 7 (docs/protocol.md, "Test vectors").
        let key: [u8; 16] = core::array::from_fn(|i| i as u8);
        let t = compute(
            &key,
            0x4755_4401,
            "127.0.0.1:9000".parse().unwrap(),
            1500,
            7,
        );
        let hex: String = t.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, KNOWN);
    }

    const KNOWN: &str = "5f59b6e747c59aedb643a74f3861e6fe";

    #[test]
    fn known_answer_from_the_spec_message() {
        // The message and byte orders as docs/protocol.md §5.3 and §8 spell them out.
        let hex = "47554401047f0000010000000000000000000000002328\
                   00000000000005dc0000000000000007";
        let message: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(message.len(), MESSAGE_LEN);
        let key: [u8; 16] = core::array::from_fn(|i| i as u8);
        let mut h = SipHasher24::new_with_key(&key);
        std::hash::Hasher::write(&mut h, &message);
        let token: String = h
            .finish128()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(token, KNOWN);
    }

    #[test]
    fn siphash128_reference_vector() {
        // First vector of the SipHash reference implementation (vectors.h, 128-bit output):
        // key 00..0f, empty message.
        let key: [u8; 16] = core::array::from_fn(|i| i as u8);
        let h = SipHasher24::new_with_key(&key).finish128().as_bytes();
        let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "a3817f04ba25a8e66df67214c7550293");
    }

    #[test]
    fn nonces_differ_per_counter_and_server() {
        let key = [1u8; 16];
        let s: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        assert_ne!(nonce(&key, 0, s), nonce(&key, 1, s));
        assert_ne!(
            nonce(&key, 0, s),
            nonce(&key, 0, "10.0.0.1:4001".parse().unwrap())
        );
    }
}
