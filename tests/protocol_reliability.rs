//! Acks, loss reports, estimates, duplicates and stale packets, sizes and pacing.

mod protocol_sim;

use std::net::SocketAddr;
use std::time::Instant;

use gudp::protocol::protection::PacketProtection;
use gudp::protocol::wire::{ConnectedHeader, WirePacket, DEFAULT_PROTOCOL_ID};
use gudp::protocol::{Config, DropReason, Endpoint, Incoming, PacketNumber, Role, TransmitError};
use protocol_sim::{link, secs, Sim, MS};

#[test]
fn ninety_nine_percent_loss_gives_no_false_acks() {
    let mut sim = Sim::new(
        link(50, 10, 0.0, 0.0),
        11,
        vec![Config::default(), Config::default()],
    );
    let (c, s) = sim.connect(0, 1, secs(2)).unwrap();
    sim.link.set_config(link(50, 10, 99.0, 0.0));

    // 100 packets/s each way for 100 s: 10,000 per side.
    sim.exchange(&[(0, c), (1, s)], 10 * MS, secs(100), 32);
    sim.link.set_config(link(50, 10, 0.0, 0.0));
    sim.run_for(secs(5));
    for (from, to) in [(0, 1), (1, 0)] {
        let (acked, lost) = sim.check_notifications(from, to);
        assert_eq!(acked + lost, sim.nodes[from].app_sent.len(), "all resolved");
        assert_eq!(sim.nodes[from].app_sent.len(), 10_000);
        // About 1 % arrives; of those, some acks make it back through the same 1 %.
        assert!(lost > 9_800, "lost {lost}");
        sim.check_no_duplicate_delivery(to);
    }
}

#[test]
fn wrap_around_over_seventy_thousand_packets() {
    let mut sim = Sim::new(
        link(20, 15, 5.0, 10.0),
        12,
        vec![Config::default(), Config::default()],
    );
    let (c, s) = sim.connect(0, 1, secs(2)).unwrap();
    // 1000 packets/s from the client for 75 s (75,000 packets, the u16 sequence wraps),
    // the server answering at 100/s.
    let end = sim.now + secs(75);
    let mut tick = 0u64;
    while sim.now < end {
        sim.send(0, c, 16).unwrap();
        if tick % 10 == 0 {
            sim.send(1, s, 16).unwrap();
        }
        tick += 1;
        sim.run_for(MS);
    }
    sim.run_for(secs(5));
    let sent = sim.nodes[0].app_sent.len();
    assert_eq!(sent, 75_000);
    assert!(sim.nodes[0].app_sent.last().unwrap().1 > PacketNumber(70_000));
    sim.check_no_duplicate_delivery(1);
    sim.check_no_duplicate_delivery(0);
    let (acked, lost) = sim.check_notifications(0, 1);
    assert_eq!(acked + lost, sent);
    // Loss is 5 %. A delivered packet goes unacked only if every packet carrying its ack was
    // lost (or it arrived more than 32 sequences behind the newest, which ±15 ms of jitter at
    // 1000 packets/s nearly reaches: such packets are acked at once).
    let delivered = sim.nodes[1].delivered.len();
    assert!(
        (0.94..0.96).contains(&(delivered as f64 / sent as f64)),
        "{delivered}"
    );
    assert!(
        acked as f64 > delivered as f64 * 0.995,
        "acked {acked} of {delivered} delivered"
    );
    assert!(sim.nodes[1].ep.counters().connections.duplicates > 5_000);
    // The estimate covers the last 1,024 resolved packets: at 5 % loss its standard
    // deviation is about 0.7 points, so 2.5..7.5 is ±3.5 σ.
    let stats = sim.nodes[0].ep.connection_stats(c).unwrap();
    assert!(
        (2.5..7.5).contains(&stats.packet_loss_percent),
        "{}",
        stats.packet_loss_percent
    );
}

#[test]
fn rtt_estimate_within_ten_percent_without_jitter() {
    let mut sim = Sim::new(
        link(100, 0, 0.0, 0.0),
        13,
        vec![Config::default(), Config::default()],
    );
    let (c, s) = sim.connect(0, 1, secs(2)).unwrap();
    sim.exchange(&[(0, c), (1, s)], 10 * MS, secs(20), 64);
    for (n, conn) in [(0, c), (1, s)] {
        let stats = sim.nodes[n].ep.connection_stats(conn).unwrap();
        let rtt = stats.rtt.as_secs_f64() * 1000.0;
        assert!((200.0..=220.0).contains(&rtt), "node {n}: rtt {rtt} ms");
        assert!(stats.rtt_variation < 10 * MS, "{:?}", stats.rtt_variation);
        // 100 packets/s of 64 + 32 bytes (payload and connected header) each way.
        for bw in [
            stats.sent_bytes_per_second,
            stats.received_bytes_per_second,
            stats.acked_bytes_per_second,
        ] {
            assert!((9_000.0..=10_000.0).contains(&bw), "node {n}: {stats:?}");
        }
    }
}

