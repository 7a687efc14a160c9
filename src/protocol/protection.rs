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
//! A receiver verifies the tag before the packet touches any state. Secure mode
//! ([`PacketProtection::secure`], `protocol::secure`) shares this seam: its keys seal and
//! open packets with ChaCha20-Poly1305 instead, from the same extended sequence and datagram.
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

use super::secure::aead;
use super::secure::KEY_LEN;
use super::wire::{MAC_LEN, MAC_OFFSET, TOKEN_LEN};
use super::Role;

/// Label of the client → server key.
const CLIENT_TO_SERVER: &[u8; 8] = b"gudp c2s";
/// Label of the server → client key.
const SERVER_TO_CLIENT: &[u8; 8] = b"gudp s2c";

/// One connection's keys: the one that seals what it sends and the one that verifies (in
/// secure mode: opens) what it receives. In the default mode they are SipHash-2-4-128 MAC
/// keys; in secure mode ([`secure`](Self::secure)) ChaCha20-Poly1305 subkeys, and sealing
/// encrypts the packet's body as well (`protocol::secure`).
///
/// ```
/// use gudp::protocol::protection::PacketProtection;
/// use gudp::protocol::Role;
/// let a = PacketProtection::derive(Role::Client, 1, &[1; 16], 9, 0);
/// let b = PacketProtection::derive(Role::Client, 1, &[2; 16], 9, 0); // another token
/// let mut packet = [0u8; 32];
/// a.seal(0, &mut packet);
/// assert!(!b.verify(0, &packet)); // and a packet of one connection fails on another
/// assert!(!a.is_encrypting());
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PacketProtection {
    keys: Keys,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Keys {
    Mac {
        seal: [u8; 16],
        verify: [u8; 16],
    },
    Aead {
        seal: [u8; KEY_LEN],
        open: [u8; KEY_LEN],
    },
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
        let (seal, verify) = match role {
            Role::Client => (c2s, s2c),
            Role::Server => (s2c, c2s),
        };
        Self {
            keys: Keys::Mac { seal, verify },
        }
    }

    /// The secure-mode keys of the end playing `role` in the connection a connect token
    /// with these direction keys established, whose session (the client's request nonce)
    /// and challenge timestamp are `session` and `timestamp`.
    ///
    /// ```
    /// use gudp::protocol::protection::PacketProtection;
    /// use gudp::protocol::Role;
    /// let (c2s, s2c) = ([1; 32], [2; 32]);
    /// let client = PacketProtection::secure(Role::Client, &c2s, &s2c, 7, 1500);
    /// let server = PacketProtection::secure(Role::Server, &c2s, &s2c, 7, 1500);
    /// let mut packet = *b"0123456789abcdef................secret";
    /// client.seal(4, &mut packet);
    /// assert_ne!(&packet[32..], b"secret"); // encrypted
    /// assert!(server.open(4, &mut packet));
    /// assert_eq!(&packet[32..], b"secret");
    /// assert!(client.is_encrypting());
    /// ```
    pub fn secure(
        role: Role,
        client_to_server: &[u8; KEY_LEN],
        server_to_client: &[u8; KEY_LEN],
        session: u64,
        timestamp: u64,
    ) -> Self {
        let c2s = aead::subkey(client_to_server, session, timestamp);
        let s2c = aead::subkey(server_to_client, session, timestamp);
        let (seal, open) = match role {
            Role::Client => (c2s, s2c),
            Role::Server => (s2c, c2s),
        };
        Self {
            keys: Keys::Aead { seal, open },
        }
    }

    /// Whether these are secure-mode keys, which encrypt: a received packet must then be
    /// [`open`](Self::open)ed in place (it cannot be checked read-only).
    ///
    /// ```
    /// use gudp::protocol::protection::PacketProtection;
    /// use gudp::protocol::Role;
    /// assert!(PacketProtection::secure(Role::Server, &[0; 32], &[1; 32], 0, 0).is_encrypting());
    /// ```
    pub fn is_encrypting(&self) -> bool {
        matches!(self.keys, Keys::Aead { .. })
    }

    /// The tag that ends a secure handshake packet over `data` (its bytes before the tag),
    /// at `sequence`, one no packet reaches: under the key this end seals with if it is
    /// `sending` the packet, else the one it opens with. `None` for MAC keys.
    pub(crate) fn handshake_tag(
        &self,
        sending: bool,
        sequence: u64,
        data: &[u8],
    ) -> Option<[u8; MAC_LEN]> {
        match self.keys {
            Keys::Aead { seal, open } => {
                let key = if sending { seal } else { open };
                Some(aead::handshake_tag(&key, sequence, data))
            }
            Keys::Mac { .. } => None,
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
        match &self.keys {
            Keys::Mac { seal, .. } => {
                let tag = Self::tag(seal, sequence, packet);
                packet[MAC_OFFSET..MAC_OFFSET + MAC_LEN].copy_from_slice(&tag);
            }
            Keys::Aead { seal, .. } => aead::seal(seal, sequence, packet),
        }
    }

    /// Whether a received connected packet carries the tag its peer computes for extended
    /// sequence `sequence`. The comparison takes the same time wherever the tags differ.
    /// A datagram shorter than a connected header never verifies, and neither does any
    /// packet under secure-mode keys (they [`open`](Self::open) in place).
    ///
    /// ```
    /// use gudp::protocol::protection::PacketProtection;
    /// use gudp::protocol::Role;
    /// let keys = PacketProtection::derive(Role::Server, 1, &[0; 16], 0, 0);
    /// assert!(!keys.verify(0, &[0u8; 31])); // too short to carry a tag
    /// ```
    pub fn verify(&self, sequence: u64, packet: &[u8]) -> bool {
        let Keys::Mac { verify, .. } = &self.keys else {
            return false;
        };
        let Some(received) = packet.get(MAC_OFFSET..MAC_OFFSET + MAC_LEN) else {
            return false;
        };
        let expected = Self::tag(verify, sequence, packet);
        expected
            .iter()
            .zip(received)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }

    /// Checks a received connected packet for extended sequence `sequence` and, under
    /// secure-mode keys, decrypts its body in place. A packet that fails is to be dropped:
    /// under MAC keys it is left as it was; under secure-mode keys its body is wiped (zeroed).
    ///
    /// ```
    /// use gudp::protocol::protection::PacketProtection;
    /// use gudp::protocol::Role;
    /// let keys = PacketProtection::derive(Role::Server, 1, &[0; 16], 0, 0);
    /// let mut packet = [0u8; 40];
    /// assert!(!keys.open(0, &mut packet)); // no valid tag
    /// ```
    pub fn open(&self, sequence: u64, packet: &mut [u8]) -> bool {
        match &self.keys {
            Keys::Mac { .. } => self.verify(sequence, packet),
            Keys::Aead { open, .. } => aead::open(open, sequence, packet),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::wire::DEFAULT_PROTOCOL_ID;
    use crate::test_hex::{from_hex as unhex, to_hex as hex};

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
        assert!(
            client.keys
                == Keys::Mac {
                    seal: c2s,
                    verify: s2c
                }
        );
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
