//! Many connections: N clients (one client daemon) each sending R packets/s to one server
//! daemon, whose 60 Hz game loop drains every connection each frame. The server daemon's
//! thread and the game thread are measured apart from the client side.

use super::fleet;
use super::procfs;
use super::report::{Row, Target};
use super::rounds::Stat;
use super::Plan;
use gudp::{Connection, Daemon, DaemonConfig};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const SERVER_DAEMON: &str = "gb-many-srv";
pub const GAME: &str = "gb-many-game";
const CLIENT_DAEMON: &str = "gb-many-cli";

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

pub fn run(plan: &Plan) -> Result<Vec<Row>, String> {
    let (n, rate) = (plan.clients, plan.client_rate);
    println!("many connections: {n} clients x {rate} packets/s ...");
    let config = |name: &str| {
        let mut config = DaemonConfig::default();
        config.thread_name = name.into();
        config
    };
    let rss_before = procfs::resident_bytes();
    let server_daemon = Daemon::spawn(config(SERVER_DAEMON)).map_err(|e| e.to_string())?;
    let mut client_config = config(CLIENT_DAEMON);
    client_config.protocol.connect_timeout = fleet::SETUP_CONNECT_TIMEOUT;
    let client_daemon = Daemon::spawn(client_config).map_err(|e| e.to_string())?;
    let listener = server_daemon
        .listen(([127, 0, 0, 1], 0).into())
        .map_err(|e| format!("listen: {e}"))?;
    let setup_start = Instant::now();
    let (clients, servers, retries) = fleet::connect(&client_daemon, &listener, n)?;
    let setup = setup_start.elapsed();
    let per_pair = procfs::resident_bytes().saturating_sub(rss_before) as f64 / n as f64;
    let server_tid = procfs::wait_for_thread(SERVER_DAEMON)?;
    let load = drive(&clients, &servers, &[server_tid], rate, plan.many_seconds)?;
    let (server_cpu, game_cpu, elapsed) = (load.server_cpu[0], load.game_cpu, load.elapsed);
    let (sent, refused, delivered, mut rtts) = (load.sent, load.refused, load.delivered, load.rtts);
    let counters = server_daemon.counters();
    let alive = clients.iter().filter(|c| !c.status().is_finished()).count();
    rtts.sort_by(f64::total_cmp);
    let secs = elapsed.as_secs_f64();
    let config = format!(
        "server: DaemonConfig::default(), one spawned daemon, a 60 Hz game loop drains every \
         connection; {n} clients on one spawned daemon (default but connect_timeout 30 s), \
         each {rate} packets/s of 64 B"
    );
    let share = |cpu: Duration| 100.0 * cpu.as_secs_f64() / secs;
    let common = format!(
        "{:.0} packets/s offered ({refused} refused), {:.0}/s delivered, over {secs:.1} s; \
         {alive} of {n} clients connected at the end",
        sent as f64 / secs,
        delivered as f64 / secs
    );
    let row = |key: &str, measurement: String, unit, value, notes: String| Row {
        key: format!("many-{n}-{key}"),
        measurement,
        config: config.clone(),
        unit,
        value,
        ratio: None,
        target: None::<Target>,
        notes,
    };
    Ok(vec![
        row(
            "server-daemon-cpu",
            format!("{n} clients x {rate}/s: server daemon thread CPU"),
            "% of a core",
            Stat::one(share(server_cpu)),
            format!(
                "{:.2} µs per delivered packet; {common}; server daemon since start: {} \
                 datagrams in, {} dropped by the kernel, {} in-process",
                1e6 * server_cpu.as_secs_f64() / delivered.max(1) as f64,
                counters.datagrams_received,
                counters.dropped_by_kernel,
                counters.dropped_inbox_full + counters.dropped_by_protocol
            ),
        ),
        row(
            "game-cpu",
            format!("{n} clients x {rate}/s: server game loop CPU"),
            "% of a core",
            Stat::one(share(game_cpu)),
            "drain_into on every connection, 60 times a second".into(),
        ),
        row(
            "memory",
            format!("{n} clients: memory per connection pair"),
            "KB",
            Stat::one(per_pair / 1e3),
            format!(
                "RSS delta over setup / {n}: client end + server end, default capacities; \
                 set up in {:.1} s ({retries} handshakes retried)",
                setup.as_secs_f64()
            ),
        ),
        row(
            "rtt-p50",
            format!("{n} clients: RTT p50"),
            "ms",
            Stat::one(percentile(&rtts, 0.5)),
            format!(
                "smoothed RTT of every client, sampled each second ({} samples)",
                rtts.len()
            ),
        ),
        row(
            "rtt-p99",
            format!("{n} clients: RTT p99"),
            "ms",
            Stat::one(percentile(&rtts, 0.99)),
            String::new(),
        ),
    ])
}

