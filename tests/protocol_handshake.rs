//! Handshake, exchange under bad links, connection lifecycle: deterministic simulated time.

mod protocol_sim;

use gudp::protocol::wire::{self, WirePacket, DEFAULT_PROTOCOL_ID, HANDSHAKE_PADDED_LEN};
use gudp::protocol::{CloseReason, Config, DropReason, Endpoint, Event, Incoming, Role};
use protocol_sim::{link, secs, Sim, MS};

fn exchange_under(latency: u64, jitter: u64, loss: f64, dup: f64, seed: u64) {
    let mut config = Config::default();
    config.connect_timeout = secs(30);
    config.token_lifetime = secs(30);
    let mut sim = Sim::new(
        link(latency, jitter, loss, dup),
        seed,
        vec![config.clone(), config],
    );
    let (c, s) = sim.connect(0, 1, secs(30)).expect("handshake completes");
    assert_eq!(
        sim.nodes[1].ep.connection_stats(s).unwrap().role,
        Role::Server
    );
    sim.exchange(&[(0, c), (1, s)], 50 * MS, secs(30), 100);
    // Stop sending, let every packet resolve, then close cleanly.
    sim.run_for(secs(15));
    sim.nodes[0].ep.close(sim.now, c);
    sim.run_for(secs(15));
    for (from, to) in [(0, 1), (1, 0)] {
        sim.check_no_duplicate_delivery(to);
        let (acked, lost) = sim.check_notifications(from, to);
        let sent = sim.nodes[from].app_sent.len();
        assert_eq!(acked + lost, sent, "every packet resolved (node {from})");
        let delivered = sim.nodes[to].delivered.len() as f64;
        let expected = sent as f64 * (1.0 - loss / 100.0);
        assert!(
            delivered > expected * 0.9,
            "delivered {delivered} of {sent}"
        );
        assert!(acked as f64 > expected * 0.8, "acked {acked} of {sent}");
    }
    assert!(
        sim.nodes[1].ep.counters().connections.duplicates > 0,
        "duplicates were dropped"
    );
    assert_eq!(
        sim.nodes[0].disconnects().last().map(|d| d.1),
        Some(CloseReason::Closed)
    );
    // The server hears the close (or, if all copies were lost, times out).
    let server_end = sim.nodes[1].disconnects();
    assert_eq!(server_end.len(), 1);
    assert!(matches!(
        server_end[0].1,
        CloseReason::ClosedByPeer | CloseReason::TimedOut
    ));
    // No amplification: the server never sent a handshake reply larger than what it got.
    for &(dest, len, ty) in &sim.nodes[1].sent {
        if ty < 0x10 {
            assert!(
                len <= sim.nodes[1].largest_in[&dest],
                "reply of {len} bytes"
            );
        }
    }
}

#[test]
fn handshake_and_exchange_250ms_latency_250ms_jitter_5pct_loss_10pct_dup() {
    exchange_under(250, 250, 5.0, 10.0, 1);
}

#[test]
fn handshake_and_exchange_1000ms_latency_100ms_jitter_25pct_loss_25pct_dup() {
    exchange_under(1000, 100, 25.0, 25.0, 2);
}

fn addr(s: &str) -> std::net::SocketAddr {
    s.parse().unwrap()
}

/// Drains an endpoint's transmits into (destination, bytes).
fn drain(ep: &mut Endpoint, now: std::time::Instant) -> Vec<(std::net::SocketAddr, Vec<u8>)> {
    let mut buf = [0u8; 1500];
    let mut out = Vec::new();
    while let Some(t) = ep.poll_transmit(now, &mut buf) {
        out.push((t.destination, buf[..t.len].to_vec()));
    }
    out
}

fn request(nonce: u64) -> Vec<u8> {
    let mut b = vec![0u8; HANDSHAKE_PADDED_LEN];
    WirePacket::ConnectionRequest {
        nonce,
        fingerprint: 0,
    }
    .encode(DEFAULT_PROTOCOL_ID, &mut b)
    .unwrap();
    b
}

