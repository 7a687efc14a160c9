//! An independent peer, written from `docs/protocol.md` (version 2) alone, talking to real
//! daemons over loopback: a client of its own against `Daemon::listen`, and a server of its
//! own against `Daemon::connect`. It uses none of `gudp::protocol`: its own encoding, its own
//! sequence extension, its own keys and tags (SipHash-2-4-128 from `siphasher`, checked first
//! against the document's vectors). So where the implementation and the document disagree —
//! a field's offset, the ack-bits convention, the MAC's input, the first sequence number, the
//! session in a Disconnect — one of these tests fails, whichever of the two moved.

mod common;

use common::{loopback, wait_for, watchdog};
use gudp::{CloseReason, Daemon, DaemonConfig, Delivery, RecvTimeoutError};
use siphasher::sip128::{Hasher128, SipHasher24};
use std::hash::Hasher;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// §2: the default protocol id.
const PID: u32 = 0x4755_4402;
const REQUEST: u8 = 0x01;
const CHALLENGE: u8 = 0x02;
const RESPONSE: u8 = 0x03;
const ACCEPT: u8 = 0x04;
const PAYLOAD: u8 = 0x10;
const KEEPALIVE: u8 = 0x11;
const ACK: u8 = 0x12;
const DISCONNECT: u8 = 0x13;
/// §4: the connected header, MAC included.
const HEADER: usize = 32;
const HAS_ACK: u8 = 1;
const WAIT: Duration = Duration::from_secs(10);

/// SipHash-2-4 with 128-bit output, its two words little-endian (§4.4, §5.3).
fn sip128(key: &[u8; 16], message: &[u8]) -> [u8; 16] {
    let mut h = SipHasher24::new_with_key(key);
    h.write(message);
    h.finish128().as_bytes()
}

/// §4.4: a direction's key, `label` being "gudp c2s" or "gudp s2c".
fn direction_key(token: &[u8; 16], label: &[u8; 8], nonce: u64, timestamp: u64) -> [u8; 16] {
    let mut m = Vec::with_capacity(28);
    m.extend_from_slice(label);
    m.extend_from_slice(&PID.to_be_bytes());
    m.extend_from_slice(&nonce.to_be_bytes());
    m.extend_from_slice(&timestamp.to_be_bytes());
    sip128(token, &m)
}