#[test]
fn loss_estimate_within_two_points_over_ten_thousand_packets() {
    for (seed, loss) in [(14, 10.0), (15, 25.0), (16, 2.0)] {
        let mut config = Config::default();
        config.loss_window = 10_000;
        let mut sim = Sim::new(link(30, 5, 0.0, 0.0), seed, vec![config.clone(), config]);
        let (c, _) = sim.connect(0, 1, secs(2)).unwrap();
        sim.link.set_config(link(30, 5, loss, 0.0));
        sim.exchange(&[(0, c)], 10 * MS, secs(100), 32);
        sim.run_for(secs(3));
        let stats = sim.nodes[0].ep.connection_stats(c).unwrap();
        assert!(
            (stats.packet_loss_percent - loss).abs() <= 2.0,
            "configured {loss} %, estimated {} %",
            stats.packet_loss_percent
        );
    }
}

#[test]
fn duplicates_and_stale_packets_are_dropped_and_counted() {
    // Jitter of ±190 ms at 1000 packets/s reorders far beyond a 64-packet window.
    let mut config = Config::default();
    config.received_window = 64;
    let mut sim = Sim::new(link(200, 190, 0.0, 30.0), 17, vec![config.clone(), config]);
    let (c, _) = sim.connect(0, 1, secs(5)).unwrap();
    sim.exchange(&[(0, c)], MS, secs(5), 16);
    sim.run_for(secs(2));
    sim.check_no_duplicate_delivery(1);
    let counters = sim.nodes[1].ep.counters();
    // Most copies arrive outside the window and count as stale, the others as duplicates.
    assert!(counters.connections.duplicates > 50, "{counters:?}");
    assert!(counters.connections.stale > 500, "{counters:?}");
    assert_eq!(
        sim.nodes[1].drops["Duplicate"],
        counters.connections.duplicates
    );
    assert_eq!(sim.nodes[1].drops["Stale"], counters.connections.stale);
    // Nothing is lost on this link: every payload was delivered once or arrived stale.
    let received = sim.nodes[1].delivered.len() as u64;
    let sent = sim.nodes[0].app_sent.len() as u64;
    assert!(
        received < sent && received + counters.connections.stale >= sent,
        "{received} {sent}"
    );
}

#[test]
fn oversize_and_paced_sends_consume_no_sequence_number() {
    let mut config = Config::default();
    config.max_payload = 100;
    let mut sim = Sim::new(link(10, 0, 0.0, 0.0), 18, vec![config.clone(), config]);
    let (c, _) = sim.connect(0, 1, secs(1)).unwrap();
    let first = sim.send(0, c, 100).unwrap();
    assert_eq!(
        sim.send(0, c, 101),
        Err(TransmitError::TooLarge { len: 101, max: 100 })
    );
    // A burst of 64 is allowed at once; the 65th is paced.
    let mut ids = vec![first];
    let retry_at = loop {
        match sim.send(0, c, 10) {
            Ok(id) => ids.push(id),
            Err(TransmitError::Paced { retry_at }) => break retry_at,
            Err(e) => panic!("{e:?}"),
        }
    };
    assert_eq!(ids.len(), 64);
    assert_eq!(
        sim.nodes[0].ep.can_send(sim.now, c),
        Err(TransmitError::Paced { retry_at })
    );
    assert_eq!(sim.nodes[0].ep.can_send(retry_at, c), Ok(()));
    assert!(retry_at > sim.now && retry_at <= sim.now + MS);
    let mut buf = [0u8; 20];
    assert_eq!(
        sim.nodes[0].ep.send(sim.now, c, &[0; 10], &mut buf[..20]),
        Err(TransmitError::BufferTooSmall { needed: 42 })
    );
    sim.run_until(retry_at);
    let next = sim.send(0, c, 10).unwrap();
    // Consecutive ids: none of the refused sends took a sequence number (the client sent no
    // protocol packet in between: the link is quiet and keepalives are 250 ms apart).
    let ids: Vec<u64> = ids.iter().chain([&next]).map(|p| p.0).collect();
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
    let counters = sim.nodes[0].ep.counters();
    assert_eq!(
        (
            counters.connections.too_large_to_send,
            counters.connections.paced
        ),
        (1, 1)
    );
}

