//! `gudp bench`: GUDP against raw UDP on loopback, each figure beside its baseline measured
//! in the same run.
//!
//! - one-way throughput (64 B and 1200 B): a sender thread and a receiver thread, raw
//!   `std::net::UdpSocket` (one `send`/`recv` call per packet) against a GUDP client and
//!   server (one daemon each, pacing lifted so the daemon, not the rate limiter, is measured);
//! - ping-pong: one packet in flight, round trips per second;
//! - CPU time and heap allocations per packet for each, from `/proc/self/stat` and a counting
//!   global allocator;
//! - many connections: N clients each sending R packets/s to one server, whose daemon runs in
//!   manual mode on a thread of its own so its CPU time can be read; RTT percentiles over the
//!   clients, memory per connection.
//!
//! The build decides the inbox implementation: run it once as is and once with
//! `--features naive-mutex` to compare the two (each row names its implementation).

use clap::Args as ClapArgs;
use gudp::protocol::PacingRate;
use gudp::{Connection, Daemon, DaemonConfig, ManualDaemon, RecvTimeoutError};
use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Counts heap allocations and live bytes, for "allocations per packet" and memory figures,
/// once `gudp bench` turns it on: every other subcommand pays one relaxed load per
/// allocation and counts nothing.
struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
/// Bytes allocated minus bytes freed while counting (signed: a buffer allocated before
/// counting began may be freed after).
static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; the counters are atomics
// updated with Relaxed ordering (they are statistics, read after the threads are joined).
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            LIVE_BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE_BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: `ptr` was allocated by `System` with this layout (we allocate only there).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            LIVE_BYTES.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: as for `dealloc`; `System.realloc` has the same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Options of `gudp bench`.
#[derive(ClapArgs)]
pub struct Args {
    /// Seconds per throughput or ping-pong measurement.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Payload sizes for the throughput measurements (bytes, at most 1200).
    #[arg(long, value_delimiter = ',', default_values_t = [64usize, 1200])]
    pub sizes: Vec<usize>,
    /// Clients in the many-connections measurement (0 skips it).
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// Packets per second each of those clients sends.
    #[arg(long, default_value_t = 30)]
    pub client_rate: u32,
    /// Seconds the many-connections measurement runs.
    #[arg(long, default_value_t = 30)]
    pub many_seconds: u64,
    /// Write the results as CSV to this file.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write a bar chart of the ratios to raw UDP as SVG to this file.
    #[arg(long)]
    pub svg: Option<PathBuf>,
}

/// One measured figure beside its baseline.
struct Row {
    measurement: String,
    unit: &'static str,
    gudp: f64,
    /// The baseline's figure, measured in the same run.
    raw: Option<f64>,
    /// What the baseline is: raw UDP, or GUDP itself with a feature off.
    baseline: &'static str,
    notes: String,
}

const RAW_UDP: &str = "raw UDP";
const SINGLE_CALLS: &str = "GUDP, 1 datagram/syscall";

impl Row {
    /// GUDP's figure over the baseline's, for rates and costs (not for counts like
    /// allocations, where the baseline is zero).
    fn ratio(&self) -> Option<f64> {
        if self.unit == "allocs" {
            return None;
        }
        self.raw.filter(|raw| *raw > 0.0).map(|raw| self.gudp / raw)
    }
}

