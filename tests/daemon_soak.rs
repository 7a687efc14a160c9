//! Soak: several clients echo randomly sized packets through a lossy, duplicating, jittery link
//! while connections come and go, and the books are checked at the end. The test asserts:
//! - every packet id gets exactly one delivery notification, acked or lost;
//! - no packet reaches the application twice, whatever the link duplicated;
//! - every payload arrives intact;
//! - the daemons account for every datagram they read.
//!
//! CI runs it for 3 s. Set `GUDP_SOAK_SECS` for a longer run, for example
//! `GUDP_SOAK_SECS=600 cargo test --release --test daemon_soak -- --nocapture`.

mod common;

use common::{loopback, watchdog, SplitMix64};
use gudp::conditioner::LinkConfig;
use gudp::{Connection, Daemon, DaemonConfig, Delivery, LinkSetup, Listener, SendError};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const CLIENTS: u64 = 6;

fn soak_duration() -> Duration {
    let secs = std::env::var("GUDP_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    Duration::from_secs(secs)
}

/// A payload that names its sender and sequence number and checks itself: 8 bytes of client
/// id, 8 of sequence, then `len` bytes derived from both.
fn payload(client: u64, seq: u64, len: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(16 + len);
    bytes.extend_from_slice(&client.to_le_bytes());
    bytes.extend_from_slice(&seq.to_le_bytes());
    bytes.extend((0..len).map(|i| (client as usize * 131 + seq as usize * 7 + i) as u8));
    bytes
}

/// Checks a payload's body against its header and returns (client, sequence).
fn verify(bytes: &[u8]) -> (u64, u64) {
    assert!(bytes.len() >= 16, "a payload of {} bytes", bytes.len());
    let client = u64::from_le_bytes(bytes[..8].try_into().unwrap());
    let seq = u64::from_le_bytes(bytes[8..16].try_into().unwrap());
    assert_eq!(
        bytes,
        &payload(client, seq, bytes.len() - 16)[..],
        "payload {seq} of client {client} corrupted"
    );
    (client, seq)
}

/// What one client session saw.
#[derive(Default)]
struct Session {
    sent: u64,
    refused: u64,
    echoes: u64,
    acked: u64,
    lost: u64,
}

impl Session {
    fn add(&mut self, other: &Session) {
        self.sent += other.sent;
        self.refused += other.refused;
        self.echoes += other.echoes;
        self.acked += other.acked;
        self.lost += other.lost;
    }
}

/// One client session: send at a random pace until `until`, check echoes, then wait until
/// every packet sent has its one notification.
fn client_session(conn: &Connection, client: u64, until: Instant, rng: &mut SplitMix64) -> Session {
    let mut session = Session::default();
    let mut notified: HashMap<u64, Delivery> = HashMap::new();
    let mut echoed = HashSet::new();
    let mut ids = Vec::new();
    let note = |conn: &Connection, notified: &mut HashMap<u64, Delivery>| {
        while let Some(delivery) = conn.poll_delivery() {
            let id = delivery.id().0;
            assert!(
                notified.insert(id, delivery).is_none(),
                "client {client}: packet {id} notified twice"
            );
        }
    };
    while Instant::now() < until {
        let seq = session.sent + session.refused;
        let len = (rng.next_u64() % 1100) as usize;
        match conn.try_send(&payload(client, seq, len)) {
            Ok(id) => {
                session.sent += 1;
                ids.push(id.0);
            }
            Err(SendError::Paced | SendError::OutboxFull) => session.refused += 1,
            Err(other) => panic!("client {client}: send failed: {other}"),
        }
        while let Ok(echo) = conn.try_recv() {
            let (from, seq) = verify(&echo);
            assert_eq!(from, client, "client {client} got client {from}'s echo");
            assert!(
                echoed.insert(seq),
                "client {client}: echo {seq} delivered twice"
            );
            session.echoes += 1;
        }
        note(conn, &mut notified);
        thread::sleep(Duration::from_micros(rng.next_u64() % 3000));
    }
    // The loss timeout is at least 1 s: after it every packet has been resolved.
    let deadline = Instant::now() + Duration::from_secs(10);
    while notified.len() < ids.len() {
        assert!(
            Instant::now() < deadline,
            "client {client}: {} of {} packets never notified",
            ids.len() - notified.len(),
            ids.len()
        );
        note(conn, &mut notified);
        thread::sleep(Duration::from_millis(5));
    }
    for id in &ids {
        match notified.get(id) {
            Some(delivery) if delivery.is_acked() => session.acked += 1,
            Some(_) => session.lost += 1,
            None => panic!("client {client}: packet {id} never notified"),
        }
    }
    assert_eq!(notified.len(), ids.len(), "notifications for unknown ids");
    session
}

/// The echo server: accepts, echoes what arrives, checks nothing arrives twice. Returns how
/// many packets the application received.
fn serve(listener: Listener, stop: Arc<AtomicBool>) -> u64 {
    let mut connections: Vec<Connection> = Vec::new();
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    let mut frame = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        while let Ok(conn) = listener.try_accept() {
            connections.push(conn);
        }
        // A connection is let go only once it is finished *and* drained (`drain_into` says
        // `Err` only then), so no delivered packet is left unread.
        connections.retain(|conn| loop {
            frame.clear();
            let open = conn.drain_into(&mut frame, 256).is_ok();
            for packet in &frame {
                let (client, seq) = verify(packet);
                assert!(
                    seen.insert((client, seq)),
                    "server: packet {seq} of client {client} delivered twice"
                );
                // A refused echo (paced) is simply not sent: the client's books allow it.
                let _ = conn.try_send(packet);
            }
            if !open || frame.is_empty() {
                break open;
            }
        });
        thread::sleep(Duration::from_millis(1));
    }
    seen.len() as u64
}

