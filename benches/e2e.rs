//! End to end over loopback: GUDP against raw `std::net::UdpSocket`, measured in the same run.
//!
//! - `one_way/*`: a sender thread blasts 64-byte packets for the whole benchmark; one
//!   iteration is one packet *received*, so the figure is delivered throughput (what the
//!   kernel or an inbox drops is simply not counted as done).
//! - `ping_pong/*`: one 64-byte packet in flight; one iteration is one round trip. GUDP is
//!   measured with daemon threads (`Daemon::spawn`) and with daemons driven by the two
//!   threads themselves (`Daemon::manual`), the way a game's frame loop would.
//!
//! GUDP runs with `DaemonConfig::default()`, what a user gets (pacing included); ids ending
//! in `_unpaced` are the extra with pacing lifted, which measures the daemon rather than the
//! pacing controller; `_unpaced_secure` is that extra over a secure-mode connection (connect
//! token, every packet encrypted with ChaCha20-Poly1305), in the same run. Each id names the
//! inbox implementation: run once as is and once with
//! `--features naive-mutex`. `gudp bench` measures the same shapes (and more: CPU, allocations,
//! many connections) as a table with ratios.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gudp::protocol::PacingRate;
use gudp::secure::{ConnectToken, PrivateKey, TokenParams};
use gudp::{Connection, Daemon, DaemonConfig, Listener, ManualDaemon};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const PAYLOAD: [u8; 64] = [0x5a; 64];
/// A round trip or a packet that takes this long was lost; the benchmark fails rather than hangs.
const LOST: Duration = Duration::from_secs(2);

/// The default configuration (no suffix), and the labelled extra with pacing fixed far above
/// what loopback carries (rate controller floor, ceiling and bad-mode cap all 10^8 packets/s),
/// so the daemon is measured, not the pacing controller.
fn configs() -> [(DaemonConfig, &'static str); 2] {
    let mut unpaced = DaemonConfig::default();
    let unlimited = PacingRate::new(100_000_000, 100_000);
    unpaced.protocol.good_rate = unlimited;
    unpaced.protocol.bad_rate = unlimited;
    // A floor at the ceiling fixes the rate: the rate controller never holds it back.
    unpaced.protocol.min_rate = unlimited.packets_per_second;
    [(DaemonConfig::default(), ""), (unpaced, "_unpaced")]
}

fn raw_pair() -> (UdpSocket, UdpSocket) {
    let a = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let b = UdpSocket::bind("127.0.0.1:0").expect("bind");
    a.connect(b.local_addr().unwrap()).expect("connect");
    b.connect(a.local_addr().unwrap()).expect("connect");
    for socket in [&a, &b] {
        socket.set_read_timeout(Some(LOST)).unwrap();
    }
    (a, b)
}

/// Two spawned daemons (two event-loop threads, like the raw baseline's two sockets) and a
/// connection between them: (client, server). `secure`: a secure listener and a connect
/// token, so every packet is encrypted (ChaCha20-Poly1305) instead of MACed.
fn gudp_pair(daemons: &[Daemon; 2], secure: bool) -> (Connection, Connection) {
    let local = ([127, 0, 0, 1], 0).into();
    if secure {
        let key = PrivateKey::generate().expect("key");
        let listener = daemons[0]
            .listen_secure(local, key.clone(), None)
            .expect("listen");
        let id = DaemonConfig::default().protocol.protocol_id.into();
        let params = TokenParams::new(id, 1, vec![listener.local_addr()]);
        let token = ConnectToken::mint(&key, &params).expect("token");
        let client = daemons[1].connect_with_token(&token).expect("connect");
        (client, listener.accept_timeout(LOST).expect("accept"))
    } else {
        let listener = daemons[0].listen(local).expect("listen");
        let client = daemons[1].connect(listener.local_addr()).expect("connect");
        (client, listener.accept_timeout(LOST).expect("accept"))
    }
}

/// [`configs`] over plain connections, and the unpaced one again over a secure connection.
fn variants() -> [(DaemonConfig, &'static str, bool); 3] {
    let [(paced, plain), (unpaced, unpaced_suffix)] = configs();
    [
        (paced, plain, false),
        (unpaced.clone(), unpaced_suffix, false),
        (unpaced, "_unpaced_secure", true),
    ]
}

/// Runs `work` on a thread until the returned guard is dropped.
struct Background {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    fn start(work: impl FnMut() + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let mut work = work;
        let thread = {
            let stop = stop.clone();
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    work();
                }
            })
        };
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("background thread panicked");
        }
    }
}