pub fn run(args: Args) -> Result<(), String> {
    COUNTING.store(true, Ordering::Relaxed);
    if !(0.2..=600.0).contains(&args.seconds) {
        return Err(format!(
            "--seconds must be 0.2 to 600, got {}",
            args.seconds
        ));
    }
    if let Some(size) = args.sizes.iter().find(|&&size| size > 1200) {
        return Err(format!(
            "--sizes: {size} exceeds the 1200-byte maximum payload"
        ));
    }
    let span = Duration::from_secs_f64(args.seconds);
    let implementation = gudp::IMPLEMENTATION;
    println!(
        "gudp bench: inbox implementation {implementation}, {} s per measurement",
        args.seconds
    );
    println!("machine: {}", machine());
    let mut rows = Vec::new();
    for &size in &args.sizes {
        let raw = measure(|| raw_one_way(size, span))?;
        let gudp = measure(|| gudp_one_way(size, span, DaemonConfig::default().io_batch))?;
        let single = measure(|| gudp_one_way(size, span, 1))?;
        rows.extend(throughput_rows(size, &raw, &gudp, &single));
    }
    let raw = measure(|| raw_ping_pong(span))?;
    let gudp = measure(|| gudp_ping_pong(span))?;
    let manual = measure(|| gudp_ping_pong_manual(span))?;
    rows.extend(ping_pong_rows(&raw, &gudp, &manual));
    if args.clients > 0 {
        rows.extend(many_connections(&args)?);
    }
    print_table(&rows, implementation);
    if let Some(path) = &args.csv {
        std::fs::write(path, csv(&rows, implementation))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.svg {
        std::fs::write(path, svg(&rows, implementation))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// What one run of a workload delivered, and what it cost.
struct Sample {
    /// Packets (or round trips) completed.
    done: u64,
    /// Packets offered (sent); equals `done` for ping-pong.
    offered: u64,
    elapsed: Duration,
    cpu: Duration,
    allocations: u64,
    /// Packets dropped inside the process and counted (GUDP only).
    dropped_counted: u64,
    /// Datagrams the kernel dropped at the daemons' full receive buffers, counted (GUDP only).
    dropped_by_kernel: u64,
}

impl Sample {
    fn rate(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64()
    }

    fn per_packet(&self, total: f64) -> f64 {
        if self.done == 0 {
            f64::NAN
        } else {
            total / self.done as f64
        }
    }
}

/// Runs `work` with CPU time and allocations measured around it.
fn measure(work: impl FnOnce() -> Result<Sample, String>) -> Result<Sample, String> {
    let cpu_before = process_cpu();
    let allocations_before = ALLOCATIONS.load(Ordering::Relaxed);
    let mut sample = work()?;
    sample.cpu = process_cpu().saturating_sub(cpu_before);
    sample.allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations_before;
    Ok(sample)
}

fn throughput_rows(size: usize, raw: &Sample, gudp: &Sample, single: &Sample) -> Vec<Row> {
    let name = |what: &str| format!("one-way {what}, {size} B");
    vec![
        Row {
            measurement: name("throughput"),
            unit: "packets/s",
            gudp: gudp.rate(),
            raw: Some(raw.rate()),
            baseline: RAW_UDP,
            notes: format!(
                "delivered {:.1} % (raw {:.1} %); dropped and counted: {} in-process, {} by \
                 the kernel",
                100.0 * gudp.done as f64 / gudp.offered.max(1) as f64,
                100.0 * raw.done as f64 / raw.offered.max(1) as f64,
                gudp.dropped_counted,
                gudp.dropped_by_kernel
            ),
        },
        Row {
            measurement: name("CPU per packet"),
            unit: "µs",
            gudp: gudp.per_packet(gudp.cpu.as_secs_f64() * 1e6),
            raw: Some(raw.per_packet(raw.cpu.as_secs_f64() * 1e6)),
            baseline: RAW_UDP,
            notes: "user + system, whole process".into(),
        },
        Row {
            measurement: name("allocations per packet"),
            unit: "allocs",
            gudp: gudp.per_packet(gudp.allocations as f64),
            raw: Some(raw.per_packet(raw.allocations as f64)),
            baseline: RAW_UDP,
            notes: "includes connection setup and thread start".into(),
        },
        Row {
            measurement: name("batched syscalls"),
            unit: "packets/s",
            gudp: gudp.rate(),
            raw: Some(single.rate()),
            baseline: SINGLE_CALLS,
            notes: format!(
                "recvmmsg/sendmmsg against io_batch = 1; CPU per packet {:.2} µs vs {:.2} µs",
                gudp.per_packet(gudp.cpu.as_secs_f64() * 1e6),
                single.per_packet(single.cpu.as_secs_f64() * 1e6)
            ),
        },
    ]
}

fn ping_pong_rows(raw: &Sample, gudp: &Sample, manual: &Sample) -> Vec<Row> {
    vec![
        Row {
            measurement: "ping-pong, 64 B, one in flight".into(),
            unit: "round trips/s",
            gudp: gudp.rate(),
            raw: Some(raw.rate()),
            baseline: RAW_UDP,
            notes: format!(
                "mean round trip {:.1} µs (raw {:.1} µs)",
                1e6 / gudp.rate(),
                1e6 / raw.rate()
            ),
        },
        Row {
            measurement: "ping-pong CPU per round trip".into(),
            unit: "µs",
            gudp: gudp.per_packet(gudp.cpu.as_secs_f64() * 1e6),
            raw: Some(raw.per_packet(raw.cpu.as_secs_f64() * 1e6)),
            baseline: RAW_UDP,
            notes: "user + system, whole process".into(),
        },
        Row {
            measurement: "ping-pong allocations per round trip".into(),
            unit: "allocs",
            gudp: gudp.per_packet(gudp.allocations as f64),
            raw: Some(raw.per_packet(raw.allocations as f64)),
            baseline: RAW_UDP,
            notes: "includes connection setup and thread start".into(),
        },
        Row {
            measurement: "ping-pong, 64 B, manual-mode daemons".into(),
            unit: "round trips/s",
            gudp: manual.rate(),
            raw: Some(raw.rate()),
            baseline: RAW_UDP,
            notes: format!(
                "each side's thread drives its daemon with Daemon::poll: mean round trip {:.1} µs",
                1e6 / manual.rate()
            ),
        },
    ]
}

// ---- raw UDP baselines ----

fn loopback_pair() -> Result<(UdpSocket, UdpSocket), String> {
    let bind = || UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("cannot bind: {e}"));
    let (a, b) = (bind()?, bind()?);
    let b_addr = b.local_addr().map_err(|e| e.to_string())?;
    let a_addr = a.local_addr().map_err(|e| e.to_string())?;
    a.connect(b_addr).map_err(|e| e.to_string())?;
    b.connect(a_addr).map_err(|e| e.to_string())?;
    for socket in [&a, &b] {
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .map_err(|e| e.to_string())?;
    }
    Ok((a, b))
}

fn raw_one_way(size: usize, span: Duration) -> Result<Sample, String> {
    let (sender, receiver) = loopback_pair()?;
    let stop = Arc::new(AtomicBool::new(false));
    let counter = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let mut received = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if receiver.recv(&mut buf).is_ok() {
                    received += 1;
                }
            }
            received
        })
    };
    let payload = vec![0xab; size];
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < span {
        if sender.send(&payload).is_ok() {
            sent += 1;
        }
    }
    let elapsed = start.elapsed();
    thread::sleep(Duration::from_millis(100)); // let the receiver drain its socket buffer
    stop.store(true, Ordering::Relaxed);
    let received = counter.join().map_err(|_| "receiver panicked")?;
    Ok(sample(received, sent, elapsed, 0))
}

