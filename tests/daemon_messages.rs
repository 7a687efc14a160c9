//! Message mode over real loopback sockets, through a lossy link conditioner: the message
//! layer's promises hold end to end once the daemon drives it (`docs/message-layer.md` §7).

mod common;

use common::{pair, watchdog, Pair};
use gudp::conditioner::LinkConfig;
use gudp::message::{ChannelConfig, MessageConfig, MessageEvent, MessageId};
use gudp::{CloseReason, ConnectError, Daemon, DaemonConfig, LinkSetup, SendError, TryRecvError};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

const UNRELIABLE: u8 = 0;
const ORDERED: u8 = 3;

/// A message-mode daemon config whose outgoing datagrams see `loss_percent` loss and a
/// little latency (both daemons of a pair: the loss is both ways).
fn lossy(loss_percent: f64, seed: u64, messages: MessageConfig) -> DaemonConfig {
    let mut link = LinkConfig::default();
    link.latency = Duration::from_millis(5);
    link.loss_percent = loss_percent;
    let mut config = DaemonConfig::default();
    config.link = Some(LinkSetup::new(link, seed));
    config.messages = Some(messages);
    config
}

fn lossy_pair(loss_percent: f64, messages: MessageConfig) -> Pair {
    pair(
        lossy(loss_percent, 1, messages.clone()),
        lossy(loss_percent, 2, messages),
    )
}

fn number(i: u32) -> [u8; 4] {
    i.to_le_bytes()
}

fn read_number(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes[..4].try_into().unwrap())
}

/// Reliable-ordered messages arrive complete and in order through 10 % loss both ways,
/// while the unreliable channel beside them shows losses but never a duplicate.
#[test]
fn ordered_arrives_complete_and_in_order_while_unreliable_shows_losses() {
    let _watchdog = watchdog("ordered_and_unreliable", Duration::from_secs(60));
    let p = lossy_pair(10.0, MessageConfig::default());
    let n = 2_000u32;
    for i in 0..n {
        p.client.send_message(ORDERED, &number(i)).unwrap();
        p.client.send_message(UNRELIABLE, &number(i)).unwrap();
        if i % 50 == 0 {
            std::thread::sleep(Duration::from_millis(1)); // a frame loop's spacing
        }
    }
    let (mut ordered, mut unreliable) = (Vec::new(), HashSet::new());
    let deadline = Instant::now() + Duration::from_secs(40);
    while ordered.len() < n as usize {
        assert!(
            Instant::now() < deadline,
            "{} of {n} ordered",
            ordered.len()
        );
        let Ok(message) = p.server.recv_message_timeout(Duration::from_millis(100)) else {
            continue;
        };
        match message.channel() {
            ORDERED => ordered.push(read_number(&message)),
            UNRELIABLE => assert!(unreliable.insert(read_number(&message)), "duplicate"),
            other => panic!("channel {other}"),
        }
    }
    assert_eq!(ordered, (0..n).collect::<Vec<_>>());
    // Drain what unreliable messages are still in flight.
    while let Ok(message) = p.server.recv_message_timeout(Duration::from_millis(200)) {
        assert_eq!(message.channel(), UNRELIABLE);
        assert!(unreliable.insert(read_number(&message)), "duplicate");
    }
    // 10 % loss on one packet each: far from none and far from all.
    let got = unreliable.len() as u32;
    assert!(got < n * 98 / 100 && got > n / 2, "{got} of {n} unreliable");
    assert!(p.client.status().close_reason().is_none());
}

/// A 1 MiB reliable message arrives intact through 5 % loss.
#[test]
fn a_large_reliable_message_arrives_intact() {
    let _watchdog = watchdog("large_message", Duration::from_secs(60));
    let p = lossy_pair(5.0, MessageConfig::default());
    let level: Vec<u8> = (0..1u32 << 20).map(|i| (i * 7 + i / 251) as u8).collect();
    p.client.send_message(ORDERED, &level).unwrap();
    let message = p
        .server
        .recv_message_timeout(Duration::from_secs(40))
        .unwrap();
    assert_eq!(message.channel(), ORDERED);
    assert!(message[..] == level[..], "corrupted");
}