/// §4.4: the tag over S ‖ datagram[0..16] ‖ datagram[32..].
fn tag(key: &[u8; 16], extended: u64, datagram: &[u8]) -> [u8; 16] {
    let mut m = Vec::with_capacity(8 + datagram.len() - 16);
    m.extend_from_slice(&extended.to_be_bytes());
    m.extend_from_slice(&datagram[..16]);
    m.extend_from_slice(&datagram[HEADER..]);
    sip128(key, &m)
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// One side's view of a connection, as §4.1 and §4.2 describe it.
struct Peer {
    socket: UdpSocket,
    to: SocketAddr,
    send_key: [u8; 16],
    recv_key: [u8; 16],
    /// Extended sequence of our next packet (§4.1: starts at 0).
    next: u64,
    /// Extended sequences accepted from the other side.
    received: Vec<u64>,
}

/// A connected packet as received, after its tag verified.
#[derive(Debug)]
struct Packet {
    kind: u8,
    extended: u64,
    ack: Option<(u16, u32)>,
    body: Vec<u8>,
}

impl Peer {
    /// The client's side (`client`) or the server's of the connection the challenge's
    /// `token`, the request's `nonce` and the challenge's `timestamp` made (§4.4's keys).
    fn new(
        socket: UdpSocket,
        to: SocketAddr,
        client: bool,
        token: &[u8; 16],
        nonce: u64,
        timestamp: u64,
    ) -> Self {
        let c2s = direction_key(token, b"gudp c2s", nonce, timestamp);
        let s2c = direction_key(token, b"gudp s2c", nonce, timestamp);
        let (send_key, recv_key) = if client { (c2s, s2c) } else { (s2c, c2s) };
        Self {
            socket,
            to,
            send_key,
            recv_key,
            next: 0,
            received: Vec::new(),
        }
    }

    fn newest(&self) -> Option<u64> {
        self.received.iter().copied().max()
    }

    /// §4.2: ack = newest received, bit n = (ack - 1 - n) received.
    fn ack_fields(&self) -> Option<(u16, u32)> {
        let newest = self.newest()?;
        let mut bits = 0u32;
        for n in 0..32u64 {
            if newest > n && self.received.contains(&(newest - 1 - n)) {
                bits |= 1 << n;
            }
        }
        Some((newest as u16, bits))
    }

    /// §4: encodes, tags and sends one connected packet.
    fn send(&mut self, kind: u8, body: &[u8]) {
        let d = self.build(kind, body);
        self.socket.send_to(&d, self.to).unwrap();
        self.next += 1;
    }

    /// §4: one connected packet with our next sequence, tagged, not sent.
    fn build(&self, kind: u8, body: &[u8]) -> Vec<u8> {
        let mut d = Vec::with_capacity(HEADER + body.len());
        d.extend_from_slice(&PID.to_be_bytes());
        d.push(kind);
        let acks = self.ack_fields();
        d.push(if acks.is_some() { HAS_ACK } else { 0 });
        d.extend_from_slice(&(self.next as u16).to_be_bytes());
        let (ack, bits) = acks.unwrap_or((0, 0));
        d.extend_from_slice(&ack.to_be_bytes());
        d.extend_from_slice(&bits.to_be_bytes());
        d.extend_from_slice(&0u16.to_be_bytes()); // ack delay: sent at once
        d.extend_from_slice(&[0; 16]);
        d.extend_from_slice(body);
        let t = tag(&self.send_key, self.next, &d);
        d[16..32].copy_from_slice(&t);
        d
    }

    /// Reads until a connected packet whose tag verifies arrives (anything else fails the
    /// test: only the daemon sends to this socket). §4.1's extension, then §4.4's check.
    fn recv(&mut self, limit: Duration) -> Option<Packet> {
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 1500];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            self.socket
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let Ok((len, from)) = self.socket.recv_from(&mut buf) else {
                return None;
            };
            assert_eq!(from, self.to, "a datagram from a stranger");
            let d = &buf[..len];
            if len > 4 && d[4] < PAYLOAD {
                continue; // a retransmitted handshake packet, already answered
            }
            assert!(
                len >= HEADER,
                "connected packets are at least 32 bytes: {d:02x?}"
            );
            assert_eq!(d[..4], PID.to_be_bytes());
            let wire = u16::from_be_bytes([d[6], d[7]]);
            let r = self.newest().unwrap_or(0);
            let delta = i64::from(wire.wrapping_sub(r as u16) as i16);
            let extended = u64::try_from(r as i64 + delta).expect("an extendable sequence");
            assert_eq!(
                d[16..32],
                tag(&self.recv_key, extended, d),
                "the daemon's tag verifies (§4.4)"
            );
            let flags = d[5];
            assert_eq!(flags & !HAS_ACK, 0, "reserved flags are zero");
            let ack = (flags & HAS_ACK != 0).then(|| {
                (
                    u16::from_be_bytes([d[8], d[9]]),
                    u32::from_be_bytes([d[10], d[11], d[12], d[13]]),
                )
            });
            if ack.is_none() {
                assert_eq!(d[8..16], [0; 8], "no ack: the ack fields are zero (§4.2)");
            }
            assert!(!self.received.contains(&extended), "a packet sent twice");
            self.received.push(extended);
            return Some(Packet {
                kind: d[4],
                extended,
                ack,
                body: d[HEADER..].to_vec(),
            });
        }
    }

    /// The next payload, skipping the daemon's keepalives and acks.
    fn recv_payload(&mut self, limit: Duration) -> Option<Packet> {
        let deadline = Instant::now() + limit;
        loop {
            let p = self.recv(deadline.checked_duration_since(Instant::now())?)?;
            if p.kind == PAYLOAD {
                return Some(p);
            }
            assert!(matches!(p.kind, KEEPALIVE | ACK), "unexpected {p:?}");
        }
    }
}