fn raw_ping_pong(span: Duration) -> Result<Sample, String> {
    let (client, server) = loopback_pair()?;
    let stop = Arc::new(AtomicBool::new(false));
    let echo = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                if let Ok(len) = server.recv(&mut buf) {
                    let _ = server.send(&buf[..len]);
                }
            }
        })
    };
    let payload = [0x11u8; 64];
    let mut buf = [0u8; 2048];
    let start = Instant::now();
    let mut round_trips = 0u64;
    while start.elapsed() < span {
        client
            .send(&payload)
            .map_err(|e| format!("raw send: {e}"))?;
        if client.recv(&mut buf).is_ok() {
            round_trips += 1;
        }
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    echo.join().map_err(|_| "echo panicked")?;
    Ok(sample(round_trips, round_trips, elapsed, 0))
}

fn sample(done: u64, offered: u64, elapsed: Duration, dropped_counted: u64) -> Sample {
    Sample {
        done,
        offered,
        elapsed,
        cpu: Duration::ZERO,
        allocations: 0,
        dropped_counted,
        dropped_by_kernel: 0,
    }
}

// ---- GUDP ----

/// Pacing lifted far above what loopback can carry: the bench measures the daemon.
fn unpaced(io_batch: usize) -> DaemonConfig {
    let mut config = DaemonConfig::default();
    config.io_batch = io_batch;
    let unlimited = PacingRate::new(100_000_000, 100_000);
    config.protocol.good_rate = unlimited;
    config.protocol.bad_rate = unlimited;
    config
}

/// A client and a server connection, on two daemons (two event-loop threads, like the raw
/// baseline's two sockets on two threads).
fn gudp_pair(io_batch: usize) -> Result<(Daemon, Daemon, Connection, Connection), String> {
    let server_daemon = Daemon::spawn(unpaced(io_batch)).map_err(|e| e.to_string())?;
    let client_daemon = Daemon::spawn(unpaced(io_batch)).map_err(|e| e.to_string())?;
    let listener = server_daemon
        .listen(([127, 0, 0, 1], 0).into())
        .map_err(|e| format!("listen: {e}"))?;
    let client = client_daemon
        .connect(listener.local_addr())
        .map_err(|e| format!("connect: {e}"))?;
    let server = listener
        .accept_timeout(Duration::from_secs(5))
        .map_err(|e| format!("accept: {e}"))?;
    Ok((server_daemon, client_daemon, client, server))
}