#[test]
fn oversize_datagrams_are_dropped_on_receipt() {
    let mut sim = Sim::new(
        link(10, 0, 0.0, 0.0),
        19,
        vec![Config::default(), {
            let mut protocol = Config::default();
            protocol.max_payload = 100;
            protocol
        }],
    );
    let (c, _) = sim.connect(0, 1, secs(1)).unwrap();
    sim.send(0, c, 101).unwrap();
    sim.send(0, c, 100).unwrap();
    sim.run_for(100 * MS);
    assert_eq!(sim.nodes[1].delivered.len(), 1);
    assert_eq!(sim.nodes[1].drops["TooLarge"], 1);
    assert_eq!(
        sim.nodes[1].ep.counters().connections.too_large_to_receive,
        1
    );
}

#[test]
fn garbage_is_counted_by_reason_and_never_panics() {
    let now = std::time::Instant::now();
    let mut ep = Endpoint::new(Config::default(), [0; 16]);
    let from = "10.0.0.9:9".parse().unwrap();
    let mut keepalive = [0u8; 32];
    keepalive[..8].copy_from_slice(&[0x47, 0x55, 0x44, 0x02, 0x11, 0x00, 0, 1]);
    assert!(matches!(
        ep.handle_datagram(now, from, &[1, 2]),
        Incoming::Dropped(DropReason::Invalid(_))
    ));
    assert!(matches!(
        ep.handle_datagram(now, from, &[0, 0, 0, 0, 0x11]),
        Incoming::Dropped(DropReason::Invalid(_))
    ));
    assert_eq!(
        ep.handle_datagram(now, from, &keepalive),
        Incoming::Dropped(DropReason::UnknownPeer)
    );
    // No reply to a connected packet from an unknown address (§5.2).
    assert!(ep.poll_transmit(now, &mut [0u8; 64]).is_none());
    let c = ep.counters();
    assert_eq!(
        (c.invalid_too_short, c.wrong_protocol_id, c.unknown_peer),
        (1, 1, 1)
    );
    assert_eq!(c.datagrams_received, 3);
}

/// A payload the application refuses (its buffer is full) is never acked, so the sender
/// learns it was lost; and every payload it took is acked, even when a run of refusals
/// longer than the ack bitfield lies between it and the next one taken.
#[test]
fn refused_payloads_are_lost_and_taken_ones_acked() {
    let mut fast = Config::default();
    fast.good_rate = gudp::protocol::PacingRate::new(100_000, 128);
    let mut sim = Sim::new(link(20, 0, 0.0, 0.0), 17, vec![fast, Config::default()]);
    let (c, _s) = sim.connect(0, 1, secs(2)).unwrap();
    // Runs of 40 refused payloads (more than the 33 sequences one ack covers) between runs
    // of 40 taken ones, in bursts of 80 that arrive at once: each burst has a refused run
    // between two taken ones.
    sim.nodes[1].refuse = |id| ((id + 20) / 40) % 2 == 1;
    for _ in 0..50 {
        for _ in 0..80 {
            sim.send(0, c, 16).unwrap();
        }
        sim.run_for(40 * MS);
    }
    sim.run_for(secs(3));
    let (acked, lost) = sim.check_notifications(0, 1); // no ack for a payload not taken
    let taken = sim.nodes[1].delivered.len();
    let refused = sim.nodes[1].refused.len();
    assert_eq!(taken + refused, 4_000);
    assert!(refused > 1_900, "{refused}");
    assert_eq!((acked, lost), (taken, refused), "every taken payload acked");
    let counters = sim.nodes[1].ep.counters();
    assert_eq!(counters.connections.payloads_received, taken as u64);
    assert_eq!(counters.connections.duplicates, 0);
}

