//! Per-connection packet protection: every connected packet, in both directions, carries a
//! 128-bit MAC that only the two ends of the handshake can compute.
//!
//! **Keys.** Both ends know the challenge token (16 bytes the server computed under its
//! secret and sent only to the client's address), the client's request nonce and the
//! challenge timestamp; an off-path attacker knows none of them. Each direction has its own
//! key, SipHash-2-4-128 keyed by the token over a 28-byte message (`docs/protocol.md` §4.4):
//!
//! | bytes | field |
//! | --- | --- |
//! | 0..8 | label: ASCII `"gudp c2s"` (client → server) or `"gudp s2c"` |
//! | 8..12 | protocol id, big-endian |
//! | 12..20 | client nonce (the session), big-endian |
//! | 20..28 | challenge timestamp, big-endian |
//!
//! **Tags.** The tag of a packet is SipHash-2-4-128 keyed by the sender's direction key over
//! the packet's 64-bit extended sequence (big-endian, not on the wire), then the datagram's
//! first 16 bytes (prefix, flags, sequence, acks, ack delay), then every byte after the tag
//! field (payload or session). The tag travels in bytes 16..32 of the connected header.
//! Including the extended sequence makes a packet captured one lap of the 16-bit sequence
//! earlier fail verification, however its wire sequence compares.
//!
//! A receiver verifies the tag before the packet touches any state. This is the seam an
//! authenticated-encryption mode will replace: whatever protects packets only needs the
//! extended sequence and the datagram.
//!
//! ```
//! use gudp::protocol::protection::PacketProtection;
//! use gudp::protocol::wire::{ConnectedHeader, WirePacket, DEFAULT_PROTOCOL_ID};
//! use gudp::protocol::Role;
//!
//! let (token, nonce, timestamp) = ([7u8; 16], 42, 1500);
//! let client = PacketProtection::derive(Role::Client, DEFAULT_PROTOCOL_ID, &token, nonce, timestamp);
//! let server = PacketProtection::derive(Role::Server, DEFAULT_PROTOCOL_ID, &token, nonce, timestamp);
//! let mut buf = [0u8; 64];
//! let header = ConnectedHeader::new(3, None);
//! let n = WirePacket::Payload { header, payload: b"hi" }.encode(DEFAULT_PROTOCOL_ID, &mut buf).unwrap();
//! client.seal(3, &mut buf[..n]);
//! assert!(server.verify(3, &buf[..n]));
//! assert!(!server.verify(3 + 65_536, &buf[..n])); // the same bytes one lap later
//! assert!(!client.verify(3, &buf[..n])); // the other direction's key
//! buf[n - 1] ^= 1;
//! assert!(!server.verify(3, &buf[..n])); // any flipped bit
//! ```

use std::hash::Hasher;

use siphasher::sip128::{Hasher128, SipHasher24};

use super::wire::{MAC_LEN, MAC_OFFSET, TOKEN_LEN};
use super::Role;

/// Label of the client → server key.
const CLIENT_TO_SERVER: &[u8; 8] = b"gudp c2s";
/// Label of the server → client key.
const SERVER_TO_CLIENT: &[u8; 8] = b"gudp s2c";

/// One connection's keys: the one that seals what it sends and the one that verifies what it
/// receives.
///
/// ```
/// use gudp::protocol::protection::PacketProtection;
/// use gudp::protocol::Role;
/// let a = PacketProtection::derive(Role::Client, 1, &[1; 16], 9, 0);
/// let b = PacketProtection::derive(Role::Client, 1, &[2; 16], 9, 0); // another token
/// let mut packet = [0u8; 32];
/// a.seal(0, &mut packet);
/// assert!(!b.verify(0, &packet)); // and a packet of one connection fails on another
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PacketProtection {
    seal_key: [u8; 16],
    verify_key: [u8; 16],
}

impl std::fmt::Debug for PacketProtection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PacketProtection { .. }") // keys stay out of logs
    }
}