fn gudp_one_way(size: usize, span: Duration, io_batch: usize) -> Result<Sample, String> {
    let (server_daemon, client_daemon, client, server) = gudp_pair(io_batch)?;
    let stop = Arc::new(AtomicBool::new(false));
    let counter = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut received = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match server.recv_timeout(Duration::from_millis(50)) {
                    Ok(_packet) => received += 1,
                    Err(RecvTimeoutError::Closed(_)) => break,
                    Err(_) => {}
                }
            }
            received
        })
    };
    let payload = vec![0xab; size];
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < span {
        // Blocking send: a full outbox is backpressure, not a drop.
        client.send(&payload).map_err(|e| format!("send: {e}"))?;
        sent += 1;
    }
    let elapsed = start.elapsed();
    thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let received = counter.join().map_err(|_| "receiver panicked")?;
    let server_counts = server_daemon.counters();
    let dropped = server_counts.dropped_inbox_full + server_counts.dropped_by_protocol;
    let mut sample = sample(received, sent, elapsed, dropped);
    sample.dropped_by_kernel = server_counts.dropped_by_kernel;
    drop((client_daemon, server_daemon));
    Ok(sample)
}

fn gudp_ping_pong(span: Duration) -> Result<Sample, String> {
    let (_server_daemon, _client_daemon, client, server) =
        gudp_pair(DaemonConfig::default().io_batch)?;
    let echo = thread::spawn(move || {
        while let Ok(packet) = server.recv() {
            if server.send(&packet).is_err() {
                break;
            }
        }
    });
    let payload = [0x11u8; 64];
    let start = Instant::now();
    let mut round_trips = 0u64;
    while start.elapsed() < span {
        client.send(&payload).map_err(|e| format!("send: {e}"))?;
        match client.recv_timeout(Duration::from_millis(200)) {
            Ok(_) => round_trips += 1,
            Err(RecvTimeoutError::Closed(reason)) => return Err(format!("ping-pong: {reason}")),
            Err(_) => {} // lost on loopback: rare; try again
        }
    }
    let elapsed = start.elapsed();
    client.close();
    drop(_server_daemon); // finishes the server connection: the echo thread returns
    echo.join().map_err(|_| "echo panicked")?;
    Ok(sample(round_trips, round_trips, elapsed, 0))
}

/// Ping-pong with no daemon threads: each side's own thread runs its daemon with
/// `Daemon::poll`, as a game's frame loop would, so a round trip wakes two threads, not six.
/// The many-connections server's daemon: polled by its own thread, or spawned.
enum ServerDaemon {
    Manual(ManualDaemon),
    Spawned(Daemon),
}

impl ServerDaemon {
    /// One turn of a manual daemon (a spawned one runs itself).
    fn poll(&self, timeout: Duration) {
        if let ServerDaemon::Manual(daemon) = self {
            let _ = daemon.poll(Some(timeout));
        }
    }
}

impl std::ops::Deref for ServerDaemon {
    type Target = Daemon;

    fn deref(&self) -> &Daemon {
        match self {
            ServerDaemon::Manual(daemon) => daemon,
            ServerDaemon::Spawned(daemon) => daemon,
        }
    }
}