/// A client and a server endpoint that completed a handshake in memory at `now`, before
/// either sent a connected packet.
/// A connected client and server, and the client's packet keys (derived from the challenge
/// seen on the way), so a test can write packets as the client would.
fn connected_pair(
    now: Instant,
    ca: SocketAddr,
    sa: SocketAddr,
) -> (Endpoint, Endpoint, PacketProtection) {
    let mut client = Endpoint::new(Config::default(), [1; 16]);
    let mut server = Endpoint::new(Config::default(), [2; 16]);
    client.connect(now, sa).unwrap();
    let mut buf = [0u8; 1500];
    let mut keys = None;
    for _ in 0..3 {
        while let Some(t) = client.poll_transmit(now, &mut buf) {
            server.handle_datagram(now, ca, &buf[..t.len]);
        }
        while let Some(t) = server.poll_transmit(now, &mut buf) {
            if let Ok(WirePacket::Challenge {
                nonce,
                timestamp,
                token,
            }) = gudp::protocol::wire::decode(DEFAULT_PROTOCOL_ID, &buf[..t.len])
            {
                let id = DEFAULT_PROTOCOL_ID;
                keys = Some(PacketProtection::derive(
                    Role::Client,
                    id,
                    &token,
                    nonce,
                    timestamp,
                ));
            }
            client.handle_datagram(now, sa, &buf[..t.len]);
        }
    }
    assert_eq!(
        (client.connection_count(), server.connection_count()),
        (1, 1)
    );
    (client, server, keys.expect("a challenge"))
}

/// Feeds `datagram` to `ep` as the daemon would: a payload is delivered to the application
/// (so it counts as received). Returns whether it was a payload.
fn take(ep: &mut Endpoint, now: Instant, from: SocketAddr, datagram: &[u8]) -> bool {
    match ep.handle_datagram(now, from, datagram) {
        Incoming::Payload { receipt, .. } => ep.deliver(now, receipt),
        _ => false,
    }
}

/// A client payload datagram with sequence `seq` (the receiver extends it to `seq`: no
/// wrap in these tests) and no acks, sealed with the client's `keys`.
fn payload(keys: &PacketProtection, seq: u16) -> Vec<u8> {
    let mut buf = vec![0u8; 64];
    let header = ConnectedHeader::new(seq, None);
    let len = WirePacket::Payload {
        header,
        payload: &seq.to_be_bytes(),
    }
    .encode(DEFAULT_PROTOCOL_ID, &mut buf)
    .unwrap();
    buf.truncate(len);
    keys.seal(u64::from(seq), &mut buf);
    buf
}

/// §4.1: at a distance of exactly 32,768 neither sequence is newer, so such a packet never
/// becomes the newest; one step closer it does.
#[test]
fn a_packet_half_the_sequence_space_ahead_is_not_newer() {
    let now = Instant::now();
    let (ca, sa) = (
        "10.0.0.1:5000".parse().unwrap(),
        "10.0.0.2:6000".parse().unwrap(),
    );
    let (_client, mut server, keys) = connected_pair(now, ca, sa);
    for seq in 0..=4 {
        assert!(take(&mut server, now, ca, &payload(&keys, seq)));
    }
    // 32,772 is exactly half the space after the newest (4): not newer, and far outside the
    // received window behind it.
    assert_eq!(
        server.handle_datagram(now, ca, &payload(&keys, 32_772)),
        Incoming::Dropped(DropReason::Stale)
    );
    // The window did not move: the real next packet is accepted.
    assert!(take(&mut server, now, ca, &payload(&keys, 5)));
    // 32,772 is now 32,767 after the newest (5): newer, and it moves the window.
    assert!(take(&mut server, now, ca, &payload(&keys, 32_772)));
    assert_eq!(
        server.handle_datagram(now, ca, &payload(&keys, 6)),
        Incoming::Dropped(DropReason::Stale)
    );
    assert_eq!(server.counters().connections.stale, 2);
}

/// §4.2: packets far behind the newest make an ack due at once, and those handled before the
/// next `poll_transmit` share one Ack packet that names them all.
#[test]
fn late_packets_handled_together_share_one_ack() {
    let now = Instant::now();
    let (ca, sa) = (
        "10.0.0.1:5000".parse().unwrap(),
        "10.0.0.2:6000".parse().unwrap(),
    );
    let (_client, mut server, keys) = connected_pair(now, ca, sa);
    let mut buf = [0u8; 64];
    for seq in [0].into_iter().chain(4..=20) {
        take(&mut server, now, ca, &payload(&keys, seq));
        while server.poll_transmit(now, &mut buf).is_some() {}
    }
    // 1, 2 and 3 are 17 to 19 behind the newest (20): each asks for an ack at once.
    for seq in 1..=3 {
        assert!(take(&mut server, now, ca, &payload(&keys, seq)));
    }
    let t = server
        .poll_transmit(now, &mut buf)
        .expect("an ack is due now");
    let Ok(WirePacket::Ack { header }) =
        gudp::protocol::wire::decode(DEFAULT_PROTOCOL_ID, &buf[..t.len])
    else {
        panic!("not an ack");
    };
    let ack = header.ack.unwrap();
    assert_eq!(ack.ack, 20);
    // Bit n names 19 - n: everything from 0 to 19 has arrived.
    assert_eq!(ack.ack_bits, (1 << 20) - 1);
    assert!(
        server.poll_transmit(now, &mut buf).is_none(),
        "one ack for all three"
    );
}

