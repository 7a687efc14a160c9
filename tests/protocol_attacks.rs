//! An off-path attacker against established connections: it knows (or guesses) the victim's
//! address and port and the protocol id, and can send datagrams with any source address,
//! but never sees the victim's traffic. One test per attack of the security report (each of
//! them succeeded against wire version 1, which had no MAC), then bit flips, truncation and
//! replays, which need a captured packet (an on-path observer's view: the last tests are
//! about what a captured *authentic* packet can still do).
//!
//! Every forged packet here carries a zero MAC field: without the connection's keys the
//! attacker's best is a guess, which fails but for a chance of 2^-128.

mod protocol_sim;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gudp::protocol::wire::{self, AckFields, ConnectedHeader, WirePacket, DEFAULT_PROTOCOL_ID};
use gudp::protocol::{
    CloseReason, Config, CongestionMode, Endpoint, Event, Incoming, ProtocolStats,
};
use protocol_sim::{forge, forged_payload, link, secs, Sim, MARK, MS};

/// A header an attacker writes: it cannot compute a MAC, so the tag field is zero.
fn forge_header(sequence: u16, ack: Option<AckFields>) -> ConnectedHeader {
    ConnectedHeader::new(sequence, ack)
}

fn bad_macs(sim: &Sim, node: usize) -> u64 {
    sim.nodes[node].ep.counters().bad_mac
}

/// Client (node 0, 10.0.0.1:1000) and server (node 1, 10.0.0.2:1000) over a clean 20 ms link,
/// connected.
fn connected() -> (
    Sim,
    gudp::protocol::ConnectionId,
    gudp::protocol::ConnectionId,
) {
    let mut sim = Sim::new(
        link(20, 0, 0.0, 0.0),
        7,
        vec![Config::default(), Config::default()],
    );
    let (c, s) = sim.connect(0, 1, secs(2)).unwrap();
    (sim, c, s)
}

fn marks_delivered(sim: &Sim, node: usize) -> usize {
    sim.nodes[node]
        .delivered
        .iter()
        .filter(|d| d.1 == MARK)
        .count()
}

/// Every payload node `from` sent was delivered at node `to` (a lossless link).
fn all_delivered(sim: &Sim, from: usize, to: usize) {
    let sent = sim.nodes[from].app_sent.len();
    let delivered = sim.nodes[to]
        .delivered
        .iter()
        .filter(|d| d.1 != MARK)
        .count();
    assert_eq!(delivered, sent, "node {to} got {delivered} of {sent}");
}

/// Row 1: payload injection into the server. Version 1 delivered the forged payload and then
/// dropped the real client's next payloads as duplicates.
#[test]
fn forged_payloads_are_not_delivered_to_the_server() {
    let (mut sim, c, s) = connected();
    sim.exchange(&[(0, c), (1, s)], 10 * MS, secs(1), 64);
    let client = sim.nodes[0].addr;
    // One guess every 4,096 sequences: several of them are newer than anything received.
    for k in 0..16u16 {
        sim.inject(1, client, &forged_payload(k * 4096));
    }
    sim.exchange(&[(0, c), (1, s)], 10 * MS, secs(2), 64);
    sim.run_for(secs(1));
    assert_eq!(marks_delivered(&sim, 1), 0);
    all_delivered(&sim, 0, 1);
    assert_eq!(sim.drops(1, "BadMac"), 16);
    assert_eq!(bad_macs(&sim, 1), 16);
    assert_eq!(sim.nodes[1].ep.counters().connections.duplicates, 0);
}

/// Row 2: ack forgery. Version 1 took forged acks of keepalives lost seconds earlier as RTT
/// samples of seconds, and fell into bad mode.
#[test]
fn forged_acks_give_no_rtt_samples() {
    let (mut sim, _c, s) = connected();
    sim.run_for(secs(5)); // idle: the client's keepalives, acked (2 s apart)
                          // An outage: for 8 s every datagram is lost, so the server's keepalives stay unacked.
    sim.link.set_config(link(20, 0, 100.0, 0.0));
    sim.run_for(secs(8));
    sim.link.set_config(link(20, 0, 0.0, 0.0));
    sim.run_for(secs(3));
    let before = sim.nodes[1].ep.connection_stats(s).unwrap();
    assert_eq!(before.congestion_mode, CongestionMode::Good);
    // The attacker names every sequence the server may have sent, one per ack, no delay.
    let client = sim.nodes[0].addr;
    for k in 0..64u16 {
        let ack = Some(AckFields {
            ack: k,
            ack_bits: 0,
            ack_delay: 0,
        });
        let header = forge_header(1000 + k, ack);
        sim.inject(1, client, &forge(WirePacket::Ack { header }));
    }
    sim.run_for(100 * MS);
    let after = sim.nodes[1].ep.connection_stats(s).unwrap();
    assert_eq!(after.congestion_mode, CongestionMode::Good);
    assert!(after.rtt < 100 * MS, "{after:?}");
    assert_eq!(after.counters.late_acks, before.counters.late_acks);
    assert_eq!(
        sim.nodes[1].count(|e| matches!(e, Event::CongestionChanged { .. })),
        0
    );
    assert_eq!(bad_macs(&sim, 1), 64);
}