fn gudp_ping_pong_manual(span: Duration) -> Result<Sample, String> {
    let default_batch = DaemonConfig::default().io_batch;
    let manual = || Daemon::manual(unpaced(default_batch)).map_err(|e| e.to_string());
    let (server_daemon, client_daemon) = (manual()?, manual()?);
    let listener = server_daemon
        .listen(([127, 0, 0, 1], 0).into())
        .map_err(|e| format!("listen: {e}"))?;
    let server_addr = listener.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let echo = {
        let stop = stop.clone();
        thread::spawn(move || {
            let poll = |daemon: &ManualDaemon| daemon.poll(Some(Duration::from_millis(5))).is_ok();
            let server = loop {
                if stop.load(Ordering::Relaxed) || !poll(&server_daemon) {
                    return;
                }
                if let Ok(server) = listener.try_accept() {
                    break server;
                }
            };
            while !stop.load(Ordering::Relaxed) && poll(&server_daemon) {
                while let Ok(packet) = server.try_recv() {
                    let _ = server.try_send(&packet);
                }
            }
        })
    };
    let client = client_daemon
        .connect(server_addr)
        .map_err(|e| format!("connect: {e}"))?;
    let payload = [0x11u8; 64];
    let start = Instant::now();
    let mut round_trips = 0u64;
    while start.elapsed() < span {
        client
            .try_send(&payload)
            .map_err(|e| format!("send: {e}"))?;
        let deadline = Instant::now() + Duration::from_millis(200);
        while Instant::now() < deadline {
            client_daemon
                .poll(Some(Duration::from_millis(5)))
                .map_err(|e| format!("poll: {e}"))?;
            if client.try_recv().is_ok() {
                round_trips += 1;
                break;
            }
        }
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    echo.join().map_err(|_| "echo panicked")?;
    Ok(sample(round_trips, round_trips, elapsed, 0))
}

/// How the many-connections server runs its daemon.
#[derive(Clone, Copy)]
enum ServerLoop {
    /// `Daemon::manual`, polled by the server's own thread, which wakes for every datagram
    /// (`poll` with a 5 ms limit) and drains every connection after each poll.
    Manual,
    /// `Daemon::spawn`: the daemon thread reads as datagrams arrive; the server's game loop
    /// drains every connection 60 times a second.
    Spawned,
}

impl ServerLoop {
    fn describe(self) -> &'static str {
        match self {
            ServerLoop::Manual => "manual daemon, event-driven loop",
            ServerLoop::Spawned => "spawned daemon + 60 Hz game loop",
        }
    }
}

/// N clients at R packets/s each into one server, once per server shape.
fn many_connections(args: &Args) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for (i, server_loop) in [ServerLoop::Manual, ServerLoop::Spawned]
        .into_iter()
        .enumerate()
    {
        rows.extend(many_connections_with(args, server_loop, i == 0)?);
    }
    Ok(rows)
}