/// What a run of offered load measured.
pub struct Load {
    /// CPU time of each server daemon thread, in the order of the tids given.
    pub server_cpu: Vec<Duration>,
    pub game_cpu: Duration,
    pub sent: u64,
    pub refused: u64,
    pub delivered: u64,
    /// Every client's smoothed RTT (ms), sampled each second and at the end.
    pub rtts: Vec<f64>,
    pub elapsed: Duration,
}

/// Each client sends `rate` packets/s of 64 B for `seconds` while a 60 Hz game loop drains
/// every server connection; measures the server threads `server_tids` and the game loop.
pub fn drive(
    clients: &[Connection],
    servers: &[Connection],
    server_tids: &[String],
    rate: u32,
    seconds: Duration,
) -> Result<Load, String> {
    let stop = AtomicBool::new(false);
    let received = AtomicU64::new(0);
    let mut rtts = Vec::new();
    let (mut sent, mut refused) = (0u64, 0u64);
    let sample = |rtts: &mut Vec<f64>| {
        rtts.extend(
            clients
                .iter()
                .map(|c| c.quick_stats().rtt.as_secs_f64() * 1e3),
        );
    };
    thread::scope(|scope| -> Result<_, String> {
        let game = thread::Builder::new()
            .name(GAME.into())
            .spawn_scoped(scope, || {
                let frame_period = Duration::from_nanos(1_000_000_000 / 60);
                let mut next = Instant::now();
                let mut frame = Vec::with_capacity(4096);
                while !stop.load(Ordering::Relaxed) {
                    for conn in servers {
                        frame.clear();
                        if let Ok(got) = conn.drain_into(&mut frame, 4096) {
                            received.fetch_add(got as u64, Ordering::Relaxed);
                        }
                    }
                    next += frame_period;
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        thread::sleep(wait);
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        let game_tid = procfs::wait_for_thread(GAME)?;
        let received_0 = received.load(Ordering::Relaxed);
        let server_0: Vec<Duration> = server_tids.iter().map(|t| procfs::thread_cpu(t)).collect();
        let game_0 = procfs::thread_cpu(&game_tid);
        let start = Instant::now();
        let tick = Duration::from_secs(1) / rate;
        let (mut next, mut next_rtt_sample) = (start, start + Duration::from_secs(1));
        let payload = [0x42u8; 64];
        while start.elapsed() < seconds {
            for conn in clients {
                match conn.try_send(&payload) {
                    Ok(_) => sent += 1,
                    Err(_) => refused += 1,
                }
            }
            if Instant::now() >= next_rtt_sample {
                sample(&mut rtts);
                next_rtt_sample += Duration::from_secs(1);
            }
            next += tick;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
        }
        let elapsed = start.elapsed();
        let server_cpu = server_tids
            .iter()
            .zip(server_0)
            .map(|(t, before)| procfs::thread_cpu(t).saturating_sub(before))
            .collect();
        let game_cpu = procfs::thread_cpu(&game_tid).saturating_sub(game_0);
        sample(&mut rtts);
        let delivered = received.load(Ordering::Relaxed) - received_0;
        stop.store(true, Ordering::Relaxed);
        game.join().map_err(|_| "the game thread panicked")?;
        Ok(Load {
            server_cpu,
            game_cpu,
            sent,
            refused,
            delivered,
            rtts,
            elapsed,
        })
    })
}