/// Row 3: a disconnect without the session was already refused; now one with the right
/// session (an observer of the request has it, or a lucky guess) is refused too.
#[test]
fn disconnect_needs_the_session_and_the_key() {
    let mut sim = Sim::new(
        link(20, 0, 0.0, 0.0),
        8,
        vec![Config::default(), Config::default()],
    );
    sim.nodes[0].captured = Some(Vec::new());
    let (c, s) = sim.connect(0, 1, secs(2)).unwrap();
    sim.exchange(&[(0, c), (1, s)], 10 * MS, secs(1), 64);
    let client = sim.nodes[0].addr;
    let mut rng = 0x1234_5678_9abc_def0u64;
    for i in 0..258u16 {
        rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let header = forge_header(1000 + i, None);
        let session = rng;
        sim.inject(
            1,
            client,
            &forge(WirePacket::Disconnect { header, session }),
        );
    }
    assert_eq!(sim.drops(1, "Mismatch"), 258);
    let session = sim.nodes[0]
        .captured
        .as_ref()
        .unwrap()
        .iter()
        .find_map(|(_, d)| match wire::decode(DEFAULT_PROTOCOL_ID, d) {
            Ok(WirePacket::ConnectionRequest { nonce, .. }) => Some(nonce),
            _ => None,
        });
    let header = forge_header(2000, None);
    let session = session.unwrap();
    sim.inject(
        1,
        client,
        &forge(WirePacket::Disconnect { header, session }),
    );
    sim.exchange(&[(0, c), (1, s)], 10 * MS, secs(1), 64);
    sim.run_for(secs(1));
    assert!(sim.nodes[1].disconnects().is_empty());
    assert_eq!(sim.nodes[1].ep.connection_count(), 1);
    assert_eq!(bad_macs(&sim, 1), 1);
    all_delivered(&sim, 0, 1);
}

/// Row 4: window warping. Version 1 accepted one forged keepalive far ahead as the newest
/// packet; every later real packet was then stale and the server timed the client out.
#[test]
fn a_forged_far_ahead_packet_does_not_warp_the_window() {
    let (mut sim, c, s) = connected();
    sim.exchange(&[(0, c), (1, s)], 10 * MS, secs(1), 64);
    let client = sim.nodes[0].addr;
    // Two guesses half the space apart: one of them is always "newer".
    for seq in [30_000, 30_000u16.wrapping_add(32_768)] {
        let header = forge_header(seq, None);
        sim.inject(1, client, &forge(WirePacket::Keepalive { header }));
    }
    sim.exchange(&[(0, c), (1, s)], 10 * MS, secs(12), 64);
    sim.run_for(secs(1));
    assert!(sim.nodes[1].disconnects().is_empty());
    all_delivered(&sim, 0, 1);
    all_delivered(&sim, 1, 0);
    assert_eq!(sim.nodes[1].ep.counters().connections.stale, 0);
    assert_eq!(bad_macs(&sim, 1), 2);
}

/// Row 5: keepalive injection. Version 1 kept a dead client's connection alive on forged
/// keepalives (4 per second) past its idle timeout, and refused that address's reconnect.
#[test]
fn forged_keepalives_do_not_keep_a_dead_client_alive() {
    let (mut sim, c, s) = connected();
    sim.exchange(&[(0, c), (1, s)], 10 * MS, secs(1), 64);
    let died = sim.now;
    sim.nodes[0].dead = true;
    let client = sim.nodes[0].addr;
    for i in 0..60u16 {
        let header = forge_header(1000 + i, None);
        sim.inject(1, client, &forge(WirePacket::Keepalive { header }));
        sim.run_for(250 * MS);
    }
    let disconnects = sim.nodes[1].disconnects();
    assert_eq!(disconnects.len(), 1, "{disconnects:?}");
    let (at, reason) = disconnects[0];
    assert_eq!(reason, CloseReason::TimedOut);
    let idle = Config::default().idle_timeout;
    assert!(
        at - died <= idle + 50 * MS,
        "timed out {:?} after",
        at - died
    );
    // The host comes back on the same address and port: its reconnect is accepted.
    sim.nodes[0].ep = Endpoint::new(Config::default(), [9; 16]);
    sim.nodes[0].events.clear();
    sim.nodes[0].dead = false;
    let server = sim.nodes[1].addr;
    let conn = sim.nodes[0].ep.connect(sim.now, server).unwrap();
    sim.run_for(secs(1));
    assert!(sim.nodes[0].ep.connection_stats(conn).unwrap().connected);
    let opened = sim.nodes[1].count(|e| matches!(e, Event::Connected { .. }));
    assert_eq!(opened, 2);
    // Until the timeout the forgeries fail their MAC; after it they come from a stranger.
    let bad = bad_macs(&sim, 1);
    assert_eq!(bad + sim.drops(1, "UnknownPeer"), 60);
    assert!(bad >= 39, "{bad}");
    let _ = s;
}