fn many_connections_with(
    args: &Args,
    server_loop: ServerLoop,
    report_memory: bool,
) -> Result<Vec<Row>, String> {
    let clients = args.clients;
    println!(
        "many connections ({}): {clients} clients x {} packets/s for {} s ...",
        server_loop.describe(),
        args.client_rate,
        args.many_seconds
    );
    let config = DaemonConfig::default();
    let server_daemon = Arc::new(match server_loop {
        ServerLoop::Manual => {
            ServerDaemon::Manual(Daemon::manual(config.clone()).map_err(|e| e.to_string())?)
        }
        ServerLoop::Spawned => {
            ServerDaemon::Spawned(Daemon::spawn(config.clone()).map_err(|e| e.to_string())?)
        }
    });
    // Before the client daemon exists, the only daemon thread is the server's.
    let daemon_tid = match server_loop {
        ServerLoop::Manual => None,
        ServerLoop::Spawned => Some(wait_for_thread("gudp-daemon")?),
    };
    let listener = server_daemon
        .listen(([127, 0, 0, 1], 0).into())
        .map_err(|e| format!("listen: {e}"))?;
    let server_addr = listener.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let server = {
        let (daemon, stop, received) = (server_daemon.clone(), stop.clone(), received.clone());
        thread::Builder::new()
            .name("bench-server".into())
            .spawn(move || {
                let frame_period = Duration::from_secs(1) / 60;
                let mut next_frame = Instant::now();
                let mut connections = Vec::new();
                let mut frame = Vec::with_capacity(4096);
                while !stop.load(Ordering::Relaxed) {
                    match server_loop {
                        ServerLoop::Manual => daemon.poll(Duration::from_millis(5)),
                        ServerLoop::Spawned => {
                            next_frame += frame_period;
                            if let Some(wait) = next_frame.checked_duration_since(Instant::now()) {
                                thread::sleep(wait);
                            }
                        }
                    }
                    while let Ok(conn) = listener.try_accept() {
                        connections.push(conn);
                    }
                    for conn in &connections {
                        frame.clear();
                        if let Ok(n) = conn.drain_into(&mut frame, 4096) {
                            received.fetch_add(n as u64, Ordering::Relaxed);
                        }
                    }
                }
                connections.len()
            })
            .map_err(|e| e.to_string())?
    };
    let bytes_before = LIVE_BYTES.load(Ordering::Relaxed);
    let client_daemon = Daemon::spawn(config).map_err(|e| e.to_string())?;
    let mut conns = Vec::with_capacity(clients);
    for i in 0..clients {
        let conn = client_daemon
            .connect(server_addr)
            .map_err(|e| format!("client {i} of {clients}: {e}"))?;
        conns.push(conn);
    }
    thread::sleep(Duration::from_millis(500)); // let the server accept the last ones
    let bytes_per_pair =
        (LIVE_BYTES.load(Ordering::Relaxed) - bytes_before).max(0) as f64 / clients as f64;
    let server_tids: Vec<String> = [Some(wait_for_thread("bench-server")?), daemon_tid]
        .into_iter()
        .flatten()
        .collect();
    let server_cpu = || -> Duration { server_tids.iter().map(|tid| thread_cpu(tid)).sum() };
    let server_cpu_before = server_cpu();
    let start = Instant::now();
    let tick = Duration::from_secs(1) / args.client_rate.max(1);
    let mut next = start;
    let mut sent = 0u64;
    let mut refused = 0u64;
    let end = start + Duration::from_secs(args.many_seconds);
    let payload = [0x42u8; 64];
    while Instant::now() < end {
        for conn in &conns {
            match conn.try_send(&payload) {
                Ok(_) => sent += 1,
                Err(_) => refused += 1,
            }
        }
        next += tick;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
    }
    let elapsed = start.elapsed();
    thread::sleep(Duration::from_millis(200));
    let server_cpu = server_cpu().saturating_sub(server_cpu_before);
    let mut rtts: Vec<f64> = conns
        .iter()
        .filter_map(Connection::stats)
        .map(|s| s.protocol.rtt.as_secs_f64() * 1e3)
        .collect();
    rtts.sort_by(f64::total_cmp);
    let percentile = |p: f64| {
        rtts.get(((rtts.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    stop.store(true, Ordering::Relaxed);
    let accepted = server.join().map_err(|_| "server thread panicked")?;
    let delivered = received.load(Ordering::Relaxed);
    let cpu_share = server_cpu.as_secs_f64() / elapsed.as_secs_f64();
    let packets_per_second = delivered as f64 / elapsed.as_secs_f64();
    let shape = server_loop.describe();
    let mut rows = vec![
        Row {
            measurement: format!("{clients} clients x {} pkt/s: server CPU", args.client_rate),
            unit: "% of a core",
            gudp: 100.0 * cpu_share,
            raw: None,
            baseline: "",
            notes: format!(
                "{shape}; {accepted} accepted; {packets_per_second:.0} packets/s delivered, \
                 {:.0} sent, {refused} refused; {:.2} µs per packet",
                sent as f64 / elapsed.as_secs_f64(),
                1e6 * server_cpu.as_secs_f64() / delivered.max(1) as f64
            ),
        },
        Row {
            measurement: format!("{clients} clients: RTT p50"),
            unit: "ms",
            gudp: percentile(0.5),
            raw: None,
            baseline: "",
            notes: format!(
                "{shape}; p99 {:.2} ms (smoothed RTT of each client)",
                percentile(0.99)
            ),
        },
    ];
    if report_memory {
        rows.push(Row {
            measurement: format!("{clients} clients: heap per connection pair"),
            unit: "bytes",
            gudp: bytes_per_pair,
            raw: None,
            baseline: "",
            notes: "client end + server end, default capacities; buffers are pooled".into(),
        });
    }
    Ok(rows)
}

// ---- CPU time from /proc (Linux) ----

/// CPU time (user + system) of the whole process.
fn process_cpu() -> Duration {
    stat_cpu("/proc/self/stat")
}

/// CPU time of one thread of this process.
fn thread_cpu(tid: &str) -> Duration {
    stat_cpu(&format!("/proc/self/task/{tid}/stat"))
}

/// The ids of this process's threads named `name`.
fn threads_named(name: &str) -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim() == name)
        })
        .map(|task| task.file_name().to_string_lossy().into_owned())
        .collect()
}

/// The id of the one thread named `name`, waiting up to a second for it to start (a thread
/// names itself as it starts, after `spawn` has returned).
fn wait_for_thread(name: &str) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let mut found = threads_named(name);
        match found.len() {
            1 => return Ok(found.remove(0)),
            0 if Instant::now() < deadline => thread::sleep(Duration::from_millis(1)),
            n => return Err(format!("expected one thread named {name}, found {n}")),
        }
    }
}

