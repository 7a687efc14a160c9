//! The daemon, `Listener` and `Connection` over real loopback sockets: echo, many clients,
//! shared handles, timeouts, closing, oversize payloads and inbox-full accounting.

mod common;

use common::{connect, deliveries, loopback, pair, wait_for, watchdog};
use gudp::conditioner::LinkConfig;
use gudp::protocol::Config;
use gudp::{
    CloseReason, Daemon, DaemonConfig, LinkSetup, PacketId, RecvTimeoutError, SendError,
    TryRecvError,
};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(5);

fn payload(i: usize) -> Vec<u8> {
    // Sizes from empty to the maximum, each byte a function of (i, position).
    let len = [0, 1, 17, 500, 1200][i % 5];
    (0..len).map(|j| (i * 31 + j * 7) as u8).collect()
}

#[test]
fn connect_and_echo_with_delivery_notifications() {
    let _watchdog = watchdog("connect_and_echo", Duration::from_secs(30));
    let p = pair(DaemonConfig::default(), DaemonConfig::default());
    const N: usize = 100;
    for i in 0..N {
        assert_eq!(p.client.send(&payload(i)), Ok(PacketId(i as u64)));
        let got = p.server.recv_timeout(WAIT).expect("server receives");
        assert_eq!(&got[..], &payload(i)[..], "payload {i} at the server");
        assert_eq!(p.server.send(&got), Ok(PacketId(i as u64)));
        let echo = p
            .client
            .recv_timeout(WAIT)
            .expect("client receives the echo");
        assert_eq!(&echo[..], &payload(i)[..], "echo {i} at the client");
    }
    // Every packet, in both directions, reported acked exactly once and none lost.
    for (side, conn) in [("client", &p.client), ("server", &p.server)] {
        let (mut acked, lost) = deliveries(conn, N, WAIT);
        assert!(lost.is_empty(), "{side}: lost {lost:?} on a clean link");
        acked.sort_unstable();
        assert_eq!(
            acked,
            (0..N as u64).collect::<Vec<_>>(),
            "{side}: acked ids"
        );
    }
    // ... and nothing more turns up later (no double notification).
    thread::sleep(Duration::from_millis(100));
    assert_eq!(p.client.poll_delivery(), None);
    assert_eq!(p.server.poll_delivery(), None);
    assert_eq!(p.client.status().close_reason(), None);
    for daemon in [&p.server_daemon, &p.client_daemon] {
        let c = daemon.counters();
        assert_eq!(c.unaccounted(), 0, "{c:?}");
        assert_eq!(c.payloads_delivered, N as u64, "{c:?}");
    }
}

