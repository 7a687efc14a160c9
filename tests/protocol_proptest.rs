//! Property tests: every decoder against arbitrary and mutated bytes, every encoder round trip.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gudp::protocol::protection::PacketProtection;
use gudp::protocol::wire::{
    decode, AckFields, ConnectedHeader, DenyReason, WirePacket, DEFAULT_PROTOCOL_ID,
    HANDSHAKE_PADDED_LEN,
};
use gudp::protocol::{Config, Endpoint, Incoming, Role};
use proptest::prelude::*;

/// An owned description of a packet (Payload borrows, so it is rebuilt per case).
#[derive(Debug, Clone)]
enum Owned {
    Request(u64),
    Challenge(u64, u64, [u8; 16]),
    Response(u64, u64, [u8; 16]),
    Accept(u64),
    Denied(u64),
    Payload(ConnectedHeader, Vec<u8>),
    Keepalive(ConnectedHeader),
    Ack(ConnectedHeader),
    Disconnect(ConnectedHeader, u64),
}

impl Owned {
    fn packet(&self) -> WirePacket<'_> {
        match self {
            // The fingerprint is derived from the nonce: any u64 must round-trip.
            Self::Request(n) => WirePacket::ConnectionRequest {
                nonce: *n,
                fingerprint: n.rotate_left(17),
            },
            Self::Challenge(n, t, k) => WirePacket::Challenge {
                nonce: *n,
                timestamp: *t,
                token: *k,
            },
            Self::Response(n, t, k) => WirePacket::ChallengeResponse {
                nonce: *n,
                timestamp: *t,
                token: *k,
                fingerprint: t.rotate_left(17) ^ n,
            },
            Self::Accept(n) => WirePacket::Accept { nonce: *n },
            Self::Denied(n) => WirePacket::Denied {
                nonce: *n,
                reason: if n % 2 == 0 {
                    DenyReason::Full
                } else {
                    DenyReason::ChannelMismatch
                },
            },
            Self::Payload(h, p) => WirePacket::Payload {
                header: *h,
                payload: p,
            },
            Self::Keepalive(h) => WirePacket::Keepalive { header: *h },
            Self::Ack(h) => WirePacket::Ack { header: *h },
            Self::Disconnect(h, s) => WirePacket::Disconnect {
                header: *h,
                session: *s,
            },
        }
    }
}

fn header() -> impl Strategy<Value = ConnectedHeader> {
    (
        any::<u16>(),
        proptest::option::of((any::<u16>(), any::<u32>(), any::<u16>())),
        any::<[u8; 16]>(),
    )
        .prop_map(|(sequence, ack, mac)| ConnectedHeader {
            sequence,
            ack: ack.map(|(ack, ack_bits, ack_delay)| AckFields {
                ack,
                ack_bits,
                ack_delay,
            }),
            mac,
        })
}

fn packet() -> impl Strategy<Value = Owned> {
    prop_oneof![
        any::<u64>().prop_map(Owned::Request),
        (any::<u64>(), any::<u64>(), any::<[u8; 16]>())
            .prop_map(|(n, t, k)| Owned::Challenge(n, t, k)),
        (any::<u64>(), any::<u64>(), any::<[u8; 16]>())
            .prop_map(|(n, t, k)| Owned::Response(n, t, k)),
        any::<u64>().prop_map(Owned::Accept),
        any::<u64>().prop_map(Owned::Denied),
        (header(), proptest::collection::vec(any::<u8>(), 0..1300))
            .prop_map(|(h, p)| Owned::Payload(h, p)),
        header().prop_map(Owned::Keepalive),
        header().prop_map(Owned::Ack),
        (header(), any::<u64>()).prop_map(|(h, s)| Owned::Disconnect(h, s)),
    ]
}