#[test]
fn spoofed_requests_allocate_no_state_and_replies_never_amplify() {
    let t0 = std::time::Instant::now();
    let mut server = Endpoint::new(
        {
            let mut protocol = Config::default();
            protocol.max_queued_replies = 100;
            protocol
        },
        [9; 16],
    );
    for i in 0..1000u32 {
        let from = addr(&format!("192.0.2.{}:{}", i % 250, 1000 + i));
        assert_eq!(server.handle_datagram(t0, from, &request(u64::from(i))), {
            if i < 100 {
                Incoming::Consumed
            } else {
                Incoming::Dropped(DropReason::ReplyQueueFull)
            }
        });
    }
    assert_eq!(server.connection_count(), 0);
    assert_eq!(server.next_deadline(), None, "no timers either");
    let replies = drain(&mut server, t0);
    assert_eq!(replies.len(), 100);
    for (_, r) in &replies {
        assert!(r.len() <= HANDSHAKE_PADDED_LEN);
        assert!(matches!(
            wire::decode(DEFAULT_PROTOCOL_ID, r),
            Ok(WirePacket::Challenge { .. })
        ));
    }
    let c = server.counters();
    assert_eq!(
        (
            c.handshake_requests,
            c.handshake_challenges,
            c.replies_dropped
        ),
        (1000, 100, 900)
    );
}

/// Runs a client and server by hand until connected; returns the client's challenge response.
fn handshake(
    client: &mut Endpoint,
    server: &mut Endpoint,
    ca: std::net::SocketAddr,
    sa: std::net::SocketAddr,
    t: std::time::Instant,
) -> Vec<u8> {
    client.connect(t, sa).unwrap();
    let req = drain(client, t);
    assert_eq!(req.len(), 1);
    assert_eq!(req[0].1.len(), HANDSHAKE_PADDED_LEN);
    assert_eq!(server.handle_datagram(t, ca, &req[0].1), Incoming::Consumed);
    let challenge = drain(server, t);
    assert!(challenge[0].1.len() <= req[0].1.len());
    assert_eq!(
        client.handle_datagram(t, sa, &challenge[0].1),
        Incoming::Consumed
    );
    let response = drain(client, t);
    assert_eq!(response[0].1.len(), HANDSHAKE_PADDED_LEN);
    assert_eq!(
        server.handle_datagram(t, ca, &response[0].1),
        Incoming::Consumed
    );
    let accept = drain(server, t);
    assert!(accept[0].1.len() <= response[0].1.len());
    assert_eq!(
        client.handle_datagram(t, sa, &accept[0].1),
        Incoming::Consumed
    );
    response[0].1.clone()
}

#[test]
fn forged_replayed_and_expired_tokens_are_rejected() {
    let t0 = std::time::Instant::now();
    let (ca, sa, other) = (
        addr("10.1.0.1:5000"),
        addr("10.1.0.2:6000"),
        addr("10.1.0.3:5000"),
    );
    let mut server = Endpoint::new(Config::default(), [3; 16]);
    let mut client = Endpoint::new(Config::default(), [4; 16]);
    let response = handshake(&mut client, &mut server, ca, sa, t0);
    assert_eq!(server.connection_count(), 1);
    assert_eq!(client.connection_count(), 1);

    // Forged: right shape, wrong token.
    let Ok(WirePacket::ChallengeResponse {
        nonce,
        timestamp,
        mut token,
        fingerprint,
    }) = wire::decode(DEFAULT_PROTOCOL_ID, &response)
    else {
        panic!()
    };
    token[0] ^= 1;
    let mut forged = vec![0u8; HANDSHAKE_PADDED_LEN];
    WirePacket::ChallengeResponse {
        nonce,
        timestamp,
        token,
        fingerprint,
    }
    .encode(DEFAULT_PROTOCOL_ID, &mut forged)
    .unwrap();
    assert_eq!(
        server.handle_datagram(t0, other, &forged),
        Incoming::Dropped(DropReason::BadToken)
    );
    // A valid token from another address does not verify either.
    assert_eq!(
        server.handle_datagram(t0, other, &response),
        Incoming::Dropped(DropReason::BadToken)
    );
    // Retransmission from the connected client: the accept is re-sent, no new state.
    assert_eq!(
        server.handle_datagram(t0, ca, &response),
        Incoming::Consumed
    );
    assert_eq!(server.connection_count(), 1);
    let again = drain(&mut server, t0);
    assert!(matches!(
        wire::decode(DEFAULT_PROTOCOL_ID, &again[0].1),
        Ok(WirePacket::Accept { .. })
    ));
    // A request from a connected address is ignored.
    assert_eq!(
        server.handle_datagram(t0, ca, &request(5)),
        Incoming::Dropped(DropReason::AlreadyConnected)
    );

    // Close on the server; a replay of the used token (still fresh) is refused.
    let sconn = server.connection_by_addr(ca).unwrap();
    server.close(t0, sconn);
    let t1 = t0 + secs(1);
    assert_eq!(
        server.handle_datagram(t1, ca, &response),
        Incoming::Dropped(DropReason::ReplayedToken)
    );
    // After the lifetime it is expired (an unused token too).
    let mut fresh_client = Endpoint::new(Config::default(), [5; 16]);
    fresh_client.connect(t1, sa).unwrap();
    let req = drain(&mut fresh_client, t1);
    server.handle_datagram(t1, other, &req[0].1);
    let ch = drain(&mut server, t1);
    let ch = ch.iter().find(|(d, _)| *d == other).unwrap();
    fresh_client.handle_datagram(t1, sa, &ch.1);
    let resp = drain(&mut fresh_client, t1);
    let late = t1 + Config::default().token_lifetime + MS;
    assert_eq!(
        server.handle_datagram(late, other, &resp[0].1),
        Incoming::Dropped(DropReason::ExpiredToken)
    );
    assert_eq!(
        server.handle_datagram(late, ca, &response),
        Incoming::Dropped(DropReason::ExpiredToken)
    );
    assert_eq!(server.connection_count(), 0);
    let c = server.counters();
    assert_eq!(
        (
            c.handshake_bad_tokens,
            c.handshake_replayed_tokens,
            c.handshake_expired_tokens
        ),
        (2, 1, 2)
    );
    assert_eq!(c.handshake_already_connected, 1);
}

