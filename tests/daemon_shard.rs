//! A listening port sharded over several daemons (`ShardedListener`, Linux `SO_REUSEPORT`):
//! the kernel spreads the clients over the shards, and every client's packets reach the one
//! connection the server accepted for that client.
#![cfg(target_os = "linux")]

mod common;

use common::{loopback, watchdog};
use gudp::{Daemon, DaemonConfig, ServerEvent, ShardedListener};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

const CLIENTS: usize = 32;
const PACKETS: u8 = 10;

#[test]
fn every_client_reaches_its_own_connection_on_some_shard() {
    let _watchdog = watchdog("sharded listener", Duration::from_secs(60));
    let server = ShardedListener::bind(loopback(), 2, DaemonConfig::default()).unwrap();
    let client_daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| client_daemon.connect(server.local_addr()).unwrap())
        .collect();
    let players: Vec<_> = (0..CLIENTS)
        .map(|_| server.accept_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    for (i, client) in clients.iter().enumerate() {
        for n in 0..PACKETS {
            client.send(&[i as u8, n]).unwrap();
        }
    }
    // Each accepted connection hears one client only, all its packets, and is the
    // connection of that client's address.
    let by_addr: HashMap<_, _> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| (c.local_addr(), i))
        .collect();
    let mut heard = HashSet::new();
    for player in &players {
        let i = by_addr[&player.peer_addr()];
        for n in 0..PACKETS {
            let packet = player.recv_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(&packet[..], &[i as u8, n], "connection of client {i}");
        }
        assert!(heard.insert(i), "client {i} accepted twice");
    }
    assert_eq!(heard.len(), CLIENTS);
    // Connection ids stay unique across the shards (events and maps key on them).
    let ids: HashSet<u64> = players.iter().map(|p| p.id()).collect();
    assert_eq!(ids.len(), CLIENTS, "connection ids repeat across shards");
    let mut joined = 0;
    while let Some(event) = server.poll_event() {
        if let ServerEvent::Connected { id, .. } = event {
            assert!(ids.contains(&id));
            joined += 1;
        }
    }
    assert_eq!(joined, CLIENTS);
    // The kernel used both shards: 32 clients all hashed to one has odds of 2^-31.
    for (shard, daemon) in server.shards().iter().enumerate() {
        let counters = daemon.counters();
        assert!(
            counters.endpoints.connections_opened > 0,
            "shard {shard} got no client"
        );
    }
}