fn stat_cpu(path: &str) -> Duration {
    // Fields 14 and 15 (utime, stime) in clock ticks, after the parenthesised command name.
    let Ok(stat) = std::fs::read_to_string(path) else {
        return Duration::ZERO;
    };
    let Some(after_name) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime is field 14, i.e. index 11 after the name (field 3 is index 0).
    let total = ticks(11) + ticks(12);
    Duration::from_millis(total * 1000 / clock_ticks_per_second())
}

/// The unit of the CPU times in `/proc/*/stat`.
#[cfg(target_os = "linux")]
fn clock_ticks_per_second() -> u64 {
    // SAFETY: `sysconf` only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// Without `/proc` the CPU figures read as zero whatever the unit.
#[cfg(not(target_os = "linux"))]
fn clock_ticks_per_second() -> u64 {
    100
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, name)| name.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = thread::available_parallelism().map_or(0, usize::from);
    format!("{cores} cores, {cpu}")
}

// ---- output ----

fn print_table(rows: &[Row], implementation: &str) {
    println!();
    println!(
        "{:<44} {:>12} {:>12} {:>8}  {:<14} {:<26} notes",
        format!("measurement [{implementation}]"),
        "gudp",
        "baseline",
        "ratio",
        "unit",
        "baseline is"
    );
    for row in rows {
        println!(
            "{:<44} {:>12} {:>12} {:>8}  {:<14} {:<26} {}",
            row.measurement,
            format_value(row.gudp),
            row.raw.map_or("-".into(), format_value),
            row.ratio().map_or("-".into(), |r| format!("{r:.2}x")),
            row.unit,
            row.baseline,
            row.notes
        );
    }
}

fn format_value(value: f64) -> String {
    if value.is_nan() {
        "n/a".into()
    } else if value >= 1000.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

fn csv(rows: &[Row], implementation: &str) -> String {
    let mut out =
        String::from("implementation,measurement,unit,gudp,baseline,baseline_is,ratio,notes\n");
    for row in rows {
        let _ = writeln!(
            out,
            "{implementation},\"{}\",{},{},{},\"{}\",{},\"{}\"",
            row.measurement,
            row.unit,
            row.gudp,
            row.raw.map_or(String::new(), |r| r.to_string()),
            row.baseline,
            row.ratio().map_or(String::new(), |r| r.to_string()),
            row.notes.replace('"', "'")
        );
    }
    out
}

/// A horizontal bar per rate that has a raw-UDP baseline: its ratio, with 1.0 marked.
fn svg(rows: &[Row], implementation: &str) -> String {
    let bars: Vec<(&str, f64)> = rows
        .iter()
        .filter(|row| row.unit.ends_with("/s") && row.baseline == RAW_UDP)
        .filter_map(|row| row.ratio().map(|ratio| (row.measurement.as_str(), ratio)))
        .collect();
    let (left, width, bar_height) = (300.0, 400.0, 28.0);
    let max = bars.iter().map(|b| b.1).fold(1.2f64, f64::max);
    let height = 60.0 + bars.len() as f64 * (bar_height + 10.0);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"13\">\n\
         <text x=\"10\" y=\"22\" font-size=\"15\">GUDP / raw UDP ({implementation}): higher is better</text>\n",
        left + width + 80.0
    );
    for (i, (name, ratio)) in bars.iter().enumerate() {
        let y = 40.0 + i as f64 * (bar_height + 10.0);
        let _ = writeln!(
            out,
            "<text x=\"10\" y=\"{}\">{name}</text>\n<rect x=\"{left}\" y=\"{y}\" width=\"{:.1}\" \
             height=\"{bar_height}\" fill=\"#3b7dd8\"/>\n<text x=\"{:.1}\" y=\"{}\">{ratio:.2}x</text>",
            y + 18.0,
            width * ratio / max,
            left + width * ratio / max + 6.0,
            y + 18.0
        );
    }
    let one = left + width / max;
    let _ = writeln!(
        out,
        "<line x1=\"{one:.1}\" y1=\"32\" x2=\"{one:.1}\" y2=\"{:.1}\" stroke=\"#c00\" \
         stroke-dasharray=\"4\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#c00\">raw UDP = 1.0</text>\n</svg>",
        height - 10.0,
        one + 4.0,
        height - 2.0
    );
    out
}
