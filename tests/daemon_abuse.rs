//! Hostile traffic over real loopback sockets: a garbage flood while real clients echo, and
//! a spoofed-source handshake flood that must create no state and amplify nothing.

mod common;

use common::{connect, drop_reasons, fill, loopback, watchdog, SplitMix64};
use gudp::protocol::wire::{
    self, AckFields, ConnectedHeader, WirePacket, CONNECTED_HEADER_LEN, DEFAULT_PROTOCOL_ID,
    HANDSHAKE_PADDED_LEN, TOKEN_LEN,
};
use gudp::protocol::{DecodeError, EndpointCounters};
use gudp::{CloseReason, Daemon, DaemonConfig, RecvTimeoutError};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Datagrams the daemon has read but not yet processed may sit in the kernel's receive
/// buffer; keeping fewer than this many in flight means the kernel never drops any.
const IN_FLIGHT: u64 = 48;

/// Which endpoint counter a garbage datagram must land in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reason {
    TooShort,
    WrongProtocolId,
    UnknownType,
    BadLength,
    NonCanonical,
    UnknownPeer,
    BadToken,
}

const REASONS: [Reason; 7] = [
    Reason::TooShort,
    Reason::WrongProtocolId,
    Reason::UnknownType,
    Reason::BadLength,
    Reason::NonCanonical,
    Reason::UnknownPeer,
    Reason::BadToken,
];

fn counter(c: &EndpointCounters, reason: Reason) -> u64 {
    match reason {
        Reason::TooShort => c.invalid_too_short,
        Reason::WrongProtocolId => c.wrong_protocol_id,
        Reason::UnknownType => c.invalid_unknown_type,
        Reason::BadLength => c.invalid_bad_length,
        Reason::NonCanonical => c.invalid_non_canonical,
        Reason::UnknownPeer => c.unknown_peer,
        Reason::BadToken => c.handshake_bad_tokens,
    }
}

fn random_header(rng: &mut SplitMix64) -> ConnectedHeader {
    ConnectedHeader {
        sequence: rng.next_u64() as u16,
        ack: Some(AckFields {
            ack: rng.next_u64() as u16,
            ack_bits: rng.next_u64() as u32,
            ack_delay: rng.next_u64() as u16,
        }),
        mac: std::array::from_fn(|_| rng.next_u64() as u8),
    }
}

/// Writes garbage datagram number `i` into `buf`; returns its length and where the server
/// must count it. None of them comes from an address with a connection.
fn garbage(i: u64, rng: &mut SplitMix64, buf: &mut [u8]) -> (usize, Reason) {
    let id = DEFAULT_PROTOCOL_ID;
    match i % 8 {
        // Random bytes of any length: classified the way the decoder sees them.
        0 => {
            let len = rng.next_u64() as usize % 1500;
            fill(rng, &mut buf[..len]);
            let reason = match wire::decode(id, &buf[..len]) {
                Err(DecodeError::TooShort { .. }) => Reason::TooShort,
                Err(DecodeError::WrongProtocolId { .. }) => Reason::WrongProtocolId,
                // Only with the right 4-byte id (1 in 2^32): make it so by force.
                _ => {
                    buf[..4].copy_from_slice(&(!id).to_be_bytes());
                    Reason::WrongProtocolId
                }
            };
            (len, reason)
        }
        1 => {
            let len = rng.next_u64() as usize % 5; // including empty datagrams
            fill(rng, &mut buf[..len]);
            (len, Reason::TooShort)
        }
        // A well-formed packet under another protocol's id.
        2 => {
            let other = id ^ (1 + rng.next_u64() as u32 % 0xffff);
            let packet = WirePacket::Keepalive {
                header: random_header(rng),
            };
            (packet.encode(other, buf).unwrap(), Reason::WrongProtocolId)
        }
        3 => {
            let len = 5 + rng.next_u64() as usize % 100;
            fill(rng, &mut buf[..len]);
            buf[..4].copy_from_slice(&id.to_be_bytes());
            buf[4] = 0x20 + (rng.next_u64() % 0xd0) as u8; // no type is 0x20..=0xef
            (len, Reason::UnknownType)
        }
        // A connected header cut short.
        4 => {
            let len = 5 + rng.next_u64() as usize % (CONNECTED_HEADER_LEN - 5);
            fill(rng, &mut buf[..len]);
            buf[..4].copy_from_slice(&id.to_be_bytes());
            buf[4] = 0x10; // payload
            (len, Reason::BadLength)
        }
        // A connection request whose padding is not zero.
        5 => {
            let packet = WirePacket::ConnectionRequest {
                nonce: rng.next_u64(),
                fingerprint: 0,
            };
            let len = packet.encode(id, buf).unwrap();
            // The padding follows the nonce and the message-layer fingerprint.
            buf[21 + rng.next_u64() as usize % (len - 21)] = 1;
            (len, Reason::NonCanonical)
        }
        // Valid connected packets (some larger than any MTU) from a stranger.
        6 => {
            let mut payload = [0u8; 3000];
            let len = 1 + rng.next_u64() as usize % 3000;
            fill(rng, &mut payload[..len]);
            let packet = WirePacket::Payload {
                header: random_header(rng),
                payload: &payload[..len],
            };
            (packet.encode(id, buf).unwrap(), Reason::UnknownPeer)
        }
        // A challenge response with a made-up token.
        _ => {
            let mut token = [0u8; TOKEN_LEN];
            fill(rng, &mut token);
            let packet = WirePacket::ChallengeResponse {
                nonce: rng.next_u64(),
                timestamp: rng.next_u64() % 10_000,
                token,
                fingerprint: 0,
            };
            (packet.encode(id, buf).unwrap(), Reason::BadToken)
        }
    }
}