/// A sender far faster than the link is refused (`ChannelFull`), never disconnected, and
/// every reliable message it got an id for arrives, in order.
#[test]
fn a_sender_faster_than_the_link_gets_refusals_and_loses_nothing() {
    let _watchdog = watchdog("backpressure", Duration::from_secs(60));
    let channel = ChannelConfig::reliable_ordered()
        .with_max_message_size(1_000)
        .with_budget(64 << 10);
    let p = lossy_pair(5.0, MessageConfig::new(vec![channel]));
    let (mut accepted, mut refused) = (0u32, 0u64);
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(500) {
        match p.client.try_send_message(0, &[accepted as u8; 200]) {
            Ok(_) => accepted += 1,
            Err(SendError::ChannelFull { channel: 0, .. }) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        refused > 1_000,
        "{refused} refusals for {accepted} accepted"
    );
    let deadline = Instant::now() + Duration::from_secs(40);
    for i in 0..accepted {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = p.server.recv_message_timeout(left).unwrap();
        assert_eq!(message[0], i as u8, "message {i} of {accepted}");
    }
    assert!(p.client.status().close_reason().is_none());
    assert!(p.server.status().close_reason().is_none());
}

/// Closing sends what was accepted: every reliable message queued just before `close`
/// arrives, then the peer learns of the close. (The server closes: a client socket is
/// released as soon as its connection ends, and the conditioner then drops the disconnect
/// copies still in flight on it, so the peer would only time out.)
#[test]
fn close_flushes_reliable_messages() {
    let _watchdog = watchdog("close_flushes", Duration::from_secs(60));
    // About 170 packets at 20 % loss both ways: some are lost (and resent) for certain.
    // The linger allows for busy cores; the usual close takes about 2 s.
    let mut config = lossy(20.0, 1, MessageConfig::default());
    config.close_linger = Duration::from_secs(20);
    let p = pair(config.clone(), config);
    let n = 1_000u32;
    for i in 0..n {
        let mut message = [0u8; 200];
        message[..4].copy_from_slice(&number(i));
        p.server.send_message(ORDERED, &message).unwrap();
    }
    p.server.close();
    for i in 0..n {
        let message = p.client.recv_message().unwrap();
        assert_eq!(read_number(&message), i);
    }
    assert_eq!(
        p.client.recv_message().unwrap_err(),
        CloseReason::ClosedByPeer
    );
}

/// Every message gets exactly one event; a reliable one is always acked; an acked
/// unreliable one was delivered.
#[test]
fn message_events_match_deliveries() {
    let _watchdog = watchdog("events", Duration::from_secs(60));
    let p = lossy_pair(10.0, MessageConfig::default());
    let mut channel_of: HashMap<MessageId, (u8, u32)> = HashMap::new();
    for i in 0..500u32 {
        for channel in [UNRELIABLE, ORDERED] {
            let id = p.client.send_message(channel, &number(i)).unwrap();
            assert!(
                channel_of.insert(id, (channel, i)).is_none(),
                "ids are unique"
            );
        }
    }
    let mut events: HashMap<MessageId, MessageEvent> = HashMap::new();
    let mut delivered = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(40);
    while events.len() < channel_of.len() {
        assert!(Instant::now() < deadline, "{} events", events.len());
        while let Ok(message) = p.server.try_recv_message() {
            delivered.insert((message.channel(), read_number(&message)));
        }
        while let Some(event) = p.client.poll_message_event() {
            assert!(events.insert(event.id(), event).is_none(), "two events");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // Late arrivals of unreliable messages whose event is already in.
    while let Ok(message) = p.server.recv_message_timeout(Duration::from_millis(200)) {
        delivered.insert((message.channel(), read_number(&message)));
    }
    for (id, event) in &events {
        let sent = channel_of[id];
        match event {
            MessageEvent::Acked(_) => assert!(delivered.contains(&sent), "acked, not delivered"),
            MessageEvent::Lost(_) => assert_eq!(sent.0, UNRELIABLE, "a reliable message lost"),
            _ => unreachable!(),
        }
    }
    assert!(matches!(p.server.try_recv(), Err(TryRecvError::Empty),));
}

/// The packet calls refuse on a message-mode connection, and the message calls on a
/// packet-mode one: nothing is queued, so no framing is mixed.
#[test]
fn calls_of_the_other_mode_are_refused() {
    let p = lossy_pair(0.0, MessageConfig::default());
    assert_eq!(p.client.try_send(b"packet"), Err(SendError::WrongMode));
    assert_eq!(p.client.send(b"packet"), Err(SendError::WrongMode));
    let packets = pair(DaemonConfig::default(), DaemonConfig::default());
    assert_eq!(
        packets.client.try_send_message(0, b"message"),
        Err(SendError::WrongMode)
    );
    assert!(!packets.client.is_message_mode() && p.client.is_message_mode());
}

/// Both ends must configure the same channels: the server denies a client whose
/// message-layer fingerprint differs from its own (other channels, or packet mode), and
/// the client learns why.
#[test]
fn a_channel_mismatch_is_refused_with_its_reason() {
    let _watchdog = watchdog("channel_mismatch", Duration::from_secs(60));
    let server_daemon = Daemon::spawn(lossy(0.0, 1, MessageConfig::default())).unwrap();
    let listener = server_daemon.listen(common::loopback()).unwrap();
    let other = MessageConfig::new(vec![ChannelConfig::reliable_ordered()]);
    let packets = DaemonConfig::default();
    for client_config in [lossy(0.0, 2, other), packets] {
        let client_daemon = Daemon::spawn(client_config).unwrap();
        match client_daemon.connect(listener.local_addr()) {
            Err(ConnectError::ChannelMismatch) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(server_daemon.counters().endpoints.handshake_denials, 2);
    // The same configuration connects.
    let same = Daemon::spawn(lossy(0.0, 3, MessageConfig::default())).unwrap();
    same.connect(listener.local_addr()).unwrap();
}