/// Row 6: injection into the client. Version 1 delivered forged payloads to `gudp connect`,
/// and one far ahead made the client drop the server's packets as stale.
#[test]
fn forged_payloads_are_not_delivered_to_the_client() {
    let (mut sim, c, s) = connected();
    sim.exchange(&[(0, c), (1, s)], 10 * MS, secs(1), 64);
    let server = sim.nodes[1].addr;
    for seq in [30_000, 30_000u16.wrapping_add(32_768), 1, 2, 200] {
        sim.inject(0, server, &forged_payload(seq));
    }
    sim.exchange(&[(0, c), (1, s)], 10 * MS, secs(5), 64);
    sim.run_for(secs(2));
    assert_eq!(marks_delivered(&sim, 0), 0);
    all_delivered(&sim, 1, 0);
    all_delivered(&sim, 0, 1);
    for node in [0, 1] {
        assert_eq!(
            sim.nodes[node].count(|e| matches!(e, Event::Lost { .. })),
            0
        );
    }
    assert_eq!(bad_macs(&sim, 0), 5);
}

/// What a dropped packet must leave unchanged: counters, estimates, mode, and the deadline.
fn snapshot(
    sim: &Sim,
    node: usize,
    conn: gudp::protocol::ConnectionId,
) -> (ProtocolStats, Option<Instant>, usize) {
    let n = &sim.nodes[node];
    let stats = n.ep.connection_stats(conn).unwrap();
    (stats, n.ep.next_deadline(), n.sent.len())
}

/// An authentic client payload that never reached the server: the link lost it, the
/// attacker (here on the path) kept a copy.
fn captured_payload(sim: &mut Sim, c: gudp::protocol::ConnectionId) -> Vec<u8> {
    sim.nodes[0].captured = Some(Vec::new());
    sim.link.set_config(link(20, 0, 100.0, 0.0));
    sim.send(0, c, 100).unwrap();
    sim.link.set_config(link(20, 0, 0.0, 0.0));
    let captured = sim.nodes[0].captured.take().unwrap();
    captured.last().unwrap().1.clone()
}

#[test]
fn flipped_bits_are_dropped_before_touching_the_connection() {
    let (mut sim, c, s) = connected();
    sim.exchange(&[(0, c), (1, s)], 10 * MS, secs(1), 64);
    sim.run_for(secs(1));
    let original = captured_payload(&mut sim, c);
    let client = sim.nodes[0].addr;
    let before = snapshot(&sim, 1, s);
    let delivered = sim.nodes[1].delivered.len();
    for bit in 0..original.len() * 8 {
        let mut d = original.clone();
        d[bit / 8] ^= 1 << (bit % 8);
        sim.inject(1, client, &d);
        assert_eq!(snapshot(&sim, 1, s), before, "bit {bit}");
    }
    assert_eq!(sim.nodes[1].delivered.len(), delivered);
    // Flips in the protocol id, type or flags do not decode; every other one fails the MAC.
    let invalid = sim.drops(1, "Invalid");
    assert_eq!(invalid + sim.drops(1, "BadMac"), original.len() as u64 * 8);
    assert!(sim.drops(1, "BadMac") >= (original.len() as u64 - 6) * 8);
    // The untouched packet is still accepted, once.
    sim.inject(1, client, &original);
    sim.inject(1, client, &original);
    assert_eq!(sim.nodes[1].delivered.len(), delivered + 1);
    assert_eq!(sim.drops(1, "Duplicate"), 1);
}