#[test]
fn server_at_its_limit_denies() {
    let mut config = Config::default();
    config.max_connections = 1;
    let mut sim = Sim::new(
        link(20, 0, 0.0, 0.0),
        3,
        vec![config.clone(), config.clone(), config],
    );
    // Node 0 is the server; node 1 takes the only slot, node 2 is denied.
    sim.connect(1, 0, secs(2)).expect("first client connects");
    let server = sim.nodes[0].addr;
    let denied = sim.nodes[2].ep.connect(sim.now, server).unwrap();
    sim.run_for(secs(1));
    let d = sim.nodes[2].disconnects();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].1, CloseReason::ConnectionDenied);
    assert!(sim.nodes[2].ep.connection_stats(denied).is_none());
    assert_eq!(sim.nodes[0].ep.counters().handshake_denials, 1);
    assert_eq!(sim.nodes[0].ep.connection_count(), 1);
}

#[test]
fn connect_times_out_without_a_server() {
    let mut sim = Sim::new(link(20, 0, 0.0, 0.0), 4, vec![Config::default()]);
    let nowhere = addr("10.9.9.9:9");
    sim.nodes[0].ep.connect(sim.now, nowhere).unwrap();
    sim.run_for(secs(10));
    let d = sim.nodes[0].disconnects();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].1, CloseReason::ConnectTimedOut);
    assert_eq!(d[0].0 - sim.t0, Config::default().connect_timeout);
    // Requests were retried at about 10 per second.
    let requests = sim.nodes[0].ep.counters().requests_sent;
    assert!((49..=51).contains(&requests), "{requests}");
}

#[test]
fn idle_timeout_when_the_link_dies() {
    let mut sim = Sim::new(
        link(30, 0, 0.0, 0.0),
        5,
        vec![Config::default(), Config::default()],
    );
    sim.connect(0, 1, secs(2)).unwrap();
    sim.run_for(secs(5));
    let cut = sim.now;
    sim.link.set_config(link(30, 0, 100.0, 0.0));
    sim.run_for(secs(20));
    for n in 0..2 {
        let d = sim.nodes[n].disconnects();
        assert_eq!(d.len(), 1, "node {n}");
        assert_eq!(d[0].1, CloseReason::TimedOut);
        // The last packet arrived at most a keepalive interval before the cut + latency.
        let after = d[0].0 - cut;
        let interval = Config::default().keepalive_interval;
        assert!(
            after > secs(10) - interval - 300 * MS && after <= secs(10) + 30 * MS,
            "{after:?}"
        );
    }
}

#[test]
fn keepalives_keep_a_silent_link_alive_and_measure_it() {
    let mut sim = Sim::new(
        link(40, 0, 0.0, 0.0),
        6,
        vec![Config::default(), Config::default()],
    );
    let (c, s) = sim.connect(0, 1, secs(2)).unwrap();
    sim.run_for(secs(60));
    for (n, conn) in [(0, c), (1, s)] {
        assert!(sim.nodes[n].disconnects().is_empty());
        let stats = sim.nodes[n].ep.connection_stats(conn).unwrap();
        let rtt = stats.rtt.as_secs_f64() * 1000.0;
        assert!((80.0..=95.0).contains(&rtt), "node {n}: rtt {rtt} ms");
        assert_eq!(stats.packet_loss_percent, 0.0);
        let keepalives = sim.nodes[n].ep.counters().connections.keepalives_sent;
        // The client: one every interval (2 s); the server: none after the first interval
        // (the client's keepalives keep the link alive, and their acks of the server's acks
        // give the server its RTT sample: the RTT asserted above).
        let expected = if n == 0 { 29..=30 } else { 0..=1 };
        assert!(expected.contains(&keepalives), "node {n}: {keepalives}");
    }
}