/// A 1200-byte handshake packet: `fields` after the 5-byte prefix, then zero padding.
fn handshake(kind: u8, fields: &[&[u8]]) -> Vec<u8> {
    let mut d = PID.to_be_bytes().to_vec();
    d.push(kind);
    for f in fields {
        d.extend_from_slice(f);
    }
    d.resize(1200, 0);
    d
}

/// §5.1 from the client's side: request → challenge → response → accept.
fn spec_connect(server: SocketAddr, nonce: u64) -> Peer {
    let socket = UdpSocket::bind(loopback()).unwrap();
    let request = handshake(REQUEST, &[&nonce.to_be_bytes(), &0u64.to_be_bytes()]);
    let mut buf = [0u8; 1500];
    let deadline = Instant::now() + WAIT;
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let (timestamp, token) = loop {
        assert!(Instant::now() < deadline, "no challenge");
        socket.send_to(&request, server).unwrap();
        let Ok((len, _)) = socket.recv_from(&mut buf) else {
            continue; // §5.1: retry every 100 ms
        };
        let d = &buf[..len];
        assert_eq!(
            (len, d[4]),
            (37, CHALLENGE),
            "a 37-byte Challenge: {d:02x?}"
        );
        assert_eq!(
            d[5..13],
            nonce.to_be_bytes(),
            "the challenge echoes the nonce"
        );
        let timestamp = u64::from_be_bytes(d[13..21].try_into().unwrap());
        break (timestamp, <[u8; 16]>::try_from(&d[21..37]).unwrap());
    };
    let response = handshake(
        RESPONSE,
        &[
            &nonce.to_be_bytes(),
            &timestamp.to_be_bytes(),
            &token,
            &0u64.to_be_bytes(),
        ],
    );
    loop {
        assert!(Instant::now() < deadline, "no accept");
        socket.send_to(&response, server).unwrap();
        let Ok((len, _)) = socket.recv_from(&mut buf) else {
            continue;
        };
        assert_eq!((len, buf[4]), (13, ACCEPT), "a 13-byte Accept");
        assert_eq!(buf[5..13], nonce.to_be_bytes());
        break;
    }
    Peer::new(socket, server, true, &token, nonce, timestamp)
}

/// The independent SipHash, keys and tags reproduce the document's vectors (§5.3, §8), so a
/// failure below is the daemon's, not this file's.
#[test]
fn the_independent_crypto_matches_the_documented_vectors() {
    let key: [u8; 16] = std::array::from_fn(|i| i as u8);
    assert_eq!(
        sip128(&key, b"").to_vec(),
        hex("a3817f04ba25a8e66df67214c7550293")
    );
    let nonce = 0x0123_4567_89ab_cdef;
    let c2s = direction_key(&key, b"gudp c2s", nonce, 1500);
    let s2c = direction_key(&key, b"gudp s2c", nonce, 1500);
    assert_eq!(c2s.to_vec(), hex("29afcd5cbe9b2ef20b10628deef70027"));
    assert_eq!(s2c.to_vec(), hex("9fdaea70dae5b9f700c9649101e3d575"));
    let mut keepalive = hex("47554402 11 00 0000 0000 00000000 0000");
    keepalive.extend_from_slice(&[0; 16]);
    assert_eq!(
        tag(&c2s, 0, &keepalive).to_vec(),
        hex("b42346ccfbbe38a9a3349996de62acc8")
    );
    let mut payload = hex("47554402 10 01 0002 00ff 00000001 0032");
    payload.extend_from_slice(&[0; 16]);
    payload.extend_from_slice(b"hi");
    let t = tag(&c2s, 65_538, &payload);
    assert_eq!(t.to_vec(), hex("a7544a4bdde42392efbdb51b90d52187"));
    assert_ne!(tag(&c2s, 2, &payload), t, "one lap earlier fails");
}

