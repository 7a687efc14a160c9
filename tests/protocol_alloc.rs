//! The steady-state send and receive paths, and a server at its connection limit, allocate
//! nothing (counted by a global allocator).

mod common;

use common::alloc::{thread_allocations, Counting};

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gudp::protocol::wire::{
    self, DenyReason, WirePacket, DEFAULT_PROTOCOL_ID, HANDSHAKE_PADDED_LEN,
};
use gudp::protocol::{Config, DropReason, Endpoint, Event, Incoming};

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn steady_state_send_and_receive_do_not_allocate() {
    let t0 = Instant::now();
    let (ca, sa): (SocketAddr, SocketAddr) =
        ("10.0.0.1:1".parse().unwrap(), "10.0.0.2:2".parse().unwrap());
    let mut client = Endpoint::new(Config::default(), [1; 16]);
    let mut server = Endpoint::new(Config::default(), [2; 16]);
    let conn = client.connect(t0, sa).unwrap();
    let mut buf = vec![0u8; 1500];
    let mut now = t0;
    let mut delivered = 0u64;
    // Every 1 ms: the client sends a payload, the server answers with one; both process
    // timers, transmits and events. 1 in 10 client payloads is "lost".
    let mut step = |i: u64, now: Instant, delivered: &mut u64| {
        if let Ok(t) = client.send(now, conn, &i.to_be_bytes(), &mut buf) {
            if i % 10 != 0 {
                let incoming = server.handle_datagram(now, ca, &buf[..t.len]);
                if let Incoming::Payload { receipt, .. } = incoming {
                    assert!(server.deliver(now, receipt));
                    *delivered += 1;
                }
            }
        }
        if let Some(sconn) = server.connection_by_addr(ca) {
            if let Ok(t) = server.send(now, sconn, &i.to_be_bytes(), &mut buf) {
                if let Incoming::Payload { receipt, .. } =
                    client.handle_datagram(now, sa, &buf[..t.len])
                {
                    assert!(client.deliver(now, receipt));
                }
            }
        }
        client.handle_timeout(now);
        server.handle_timeout(now);
        while let Some(t) = client.poll_transmit(now, &mut buf) {
            server.handle_datagram(now, ca, &buf[..t.len]);
        }
        while let Some(t) = server.poll_transmit(now, &mut buf) {
            client.handle_datagram(now, sa, &buf[..t.len]);
        }
        while client.poll_event().is_some() {}
        while server.poll_event().is_some() {}
    };
    for i in 0..5_000 {
        now += Duration::from_millis(1);
        step(i, now, &mut delivered);
    }
    let before = thread_allocations();
    for i in 5_000..25_000 {
        now += Duration::from_millis(1);
        step(i, now, &mut delivered);
    }
    let allocations = thread_allocations() - before;
    assert!(delivered > 20_000, "{delivered}");
    assert_eq!(allocations, 0, "allocations in 20,000 steady-state steps");
    let c = client.counters();
    assert!(
        c.connections.acked > 15_000 && c.connections.lost > 1_500,
        "{c:?}"
    );
}

/// The datagram a client at `from` would send: a request, or the response to a challenge.
fn handshake_packet(packet: WirePacket<'_>) -> Vec<u8> {
    let mut datagram = vec![0u8; HANDSHAKE_PADDED_LEN];
    packet.encode(DEFAULT_PROTOCOL_ID, &mut datagram).unwrap();
    datagram
}

/// Feeds `datagram` from `from` and returns the one reply it caused, decoded into `buf`.
fn reply<'b>(
    server: &mut Endpoint,
    now: Instant,
    from: SocketAddr,
    datagram: &[u8],
    buf: &'b mut [u8],
) -> (Incoming<'static>, WirePacket<'b>) {
    let incoming = match server.handle_datagram(now, from, datagram) {
        Incoming::Consumed => Incoming::Consumed,
        Incoming::Dropped(reason) => Incoming::Dropped(reason),
        other => panic!("a handshake packet gave {other:?}"),
    };
    let t = server.poll_transmit(now, buf).expect("one reply");
    let len = t.len;
    (
        incoming,
        wire::decode(DEFAULT_PROTOCOL_ID, &buf[..len]).unwrap(),
    )
}