#[test]
fn two_hundred_fifty_six_clients_on_one_listener() {
    let _watchdog = watchdog("256 clients", Duration::from_secs(60));
    const CLIENTS: usize = 256;
    const ECHOES: usize = 4;
    let server_daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    let client_daemon = Arc::new(Daemon::spawn(DaemonConfig::default()).unwrap());
    let listener = server_daemon.listen(loopback()).unwrap();
    let server_addr = listener.local_addr();
    // Four threads connect at once while this one accepts.
    let connectors: Vec<_> = (0..4)
        .map(|_| {
            let daemon = client_daemon.clone();
            thread::spawn(move || {
                (0..CLIENTS / 4)
                    .map(|_| daemon.connect(server_addr).expect("connect"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let accepted: Vec<_> = (0..CLIENTS)
        .map(|i| {
            listener
                .accept_timeout(Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("accept {i}: {e:?}"))
        })
        .collect();
    let clients: Vec<_> = connectors
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(clients.len(), CLIENTS);
    let client_addrs: HashSet<_> = clients.iter().map(|c| c.local_addr().port()).collect();
    let peers: HashSet<_> = accepted.iter().map(|c| c.peer_addr().port()).collect();
    assert_eq!(client_addrs.len(), CLIENTS, "one socket per client");
    assert_eq!(peers, client_addrs, "every client accepted exactly once");

    // One server thread echoes on every connection.
    let stop = Arc::new(AtomicBool::new(false));
    let echo = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut echoed = 0;
            while !stop.load(Ordering::Relaxed) {
                let mut idle = true;
                for conn in &accepted {
                    while let Ok(packet) = conn.try_recv() {
                        conn.send(&packet).expect("echo");
                        echoed += 1;
                        idle = false;
                    }
                }
                if idle {
                    thread::sleep(Duration::from_millis(1));
                }
            }
            echoed
        })
    };
    // In waves of 32 clients (128 datagrams): all 1024 at once would overflow the server
    // socket's kernel receive buffer, and UDP drops what does not fit.
    for (w, wave) in clients.chunks(32).enumerate() {
        for (j, client) in wave.iter().enumerate() {
            let i = w * 32 + j;
            for k in 0..ECHOES {
                client.send(&[(i >> 8) as u8, i as u8, k as u8]).unwrap();
            }
        }
        for (j, client) in wave.iter().enumerate() {
            let i = w * 32 + j;
            for k in 0..ECHOES {
                let echo = client.recv_timeout(Duration::from_secs(10));
                let echo = echo.unwrap_or_else(|e| {
                    let c = server_daemon.counters();
                    panic!("client {i} echo {k}: {e:?}; server {c:?}")
                });
                assert_eq!(&echo[..], &[(i >> 8) as u8, i as u8, k as u8]);
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    assert_eq!(echo.join().unwrap(), CLIENTS * ECHOES);
    let c = server_daemon.counters();
    assert_eq!(c.endpoints.connections_opened, CLIENTS as u64, "{c:?}");
    assert_eq!(c.accept_queue_full, 0);
    assert_eq!(c.payloads_delivered, (CLIENTS * ECHOES) as u64);
    assert_eq!(c.unaccounted(), 0, "{c:?}");
    assert_eq!(client_daemon.counters().unaccounted(), 0);
}

#[test]
fn four_threads_share_one_connection_and_each_packet_is_received_once() {
    let _watchdog = watchdog("four threads", Duration::from_secs(60));
    const N: usize = 2000;
    let mut server_config = DaemonConfig::default();
    server_config.inbox_capacity = N; // room for everything: no drop at the inbox
    let p = pair(server_config, DaemonConfig::default());
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let conn = p.server.clone();
            let done = done.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    match conn.recv_timeout(Duration::from_millis(20)) {
                        Ok(packet) => got.push(u32::from_le_bytes(packet[..4].try_into().unwrap())),
                        Err(RecvTimeoutError::Timeout) if done.load(Ordering::Acquire) => break,
                        Err(RecvTimeoutError::Closed(reason)) => panic!("closed: {reason}"),
                        Err(_) => {}
                    }
                }
                got
            })
        })
        .collect();
    for i in 0..N as u32 {
        // `send` waits while the outbox is full, so pacing sets the rate: no kernel overrun.
        p.client.send(&i.to_le_bytes()).unwrap();
    }
    // An ack means the server daemon had already pushed the packet into the inbox.
    let (acked, lost) = deliveries(&p.client, N, Duration::from_secs(30));
    done.store(true, Ordering::Release);
    let per_thread: Vec<Vec<u32>> = readers.into_iter().map(|t| t.join().unwrap()).collect();
    let mut seen = vec![0u32; N];
    for &i in per_thread.iter().flatten() {
        seen[i as usize] += 1;
    }
    let c = p.server_daemon.counters();
    let received: usize = per_thread.iter().map(Vec::len).sum();
    let dup: Vec<_> = (0..N).filter(|&i| seen[i] > 1).collect();
    assert!(dup.is_empty(), "received more than once: {dup:?}");
    assert_eq!(c.dropped_inbox_full, 0, "{c:?}");
    assert_eq!(
        received as u64, c.payloads_delivered,
        "every delivered packet read once"
    );
    assert_eq!(c.unaccounted(), 0, "{c:?}");
    for &id in &acked {
        assert_eq!(seen[id as usize], 1, "packet {id} acked but not received");
    }
    // ... and conversely: a received packet is acked (an ack covers 33 sequences, so one
    // dropped ack datagram cannot make it look lost): no false losses on loopback.
    let acked_set: HashSet<u64> = acked.iter().copied().collect();
    let falsely_lost: Vec<_> = (0..N as u64)
        .filter(|&i| seen[i as usize] == 1 && !acked_set.contains(&i))
        .collect();
    assert!(
        falsely_lost.is_empty(),
        "received but reported lost: {falsely_lost:?}"
    );
    assert_eq!(acked.len() + lost.len(), N);
    assert!(acked.len() >= N / 2, "{} lost on loopback", lost.len());
    let counts: Vec<usize> = per_thread.iter().map(Vec::len).collect();
    eprintln!(
        "four readers: {counts:?} of {received}; lost {}",
        lost.len()
    );
}

#[test]
fn a_vanished_peer_times_out_and_wakes_a_blocked_recv() {
    let _watchdog = watchdog("idle timeout", Duration::from_secs(30));
    let idle = Duration::from_millis(600);
    let short = |link| {
        let mut config = DaemonConfig::default();
        config.protocol = {
            let mut protocol = Config::default();
            protocol.idle_timeout = idle;
            protocol
        };
        config.link = link;
        config
    };
    let link = LinkSetup::new(LinkConfig::default(), 7);
    let p = pair(short(None), short(Some(link)));
    p.client.send(b"alive").unwrap();
    assert_eq!(&p.server.recv_timeout(WAIT).unwrap()[..], b"alive");
    let blocked = {
        let server = p.server.clone();
        thread::spawn(move || (server.recv(), Instant::now()))
    };
    thread::sleep(Duration::from_millis(50)); // let it block
                                              // The client goes silent without a disconnect: everything it sends is lost.
    let vanished = Instant::now();
    assert!(p.client_daemon.set_link({
        let mut link = LinkConfig::default();
        link.loss_percent = 100.0;
        link
    }));
    let (result, woke) = blocked.join().unwrap();
    assert_eq!(result.unwrap_err(), CloseReason::TimedOut);
    let after = woke - vanished;
    // The server last heard the client at most one keepalive interval (250 ms) before it
    // vanished; the timeout fires on its deadline, plus scheduling slack on a busy machine.
    assert!(
        after >= idle - Duration::from_millis(300),
        "timed out early: {after:?}"
    );
    assert!(
        after <= idle + Duration::from_millis(400),
        "timed out late: {after:?}"
    );
    assert_eq!(
        p.server.status().close_reason(),
        Some(CloseReason::TimedOut)
    );
    assert_eq!(
        p.server.try_send(b"x"),
        Err(SendError::Closed(CloseReason::TimedOut))
    );
    assert_eq!(p.server_daemon.counters().endpoints.timeouts, 1);
    // The server stopped talking too, so the client times out in turn.
    assert_eq!(
        p.client.recv_timeout(Duration::from_secs(5)).unwrap_err(),
        RecvTimeoutError::Closed(CloseReason::TimedOut)
    );
    eprintln!("server timed out {after:?} after the client vanished (idle timeout {idle:?})");
}

#[test]
fn closing_either_side_ends_the_peer_with_closed_by_peer() {
    let _watchdog = watchdog("close", Duration::from_secs(30));
    let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    let listener = daemon.listen(loopback()).unwrap();

    // The client closes explicitly; a packet received before the close is drained first.
    let (client, server) = connect(&daemon, &listener);
    client.send(b"last words").unwrap();
    wait_for(WAIT, "the packet to arrive", || {
        server.stats().unwrap().inbox_len == 1
    });
    let blocked = thread::spawn({
        let server = server.clone();
        move || {
            let first = server.recv().map(|p| p.to_vec());
            (first, server.recv().map(|p| p.to_vec()))
        }
    });
    client.close();
    assert_eq!(client.status().close_reason(), Some(CloseReason::Closed));
    assert_eq!(
        client.try_send(b"too late"),
        Err(SendError::Closed(CloseReason::Closed))
    );
    assert_eq!(
        client.try_recv(),
        Err(TryRecvError::Closed(CloseReason::Closed))
    );
    let (first, second) = blocked.join().unwrap();
    assert_eq!(first.unwrap(), b"last words");
    assert_eq!(second.unwrap_err(), CloseReason::ClosedByPeer);
    assert_eq!(
        server.status().close_reason(),
        Some(CloseReason::ClosedByPeer)
    );

    // The server side closes by dropping its last handle.
    let (client, server) = connect(&daemon, &listener);
    let clone = server.clone();
    drop(server);
    assert_eq!(
        client.recv_timeout(Duration::from_millis(300)).unwrap_err(),
        {
            RecvTimeoutError::Timeout // one clone still holds it open
        }
    );
    drop(clone);
    assert_eq!(
        client.recv_timeout(WAIT).unwrap_err(),
        RecvTimeoutError::Closed(CloseReason::ClosedByPeer)
    );
    assert_eq!(
        client.try_send(b"x"),
        Err(SendError::Closed(CloseReason::ClosedByPeer))
    );
    let c = daemon.counters();
    assert_eq!(c.endpoints.disconnects_received, 2, "{c:?}");
    assert_eq!(c.unaccounted(), 0);
}

#[test]
fn close_reports_every_queued_packet() {
    // Each packet gets exactly one delivery notification, even if the connection closes
    // while it still waits in the outbox.
    let _watchdog = watchdog("close with queued packets", Duration::from_secs(30));
    let p = pair(DaemonConfig::default(), DaemonConfig::default());
    const N: usize = 200;
    for i in 0..N {
        p.client.try_send(&[i as u8; 100]).unwrap();
    }
    p.client.close();
    let (acked, lost) = deliveries(&p.client, N, WAIT);
    let mut all: Vec<u64> = acked.iter().chain(&lost).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..N as u64).collect::<Vec<_>>());
    thread::sleep(Duration::from_millis(50));
    assert_eq!(p.client.poll_delivery(), None);
}