/// A client written from the document connects to a daemon, sends payloads the application
/// receives in order, reads the daemon's acks in the documented convention, acknowledges the
/// daemon's payloads so its application sees them acked, has a forged packet refused, and
/// ends the connection with a Disconnect carrying its session.
#[test]
fn a_spec_client_talks_to_a_daemon() {
    let _w = watchdog("a_spec_client_talks_to_a_daemon", Duration::from_secs(60));
    let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    let listener = daemon.listen(loopback()).unwrap();
    let nonce = 0x5eed_0000_0000_0001;
    let mut peer = spec_connect(listener.local_addr(), nonce);
    let server = listener.accept_timeout(WAIT).unwrap();
    assert_eq!(server.peer_addr(), peer.socket.local_addr().unwrap());

    // 40 payloads on sequences 0..=41, 30 and 35 left out (as if lost): the application
    // receives them in order, each exactly once.
    for i in 0..40u32 {
        if matches!(peer.next, 30 | 35) {
            peer.next += 1;
        }
        peer.send(PAYLOAD, format!("c{i}").as_bytes());
    }
    for i in 0..40u32 {
        let got = server.recv_timeout(WAIT).unwrap();
        assert_eq!(&got[..], format!("c{i}").as_bytes());
    }
    // The daemon acknowledges them: ack 41, and bit n for 41 - 1 - n, so all bits but
    // n = 10 (sequence 30) and n = 5 (sequence 35).
    let expected_bits = !(1u32 << 10) & !(1 << 5);
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .expect("ack 41");
        let p = peer.recv(left).expect("the daemon acks");
        if p.ack == Some((41, expected_bits)) {
            break;
        }
        if let Some((ack, bits)) = p.ack {
            assert!(ack <= 41, "acked a sequence never sent: {p:?}");
            assert_ne!(ack, 41, "ack 41 with bits {bits:032b}");
        }
    }

    // 20 payloads from the application, numbered on from the daemon's earlier packets.
    let ids: Vec<_> = (0..20u32)
        .map(|i| server.send(format!("s{i}").as_bytes()).unwrap())
        .collect();
    let mut got = Vec::new();
    while got.len() < 20 {
        let p = peer.recv_payload(WAIT).expect("the server's payloads");
        got.push((p.extended, String::from_utf8(p.body).unwrap()));
    }
    let texts: Vec<_> = got.iter().map(|g| g.1.clone()).collect();
    assert_eq!(texts, (0..20).map(|i| format!("s{i}")).collect::<Vec<_>>());
    assert!(
        got.windows(2).all(|w| w[0].0 < w[1].0),
        "sequences increase"
    );
    // One Ack packet names them all (at most 33 sequences: the daemon's acks took some),
    // but for s5, as if it never arrived: the daemon's application sees 19 acked and s5
    // lost (at its loss timeout, 1 s).
    let span = got[19].0 - got[0].0;
    assert!(span <= 32, "20 payloads spread over {span} sequences");
    peer.received.retain(|&s| s != got[5].0);
    peer.send(ACK, &[]);
    let (mut acked, mut lost) = (Vec::new(), Vec::new());
    wait_for(WAIT, "20 deliveries", || {
        while let Some(d) = server.poll_delivery() {
            match d {
                Delivery::Acked(id) => acked.push(id),
                Delivery::Lost(id) => lost.push(id),
                _ => unreachable!("{d:?}"),
            }
        }
        acked.len() + lost.len() == 20
    });
    acked.sort();
    let mut expected = ids.clone();
    expected.remove(5);
    assert_eq!((acked, lost), (expected, vec![ids[5]]));

    // A forged payload (one tag bit flipped) is refused before it touches anything.
    let before = daemon.counters().endpoints.bad_mac;
    let mut forged = peer.build(PAYLOAD, b"forged");
    forged[20] ^= 1;
    peer.socket.send_to(&forged, peer.to).unwrap();
    peer.send(PAYLOAD, b"real"); // the same sequence, authentic
    assert_eq!(&server.recv_timeout(WAIT).unwrap()[..], b"real");
    wait_for(WAIT, "the forgery counted", || {
        daemon.counters().endpoints.bad_mac == before + 1
    });

    // §4: a Disconnect carries the session, the request's nonce.
    peer.send(DISCONNECT, &nonce.to_be_bytes());
    assert_eq!(
        server.recv_timeout(WAIT),
        Err(RecvTimeoutError::Closed(CloseReason::ClosedByPeer))
    );
}