#[test]
fn garbage_flood_is_counted_and_real_clients_keep_echoing() {
    let _watchdog = watchdog("garbage flood", Duration::from_secs(120));
    const TOTAL: u64 = 100_000;
    const FLOODERS: u64 = 2;
    const SOCKETS_PER_FLOODER: usize = 16;
    let server = Daemon::spawn(DaemonConfig::default()).unwrap();
    let client_daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    let listener = server.listen(loopback()).unwrap();
    let target = listener.local_addr();
    let (clients, accepted): (Vec<_>, Vec<_>) =
        (0..4).map(|_| connect(&client_daemon, &listener)).unzip();
    let before = server.counters();

    let sent_total = AtomicU64::new(0);
    let mut expected = [[0u64; REASONS.len()]; FLOODERS as usize];
    let (rounds, retries, c) = thread::scope(|s| {
        for conn in &accepted {
            s.spawn(move || {
                // Echo until the client side goes away.
                while let Ok(packet) = conn.recv() {
                    let _ = conn.send(&packet);
                }
            });
        }
        let flooders: Vec<_> = (0..FLOODERS)
            .map(|f| {
                let (server, sent_total) = (&server, &sent_total);
                let base = before.dropped_by_protocol;
                s.spawn(move || {
                    let sockets: Vec<_> = (0..SOCKETS_PER_FLOODER)
                        .map(|_| UdpSocket::bind(loopback()).unwrap())
                        .collect();
                    let mut rng = SplitMix64::new(0x5eed + f);
                    let mut buf = vec![0u8; 4000];
                    let mut expected = [0u64; REASONS.len()];
                    for n in 0..TOTAL / FLOODERS {
                        // Pace on what the daemon has read, so the kernel drops nothing.
                        while sent_total.load(Ordering::Relaxed)
                            >= server.counters().dropped_by_protocol - base + IN_FLIGHT
                        {
                            thread::yield_now();
                        }
                        let (len, reason) = garbage(n * FLOODERS + f, &mut rng, &mut buf);
                        let socket = &sockets[n as usize % sockets.len()];
                        socket.send_to(&buf[..len], target).unwrap();
                        sent_total.fetch_add(1, Ordering::Relaxed);
                        expected[REASONS.iter().position(|&r| r == reason).unwrap()] += 1;
                    }
                    expected
                })
            })
            .collect();
        // Meanwhile the real clients keep echoing, each round retried if it is lost.
        let (mut rounds, mut retries) = (0u32, 0u32);
        while flooders.iter().any(|f| !f.is_finished()) || rounds < 20 {
            for (c, client) in clients.iter().enumerate() {
                let message = [c as u8, (rounds >> 8) as u8, rounds as u8];
                let mut attempts = 0;
                'attempt: loop {
                    attempts += 1;
                    assert!(attempts <= 10, "client {c} round {rounds}: no echo");
                    client.send(&message).unwrap();
                    loop {
                        match client.recv_timeout(Duration::from_millis(300)) {
                            Ok(echo) if echo[..] == message => break 'attempt,
                            Ok(_) => {} // a late echo of an earlier attempt
                            Err(RecvTimeoutError::Timeout) => break,
                            Err(e) => panic!("client {c}: {e:?}"),
                        }
                    }
                }
                retries += attempts - 1;
            }
            rounds += 1;
        }
        for (f, flooder) in flooders.into_iter().enumerate() {
            expected[f] = flooder.join().unwrap();
        }
        // Counted before the clients close: their extra disconnect copies are dropped
        // (unknown peer) once the first one has ended the connection.
        let flooded = server.counters();
        for client in &clients {
            client.close(); // ends the echo threads (ClosedByPeer)
        }
        (rounds, retries, flooded)
    });
    for conn in &accepted {
        let reason = conn.status().close_reason();
        assert_eq!(
            reason,
            Some(CloseReason::ClosedByPeer),
            "real clients were not cut off"
        );
    }

    let end = server.counters();
    assert_eq!(end.unaccounted(), 0, "{end:?}");
    assert_eq!(
        drop_reasons(&end.endpoints),
        end.dropped_by_protocol,
        "{end:?}"
    );
    let e = &c.endpoints;
    assert_eq!(c.unaccounted(), 0, "{c:?}");
    assert_eq!(
        drop_reasons(e),
        c.dropped_by_protocol,
        "every drop has a reason: {c:?}"
    );
    let read = c.dropped_by_protocol - before.dropped_by_protocol;
    let sent = sent_total.load(Ordering::Relaxed);
    assert_eq!(sent, TOTAL);
    assert!(
        read <= sent && read >= sent * 9 / 10,
        "read {read} of {sent}"
    );
    for (r, &reason) in REASONS.iter().enumerate() {
        let want: u64 = expected.iter().map(|e| e[r]).sum();
        let got = counter(e, reason) - counter(&before.endpoints, reason);
        assert!(want > 0, "{reason:?} was tested");
        if read == sent {
            assert_eq!(got, want, "{reason:?}: {c:?}");
        } else {
            assert!(got <= want, "{reason:?}: {got} > {want}");
        }
    }
    // No garbage created state or drew a reply: only the four real handshakes happened.
    assert_eq!(e.connections_opened, 4);
    assert_eq!(
        e.handshake_challenges,
        before.endpoints.handshake_challenges
    );
    assert_eq!(e.handshake_accepts, 4);
    // Every attempt the server read was delivered to its connection (an attempt is retried
    // only if it or its echo was lost).
    let delivered = c.payloads_delivered - before.payloads_delivered;
    let attempts = u64::from(rounds) * 4 + u64::from(retries);
    assert!(
        delivered >= u64::from(rounds) * 4 && delivered <= attempts,
        "{c:?}"
    );
    eprintln!("garbage flood: read {read} of {sent}; {rounds} echo rounds, {retries} retries");
}

