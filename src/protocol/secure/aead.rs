//! Secure mode's per-packet authenticated encryption: ChaCha20-Poly1305 under a
//! per-connection subkey of each direction's token key.
//!
//! **Subkeys.** Both ends know the token's two keys, the client's request nonce (the
//! session) and the challenge timestamp. A direction's subkey is HChaCha20 of the token's
//! key over `session ‖ timestamp` (16 bytes, big-endian): XChaCha20-Poly1305's own subkey
//! step, done once per connection instead of once per packet. A packet is then sealed by
//! ChaCha20-Poly1305 under the subkey with the 96-bit nonce `[0; 4] ‖ extended sequence`
//! (big-endian), which makes it exactly XChaCha20-Poly1305 under the token key with the
//! 192-bit nonce `session ‖ timestamp ‖ sequence` (a unit test checks the equality). So no
//! nonce repeats under a key: the sequence never repeats within a connection, and two
//! connections made with one token differ in their session.
//!
//! **Framing.** The connected header's first 16 bytes (prefix, flags, sequence, acks,
//! ack delay) are the associated data, its 16-byte tag field holds the Poly1305 tag, and
//! everything after the header (payload, or a disconnect's session) is encrypted in place.
//!
//! **Handshake tags.** The client's secure challenge response ends in a tag under its
//! client → server subkey at sequence [`RESPONSE_SEQUENCE`] over the response's bytes: proof
//! that it holds the token's keys. The server's secure accept ends in a tag under its
//! server → client subkey at [`ACCEPT_SEQUENCE`]: proof that it opened the token. No packet
//! reaches either sequence (that would take 2^64 − 2 packets), and each is used for one
//! message only (repeats are identical copies), so no nonce serves two messages.

use chacha20::hchacha;
use chacha20poly1305::consts::U10;
use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, CHACHA20_POLY1305};

use crate::protocol::wire::{CONNECTED_HEADER_LEN, MAC_LEN, MAC_OFFSET};

use super::key::KEY_LEN;

/// The sequence whose nonce the response's tag uses.
pub(crate) const RESPONSE_SEQUENCE: u64 = u64::MAX;
/// The sequence whose nonce the accept's tag uses.
pub(crate) const ACCEPT_SEQUENCE: u64 = u64::MAX - 1;

/// One direction's subkey for the connection named by `session` and `timestamp`.
pub(crate) fn subkey(token_key: &[u8; KEY_LEN], session: u64, timestamp: u64) -> [u8; KEY_LEN] {
    let mut input = [0u8; 16];
    input[..8].copy_from_slice(&session.to_be_bytes());
    input[8..].copy_from_slice(&timestamp.to_be_bytes());
    hchacha::<U10>(token_key.into(), &input.into()).into()
}

/// The per-packet AEAD is ring's ChaCha20-Poly1305 (`docs/dependencies.md`: several times
/// faster per packet here than RustCrypto's, whose run-time-selected AVX2 backends carry a
/// large fixed cost); the construction is the same RFC 8439 AEAD, checked against
/// RustCrypto's XChaCha20-Poly1305 by the unit test below. Building the key per call costs
/// a copy of its 32 bytes, so connections keep plain key bytes.
fn key(bytes: &[u8; KEY_LEN]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, bytes).expect("a 32-byte key"))
}