#[test]
fn truncated_and_extended_packets_are_dropped() {
    let (mut sim, c, s) = connected();
    sim.exchange(&[(0, c), (1, s)], 10 * MS, secs(1), 64);
    sim.run_for(secs(1));
    let original = captured_payload(&mut sim, c);
    let client = sim.nodes[0].addr;
    let before = snapshot(&sim, 1, s);
    for len in 0..original.len() {
        sim.inject(1, client, &original[..len]);
        assert_eq!(snapshot(&sim, 1, s), before, "cut to {len}");
    }
    let mut longer = original.clone();
    longer.push(0);
    sim.inject(1, client, &longer);
    assert_eq!(snapshot(&sim, 1, s), before);
    assert_eq!(marks_delivered(&sim, 1), 0);
    let delivered = sim.nodes[1].delivered.len();
    sim.inject(1, client, &original);
    assert_eq!(sim.nodes[1].delivered.len(), delivered + 1);
}

/// Replays of captured authentic packets inside the window are duplicates or stale: no
/// payload is delivered twice, nothing is processed twice.
#[test]
fn replayed_packets_are_duplicates_or_stale() {
    let (mut sim, c, s) = connected();
    sim.nodes[0].captured = Some(Vec::new());
    sim.exchange(&[(0, c), (1, s)], 10 * MS, secs(2), 64);
    sim.run_for(secs(1));
    let captured = sim.nodes[0].captured.take().unwrap();
    sim.run_for(100 * MS); // the last captured packets arrive: what follows are replays
    let client = sim.nodes[0].addr;
    let delivered = sim.nodes[1].delivered.len();
    let before = sim.nodes[1].ep.connection_stats(s).unwrap().counters;
    for (_, d) in &captured {
        sim.inject(1, client, d);
    }
    assert_eq!(sim.nodes[1].delivered.len(), delivered);
    sim.check_no_duplicate_delivery(1);
    let after = sim.nodes[1].ep.connection_stats(s).unwrap().counters;
    assert_eq!(after.packets_received, before.packets_received);
    let replays = (after.duplicates + after.stale) - (before.duplicates + before.stale);
    assert_eq!(replays, captured.len() as u64, "{:?}", sim.nodes[1].drops);
}

fn pair(now: Instant, ca: SocketAddr, sa: SocketAddr) -> (Endpoint, Endpoint) {
    let mut client = Endpoint::new(Config::default(), [1; 16]);
    let mut server = Endpoint::new(Config::default(), [2; 16]);
    client.connect(now, sa).unwrap();
    let mut buf = [0u8; 1500];
    for _ in 0..3 {
        while let Some(t) = client.poll_transmit(now, &mut buf) {
            server.handle_datagram(now, ca, &buf[..t.len]);
        }
        while let Some(t) = server.poll_transmit(now, &mut buf) {
            client.handle_datagram(now, sa, &buf[..t.len]);
        }
    }
    (client, server)
}

/// A packet captured one lap of the 16-bit sequence earlier has a wire sequence that is
/// newer than the receiver's newest again. Version 1 delivered it a second time; its MAC
/// covers the extended sequence, so now it fails.
#[test]
fn a_packet_replayed_after_the_sequence_wraps_fails_its_mac() {
    let t0 = Instant::now();
    let (ca, sa): (SocketAddr, SocketAddr) = (
        "10.0.0.1:5000".parse().unwrap(),
        "10.0.0.2:6000".parse().unwrap(),
    );
    let (mut client, mut server) = pair(t0, ca, sa);
    let conn = client.connection_by_addr(sa).unwrap();
    let mut buf = vec![0u8; 1500];
    let mut now = t0;
    let mut old = Vec::new();
    let mut delivered = 0u64;
    for i in 0..65_536u64 + 50 {
        now += Duration::from_micros(600);
        let t = client.send(now, conn, &i.to_be_bytes(), &mut buf).unwrap();
        if i == 100 {
            old = buf[..t.len].to_vec();
        }
        if let Incoming::Payload { receipt, .. } = server.handle_datagram(now, ca, &buf[..t.len]) {
            delivered += 1;
            server.deliver(now, receipt);
        }
        server.handle_timeout(now);
        while let Some(t) = server.poll_transmit(now, &mut buf) {
            client.handle_datagram(now, sa, &buf[..t.len]);
        }
        client.handle_timeout(now);
        while let Some(t) = client.poll_transmit(now, &mut buf) {
            server.handle_datagram(now, ca, &buf[..t.len]);
        }
    }
    assert_eq!(delivered, 65_536 + 50);
    // Wire sequence 100 is now 50 ahead of the newest (65,585): "newer".
    let replay = server.handle_datagram(now, ca, &old);
    assert!(!matches!(replay, Incoming::Payload { .. }), "{replay:?}");
    assert_eq!(server.counters().bad_mac, 1);
}

