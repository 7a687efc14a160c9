//! Secure mode in the sans-IO core with simulated time: connect tokens accepted and refused
//! (each refusal under its own reason), the six attacks of the security report against a
//! secure connection, and what a captured packet can still do (bit flips, truncation,
//! replays, cross-connection replays). The loopback end to end runs with two daemons at the
//! end of this file.

mod common;
mod protocol_sim;

use common::alloc::{thread_allocations, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

use std::net::SocketAddr;
use std::time::Duration;

use gudp::protocol::wire::{self, AckFields, ConnectedHeader, WirePacket, DEFAULT_PROTOCOL_ID};
use gudp::protocol::{CloseReason, Config, ConnectionId, DropReason, Event, Incoming};
use gudp::secure::{ConnectToken, PrivateKey, SecureServer, TokenParams, UnixClock};
use protocol_sim::{forge, forged_payload, link, secs, Sim, MARK, MS};

/// Unix time at the simulation's start.
const UNIX_T0: u64 = 1_800_000_000;

fn key() -> PrivateKey {
    PrivateKey::from_bytes([0x4b; 32])
}

/// A token for client `client_id` on `servers`, minted at UNIX_T0, valid 30 s.
fn token(client_id: u64, servers: Vec<SocketAddr>) -> ConnectToken {
    let mut params = TokenParams::new(DEFAULT_PROTOCOL_ID.into(), client_id, servers);
    params.create_timestamp = UNIX_T0;
    params.user_data[..5].copy_from_slice(b"alice");
    ConnectToken::mint(&key(), &params).unwrap()
}

/// `n` nodes over a clean 20 ms link; node 1 is a secure server (with `clock_offset`
/// seconds added to its Unix clock).
fn sim(n: usize, clock_offset: u64) -> Sim {
    let mut sim = Sim::new(link(20, 0, 0.0, 0.0), 11, vec![Config::default(); n]);
    let clock = UnixClock::new(sim.now, UNIX_T0 + clock_offset);
    let public = sim.nodes[1].addr;
    sim.nodes[1]
        .ep
        .set_secure(SecureServer::new(key(), public, clock));
    sim
}

/// Node `client` connects to node 1 with `token`; runs for up to 2 s.
fn connect(
    sim: &mut Sim,
    client: usize,
    token: &ConnectToken,
) -> Option<(ConnectionId, ConnectionId)> {
    let server = sim.nodes[1].addr;
    let c = sim.nodes[client]
        .ep
        .connect_with_token(sim.now, server, token)
        .unwrap();
    for _ in 0..200 {
        sim.run_for(10 * MS);
        if sim.nodes[client].connected() == Some(c) {
            let s = sim.nodes[1].ep.connection_by_addr(sim.nodes[client].addr)?;
            return Some((c, s));
        }
    }
    None
}

fn connected() -> (Sim, ConnectionId, ConnectionId) {
    let mut sim = sim(2, 0);
    let server = sim.nodes[1].addr;
    let (c, s) = connect(&mut sim, 0, &token(7, vec![server])).expect("connects");
    (sim, c, s)
}

fn all_delivered(sim: &Sim, from: usize, to: usize) {
    let sent = sim.nodes[from].app_sent.len();
    let got = sim.nodes[to]
        .delivered
        .iter()
        .filter(|d| d.1 != MARK)
        .count();
    assert_eq!(got, sent, "node {to} got {got} of {sent}");
}

fn marks_delivered(sim: &Sim, node: usize) -> usize {
    sim.nodes[node]
        .delivered
        .iter()
        .filter(|d| d.1 == MARK)
        .count()
}

#[test]
fn a_valid_token_connects_and_exchanges_encrypted_data() {
    let (mut sim, c, s) = connected();
    let info = sim.nodes[1].ep.token_info(s).unwrap();
    assert_eq!(info.client_id, 7);
    assert_eq!(&info.user_data[..5], b"alice");
    assert!(sim.nodes[0].ep.token_info(c).is_none()); // the client's own side has none
    sim.nodes[0].captured = Some(Vec::new());
    sim.exchange(&[(0, c), (1, s)], 10 * MS, secs(2), 100);
    sim.run_for(secs(1));
    all_delivered(&sim, 0, 1);
    all_delivered(&sim, 1, 0);
    assert!(sim.nodes[0].app_sent.len() >= 150);
    // An on-path observer sees no payload: the simulation's payloads start with their id.
    for (_, d) in sim.nodes[0].captured.as_ref().unwrap() {
        if d[4] == 0x10 {
            assert!((0..200u64).all(|id| d[32..40] != id.to_be_bytes()));
        }
    }
    let counters = sim.nodes[1].ep.counters();
    assert_eq!(counters.bad_mac + counters.read_only_buffer, 0);
}

/// The reasons a secure server refused datagrams, from its counters.
fn refusals(sim: &Sim) -> [u64; 4] {
    let c = sim.nodes[1].ep.counters();
    [
        c.connect_token_expired,
        c.connect_token_forged,
        c.connect_token_wrong_server,
        c.connect_token_in_use,
    ]
}

/// The client's attempt ends in a connect timeout, nothing is allocated on the server.
fn refused(sim: &mut Sim, token: &ConnectToken) {
    assert!(connect(sim, 0, token).is_none());
    sim.run_for(secs(4));
    assert_eq!(
        sim.nodes[0].disconnects()[0].1,
        CloseReason::ConnectTimedOut
    );
    assert_eq!(sim.nodes[1].ep.connection_count(), 0);
    assert_eq!(sim.nodes[1].ep.counters().handshake_challenges, 0);
    // No reply larger than its request: there was no reply at all.
    assert!(sim.nodes[1].sent.is_empty());
}

#[test]
fn an_expired_token_is_refused() {
    let mut sim = sim(2, 31); // the server's clock is past the 30 s lifetime
    let server = sim.nodes[1].addr;
    refused(&mut sim, &token(7, vec![server]));
    let [expired, forged, wrong, in_use] = refusals(&sim);
    assert!(expired >= 10, "{expired}");
    assert_eq!((forged, wrong, in_use), (0, 0, 0));
}

#[test]
fn a_forged_token_is_refused() {
    let mut sim = sim(2, 0);
    let server = sim.nodes[1].addr;
    let mut bytes = token(7, vec![server]).to_bytes();
    bytes[61 + 500] ^= 0x08; // one bit of the sealed part
    let forged = ConnectToken::from_bytes(&bytes).unwrap();
    refused(&mut sim, &forged);
    let [expired, forged, wrong, in_use] = refusals(&sim);
    assert!(forged >= 10, "{forged}");
    assert_eq!((expired, wrong, in_use), (0, 0, 0));
    // A token minted under another key is forged too.
    let mut sim2 = self::sim(2, 0);
    let mut params = TokenParams::new(DEFAULT_PROTOCOL_ID.into(), 7, vec![server]);
    params.create_timestamp = UNIX_T0;
    let other = ConnectToken::mint(&PrivateKey::from_bytes([1; 32]), &params).unwrap();
    refused(&mut sim2, &other);
    assert!(refusals(&sim2)[1] >= 10);
}

#[test]
fn a_token_for_another_server_is_refused() {
    // Node 1 is at 10.0.0.2 but the token names 10.0.0.3 (a second server with the same
    // key); the attacker replays the client's request at node 1.
    let mut sim = sim(3, 0);
    let elsewhere = sim.nodes[2].addr;
    sim.nodes[0].captured = Some(Vec::new());
    let t = token(7, vec![elsewhere]);
    sim.nodes[0]
        .ep
        .connect_with_token(sim.now, elsewhere, &t)
        .unwrap();
    sim.run_for(50 * MS);
    let request = sim.nodes[0].captured.as_ref().unwrap()[0].1.clone();
    assert_eq!(request[4], 0x06);
    let client = sim.nodes[0].addr;
    sim.inject(1, client, &request);
    assert_eq!(sim.drops(1, "ConnectTokenWrongServer"), 1);
    let [expired, forged, wrong, in_use] = refusals(&sim);
    assert_eq!((expired, forged, wrong, in_use), (0, 0, 1, 0));
    assert!(sim.nodes[1].sent.is_empty());
}

#[test]
fn a_token_in_use_from_another_address_is_refused() {
    let mut sim = sim(3, 0);
    let server = sim.nodes[1].addr;
    let t = token(7, vec![server]);
    let (c, s) = connect(&mut sim, 0, &t).unwrap();
    // Node 2 (another address) presents the same token: refused at its request.
    assert!(connect(&mut sim, 2, &t).is_none());
    let [expired, forged, wrong, in_use] = refusals(&sim);
    assert!(in_use >= 10, "{in_use}");
    assert_eq!((expired, forged, wrong), (0, 0, 0));
    assert_eq!(sim.nodes[1].ep.connection_count(), 1);
    // The first client is untouched, and after it leaves the same address may reconnect.
    sim.exchange(&[(0, c), (1, s)], 10 * MS, secs(1), 64);
    sim.run_for(100 * MS);
    all_delivered(&sim, 0, 1);
    sim.nodes[0].ep.close(sim.now, c);
    sim.run_for(secs(1));
    assert_eq!(sim.nodes[1].ep.connection_count(), 0);
    sim.nodes[0].events.clear();
    assert!(connect(&mut sim, 0, &t).is_some());
}

/// netcode's one connection per client id: a second token for the same client, from
/// another address, is refused while the first connection lives, and accepted once it ends.
#[test]
fn a_second_connection_for_one_client_id_waits_for_the_first_to_end() {
    let mut sim = sim(3, 0);
    let server = sim.nodes[1].addr;
    let (c, _) = connect(&mut sim, 0, &token(7, vec![server])).unwrap();
    let second = token(7, vec![server]); // another token (nonce and keys) for client 7
    assert_ne!(second.to_bytes(), token(7, vec![server]).to_bytes());
    assert!(connect(&mut sim, 2, &second).is_none());
    let counters = sim.nodes[1].ep.counters();
    assert!(counters.client_id_in_use >= 10, "{counters:?}");
    assert_eq!(counters.connect_token_in_use, 0, "a distinct token");
    assert_eq!(sim.nodes[1].ep.connection_count(), 1);
    // Another client id from the same third address connects meanwhile.
    sim.run_for(secs(4));
    sim.nodes[2].events.clear();
    assert!(connect(&mut sim, 2, &token(8, vec![server])).is_some());
    let s8 = sim.nodes[1]
        .ep
        .connection_by_addr(sim.nodes[2].addr)
        .unwrap();
    assert_eq!(sim.nodes[1].ep.token_info(s8).unwrap().client_id, 8);
    // Once client 7's connection ends, its id is free again.
    sim.nodes[0].ep.close(sim.now, c);
    sim.run_for(secs(1));
    assert_eq!(sim.nodes[1].ep.connection_count(), 1);
    let c8 = sim.nodes[2].connected().unwrap();
    sim.nodes[2].ep.close(sim.now, c8);
    sim.run_for(secs(1));
    sim.nodes[2].events.clear();
    assert!(connect(&mut sim, 2, &second).is_some());
}

#[test]
fn the_plain_handshake_and_a_secure_one_do_not_mix() {
    let mut sim = sim(3, 0);
    let server = sim.nodes[1].addr;
    // A plain client at a secure server.
    sim.nodes[0].ep.connect(sim.now, server).unwrap();
    sim.run_for(secs(1));
    assert!(sim.drops(1, "WrongModeHandshake") >= 5);
    assert_eq!(
        sim.nodes[1].ep.counters().wrong_mode_handshakes,
        sim.drops(1, "WrongModeHandshake")
    );
    assert_eq!(sim.nodes[1].ep.connection_count(), 0);
    // A secure client at a plain server (node 2).
    let plain = sim.nodes[2].addr;
    let t = token(7, vec![plain]);
    sim.nodes[0]
        .ep
        .connect_with_token(sim.now, plain, &t)
        .unwrap();
    sim.run_for(secs(1));
    assert!(sim.drops(2, "WrongModeHandshake") >= 5);
    assert_eq!(sim.nodes[2].ep.connection_count(), 0);
}

/// Secure mode compares the message-layer fingerprint as the plain handshake does: a client
/// whose channels differ is denied with the channel-mismatch reason, and nothing is created.
#[test]
fn a_channel_mismatch_is_denied_in_secure_mode_too() {
    let mut server_config = Config::default();
    server_config.message_fingerprint = 0x0123;
    let mut sim = Sim::new(
        link(20, 0, 0.0, 0.0),
        11,
        vec![Config::default(), server_config],
    );
    let clock = UnixClock::new(sim.now, UNIX_T0);
    let public = sim.nodes[1].addr;
    sim.nodes[1]
        .ep
        .set_secure(SecureServer::new(key(), public, clock));
    assert!(connect(&mut sim, 0, &token(7, vec![public])).is_none());
    assert_eq!(
        sim.nodes[0].disconnects()[0].1,
        CloseReason::ChannelMismatch
    );
    assert_eq!(sim.nodes[1].ep.connection_count(), 0);
    assert!(sim.nodes[1].ep.counters().handshake_denials >= 1);
}

/// Rows 1, 2, 4 and 6 of the report: forged payloads into the server and the client, forged
/// acks, forged far-ahead packets. None is delivered or changes anything; every one is a
/// BadMac, and both directions still deliver everything.
#[test]
fn forged_packets_fail_in_both_directions() {
    let (mut sim, c, s) = connected();
    sim.exchange(&[(0, c), (1, s)], 10 * MS, secs(1), 64);
    let (client, server) = (sim.nodes[0].addr, sim.nodes[1].addr);
    let mut forged = 0;
    for seq in [0u16, 1, 2, 200, 30_000, 30_000u16.wrapping_add(32_768)] {
        for (to, from) in [(1, client), (0, server)] {
            sim.inject(to, from, &forged_payload(seq));
            let header = ConnectedHeader::new(seq, None);
            sim.inject(to, from, &forge(WirePacket::Keepalive { header }));
            let ack = Some(AckFields {
                ack: seq,
                ack_bits: u32::MAX,
                ack_delay: 0,
            });
            let header = ConnectedHeader::new(seq, ack);
            sim.inject(to, from, &forge(WirePacket::Ack { header }));
        }
        forged += 3;
    }
    sim.exchange(&[(0, c), (1, s)], 10 * MS, secs(12), 64);
    sim.run_for(secs(1));
    for node in [0, 1] {
        assert_eq!(marks_delivered(&sim, node), 0);
        assert_eq!(sim.nodes[node].ep.counters().bad_mac, forged);
        assert_eq!(sim.nodes[node].ep.counters().connections.stale, 0);
        assert_eq!(
            sim.nodes[node].count(|e| matches!(e, Event::Lost { .. })),
            0
        );
        assert!(sim.nodes[node].disconnects().is_empty());
    }
    all_delivered(&sim, 0, 1);
    all_delivered(&sim, 1, 0);
    let rtt = sim.nodes[1].ep.connection_stats(s).unwrap().rtt;
    assert!(rtt < Duration::from_millis(100), "{rtt:?}");
}

/// Row 3: a disconnect with the session (an observer of the request knows it) but no key.
#[test]
fn a_forged_disconnect_with_the_session_is_refused() {
    let mut sim = sim(2, 0);
    sim.nodes[0].captured = Some(Vec::new());
    let server = sim.nodes[1].addr;
    let (c, s) = connect(&mut sim, 0, &token(7, vec![server])).unwrap();
    let request = sim.nodes[0].captured.as_ref().unwrap()[0].1.clone();
    let Ok(WirePacket::SecureRequest(hello)) = wire::decode(DEFAULT_PROTOCOL_ID, &request) else {
        panic!("the first datagram is the secure request");
    };
    let client = sim.nodes[0].addr;
    let header = ConnectedHeader::new(2000, None);
    let session = hello.nonce;
    sim.inject(
        1,
        client,
        &forge(WirePacket::Disconnect { header, session }),
    );
    sim.exchange(&[(0, c), (1, s)], 10 * MS, secs(1), 64);
    sim.run_for(100 * MS);
    assert!(sim.nodes[1].disconnects().is_empty());
    assert_eq!(sim.nodes[1].ep.connection_count(), 1);
    all_delivered(&sim, 0, 1);
}

/// Row 5: forged keepalives do not keep a dead client's connection alive.
#[test]
fn forged_keepalives_do_not_keep_a_dead_client_alive() {
    let (mut sim, c, s) = connected();
    sim.exchange(&[(0, c), (1, s)], 10 * MS, secs(1), 64);
    sim.nodes[0].dead = true;
    let client = sim.nodes[0].addr;
    for i in 0..48u16 {
        let header = ConnectedHeader::new(1000 + i, None);
        sim.inject(1, client, &forge(WirePacket::Keepalive { header }));
        sim.run_for(250 * MS);
    }
    let disconnects = sim.nodes[1].disconnects();
    assert_eq!(disconnects.len(), 1, "{disconnects:?}");
    assert_eq!(disconnects[0].1, CloseReason::TimedOut);
}

/// An authentic client payload the link lost and an on-path attacker kept.
fn captured_payload(sim: &mut Sim, c: ConnectionId) -> Vec<u8> {
    sim.nodes[0].captured = Some(Vec::new());
    sim.link.set_config(link(20, 0, 100.0, 0.0));
    sim.send(0, c, 100).unwrap();
    sim.link.set_config(link(20, 0, 0.0, 0.0));
    sim.nodes[0]
        .captured
        .take()
        .unwrap()
        .last()
        .unwrap()
        .1
        .clone()
}

#[test]
fn flipped_bits_and_truncation_are_dropped_before_touching_the_connection() {
    let (mut sim, c, s) = connected();
    sim.exchange(&[(0, c), (1, s)], 10 * MS, secs(1), 64);
    let packet = captured_payload(&mut sim, c);
    let client = sim.nodes[0].addr;
    let before = sim.nodes[1].ep.connection_stats(s).unwrap();
    let deadline = sim.nodes[1].ep.next_deadline();
    let delivered = sim.nodes[1].delivered.len();
    let drops_before: u64 = sim.nodes[1].drops.values().sum();
    let mut dropped = 0;
    for i in 0..packet.len() {
        for bit in [0, 7] {
            let mut flipped = packet.clone();
            flipped[i] ^= 1 << bit;
            let from = sim.nodes[1].ep.counters().datagrams_received;
            sim.inject(1, client, &flipped);
            assert_eq!(sim.nodes[1].ep.counters().datagrams_received, from + 1);
            dropped += 1;
        }
    }
    for len in [0, 4, 31, 32, 33, packet.len() - 1] {
        sim.inject(1, client, &packet[..len]);
        dropped += 1;
    }
    assert_eq!(sim.nodes[1].delivered.len(), delivered);
    let after = sim.nodes[1].ep.connection_stats(s).unwrap();
    assert_eq!(after.counters, before.counters);
    assert_eq!(sim.nodes[1].ep.next_deadline(), deadline);
    let c1 = sim.nodes[1].ep.counters();
    let other_drops: u64 = sim.nodes[1].drops.values().sum();
    assert_eq!(other_drops - drops_before, dropped);
    assert!(
        c1.bad_mac >= 2 * (packet.len() as u64 - 6),
        "{}",
        c1.bad_mac
    );
    // The authentic packet itself is still good once.
    sim.inject(1, client, &packet);
    assert_eq!(sim.nodes[1].delivered.len(), delivered + 1);
}

#[test]
fn replays_are_dropped_and_cross_connection_replays_fail() {
    let mut sim = sim(3, 0);
    let server = sim.nodes[1].addr;
    let (c, s) = connect(&mut sim, 0, &token(7, vec![server])).unwrap();
    let (c2, s2) = connect(&mut sim, 2, &token(8, vec![server])).unwrap();
    sim.exchange(&[(0, c), (1, s), (2, c2), (1, s2)], 10 * MS, secs(1), 64);
    let packet = captured_payload(&mut sim, c);
    let client = sim.nodes[0].addr;
    sim.inject(1, client, &packet);
    let delivered = sim.nodes[1].delivered.len();
    // Replayed: a duplicate, delivered once only.
    for _ in 0..3 {
        sim.inject(1, client, &packet);
    }
    assert_eq!(sim.nodes[1].delivered.len(), delivered);
    assert_eq!(sim.drops(1, "Duplicate"), 3);
    // From the other client's address: its connection's keys refuse it.
    let other = sim.nodes[2].addr;
    sim.inject(1, other, &packet);
    assert_eq!(sim.drops(1, "BadMac"), 1);
    // A read-only feed cannot decrypt: refused, nothing changed.
    let before = sim.nodes[1].ep.connection_stats(s).unwrap().counters;
    let mut fresh = captured_payload(&mut sim, c);
    let outcome = sim.nodes[1].ep.handle_datagram(sim.now, client, &fresh);
    assert_eq!(outcome, Incoming::Dropped(DropReason::ReadOnlyBuffer));
    assert_eq!(
        sim.nodes[1].ep.connection_stats(s).unwrap().counters,
        before
    );
    assert!(matches!(
        sim.nodes[1]
            .ep
            .handle_datagram_mut(sim.now, client, &mut fresh),
        Incoming::Payload { .. }
    ));
}

/// An on-path observer replays a client's secure request from its own address and answers
/// the challenge it earns: without the token's keys its response's tag fails, so it can
/// neither connect nor mark the token as in use from its address.
#[test]
fn a_captured_request_does_not_let_an_observer_connect() {
    let mut sim = sim(3, 0);
    let server = sim.nodes[1].addr;
    sim.nodes[0].captured = Some(Vec::new());
    sim.nodes[1].captured = Some(Vec::new());
    let t = token(7, vec![server]);
    sim.nodes[0]
        .ep
        .connect_with_token(sim.now, server, &t)
        .unwrap();
    sim.run_for(MS);
    sim.nodes[0].dead = true; // the real client goes quiet after its first request
    let request = sim.nodes[0].captured.as_ref().unwrap()[0].1.clone();
    let attacker = sim.nodes[2].addr;
    sim.inject(1, attacker, &request);
    sim.run_for(100 * MS);
    assert_eq!(sim.nodes[1].ep.counters().handshake_challenges, 2);
    let Ok(WirePacket::SecureRequest(hello)) = wire::decode(DEFAULT_PROTOCOL_ID, &request) else {
        panic!("a secure request");
    };
    // The challenge went to the attacker's address.
    let captured = sim.nodes[1].captured.as_ref().unwrap();
    let (_, challenge) = captured
        .iter()
        .find(|(to, _)| *to == attacker)
        .unwrap()
        .clone();
    let Ok(WirePacket::Challenge {
        timestamp, token, ..
    }) = wire::decode(DEFAULT_PROTOCOL_ID, &challenge)
    else {
        panic!("a challenge");
    };
    let sealed = *hello.sealed;
    let hello = gudp::secure::SecureHello {
        sealed: &sealed,
        ..hello
    };
    let response = forge(WirePacket::SecureResponse {
        hello,
        timestamp,
        token,
        tag: [0; 16],
    });
    sim.inject(1, attacker, &response);
    assert_eq!(sim.drops(1, "BadMac"), 1);
    assert_eq!(sim.nodes[1].ep.connection_count(), 0);
    // The real client (back) still connects with its token.
    sim.nodes[0].dead = false;
    sim.run_for(secs(1));
    assert!(sim.nodes[0].connected().is_some());
    assert_eq!(sim.nodes[1].ep.counters().connect_token_in_use, 0);
}

/// An on-path attacker knows the client's nonce: it can forge a Challenge, but not the
/// accept (plain ones are refused in secure mode, secure ones need the server's key), so
/// the client never believes it is connected.
#[test]
fn a_forged_accept_does_not_connect_a_secure_client() {
    let mut sim = sim(2, 0);
    sim.nodes[0].captured = Some(Vec::new());
    sim.nodes[1].dead = true; // the server is unreachable
    let server = sim.nodes[1].addr;
    let c = sim.nodes[0]
        .ep
        .connect_with_token(sim.now, server, &token(7, vec![server]))
        .unwrap();
    sim.run_for(MS);
    let request = sim.nodes[0].captured.as_ref().unwrap()[0].1.clone();
    let Ok(WirePacket::SecureRequest(hello)) = wire::decode(DEFAULT_PROTOCOL_ID, &request) else {
        panic!("a secure request");
    };
    let nonce = hello.nonce;
    let challenge = forge(WirePacket::Challenge {
        nonce,
        timestamp: 5,
        token: [1; 16],
    });
    sim.inject(0, server, &challenge);
    sim.inject(0, server, &forge(WirePacket::Accept { nonce }));
    let tag = [0; 16];
    sim.inject(0, server, &forge(WirePacket::SecureAccept { nonce, tag }));
    assert_eq!(sim.drops(0, "WrongModeHandshake"), 1);
    assert_eq!(sim.drops(0, "BadMac"), 1);
    sim.run_for(secs(6));
    assert!(sim.nodes[0].connected().is_none());
    assert_eq!(
        sim.nodes[0].disconnects()[0].1,
        CloseReason::ConnectTimedOut
    );
    let _ = c;
}

/// In the sans-IO core: encrypted steady-state traffic allocates nothing, and neither does a
/// server refusing secure requests (expired, forged) or answering a valid one with a
/// challenge: the stateless first step.
#[test]
fn secure_steady_state_and_refused_requests_allocate_nothing() {
    let mut sim = sim(2, 0);
    let (ca, sa) = (sim.nodes[0].addr, sim.nodes[1].addr);
    let valid = token(7, vec![sa]);
    let mut bytes = token(7, vec![sa]).to_bytes();
    bytes[61 + 9] ^= 1;
    let forged = ConnectToken::from_bytes(&bytes).unwrap();
    let mut old = TokenParams::new(DEFAULT_PROTOCOL_ID.into(), 7, vec![sa]);
    old.create_timestamp = UNIX_T0 - 100;
    let expired = ConnectToken::mint(&key(), &old).unwrap();
    // Each token's first request, as its client sends it.
    let fresh = token(8, vec![sa]); // `valid` will be in use from the client's address
    let requests: Vec<Vec<u8>> = [&fresh, &forged, &expired]
        .iter()
        .map(|t| {
            let mut client = gudp::protocol::Endpoint::new(Config::default(), [5; 16]);
            client.connect_with_token(sim.now, sa, t).unwrap();
            let mut buf = vec![0u8; 1500];
            let t = client.poll_transmit(sim.now, &mut buf).unwrap();
            buf.truncate(t.len);
            buf
        })
        .collect();
    let (c, s) = connect(&mut sim, 0, &valid).unwrap();
    let server = &mut sim.nodes[1].ep;
    let now = sim.now;
    let mut buf = vec![0u8; 1500];
    let mut copy = vec![0u8; 1500];
    let stranger: SocketAddr = "10.0.0.9:1000".parse().unwrap();
    let before = thread_allocations();
    for round in 0..200u64 {
        for request in &requests {
            copy[..request.len()].copy_from_slice(request);
            let _ = server.handle_datagram_mut(now, stranger, &mut copy[..request.len()]);
        }
        while server.poll_transmit(now, &mut buf).is_some() {}
        // The server's own encrypted packets, opened by nobody: sealing allocates nothing.
        let _ = server.send(now, s, &round.to_be_bytes(), &mut buf);
    }
    assert_eq!(
        thread_allocations() - before,
        0,
        "allocations refusing and challenging"
    );
    let counters = server.counters();
    assert_eq!(
        (
            counters.connect_token_forged,
            counters.connect_token_expired
        ),
        (200, 200)
    );
    assert_eq!(counters.handshake_challenges, 200 + 1);
    // Encrypted steady state, both ways, through the simulation's link.
    sim.exchange(&[(0, c), (1, s)], 10 * MS, secs(1), 100);
    let before = thread_allocations();
    let mut now = sim.now;
    for i in 0..2_000u64 {
        now += MS;
        let (a, b) = sim.nodes.split_at_mut(1);
        let (client, server) = (&mut a[0].ep, &mut b[0].ep);
        if let Ok(t) = client.send(now, c, &i.to_be_bytes(), &mut buf) {
            if let Incoming::Payload { receipt, .. } =
                server.handle_datagram_mut(now, ca, &mut buf[..t.len])
            {
                assert!(server.deliver(now, receipt));
            }
        }
        if let Ok(t) = server.send(now, s, &i.to_be_bytes(), &mut buf) {
            if let Incoming::Payload { receipt, .. } =
                client.handle_datagram_mut(now, sa, &mut buf[..t.len])
            {
                assert!(client.deliver(now, receipt));
            }
        }
        client.handle_timeout(now);
        server.handle_timeout(now);
        while let Some(t) = client.poll_transmit(now, &mut buf) {
            server.handle_datagram_mut(now, ca, &mut buf[..t.len]);
        }
        while let Some(t) = server.poll_transmit(now, &mut buf) {
            client.handle_datagram_mut(now, sa, &mut buf[..t.len]);
        }
        while client.poll_event().is_some() || server.poll_event().is_some() {}
    }
    assert_eq!(
        thread_allocations() - before,
        0,
        "allocations in 2,000 encrypted steps"
    );
    let received = sim.nodes[1]
        .ep
        .connection_stats(s)
        .unwrap()
        .counters
        .payloads_received;
    assert!(received >= 2_000, "{received}");
}

// ---- over loopback, two daemons ----

mod daemons {
    use std::time::Duration;

    use gudp::secure::{ConnectToken, PrivateKey, TokenParams};
    use gudp::{ConnectError, Daemon, DaemonConfig, ServerEvent};

    fn config(connect_timeout_ms: u64) -> DaemonConfig {
        let mut config = DaemonConfig::default();
        config.protocol.connect_timeout = Duration::from_millis(connect_timeout_ms);
        config
    }

    fn params(servers: Vec<std::net::SocketAddr>) -> TokenParams {
        let id = DaemonConfig::default().protocol.protocol_id.into();
        let mut params = TokenParams::new(id, 99, servers);
        params.user_data[..3].copy_from_slice(b"eve");
        params
    }

    #[test]
    fn a_token_connects_over_loopback_and_refusals_are_counted() {
        let key = PrivateKey::generate().unwrap();
        let server = Daemon::spawn(config(5_000)).unwrap();
        let listener = server
            .listen_secure("127.0.0.1:0".parse().unwrap(), key.clone(), None)
            .unwrap();
        let addr = listener.local_addr();
        let client = Daemon::spawn(config(400)).unwrap();
        // The first address has no server: the client moves on to the next, as netcode does.
        let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let token =
            ConnectToken::mint(&key, &params(vec![dead.local_addr().unwrap(), addr])).unwrap();
        let conn = client.connect_with_token(&token).unwrap();
        let accepted = listener.accept_timeout(Duration::from_secs(5)).unwrap();
        let info = accepted.token_info().unwrap();
        assert_eq!((info.client_id, &info.user_data[..3]), (99, &b"eve"[..]));
        let event = listener.poll_event();
        assert!(
            matches!(
                event,
                Some(ServerEvent::Connected {
                    client_id: Some(99),
                    ..
                })
            ),
            "{event:?}"
        );
        conn.send(b"ping").unwrap();
        let got = accepted.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(&*got, b"ping");
        accepted.send(b"pong").unwrap();
        assert_eq!(
            &*conn.recv_timeout(Duration::from_secs(5)).unwrap(),
            b"pong"
        );

        // Expired: minted in the past.
        let mut old = params(vec![addr]);
        old.create_timestamp -= 3_600;
        let expired = ConnectToken::mint(&key, &old).unwrap();
        // Forged: one bit of the sealed part flipped.
        let mut bytes = ConnectToken::mint(&key, &params(vec![addr]))
            .unwrap()
            .to_bytes();
        bytes[61 + 100] ^= 0x40;
        let forged = ConnectToken::from_bytes(&bytes).unwrap();
        for bad in [&expired, &forged] {
            let outcome = client.connect_with_token(bad);
            assert!(
                matches!(outcome, Err(ConnectError::Failed(_))),
                "{outcome:?}"
            );
        }
        // (A token for another server is refused in the simulation above: a client only
        // sends it to the servers it lists.) Reused from another address: a second client daemon (another port) with the token
        // the first one connected with.
        let other = Daemon::spawn(config(400)).unwrap();
        assert!(other.connect_with_token(&token).is_err());
        let counters = server.counters().endpoints;
        assert!(counters.connect_token_expired > 0, "{counters:?}");
        assert!(counters.connect_token_forged > 0, "{counters:?}");
        assert!(counters.connect_token_in_use > 0, "{counters:?}");
        assert_eq!(counters.connections_opened, 1);
        assert_eq!(server.counters().unaccounted(), 0);
    }
}
