//! Helpers shared by the daemon integration tests (each test binary uses a subset).
#![allow(dead_code)]

pub mod alloc;

use gudp::protocol::EndpointCounters;
use gudp::{Connection, Daemon, DaemonConfig, Delivery, Listener};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Any free port on the loopback interface.
pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Aborts the whole test process if it is still alive after `limit`: a blocking call that
/// never returns must fail the run, not hang CI. Dropping the guard disarms it.
pub struct Watchdog {
    _disarm: mpsc::Sender<()>,
}

pub fn watchdog(name: &'static str, limit: Duration) -> Watchdog {
    let (disarm, armed) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if armed.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
            eprintln!("watchdog: test `{name}` still running after {limit:?}; aborting");
            std::process::abort();
        }
    });
    Watchdog { _disarm: disarm }
}

/// Polls `done` every millisecond until it holds; panics with `what` after `limit`.
pub fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A client connection on `client` to `listener` (on `server`'s side) and its accepted peer.
pub fn connect(client: &Daemon, listener: &Listener) -> (Connection, Connection) {
    let conn = client
        .connect(listener.local_addr())
        .expect("connect over loopback");
    let accepted = listener
        .accept_timeout(Duration::from_secs(5))
        .expect("accept after a completed handshake");
    // The client's socket is bound to the wildcard address: compare ports.
    assert_eq!(accepted.peer_addr().port(), conn.local_addr().port());
    (conn, accepted)
}

/// Two daemons (so each side's counters are its own), a listener and one connection.
pub struct Pair {
    pub server_daemon: Daemon,
    pub client_daemon: Daemon,
    pub listener: Listener,
    pub client: Connection,
    pub server: Connection,
}

pub fn pair(server_config: DaemonConfig, client_config: DaemonConfig) -> Pair {
    let server_daemon = Daemon::spawn(server_config).unwrap();
    let client_daemon = Daemon::spawn(client_config).unwrap();
    let listener = server_daemon.listen(loopback()).unwrap();
    let (client, server) = connect(&client_daemon, &listener);
    Pair {
        server_daemon,
        client_daemon,
        listener,
        client,
        server,
    }
}

/// Delivery notifications polled from `conn` until `n` arrived (panics after `limit`):
/// (acked ids, lost ids), in arrival order.
pub fn deliveries(conn: &Connection, n: usize, limit: Duration) -> (Vec<u64>, Vec<u64>) {
    let (mut acked, mut lost) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + limit;
    while acked.len() + lost.len() < n {
        while let Some(delivery) = conn.poll_delivery() {
            match delivery {
                Delivery::Acked(id) => acked.push(id.0),
                Delivery::Lost(id) => lost.push(id.0),
                other => panic!("a notification this test does not know: {other:?}"),
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} acked and {} lost of {n} after {limit:?}; {:?}",
            acked.len(),
            lost.len(),
            conn.stats()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    (acked, lost)
}

/// Every per-reason drop counter of an endpoint; their sum must equal the daemon's
/// `dropped_by_protocol`.
pub fn drop_reasons(c: &EndpointCounters) -> u64 {
    c.invalid_too_short
        + c.invalid_unknown_type
        + c.invalid_bad_length
        + c.invalid_non_canonical
        + c.wrong_protocol_id
        + c.unknown_peer
        + c.unexpected
        + c.mismatched
        + c.handshake_bad_tokens
        + c.handshake_expired_tokens
        + c.handshake_replayed_tokens
        + c.handshake_already_connected
        + c.replies_dropped
        + c.connections.duplicates
        + c.connections.stale
        + c.connections.too_large_to_receive
}

/// Fills `bytes` from a seeded generator, so failures reproduce.
pub fn fill(rng: &mut SplitMix64, bytes: &mut [u8]) {
    for b in bytes {
        *b = rng.next_u64() as u8;
    }
}

/// A seeded SplitMix64 generator: the tests' only randomness, so every run can be replayed.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