/// The response a client at `from` would send to the challenge its request `nonce` earns.
fn response(server: &mut Endpoint, now: Instant, from: SocketAddr, nonce: u64) -> Vec<u8> {
    let request = handshake_packet(WirePacket::ConnectionRequest {
        nonce,
        fingerprint: 0,
    });
    let mut buf = [0u8; 64];
    match reply(server, now, from, &request, &mut buf).1 {
        WirePacket::Challenge {
            nonce,
            timestamp,
            token,
        } => handshake_packet(WirePacket::ChallengeResponse {
            nonce,
            timestamp,
            token,
            fingerprint: 0,
        }),
        other => panic!("{other:?}"),
    }
}

fn client(i: u32) -> SocketAddr {
    SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 4000))
}

/// At the default limit (16,384) a request and even a response with a valid token are
/// answered `Denied`, creating no connection, no timer, no replay-cache entry and no
/// allocation; a slot freed later admits the same token.
#[test]
fn a_server_at_its_limit_denies_and_allocates_nothing() {
    let t0 = Instant::now();
    // Small windows keep 16,384 connections cheap; the limit is the default one.
    let mut config = Config::default();
    config.sent_window = 33;
    config.received_window = 33;
    config.loss_window = 1;
    let mut server = Endpoint::new(config, [3; 16]);
    let max = server.config().max_connections;
    assert_eq!(max, 16_384);
    let mut buf = [0u8; 64];
    // 32 clients get their challenge while the server is empty, and answer only later.
    let late: Vec<(SocketAddr, u64, Vec<u8>)> = (0..32u32)
        .map(|i| {
            let from = client(max as u32 + i);
            let nonce = u64::from(max as u32 + i);
            (from, nonce, response(&mut server, t0, from, nonce))
        })
        .collect();
    for i in 0..max as u32 {
        let from = client(i);
        let response = response(&mut server, t0, from, u64::from(i));
        let (_, accept) = reply(&mut server, t0, from, &response, &mut buf);
        assert!(matches!(accept, WirePacket::Accept { .. }), "{accept:?}");
    }
    while server.poll_event().is_some() {}
    assert_eq!(server.connection_count(), max);
    let deadline = server.next_deadline();

    let now = t0 + Duration::from_millis(1);
    let requests: Vec<Vec<u8>> = late
        .iter()
        .map(|&(_, nonce, _)| {
            handshake_packet(WirePacket::ConnectionRequest {
                nonce,
                fingerprint: 0,
            })
        })
        .collect();
    let before = thread_allocations();
    for ((from, nonce, response), request) in late.iter().zip(&requests) {
        let (incoming, denied) = reply(&mut server, now, *from, request, &mut buf);
        assert_eq!(incoming, Incoming::Consumed);
        assert_eq!(
            denied,
            WirePacket::Denied {
                nonce: *nonce,
                reason: DenyReason::Full,
            }
        );
        let (incoming, denied) = reply(&mut server, now, *from, response, &mut buf);
        assert_eq!(incoming, Incoming::Consumed);
        assert_eq!(
            denied,
            WirePacket::Denied {
                nonce: *nonce,
                reason: DenyReason::Full,
            }
        );
    }
    let allocated = thread_allocations() - before;
    assert_eq!(
        allocated, 0,
        "allocations while denying 64 handshake packets"
    );
    assert_eq!(server.connection_count(), max);
    assert_eq!(
        server.next_deadline(),
        deadline,
        "no timer for a denied client"
    );
    assert_eq!(server.poll_event(), None);
    let c = server.counters();
    assert_eq!(
        (c.handshake_denials, c.connections_opened),
        (64, max as u64)
    );

    // Free one slot: the first late token was not recorded as used, so it now connects.
    let gone = server.connection_by_addr(client(0)).unwrap();
    server.close(now, gone);
    while server.poll_transmit(now, &mut buf).is_some() {}
    while server.poll_event().is_some() {}
    let (from, _, first) = &late[0];
    let (_, accept) = reply(&mut server, now, *from, first, &mut buf);
    assert!(matches!(accept, WirePacket::Accept { .. }), "{accept:?}");
    assert!(matches!(server.poll_event(), Some(Event::Connected { .. })));
    // Full again: the next one is still denied.
    let (from, nonce, second) = &late[1];
    let (_, denied) = reply(&mut server, now, *from, second, &mut buf);
    assert_eq!(
        denied,
        WirePacket::Denied {
            nonce: *nonce,
            reason: DenyReason::Full,
        }
    );
    assert_eq!(server.connection_count(), max);
    // A used token stays refused even from its own address once that connection is gone.
    let sconn = server.connection_by_addr(late[0].0).unwrap();
    server.close(now, sconn);
    assert_eq!(
        server.handle_datagram(now, late[0].0, first),
        Incoming::Dropped(DropReason::ReplayedToken)
    );
}