#[test]
fn lossy_duplicating_link_with_churn_keeps_every_book_exact() {
    let duration = soak_duration();
    let _watchdog = watchdog("soak", duration * 3 + Duration::from_secs(60));
    let link = LinkSetup::new(
        {
            let mut link = LinkConfig::default();
            link.latency = Duration::from_millis(15);
            link.jitter = Duration::from_millis(10);
            link.loss_percent = 10.0;
            link.duplicate_percent = 10.0;
            link
        },
        0x50a6,
    );
    let server_daemon = Daemon::spawn({
        let mut config = DaemonConfig::default();
        config.link = Some(link);
        config
    })
    .unwrap();
    let client_daemon = Daemon::spawn({
        let mut config = DaemonConfig::default();
        config.link = Some({
            let mut value = link;
            value.seed = 0xc11e;
            value
        });
        config
    })
    .unwrap();
    let listener = server_daemon.listen(loopback()).unwrap();
    let server_addr = listener.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let stop = stop.clone();
        thread::spawn(move || serve(listener, stop))
    };
    let end = Instant::now() + duration;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let daemon = &client_daemon;
            let connect = move || daemon.connect(server_addr);
            // Each client reconnects under a new id for every session until the end: churn.
            let conns = std::iter::from_fn(move || (Instant::now() < end).then(connect));
            (client, conns)
        })
        .collect();
    let totals = thread::scope(|scope| {
        let handles: Vec<_> = clients
            .into_iter()
            .map(|(client, conns)| {
                scope.spawn(move || {
                    let mut rng = SplitMix64::new(client);
                    let mut total = Session::default();
                    for (session, conn) in conns.enumerate() {
                        let conn = conn.expect("connect through the lossy link");
                        let id = client * 1_000_000 + session as u64;
                        let length = Duration::from_millis(300 + rng.next_u64() % 1200);
                        let until = Instant::now() + length;
                        total.add(&client_session(&conn, id, until, &mut rng));
                        conn.close();
                    }
                    total
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect::<Vec<_>>()
    });
    stop.store(true, Ordering::Relaxed);
    let received_by_server = server.join().expect("server thread");
    let sent: u64 = totals.iter().map(|t| t.sent).sum();
    let acked: u64 = totals.iter().map(|t| t.acked).sum();
    let lost: u64 = totals.iter().map(|t| t.lost).sum();
    let echoes: u64 = totals.iter().map(|t| t.echoes).sum();
    println!(
        "soak {duration:?}: {sent} sent, {acked} acked, {lost} lost, {received_by_server} \
         received by the server, {echoes} echoes"
    );
    assert_eq!(acked + lost, sent);
    assert!(sent > 100, "the soak sent only {sent} packets");
    // With 10 % loss each way, most packets still make it.
    assert!(acked * 2 > sent, "{acked} of {sent} acked");
    let server_counters = server_daemon.counters();
    let refused_by_server = server_counters.dropped_inbox_full + server_counters.dropped_no_handle;
    assert!(
        received_by_server + refused_by_server >= acked,
        "every acked packet reached the server application or a counted drop: \
         {received_by_server} + {refused_by_server} < {acked}"
    );
    for daemon in [&server_daemon, &client_daemon] {
        let counters = daemon.counters();
        assert_eq!(counters.unaccounted(), 0, "{counters:?}");
        assert!(
            counters.endpoints.connections.duplicates > 0,
            "the link duplicated nothing?"
        );
    }
}
