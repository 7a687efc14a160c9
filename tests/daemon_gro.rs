//! Coalesced receives (`UDP_GRO`) through the daemon: a blast of segmented sends reaches the
//! receiving daemon as runs of datagrams in one buffer, and it must still count each datagram
//! once and deliver each payload once, with coalescing on and off.

mod common;

use common::{pair, wait_for, watchdog};
use gudp::{DaemonConfig, RecvTimeoutError};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// Sends `n` numbered payloads client to server, reads what arrives, and checks the counts.
fn blast(gro: bool, n: u32) {
    let mut config = DaemonConfig::default();
    config.udp_gro = gro;
    let p = pair(config.clone(), config);
    let mut received = Vec::new();
    let mut next = 0u32;
    let deadline = std::time::Instant::now() + WAIT;
    let mut quiet = 0;
    // Until all arrived, or all were sent and nothing came for 200 ms (kernel drops).
    while received.len() < n as usize && quiet < 200 && std::time::Instant::now() < deadline {
        // Bursts of sends: pacing and the outbox decide how many go; the rest wait.
        while next < n {
            let mut payload = [next as u8; 1000];
            payload[..4].copy_from_slice(&next.to_le_bytes());
            if p.client.try_send(&payload).is_err() {
                break;
            }
            next += 1;
        }
        match p.server.recv_timeout(Duration::from_millis(1)) {
            Ok(packet) => {
                assert_eq!(packet.len(), 1000, "a datagram was merged or cut");
                let id = u32::from_le_bytes(packet[..4].try_into().unwrap());
                assert!(packet[4..].iter().all(|&b| b == id as u8), "payload {id}");
                received.push(id);
                quiet = 0;
            }
            Err(RecvTimeoutError::Closed(reason)) => panic!("closed: {reason}"),
            Err(_) if next == n => quiet += 1,
            Err(_) => {}
        }
    }
    // Loopback loses only at a full receive buffer, and the kernel counts that loss.
    let mut unique = received.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        received.len(),
        "a payload was delivered twice"
    );
    // Every datagram the client sent was read by the server or counted as dropped by the
    // kernel: counting a coalesced run as one datagram (or twice) breaks the balance. Acks and
    // keepalives keep flowing, so the kernel's last drop count arrives in time.
    wait_for(WAIT, "the server's counts to balance the client's", || {
        let (sent, server) = (p.client_daemon.counters(), p.server_daemon.counters());
        server.datagrams_received + server.dropped_by_kernel == sent.datagrams_sent
            && server.unaccounted() == 0
    });
    let (client, server) = (p.client_daemon.counters(), p.server_daemon.counters());
    assert_eq!(
        server.payloads_delivered,
        received.len() as u64,
        "{server:?}"
    );
    let lost = server.dropped_by_kernel + server.dropped_inbox_full + client.sends_expired;
    assert_eq!(
        received.len() as u64 + lost,
        u64::from(n),
        "every payload sent arrived or was counted lost: {server:?}"
    );
}

#[test]
fn coalesced_receives_count_and_deliver_every_datagram_once() {
    let _watchdog = watchdog("coalesced_receives", Duration::from_secs(60));
    blast(true, 3_000);
}

#[test]
fn uncoalesced_receives_count_and_deliver_every_datagram_once() {
    let _watchdog = watchdog("uncoalesced_receives", Duration::from_secs(60));
    blast(false, 3_000);
}