/// 250 source addresses per /24 on 127.0.x.0, from 127.0.1.1.
#[cfg(target_os = "linux")]
fn spoofed_source(i: usize) -> SocketAddr {
    let (x, y) = (1 + i / 250, 1 + i % 250);
    SocketAddr::from(([127, 0, x as u8, y as u8], 0))
}

/// Reads one datagram, or `None` after `timeout`.
#[cfg(target_os = "linux")]
fn read_reply(socket: &UdpSocket, timeout: Duration, buf: &mut [u8]) -> Option<usize> {
    socket.set_read_timeout(Some(timeout)).unwrap();
    match socket.recv_from(buf) {
        Ok((len, _)) => Some(len),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            None
        }
        Err(e) => panic!("{e}"),
    }
}

#[cfg(target_os = "linux")]
#[test]
fn spoofed_source_handshake_flood_creates_no_state_and_amplifies_nothing() {
    let _watchdog = watchdog("spoofed flood", Duration::from_secs(120));
    const SOURCES: usize = 300;
    const ROUNDS: usize = 3;
    const WAVE: usize = 30;
    let server = Daemon::spawn(DaemonConfig::default()).unwrap();
    let listener = server.listen(loopback()).unwrap();
    let target = listener.local_addr();
    let sockets: Vec<_> = (0..SOURCES)
        .map(|i| UdpSocket::bind(spoofed_source(i)).expect("bind a 127/8 address"))
        .collect();
    let mut rng = SplitMix64::new(42);
    let mut buf = vec![0u8; 2048];
    let mut challenges = vec![None; SOURCES];
    let (mut requests, mut replies) = (0u64, 0u64);
    // Connection requests, in waves so the server's receive buffer never overflows. Each
    // request is answered by a challenge that is much smaller.
    for round in 0..ROUNDS {
        for wave in (0..SOURCES).collect::<Vec<_>>().chunks(WAVE) {
            let mut nonces = Vec::new();
            for &i in wave {
                let nonce = rng.next_u64();
                let len = WirePacket::ConnectionRequest {
                    nonce,
                    fingerprint: 0,
                }
                .encode(DEFAULT_PROTOCOL_ID, &mut buf)
                .unwrap();
                assert_eq!(len, HANDSHAKE_PADDED_LEN);
                sockets[i].send_to(&buf[..len], target).unwrap();
                requests += 1;
                nonces.push(nonce);
            }
            for (&i, nonce) in wave.iter().zip(nonces) {
                let Some(len) = read_reply(&sockets[i], Duration::from_secs(2), &mut buf) else {
                    continue; // the request or its reply was lost: counted below
                };
                replies += 1;
                assert!(
                    len <= HANDSHAKE_PADDED_LEN,
                    "reply of {len} bytes to a request"
                );
                match wire::decode(DEFAULT_PROTOCOL_ID, &buf[..len]) {
                    Ok(WirePacket::Challenge {
                        nonce: echoed,
                        timestamp,
                        token,
                    }) => {
                        assert_eq!(echoed, nonce, "source {i} round {round}");
                        challenges[i] = Some((nonce, timestamp, token));
                    }
                    other => panic!("expected a challenge, got {other:?}"),
                }
            }
        }
    }
    assert!(
        replies >= requests * 9 / 10,
        "{replies} challenges for {requests} requests"
    );
    // Each source answers with a genuine token issued to *another* address, as an attacker
    // that harvested tokens elsewhere would: the token must not verify.
    let mut responses = 0u64;
    for wave in (0..SOURCES).collect::<Vec<_>>().chunks(WAVE) {
        for &i in wave {
            let Some((nonce, timestamp, token)) = challenges[(i + 1) % SOURCES] else {
                continue;
            };
            let len = WirePacket::ChallengeResponse {
                nonce,
                timestamp,
                token,
                fingerprint: 0,
            }
            .encode(DEFAULT_PROTOCOL_ID, &mut buf)
            .unwrap();
            sockets[i].send_to(&buf[..len], target).unwrap();
            responses += 1;
        }
        thread::sleep(Duration::from_millis(5));
    }
    // Nothing comes back for a bad token.
    thread::sleep(Duration::from_millis(200));
    for socket in &sockets {
        assert_eq!(read_reply(socket, Duration::from_millis(1), &mut buf), None);
    }

    let c = server.counters();
    let e = &c.endpoints;
    assert_eq!(c.unaccounted(), 0, "{c:?}");
    assert_eq!(drop_reasons(e), c.dropped_by_protocol, "{c:?}");
    assert!(e.handshake_requests <= requests && e.handshake_requests >= replies);
    assert_eq!(
        e.handshake_challenges, replies,
        "one challenge per request read: {e:?}"
    );
    assert_eq!(e.handshake_responses, e.handshake_bad_tokens, "{e:?}");
    assert!(e.handshake_bad_tokens >= responses * 9 / 10, "{e:?}");
    assert_eq!(e.handshake_accepts, 0, "{e:?}");
    assert_eq!(e.connections_opened, 0, "{e:?}");
    assert_eq!(
        c.datagrams_sent, replies,
        "one reply per request, none for responses"
    );
    assert!(matches!(
        listener.accept_timeout(Duration::from_millis(10)),
        Err(RecvTimeoutError::Timeout)
    ));
    eprintln!(
        "spoofed flood: {requests} requests, {replies} challenges, {responses} bad responses"
    );
}