/// Decoding must never panic, and whatever decodes re-encodes to the very same bytes
/// (every field has exactly one encoding).
fn check_canonical(bytes: &[u8]) {
    if let Ok(p) = decode(DEFAULT_PROTOCOL_ID, bytes) {
        let mut out = vec![0u8; bytes.len()];
        let n = p
            .encode(DEFAULT_PROTOCOL_ID, &mut out)
            .expect("fits: same length");
        assert_eq!(&out[..n], bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1400)) {
        check_canonical(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_prefix_never_panic(ty in any::<u8>(), rest in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut bytes = DEFAULT_PROTOCOL_ID.to_be_bytes().to_vec();
        bytes.push(ty);
        bytes.extend(rest);
        check_canonical(&bytes);
    }

    #[test]
    fn every_packet_round_trips(p in packet()) {
        let packet = p.packet();
        let mut buf = vec![0u8; 1500];
        let n = packet.encode(DEFAULT_PROTOCOL_ID, &mut buf).unwrap();
        prop_assert_eq!(n, packet.encoded_len());
        prop_assert_eq!(decode(DEFAULT_PROTOCOL_ID, &buf[..n]), Ok(packet));
        // One byte short of the packet is an error, never a panic.
        prop_assert!(packet.encode(DEFAULT_PROTOCOL_ID, &mut buf[..n - 1]).is_err());
    }

    #[test]
    fn mutated_packets_never_panic(
        p in packet(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        extend in proptest::collection::vec(any::<u8>(), 0..4),
    ) {
        let mut buf = vec![0u8; 1500];
        let n = p.packet().encode(DEFAULT_PROTOCOL_ID, &mut buf).unwrap();
        let mut bytes = buf[..n].to_vec();
        for (i, x) in &flips {
            let i = i.index(bytes.len());
            bytes[i] ^= x;
        }
        check_canonical(&bytes);
        check_canonical(&bytes[..cut.index(bytes.len())]);
        bytes.extend(&extend);
        check_canonical(&bytes);
    }

    /// An endpoint with a live connection fed arbitrary datagrams from its peer and from
    /// strangers: no panic, and the connection keeps working.
    #[test]
    fn endpoint_survives_garbage(datagrams in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..1300)), 1..32)) {
        let t0 = Instant::now();
        let (ca, sa): (SocketAddr, SocketAddr) = ("10.0.0.1:1".parse().unwrap(), "10.0.0.2:2".parse().unwrap());
        let mut client = Endpoint::new(Config::default(), [1; 16]);
        let mut server = Endpoint::new(Config::default(), [2; 16]);
        let conn = client.connect(t0, sa).unwrap();
        let mut buf = vec![0u8; 1500];
        for _ in 0..3 {
            while let Some(t) = client.poll_transmit(t0, &mut buf) {
                server.handle_datagram(t0, ca, &buf[..t.len]);
            }
            while let Some(t) = server.poll_transmit(t0, &mut buf) {
                client.handle_datagram(t0, sa, &buf[..t.len]);
            }
        }
        prop_assert_eq!(server.connection_count(), 1);
        let mut now = t0;
        for (from_peer, mut d) in datagrams {
            now += Duration::from_millis(1);
            // Give half the garbage our protocol id so it reaches the deeper decoders.
            if d.len() >= 4 && from_peer {
                d[..4].copy_from_slice(&DEFAULT_PROTOCOL_ID.to_be_bytes());
            }
            let from = if from_peer { ca } else { "10.0.0.3:3".parse().unwrap() };
            let _ = server.handle_datagram(now, from, &d);
            server.handle_timeout(now);
            while server.poll_transmit(now, &mut buf).is_some() {}
            while server.poll_event().is_some() {}
        }
        // Garbage never carries a valid MAC (2^-128), so it changed nothing: the connection
        // still works, and its window did not move.
        prop_assert_eq!(server.connection_count(), 1);
        let counters = server.counters().connections;
        prop_assert_eq!((counters.stale, counters.duplicates, counters.packets_received), (0, 0, 0));
        let t = client.send(now, conn, b"still here", &mut buf).unwrap();
        let got = server.handle_datagram(now, ca, &buf[..t.len]);
        prop_assert!(matches!(got, Incoming::Payload { payload: b"still here", .. }), "{:?}", got);
    }

    /// A sealed connected packet verifies at the peer for its extended sequence only, and
    /// any change to any byte, or another sequence, or another connection's keys, fails.
    #[test]
    fn sealed_packets_verify_and_every_change_fails(
        p in packet().prop_filter("connected", |p| p.packet().packet_type() as u8 >= 0x10),
        seq in any::<u64>(),
        (token, nonce, timestamp) in (any::<[u8; 16]>(), any::<u64>(), any::<u64>()),
        flip in (any::<prop::sample::Index>(), 1..=255u8),
        other in any::<u64>(),
    ) {
        let id = DEFAULT_PROTOCOL_ID;
        let client = PacketProtection::derive(Role::Client, id, &token, nonce, timestamp);
        let server = PacketProtection::derive(Role::Server, id, &token, nonce, timestamp);
        let mut buf = vec![0u8; 1500];
        let n = p.packet().encode(id, &mut buf).unwrap();
        let sealed = &mut buf[..n];
        client.seal(seq, sealed);
        prop_assert!(server.verify(seq, sealed));
        prop_assert!(!server.verify(seq.wrapping_add(1 + other % 1000), sealed));
        let another = PacketProtection::derive(Role::Server, id, &token, nonce ^ (1 | other), timestamp);
        prop_assert!(!another.verify(seq, sealed));
        let mut changed = sealed.to_vec();
        let i = flip.0.index(n);
        changed[i] ^= flip.1;
        prop_assert!(!server.verify(seq, &changed));
        prop_assert!(!server.verify(seq, &sealed[..n - 1]));
    }
}

#[test]
fn padded_lengths_are_exact() {
    let mut buf = [0u8; HANDSHAKE_PADDED_LEN + 1];
    let n = WirePacket::ConnectionRequest {
        nonce: 1,
        fingerprint: 0,
    }
    .encode(DEFAULT_PROTOCOL_ID, &mut buf)
    .unwrap();
    assert_eq!(n, HANDSHAKE_PADDED_LEN);
    assert!(decode(DEFAULT_PROTOCOL_ID, &buf).is_err());
    assert!(decode(DEFAULT_PROTOCOL_ID, &buf[..n]).is_ok());
}
