//! Idle cost: connection pairs (client end and server end on the same daemon) that send
//! nothing, and what the daemon thread spends on them in keepalives and timers.

use super::fleet;
use super::procfs;
use super::report::{Goal, Row, Target};
use super::rounds::Stat;
use gudp::{Daemon, DaemonConfig};
use std::thread;
use std::time::{Duration, Instant};

const THREAD: &str = "gb-idle";
/// Idle CPU is measured in this many equal intervals; the row gives their median and range.
/// Each lasts at least one keepalive cycle (two intervals: the server's own keepalive comes
/// every other one), so that each holds the same work: a shorter one holds a burst of
/// keepalives or none.
const INTERVALS: u32 = 3;
/// Above this many pairs the buffers are shrunk, as a server expecting that many would.
const SHRINK_ABOVE: usize = 2000;

/// The configuration for `pairs` idle pairs, and how it differs from the default.
fn config(pairs: usize) -> (DaemonConfig, &'static str) {
    let mut config = DaemonConfig::default();
    config.thread_name = THREAD.into();
    config.protocol.connect_timeout = fleet::SETUP_CONNECT_TIMEOUT;
    if pairs <= SHRINK_ABOVE {
        return (config, "default but connect_timeout 30 s (setup only)");
    }
    config.inbox_capacity = 64;
    config.outbox_capacity = 64;
    config.delivery_capacity = 256;
    config.protocol.sent_window = 128;
    config.protocol.received_window = 128;
    (
        config,
        "default but connect_timeout 30 s (setup only) and shrunk buffers: inbox and outbox \
         64, delivery 256, sent and received windows 128",
    )
}

pub fn run(pairs: usize, seconds: Duration) -> Result<Vec<Row>, String> {
    println!("idle: {pairs} pairs on one daemon ...");
    let (config, described) = config(pairs);
    let rss_before = procfs::resident_bytes();
    let setup_start = Instant::now();
    let daemon = Daemon::spawn(config).map_err(|e| e.to_string())?;
    let tid = procfs::wait_for_thread(THREAD)?;
    let listener = daemon
        .listen(([127, 0, 0, 1], 0).into())
        .map_err(|e| format!("listen: {e}"))?;
    let (clients, servers, retries) = fleet::connect(&daemon, &listener, pairs)?;
    let setup = setup_start.elapsed();
    let per_pair = procfs::resident_bytes().saturating_sub(rss_before) as f64 / pairs as f64;
    thread::sleep(Duration::from_secs(1)); // the handshakes' last acks and timers settle
    let keepalive = DaemonConfig::default().protocol.keepalive_interval;
    let interval = (seconds / INTERVALS).max(2 * keepalive);
    let (sent_before, measured) = (daemon.counters().datagrams_sent, Instant::now());
    let mut shares = Vec::new();
    for _ in 0..INTERVALS {
        let (cpu_0, start) = (procfs::thread_cpu(&tid), Instant::now());
        thread::sleep(interval);
        let cpu = procfs::thread_cpu(&tid).saturating_sub(cpu_0);
        shares.push(100.0 * cpu.as_secs_f64() / start.elapsed().as_secs_f64());
    }
    let alive = clients
        .iter()
        .chain(&servers)
        .filter(|c| !c.status().is_finished())
        .count();
    let sent_per_second =
        (daemon.counters().datagrams_sent - sent_before) as f64 / measured.elapsed().as_secs_f64();
    let target = match pairs {
        2000 => Target::value(Goal::AtMost(3.0)),
        10_000 => Target::value(Goal::AtMost(10.0)),
        _ => None,
    };
    drop((clients, servers));
    Ok(vec![Row {
        key: format!("idle-{pairs}-cpu"),
        measurement: format!("idle: {pairs} connection pairs on one daemon: daemon thread CPU"),
        config: format!("{described}; both ends of each pair on the one spawned daemon"),
        unit: "% of a core",
        value: Stat::of(shares),
        ratio: None,
        target,
        notes: format!(
            "{INTERVALS} intervals of {:.2} s (at least two keepalive intervals) after 1 s \
             settling; set up in {:.1} s \
             ({retries} handshakes retried); {alive} of {} ends still connected; {:.0} KB RSS per pair; {sent_per_second:.0} \
             datagrams/s sent while measured (keepalive_interval {keepalive:?})",
            interval.as_secs_f64(),
            setup.as_secs_f64(),
            2 * pairs,
            per_pair / 1e3,
        ),
    }])
}