/// A server written from the document: it challenges a daemon's client with a token of its
/// own choosing (§5.1: the client only echoes it), accepts, and derives the keys from that
/// token; payloads then flow both ways with tags each side checks, and the daemon's client
/// sees its payload acked.
#[test]
fn a_daemon_client_talks_to_a_spec_server() {
    let _w = watchdog(
        "a_daemon_client_talks_to_a_spec_server",
        Duration::from_secs(60),
    );
    let socket = UdpSocket::bind(loopback()).unwrap();
    let addr = socket.local_addr().unwrap();
    let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    let pending = daemon.connect_nonblocking(addr).unwrap();

    let token: [u8; 16] = std::array::from_fn(|i| 0xa0 ^ i as u8);
    let timestamp = 1500u64;
    let mut buf = [0u8; 1500];
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let (len, client) = socket.recv_from(&mut buf).unwrap();
    assert_eq!(
        (len, buf[4]),
        (1200, REQUEST),
        "a 1200-byte ConnectionRequest"
    );
    assert_eq!(buf[13..21], [0; 8], "packet mode: fingerprint 0 (§3)");
    assert!(buf[21..1200].iter().all(|&b| b == 0), "zero padding");
    let nonce = u64::from_be_bytes(buf[5..13].try_into().unwrap());
    let mut challenge = PID.to_be_bytes().to_vec();
    challenge.push(CHALLENGE);
    challenge.extend_from_slice(&nonce.to_be_bytes());
    challenge.extend_from_slice(&timestamp.to_be_bytes());
    challenge.extend_from_slice(&token);
    socket.send_to(&challenge, client).unwrap();
    // Retried requests may still be in flight: read on to the response.
    let response = loop {
        let (len, from) = socket.recv_from(&mut buf).unwrap();
        assert_eq!(from, client);
        if buf[4] == RESPONSE {
            break buf[..len].to_vec();
        }
        assert_eq!(buf[4], REQUEST);
    };
    assert_eq!(response.len(), 1200);
    assert_eq!(response[5..13], nonce.to_be_bytes());
    assert_eq!(response[13..21], timestamp.to_be_bytes());
    assert_eq!(response[21..37], token, "the token, echoed");
    assert!(
        response[37..].iter().all(|&b| b == 0),
        "fingerprint 0, zero padding"
    );
    let mut accept = PID.to_be_bytes().to_vec();
    accept.push(ACCEPT);
    accept.extend_from_slice(&nonce.to_be_bytes());
    socket.send_to(&accept, client).unwrap();
    let conn = pending.wait().unwrap();

    let mut peer = Peer::new(socket, client, false, &token, nonce, timestamp);
    let id = conn.send(b"hello").unwrap();
    let hello = peer.recv_payload(WAIT).expect("the client's payload");
    assert_eq!(hello.body, b"hello");
    peer.send(PAYLOAD, b"world");
    assert_eq!(&conn.recv_timeout(WAIT).unwrap()[..], b"world");
    wait_for(WAIT, "the client's payload acked", || {
        conn.poll_delivery() == Some(Delivery::Acked(id))
    });
    // The daemon acknowledges "world": its next packet (an ack within max_ack_delay, or a
    // keepalive) names our sequence 0.
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .expect("acked");
        if peer.recv(left).expect("a packet").ack == Some((0, 0)) {
            break;
        }
    }
    peer.send(DISCONNECT, &nonce.to_be_bytes());
    assert_eq!(
        conn.recv_timeout(WAIT),
        Err(RecvTimeoutError::Closed(CloseReason::ClosedByPeer))
    );
}