/// A daemon that falls behind loses datagrams in the kernel (its socket's receive buffer
/// fills), but not silently: the kernel's count arrives with the next datagram the socket
/// receives, and what the daemon read plus what the kernel dropped is exactly what was sent.
#[cfg(target_os = "linux")]
#[test]
fn kernel_drops_are_counted_when_the_daemon_falls_behind() {
    let _watchdog = watchdog("kernel_drops", Duration::from_secs(30));
    // A manual daemon that nobody polls does not read at all; a small receive buffer
    // (the default asks for 4 MiB) fills with a few thousand datagrams.
    let mut config = DaemonConfig::default();
    config.socket_receive_buffer = 64 << 10;
    let daemon = Daemon::manual(config).unwrap();
    let listener = daemon.listen(loopback()).unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = || u64::from(sender.send_to(&[0u8; 32], listener.local_addr()).is_ok());
    let mut sent: u64 = (0..5_000).map(|_| send()).sum();
    let read_all = |want_at_least: u64| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            daemon.poll(Some(Duration::from_millis(10))).unwrap();
            let received = daemon.counters().datagrams_received;
            if received >= want_at_least {
                return received;
            }
            assert!(Instant::now() < deadline, "only {received} datagrams read");
        }
    };
    let first = read_all(1);
    assert!(
        first < sent,
        "the receive buffer held all {sent} datagrams: no drop to count"
    );
    // Everything queued was read in that poll; one more datagram brings the final count.
    sent += send();
    read_all(first + 1);
    let counters = daemon.counters();
    assert!(counters.dropped_by_kernel > 0, "{counters:?}");
    assert_eq!(
        counters.datagrams_received + counters.dropped_by_kernel,
        sent,
        "{counters:?}"
    );
    assert_eq!(counters.unaccounted(), 0);
}