#[test]
fn oversize_payload_is_refused_and_consumes_no_packet_id() {
    let _watchdog = watchdog("oversize", Duration::from_secs(30));
    let mut config = DaemonConfig::default();
    config.protocol.max_payload = 100;
    let p = pair(config.clone(), config);
    let too_big = [1u8; 101];
    let refused = Err(SendError::TooLarge { len: 101, max: 100 });
    assert_eq!(p.client.try_send(&too_big), refused);
    assert_eq!(p.client.send(&too_big), refused);
    assert_eq!(p.client.send_timeout(&too_big, WAIT), refused);
    // The first packet that fits still gets id 0 and arrives intact.
    assert_eq!(p.client.try_send(&[2; 100]), Ok(PacketId(0)));
    assert_eq!(&p.server.recv_timeout(WAIT).unwrap()[..], &[2; 100]);
    assert_eq!(p.client.try_send(&[3; 1]), Ok(PacketId(1)));
    assert_eq!(&p.server.recv_timeout(WAIT).unwrap()[..], &[3]);
    let (acked, lost) = deliveries(&p.client, 2, WAIT);
    assert_eq!((acked.len(), lost.len()), (2, 0));
    // The protocol never saw the refused payloads: two payloads on sequence numbers.
    let stats = p.client.stats().unwrap().protocol;
    assert_eq!(stats.counters.payloads_sent, 2, "{stats:?}");
    assert_eq!(stats.counters.too_large_to_send, 0);
    assert_eq!(
        p.client_daemon
            .counters()
            .endpoints
            .connections
            .too_large_to_send,
        0
    );
}