fn one_way(c: &mut Criterion) {
    let mut group = c.benchmark_group("one_way");
    group.throughput(Throughput::Elements(1));

    {
        let (sender, receiver) = raw_pair();
        let _blast = Background::start(move || {
            let _ = sender.send(&PAYLOAD);
        });
        let mut buf = [0u8; 2048];
        group.bench_function("raw_udp", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    receiver.recv(&mut buf).expect("raw receive");
                }
                start.elapsed()
            })
        });
    }

    for (config, suffix, secure) in variants() {
        let daemons = [
            Daemon::spawn(config.clone()).unwrap(),
            Daemon::spawn(config).unwrap(),
        ];
        let (client, server) = gudp_pair(&daemons, secure);
        let _blast = Background::start(move || {
            // Blocking send: a full outbox (or pacing) holds the sender back.
            let _ = client.send_timeout(&PAYLOAD, Duration::from_millis(50));
        });
        let id = format!("gudp_{}{suffix}", gudp::IMPLEMENTATION);
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    server.recv_timeout(LOST).expect("gudp receive");
                }
                start.elapsed()
            })
        });
    }
    group.finish();
}

fn ping_pong(c: &mut Criterion) {
    let mut group = c.benchmark_group("ping_pong");
    group.throughput(Throughput::Elements(1));

    {
        let (client, server) = raw_pair();
        let _echo = Background::start(move || {
            let mut buf = [0u8; 2048];
            if let Ok(len) = server.recv(&mut buf) {
                let _ = server.send(&buf[..len]);
            }
        });
        let mut buf = [0u8; 2048];
        group.bench_function("raw_udp", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    client.send(&PAYLOAD).expect("raw send");
                    client.recv(&mut buf).expect("raw round trip lost");
                }
                start.elapsed()
            })
        });
    }

    for (config, suffix, secure) in variants() {
        let daemons = [
            Daemon::spawn(config.clone()).unwrap(),
            Daemon::spawn(config).unwrap(),
        ];
        let (client, server) = gudp_pair(&daemons, secure);
        let _echo = Background::start(move || {
            if let Ok(packet) = server.recv_timeout(Duration::from_millis(50)) {
                let _ = server.send(&packet);
            }
        });
        let id = format!("gudp_{}_spawned{suffix}", gudp::IMPLEMENTATION);
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    client.send(&PAYLOAD).expect("gudp send");
                    client.recv_timeout(LOST).expect("gudp round trip lost");
                }
                start.elapsed()
            })
        });
    }

    {
        let server_daemon = Daemon::manual(DaemonConfig::default()).unwrap();
        let listener = server_daemon.listen(([127, 0, 0, 1], 0).into()).unwrap();
        let server_addr = listener.local_addr();
        let _echo = Background::start(manual_echo(server_daemon, listener));
        let client_daemon = Daemon::manual(DaemonConfig::default()).unwrap();
        let client = client_daemon.connect(server_addr).expect("connect");
        let id = format!("gudp_{}_manual", gudp::IMPLEMENTATION);
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    client.try_send(&PAYLOAD).expect("gudp send");
                    let deadline = Instant::now() + LOST;
                    while client.try_recv().is_err() {
                        assert!(Instant::now() < deadline, "gudp round trip lost");
                        client_daemon.poll(Some(Duration::from_millis(5))).unwrap();
                    }
                }
                start.elapsed()
            })
        });
    }
    group.finish();
}

/// One step of a manual-mode echo server: run the daemon, accept, echo what arrived.
fn manual_echo(daemon: ManualDaemon, listener: Listener) -> impl FnMut() + Send {
    let mut connections = Vec::new();
    move || {
        daemon.poll(Some(Duration::from_millis(5))).unwrap();
        while let Ok(connection) = listener.try_accept() {
            connections.push(connection);
        }
        for connection in &connections {
            while let Ok(packet) = connection.try_recv() {
                let _ = connection.try_send(&packet);
            }
        }
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = one_way, ping_pong
}
criterion_main!(benches);