/// The key for one direction: SipHash-2-4-128 keyed by the token over the 28-byte message.
fn direction_key(
    label: &[u8; 8],
    protocol_id: u32,
    token: &[u8; TOKEN_LEN],
    nonce: u64,
    timestamp: u64,
) -> [u8; 16] {
    let mut m = [0u8; 28];
    m[0..8].copy_from_slice(label);
    m[8..12].copy_from_slice(&protocol_id.to_be_bytes());
    m[12..20].copy_from_slice(&nonce.to_be_bytes());
    m[20..28].copy_from_slice(&timestamp.to_be_bytes());
    let mut h = SipHasher24::new_with_key(token);
    h.write(&m);
    h.finish128().as_bytes()
}

impl PacketProtection {
    /// The keys of the end playing `role` in the connection established with `token`,
    /// `nonce` and `timestamp` (the challenge's fields) under `protocol_id`.
    ///
    /// ```
    /// use gudp::protocol::protection::PacketProtection;
    /// use gudp::protocol::Role;
    /// let client = PacketProtection::derive(Role::Client, 1, &[3; 16], 4, 5);
    /// let server = PacketProtection::derive(Role::Server, 1, &[3; 16], 4, 5);
    /// let mut packet = [0u8; 40];
    /// server.seal(1, &mut packet);
    /// assert!(client.verify(1, &packet));
    /// ```
    pub fn derive(
        role: Role,
        protocol_id: u32,
        token: &[u8; TOKEN_LEN],
        nonce: u64,
        timestamp: u64,
    ) -> Self {
        let c2s = direction_key(CLIENT_TO_SERVER, protocol_id, token, nonce, timestamp);
        let s2c = direction_key(SERVER_TO_CLIENT, protocol_id, token, nonce, timestamp);
        match role {
            Role::Client => Self {
                seal_key: c2s,
                verify_key: s2c,
            },
            Role::Server => Self {
                seal_key: s2c,
                verify_key: c2s,
            },
        }
    }

    fn tag(key: &[u8; 16], sequence: u64, packet: &[u8]) -> [u8; MAC_LEN] {
        let mut h = SipHasher24::new_with_key(key);
        h.write(&sequence.to_be_bytes());
        h.write(&packet[..MAC_OFFSET]);
        h.write(&packet[MAC_OFFSET + MAC_LEN..]);
        h.finish128().as_bytes()
    }

    /// Writes the tag of an encoded connected packet (at least
    /// [`CONNECTED_HEADER_LEN`](super::wire::CONNECTED_HEADER_LEN) bytes) whose extended
    /// sequence is `sequence` into its tag field.
    ///
    /// # Panics
    ///
    /// If `packet` is shorter than a connected header.
    ///
    /// ```
    /// use gudp::protocol::protection::PacketProtection;
    /// use gudp::protocol::wire::{MAC_LEN, MAC_OFFSET};
    /// use gudp::protocol::Role;
    /// let keys = PacketProtection::derive(Role::Server, 1, &[0; 16], 0, 0);
    /// let mut packet = [0u8; 32];
    /// keys.seal(0, &mut packet);
    /// assert_ne!(packet[MAC_OFFSET..MAC_OFFSET + MAC_LEN], [0; MAC_LEN]);
    /// ```
    pub fn seal(&self, sequence: u64, packet: &mut [u8]) {
        let tag = Self::tag(&self.seal_key, sequence, packet);
        packet[MAC_OFFSET..MAC_OFFSET + MAC_LEN].copy_from_slice(&tag);
    }