#[test]
fn inbox_full_drops_are_counted_and_the_rest_is_readable() {
    let _watchdog = watchdog("inbox full", Duration::from_secs(30));
    const CAPACITY: usize = 8;
    const N: usize = 100;
    let mut server_config = DaemonConfig::default();
    server_config.inbox_capacity = CAPACITY;
    let p = pair(server_config, DaemonConfig::default());
    for i in 0..N {
        p.client.send(&(i as u32).to_le_bytes()).unwrap();
    }
    // Nobody reads at the server; wait until every packet was acked or lost.
    let (acked, lost) = deliveries(&p.client, N, Duration::from_secs(10));
    let c = p.server_daemon.counters();
    assert_eq!(c.unaccounted(), 0, "{c:?}");
    assert_eq!(c.payloads_delivered, CAPACITY as u64, "{c:?}");
    assert!(c.dropped_inbox_full > 0, "{c:?}");
    // A payload the inbox refused was never received as far as the protocol knows...
    assert_eq!(
        c.payloads_delivered, c.endpoints.connections.payloads_received,
        "{c:?}"
    );
    // ...so Acked means delivered: exactly the packets in the inbox are acked, the first
    // ones, and every other packet is reported lost.
    let mut acked = acked;
    acked.sort_unstable();
    assert_eq!(acked, (0..CAPACITY as u64).collect::<Vec<_>>(), "{c:?}");
    assert_eq!(lost.len(), N - CAPACITY, "{c:?}");
    let stats = p.server.stats().unwrap();
    assert_eq!(stats.dropped_inbox_full, c.dropped_inbox_full);
    assert_eq!(stats.inbox_len, CAPACITY);
    // What was kept is the first packets, in order, and can still be read.
    for i in 0..CAPACITY as u32 {
        let packet = p.server.try_recv().expect("kept packet");
        assert_eq!(&packet[..], &i.to_le_bytes());
    }
    assert_eq!(p.server.try_recv(), Err(TryRecvError::Empty));
    // With room again, new packets are delivered.
    p.client.send(b"after").unwrap();
    assert_eq!(&p.server.recv_timeout(WAIT).unwrap()[..], b"after");
}