/// An idle server sends no keepalives, yet its RTT follows the path: the client's keepalives
/// ack the server's acks of them, and their ack delay (about a keepalive interval) is taken off
/// the sample. The path's latency goes from 40 ms to 100 ms each way while both are silent.
#[test]
fn an_idle_server_measures_the_path_from_its_acks() {
    let mut sim = Sim::new(
        link(40, 0, 0.0, 0.0),
        9,
        vec![Config::default(), Config::default()],
    );
    let (c, s) = sim.connect(0, 1, secs(2)).unwrap();
    sim.run_for(secs(10));
    sim.link.set_config(link(100, 0, 0.0, 0.0));
    let keepalives_before = sim.nodes[1].ep.counters().connections.keepalives_sent;
    sim.run_for(secs(60));
    for (n, conn) in [(0, c), (1, s)] {
        assert!(sim.nodes[n].disconnects().is_empty());
        let rtt = sim.nodes[n].ep.connection_stats(conn).unwrap().rtt;
        let ms = rtt.as_secs_f64() * 1000.0;
        assert!((190.0..=215.0).contains(&ms), "node {n}: rtt {ms} ms");
    }
    let keepalives = sim.nodes[1].ep.counters().connections.keepalives_sent;
    assert_eq!(keepalives, keepalives_before, "the server sent keepalives");
}

#[test]
fn clean_close_from_either_side() {
    for closer in 0..2 {
        let mut sim = Sim::new(
            link(30, 10, 20.0, 0.0),
            7 + closer as u64,
            vec![Config::default(), Config::default()],
        );
        let (c, s) = sim.connect(0, 1, secs(5)).unwrap();
        sim.exchange(&[(0, c), (1, s)], 20 * MS, secs(2), 50);
        let conn = [c, s][closer];
        sim.nodes[closer].ep.close(sim.now, conn);
        let closed_at = sim.now;
        sim.run_for(secs(1));
        let other = 1 - closer;
        assert_eq!(
            sim.nodes[closer].disconnects(),
            vec![(closed_at, CloseReason::Closed)]
        );
        let d = sim.nodes[other].disconnects();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].1, CloseReason::ClosedByPeer);
        assert!(d[0].0 - closed_at < 100 * MS);
        assert_eq!(sim.nodes[closer].ep.counters().disconnects_sent, 3);
        // Every packet of both sides was resolved by the end.
        for (from, to) in [(0, 1), (1, 0)] {
            let (a, l) = sim.check_notifications(from, to);
            assert_eq!(a + l, sim.nodes[from].app_sent.len());
        }
        assert!(sim.nodes[closer].ep.connection_stats(conn).is_none());
        assert!(matches!(
            sim.nodes[other].events.last(),
            Some((_, Event::Disconnected { .. }))
        ));
    }
}

/// The limit holds on the daemon path too: each `Daemon::connect` has its own socket, and
/// the listener's endpoint counts only the connections it accepted.
#[test]
fn daemon_listener_at_its_limit_denies_until_a_slot_frees() {
    use gudp::{CloseReason, ConnectError, Daemon, DaemonConfig};
    use std::time::Duration;
    let mut config = DaemonConfig::default();
    config.protocol.max_connections = 4;
    let server = Daemon::spawn(config.clone()).unwrap();
    let clients = Daemon::spawn(config).unwrap();
    let listener = server.listen(addr("127.0.0.1:0")).unwrap();
    let to = listener.local_addr();
    let mut held = Vec::new();
    for _ in 0..4 {
        let conn = clients.connect(to).expect("below the limit");
        let accepted = listener.accept_timeout(Duration::from_secs(5)).unwrap();
        held.push((conn, accepted));
    }
    for _ in 0..3 {
        match clients.connect(to) {
            Err(ConnectError::Failed(reason)) => assert_eq!(reason, CloseReason::ConnectionDenied),
            other => panic!("{other:?}"),
        }
    }
    let c = server.counters().endpoints;
    assert_eq!((c.connections_opened, c.handshake_denials), (4, 3));
    // Closing one frees its slot once the server has heard the disconnect.
    let (conn, _accepted) = held.pop().unwrap();
    conn.close();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while server.counters().endpoints.connections_closed == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the close never arrived"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    clients.connect(to).expect("a slot is free again");
    assert_eq!(server.counters().endpoints.connections_opened, 5);
}