    /// Whether a received connected packet carries the tag its peer computes for extended
    /// sequence `sequence`. The comparison takes the same time wherever the tags differ.
    /// A datagram shorter than a connected header never verifies.
    ///
    /// ```
    /// use gudp::protocol::protection::PacketProtection;
    /// use gudp::protocol::Role;
    /// let keys = PacketProtection::derive(Role::Server, 1, &[0; 16], 0, 0);
    /// assert!(!keys.verify(0, &[0u8; 31])); // too short to carry a tag
    /// ```
    pub fn verify(&self, sequence: u64, packet: &[u8]) -> bool {
        let Some(received) = packet.get(MAC_OFFSET..MAC_OFFSET + MAC_LEN) else {
            return false;
        };
        let expected = Self::tag(&self.verify_key, sequence, packet);
        expected
            .iter()
            .zip(received)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::wire::DEFAULT_PROTOCOL_ID;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The key-derivation and tag vectors of docs/protocol.md §8.
    #[test]
    fn test_vectors_from_the_spec() {
        let token: [u8; 16] = core::array::from_fn(|i| i as u8);
        let (nonce, timestamp) = (0x0123_4567_89ab_cdef, 1500);
        let c2s = direction_key(
            CLIENT_TO_SERVER,
            DEFAULT_PROTOCOL_ID,
            &token,
            nonce,
            timestamp,
        );
        let s2c = direction_key(
            SERVER_TO_CLIENT,
            DEFAULT_PROTOCOL_ID,
            &token,
            nonce,
            timestamp,
        );
        assert_eq!(hex(&c2s), C2S);
        assert_eq!(hex(&s2c), S2C);
        let client =
            PacketProtection::derive(Role::Client, DEFAULT_PROTOCOL_ID, &token, nonce, timestamp);
        assert_eq!((client.seal_key, client.verify_key), (c2s, s2c));
        // A client keepalive, sequence 0, no acks yet.
        let mut keepalive = unhex(KEEPALIVE);
        client.seal(0, &mut keepalive);
        assert_eq!(hex(&keepalive[MAC_OFFSET..]), KEEPALIVE_TAG);
        // A client payload "hi", extended sequence 65,538 (wire 2), acking 0x00ff.
        let mut payload = unhex(PAYLOAD);
        client.seal(65_538, &mut payload);
        assert_eq!(hex(&payload[MAC_OFFSET..MAC_OFFSET + MAC_LEN]), PAYLOAD_TAG);
        let server =
            PacketProtection::derive(Role::Server, DEFAULT_PROTOCOL_ID, &token, nonce, timestamp);
        assert!(server.verify(0, &keepalive));
        assert!(server.verify(65_538, &payload));
        assert!(!server.verify(2, &payload));
    }

    const C2S: &str = "29afcd5cbe9b2ef20b10628deef70027";
    const S2C: &str = "9fdaea70dae5b9f700c9649101e3d575";
    const KEEPALIVE: &str =
        "47554402 11 00 0000 0000 00000000 0000 00000000000000000000000000000000";
    const KEEPALIVE_TAG: &str = "b42346ccfbbe38a9a3349996de62acc8";
    const PAYLOAD: &str =
        "47554402 10 01 0002 00ff 00000001 0032 00000000000000000000000000000000 6869";
    const PAYLOAD_TAG: &str = "a7544a4bdde42392efbdb51b90d52187";

    #[test]
    fn every_input_is_bound() {
        let id = DEFAULT_PROTOCOL_ID;
        let base = PacketProtection::derive(Role::Client, id, &[1; 16], 2, 3);
        let server = PacketProtection::derive(Role::Server, id, &[1; 16], 2, 3);
        let others = [
            PacketProtection::derive(Role::Server, id + 1, &[1; 16], 2, 3),
            PacketProtection::derive(Role::Server, id, &[9; 16], 2, 3),
            PacketProtection::derive(Role::Server, id, &[1; 16], 4, 3),
            PacketProtection::derive(Role::Server, id, &[1; 16], 2, 5),
        ];
        let mut packet = [0x5au8; 50];
        base.seal(77, &mut packet);
        assert!(server.verify(77, &packet));
        for other in others {
            assert!(!other.verify(77, &packet));
        }
        for i in (0..packet.len()).filter(|i| !(MAC_OFFSET..MAC_OFFSET + MAC_LEN).contains(i)) {
            for bit in 0..8 {
                let mut flipped = packet;
                flipped[i] ^= 1 << bit;
                assert!(!server.verify(77, &flipped), "byte {i} bit {bit}");
            }
        }
        for i in MAC_OFFSET..MAC_OFFSET + MAC_LEN {
            let mut flipped = packet;
            flipped[i] ^= 0x80;
            assert!(!server.verify(77, &flipped));
        }
        assert!(!server.verify(77, &packet[..49])); // truncated
        assert!(!server.verify(78, &packet));
    }
}