/// Packets of one connection injected into another, from the other's address or after a
/// reconnect from the same address, fail the MAC: every connection has its own keys.
#[test]
fn packets_of_another_connection_fail_its_mac() {
    let mut sim = Sim::new(
        link(20, 0, 0.0, 0.0),
        9,
        vec![Config::default(), Config::default(), Config::default()],
    );
    sim.nodes[2].captured = Some(Vec::new());
    sim.nodes[0].captured = Some(Vec::new());
    let (a, sa) = sim.connect(0, 1, secs(2)).unwrap();
    let server = sim.nodes[1].addr;
    let b = sim.nodes[2].ep.connect(sim.now, server).unwrap();
    sim.run_for(secs(1));
    let sb = sim.nodes[1]
        .ep
        .connection_by_addr(sim.nodes[2].addr)
        .unwrap();
    sim.exchange(&[(0, a), (2, b), (1, sa), (1, sb)], 10 * MS, secs(1), 64);
    sim.run_for(secs(1));
    // B's packets, sent with A's address.
    let from_b = sim.nodes[2].captured.take().unwrap();
    let from_a = sim.nodes[0].captured.take().unwrap();
    let a_addr = sim.nodes[0].addr;
    let delivered = sim.nodes[1].delivered.len();
    let received = |sim: &Sim| {
        let conn = sim.nodes[1].ep.connection_by_addr(a_addr).unwrap();
        let stats = sim.nodes[1].ep.connection_stats(conn).unwrap();
        stats.counters.packets_received
    };
    let before = received(&sim);
    let from_b: Vec<_> = from_b.iter().filter(|(_, d)| d[4] >= 0x10).collect();
    for (_, d) in &from_b {
        sim.inject(1, a_addr, d);
    }
    assert_eq!(sim.nodes[1].delivered.len(), delivered);
    assert_eq!(received(&sim), before, "B's packets processed as A's");
    let bad_b = bad_macs(&sim, 1);
    // A closes; a new connection from the same address gets a new token, so new keys.
    sim.nodes[0].ep.close(sim.now, a);
    sim.run_for(secs(1));
    assert_eq!(sim.nodes[1].ep.connection_by_addr(a_addr), None);
    let a2 = sim.nodes[0].ep.connect(sim.now, server).unwrap();
    sim.run_for(secs(1));
    assert!(sim.nodes[0].ep.connection_stats(a2).unwrap().connected);
    let delivered = sim.nodes[1].delivered.len();
    let bad = bad_macs(&sim, 1);
    let before = received(&sim);
    let from_a: Vec<_> = from_a.iter().filter(|(_, d)| d[4] >= 0x10).collect();
    for (_, d) in &from_a {
        sim.inject(1, a_addr, d);
    }
    assert_eq!(
        sim.nodes[1].delivered.len(),
        delivered,
        "the old connection's replayed"
    );
    assert_eq!(received(&sim), before);
    assert_eq!(bad_b, from_b.len() as u64);
    assert_eq!(bad_macs(&sim, 1) - bad, from_a.len() as u64);
}

/// A client waiting for the server's accept takes the server's first connected packet as
/// the accept (§5.1). Version 1 let a forged one from the server's address complete the
/// handshake with no server behind it; now it must carry the challenge's keys.
#[test]
fn a_forged_packet_does_not_complete_a_handshake() {
    let t0 = Instant::now();
    let (ca, sa): (SocketAddr, SocketAddr) = (
        "10.0.0.1:5000".parse().unwrap(),
        "10.0.0.2:6000".parse().unwrap(),
    );
    let mut client = Endpoint::new(Config::default(), [1; 16]);
    let mut server = Endpoint::new(Config::default(), [2; 16]);
    let conn = client.connect(t0, sa).unwrap();
    let mut buf = [0u8; 1500];
    let t = client.poll_transmit(t0, &mut buf).unwrap(); // the request
    server.handle_datagram(t0, ca, &buf[..t.len]);
    let t = server.poll_transmit(t0, &mut buf).unwrap(); // the challenge
    client.handle_datagram(t0, sa, &buf[..t.len]);
    // The client now sends responses; the server never gets them. The attacker speaks.
    for seq in [0, 1, 40_000] {
        let header = forge_header(seq, None);
        let forged = forge(WirePacket::Keepalive { header });
        let outcome = client.handle_datagram(t0, sa, &forged);
        assert!(matches!(outcome, Incoming::Dropped(_)), "{outcome:?}");
    }
    assert!(!client.connection_stats(conn).unwrap().connected);
    assert_eq!(client.poll_event(), None);
    assert_eq!(client.counters().bad_mac, 3);
}