fn nonce(sequence: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&sequence.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

/// Encrypts the body of an encoded connected packet in place and writes its tag.
///
/// # Panics
///
/// If `packet` is shorter than a connected header.
pub(crate) fn seal(key_bytes: &[u8; KEY_LEN], sequence: u64, packet: &mut [u8]) {
    let (header, body) = packet.split_at_mut(CONNECTED_HEADER_LEN);
    let tag = key(key_bytes)
        .seal_in_place_separate_tag(nonce(sequence), Aad::from(&header[..MAC_OFFSET]), body)
        .expect("a datagram is far below the AEAD's limit");
    header[MAC_OFFSET..].copy_from_slice(tag.as_ref());
}

/// Verifies a received connected packet and, if authentic, decrypts its body in place.
/// An inauthentic packet (or one shorter than a header) is refused with its header as it
/// was and its body zeroed (ring decrypts while it authenticates, and wipes what it
/// decrypted when the tag fails): the caller drops it either way.
pub(crate) fn open(key_bytes: &[u8; KEY_LEN], sequence: u64, packet: &mut [u8]) -> bool {
    if packet.len() < CONNECTED_HEADER_LEN {
        return false;
    }
    let (header, body) = packet.split_at_mut(CONNECTED_HEADER_LEN);
    let tag: [u8; MAC_LEN] = header[MAC_OFFSET..].try_into().expect("16 bytes");
    key(key_bytes)
        .open_in_place_separate_tag(
            nonce(sequence),
            Aad::from(&header[..MAC_OFFSET]),
            Tag::from(tag),
            body,
            0..,
        )
        .is_ok()
}

/// The handshake tag over `data` at `sequence` (one of the two above).
pub(crate) fn handshake_tag(
    key_bytes: &[u8; KEY_LEN],
    sequence: u64,
    data: &[u8],
) -> [u8; MAC_LEN] {
    let tag = key(key_bytes)
        .seal_in_place_separate_tag(nonce(sequence), Aad::from(data), &mut [])
        .expect("empty plaintext");
    tag.as_ref().try_into().expect("16 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20poly1305::aead::AeadInPlace;
    use chacha20poly1305::{KeyInit, XChaCha20Poly1305};

    /// The subkey shortcut is XChaCha20-Poly1305 with the nonce `session ‖ timestamp ‖ seq`.
    #[test]
    fn equals_xchacha20poly1305_with_the_extended_nonce() {
        let token_key = [0x42u8; 32];
        let (session, timestamp, seq) = (0x0123_4567_89ab_cdef_u64, 1500u64, 65_538u64);
        let mut ours = vec![0x5au8; 80];
        seal(&subkey(&token_key, session, timestamp), seq, &mut ours);
        let mut theirs = vec![0x5au8; 80];
        let mut xnonce = [0u8; 24];
        xnonce[..8].copy_from_slice(&session.to_be_bytes());
        xnonce[8..16].copy_from_slice(&timestamp.to_be_bytes());
        xnonce[16..].copy_from_slice(&seq.to_be_bytes());
        let (header, body) = theirs.split_at_mut(CONNECTED_HEADER_LEN);
        let tag = XChaCha20Poly1305::new(&token_key.into())
            .encrypt_in_place_detached(&xnonce.into(), &header[..MAC_OFFSET], body)
            .unwrap();
        header[MAC_OFFSET..].copy_from_slice(&tag);
        assert_eq!(ours, theirs);
    }

    #[test]
    fn every_bit_and_every_input_is_bound() {
        let key = subkey(&[1; 32], 2, 3);
        let mut packet = [0x33u8; 48];
        seal(&key, 9, &mut packet);
        let sealed = packet;
        assert!(open(&key, 9, &mut packet));
        assert_eq!(&packet[CONNECTED_HEADER_LEN..], &[0x33; 16]); // decrypted in place
        for i in 0..sealed.len() {
            let mut flipped = sealed;
            flipped[i] ^= 0x01;
            let before = flipped;
            assert!(!open(&key, 9, &mut flipped), "byte {i}");
            // A refused packet keeps its header; its body is wiped, never left decrypted.
            assert_eq!(
                flipped[..CONNECTED_HEADER_LEN],
                before[..CONNECTED_HEADER_LEN]
            );
            assert_eq!(flipped[CONNECTED_HEADER_LEN..], [0; 16]);
        }
        for other in [
            subkey(&[1; 32], 4, 3),
            subkey(&[1; 32], 2, 4),
            subkey(&[9; 32], 2, 3),
        ] {
            assert!(!open(&other, 9, &mut { sealed }));
        }
        assert!(!open(&key, 10, &mut { sealed }));
        assert!(!open(&key, 9, &mut { sealed }[..47]));
        assert!(!open(&key, 9, &mut [0u8; 31]));
        let tag = handshake_tag(&key, RESPONSE_SEQUENCE, b"response");
        assert_ne!(handshake_tag(&key, RESPONSE_SEQUENCE, b"responsf"), tag);
        assert_ne!(handshake_tag(&key, ACCEPT_SEQUENCE, b"response"), tag);
        let other = subkey(&[1; 32], 5, 3);
        assert_ne!(handshake_tag(&other, RESPONSE_SEQUENCE, b"response"), tag);
    }
}

/// The per-packet vector of docs/protocol.md §12.5.
#[cfg(test)]
mod vector {
    use super::*;
    use crate::test_hex::{from_hex as unhex, to_hex as hex};

    #[test]
    fn packet_test_vector() {
        let token_key: [u8; 32] = core::array::from_fn(|i| i as u8);
        let key = subkey(&token_key, 0x0123_4567_89ab_cdef, 1500);
        let mut packet = unhex(PAYLOAD);
        seal(&key, 65_538, &mut packet);
        assert_eq!(hex(&key), SUBKEY);
        assert_eq!(hex(&packet), SEALED.split_whitespace().collect::<String>());
        assert!(open(&key, 65_538, &mut packet));
        assert_eq!(&packet[CONNECTED_HEADER_LEN..], b"hi"); // the tag field stays as received
    }

    const PAYLOAD: &str =
        "47554402 10 01 0002 00ff 00000001 0032 00000000000000000000000000000000 6869";
    const SUBKEY: &str = "0dc917bd20a03feaf90d1f8fea05947f980c1e2ae216f974e15edb8ec87be11e";
    const SEALED: &str =
        "47554402 10 01 0002 00ff 00000001 0032 b00d06fc384fa3bfe6a82756ab14de6c 9389";
}
