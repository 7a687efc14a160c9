//! What a 60 Hz server loop reads without polling every connection: the listener's events
//! (joins and leaves with their reason), stable connection ids that key a map, and the
//! lock-free per-frame estimates.

mod common;

use common::{loopback, wait_for, watchdog};
use gudp::{CloseReason, Connection, Daemon, DaemonConfig, ServerEvent};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn joins_and_leaves_arrive_as_server_events_with_ids_and_reasons() {
    let _watchdog = watchdog("server events", Duration::from_secs(30));
    let server_daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    let client_daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    let listener = server_daemon.listen(loopback()).unwrap();
    let clients: Vec<Connection> = (0..5)
        .map(|_| client_daemon.connect(listener.local_addr()).unwrap())
        .collect();
    let mut players: HashMap<u64, Connection> = HashMap::new();
    while players.len() < clients.len() {
        let player = listener.accept_timeout(WAIT).unwrap();
        players.insert(player.id(), player);
    }
    let mut joined = HashSet::new();
    wait_for(WAIT, "five joins", || {
        while let Some(event) = listener.poll_event() {
            match event {
                ServerEvent::Connected { id, peer, .. } => {
                    assert_eq!(players[&id].peer_addr(), peer);
                    assert!(joined.insert(id), "joined twice");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        joined.len() == 5
    });
    // Two leave cleanly; the server kicks one.
    clients[0].close();
    clients[1].close();
    // The server kicks the last client (not one of those that leave by themselves).
    let last_port = clients[4].local_addr().port();
    let kicked = players
        .values()
        .find(|player| player.peer_addr().port() == last_port)
        .unwrap()
        .clone();
    let kicked_id = kicked.id();
    kicked.close();
    let mut left = HashMap::new();
    wait_for(WAIT, "three leaves", || {
        while let Some(event) = listener.poll_event() {
            match event {
                ServerEvent::Disconnected { id, peer, reason } => {
                    assert_eq!(players[&id].peer_addr(), peer);
                    assert!(left.insert(id, reason).is_none(), "left twice");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        left.len() == 3
    });
    assert_eq!(left[&kicked_id], CloseReason::Closed);
    let by_peer = left
        .values()
        .filter(|r| **r == CloseReason::ClosedByPeer)
        .count();
    assert_eq!(by_peer, 2, "{left:?}");
    // The server's shutdown ends the rest, each reported once.
    server_daemon.shutdown();
    wait_for(WAIT, "the rest", || {
        while let Some(event) = listener.poll_event() {
            if let ServerEvent::Disconnected { id, reason, .. } = event {
                assert!(left.insert(id, reason).is_none(), "left twice");
            }
        }
        left.len() == 5
    });
    assert_eq!(listener.dropped_events(), 0);
}

#[test]
fn ids_are_unique_and_connections_key_maps() {
    let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    let listener = daemon.listen(loopback()).unwrap();
    let mut ids = HashSet::new();
    let mut set = HashSet::new();
    for _ in 0..4 {
        let client = daemon.connect(listener.local_addr()).unwrap();
        let server = listener.accept_timeout(WAIT).unwrap();
        assert!(ids.insert(client.id()) && ids.insert(server.id()));
        assert!(set.insert(client.clone()));
        assert!(
            !set.insert(client.clone()),
            "a clone is the same connection"
        );
        assert_ne!(client, server);
    }
    assert_eq!(set.len(), 4);
}

#[test]
fn quick_stats_follow_the_traffic_without_a_lock() {
    let _watchdog = watchdog("quick stats", Duration::from_secs(30));
    let p = common::pair(DaemonConfig::default(), DaemonConfig::default());
    for i in 0..50u8 {
        p.client.send(&[i]).unwrap();
        let packet = p.server.recv_timeout(WAIT).unwrap();
        p.server.send(&packet).unwrap();
        p.client.recv_timeout(WAIT).unwrap();
    }
    wait_for(WAIT, "an RTT estimate from samples", || {
        let quick = p.client.quick_stats();
        // The initial guess is 250 ms; loopback samples pull it down.
        quick.rtt < Duration::from_millis(200)
    });
    let quick = p.client.quick_stats();
    let full = p.client.stats().unwrap().protocol;
    assert_eq!(quick.congestion_mode, full.congestion_mode);
    assert_eq!(quick.packet_loss_percent, 0.0);
    assert!(quick.rtt >= full.rtt.saturating_sub(Duration::from_millis(50)));
}