/// §6.5: only an accepted connected packet resets the idle timer; duplicates, stale packets
/// and oversize payloads do not, and the timeout sends no Disconnect.
#[test]
fn only_accepted_packets_reset_the_idle_timer() {
    let t0 = Instant::now();
    let (ca, sa) = (
        "10.0.0.1:5000".parse().unwrap(),
        "10.0.0.2:6000".parse().unwrap(),
    );
    let (_client, mut server, keys) = connected_pair(t0, ca, sa);
    let mut buf = vec![0u8; 1500];
    let mut oversize = vec![0u8; 32 + 1201];
    WirePacket::Payload {
        header: ConnectedHeader::new(3, None),
        payload: &[0; 1201],
    }
    .encode(DEFAULT_PROTOCOL_ID, &mut oversize)
    .unwrap();
    assert!(take(&mut server, t0, ca, &payload(&keys, 600)));
    let later = t0 + secs(9);
    assert_eq!(
        server.handle_datagram(later, ca, &payload(&keys, 600)),
        Incoming::Dropped(DropReason::Duplicate)
    );
    assert_eq!(
        server.handle_datagram(later, ca, &payload(&keys, 0)),
        Incoming::Dropped(DropReason::Stale)
    );
    assert!(matches!(
        server.handle_datagram(later, ca, &oversize),
        Incoming::Dropped(DropReason::TooLarge { .. })
    ));
    let mut now = t0;
    while server.connection_count() > 0 {
        now = server.next_deadline().unwrap();
        server.handle_timeout(now);
        while let Some(t) = server.poll_transmit(now, &mut buf) {
            let sent = gudp::protocol::wire::decode(DEFAULT_PROTOCOL_ID, &buf[..t.len]);
            assert!(
                !matches!(sent, Ok(WirePacket::Disconnect { .. })),
                "{sent:?}"
            );
        }
    }
    assert_eq!(now - t0, Config::default().idle_timeout);
    assert_eq!(server.counters().timeouts, 1);
}

/// A 60 Hz game: the client sends an input every frame, the server answers each frame with a
/// snapshot of what it received. Acks ride on those packets: no more than 1.1 datagrams per
/// input each way (a stand-alone ack per packet would be 2), and the RTT stays honest.
#[test]
fn acks_ride_on_a_frame_loops_packets() {
    // 20 ms each way: each packet arrives 13.3 ms before the next frame, longer than the
    // 10 ms max_ack_delay.
    let mut sim = Sim::new(
        link(20, 0, 0.0, 0.0),
        21,
        vec![Config::default(), Config::default()],
    );
    let (c, s) = sim.connect(0, 1, secs(2)).unwrap();
    let frame = std::time::Duration::from_micros(16_667);
    let (sent_before, echoed_before) = (sim.nodes[0].sent.len(), sim.nodes[1].sent.len());
    const FRAMES: usize = 600;
    let mut answered = 0;
    for _ in 0..FRAMES {
        sim.send(0, c, 16).unwrap();
        // The server's frame: one snapshot for the inputs that arrived.
        if sim.nodes[1].delivered.len() > answered {
            answered = sim.nodes[1].delivered.len();
            sim.send(1, s, 16).unwrap();
        }
        sim.run_for(frame);
    }
    let client_out = sim.nodes[0].sent.len() - sent_before;
    let server_out = sim.nodes[1].sent.len() - echoed_before;
    let per_input = |n: usize| n as f64 / FRAMES as f64;
    assert!(
        per_input(client_out) <= 1.1,
        "client: {client_out} datagrams for {FRAMES} inputs"
    );
    assert!(
        per_input(server_out) <= 1.1,
        "server: {server_out} datagrams for {FRAMES} frames"
    );
    // The held acks are subtracted from the samples: the RTT is the path's 40 ms.
    let rtt = sim.nodes[0].ep.connection_stats(c).unwrap().rtt;
    assert!(
        rtt > std::time::Duration::from_millis(36) && rtt < std::time::Duration::from_millis(46),
        "{rtt:?}"
    );
    let (acked, lost) = sim.check_notifications(0, 1);
    assert_eq!(lost, 0, "{acked} acked");
}
