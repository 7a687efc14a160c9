//! `gudp serve` and `gudp connect`, and the echo server and client loop `demo` reuses.

use crate::meter::{self, Totals};
use gudp::{Connection, Daemon, DaemonConfig, Listener, RecvTimeoutError, SendError};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Counts of an echo server, shared by its connection threads.
#[derive(Default)]
pub struct EchoCounts {
    pub connections: AtomicU64,
    pub received: AtomicU64,
    pub echoed: AtomicU64,
    pub refused: AtomicU64,
}

/// Accepts connections until the listener finishes, echoing each on its own thread.
pub fn spawn_echo_server(listener: Listener, counts: Arc<EchoCounts>) {
    thread::spawn(move || {
        while let Ok(conn) = listener.accept() {
            counts.connections.fetch_add(1, Ordering::Relaxed);
            let counts = counts.clone();
            thread::spawn(move || echo(&conn, &counts));
        }
    });
}

fn echo(conn: &Connection, counts: &EchoCounts) {
    while let Ok(packet) = conn.recv() {
        counts.received.fetch_add(1, Ordering::Relaxed);
        // Never block the echo on a full outbox: count what backpressure refused.
        match conn.try_send(&packet) {
            Ok(_) => counts.echoed.fetch_add(1, Ordering::Relaxed),
            Err(_) => counts.refused.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// Runs an echo server on `bind` holding at most `max_connections` connections (the daemon's
/// defaults otherwise), for `duration` or until interrupted.
pub fn serve(
    bind: SocketAddr,
    duration: Option<Duration>,
    max_connections: usize,
) -> Result<(), String> {
    let mut config = DaemonConfig::default();
    config.protocol.max_connections = max_connections;
    let daemon =
        Daemon::spawn(config).map_err(|error| format!("cannot start the daemon: {error}"))?;
    let listener = daemon
        .listen(bind)
        .map_err(|error| format!("cannot listen on {bind}: {error}"))?;
    println!("gudp echo server on {}", listener.local_addr());
    let counts = Arc::new(EchoCounts::default());
    spawn_echo_server(listener, counts.clone());
    let start = Instant::now();
    let mut previous = [0u64; 3];
    println!("    t  connections  recv/s  echoed/s  refused/s  dropped(inbox full)  invalid");
    loop {
        thread::sleep(Duration::from_secs(1));
        let now = [
            counts.received.load(Ordering::Relaxed),
            counts.echoed.load(Ordering::Relaxed),
            counts.refused.load(Ordering::Relaxed),
        ];
        let daemon_counts = daemon.counters();
        println!(
            "{:>4.0}s  {:>11}  {:>6}  {:>8}  {:>9}  {:>19}  {:>7}",
            start.elapsed().as_secs_f64(),
            counts.connections.load(Ordering::Relaxed),
            now[0] - previous[0],
            now[1] - previous[1],
            now[2] - previous[2],
            daemon_counts.dropped_inbox_full,
            daemon_counts.dropped_by_protocol,
        );
        previous = now;
        if duration.is_some_and(|d| start.elapsed() >= d) {
            return Ok(());
        }
    }
}

pub fn connect(
    server: SocketAddr,
    rate: u32,
    size: usize,
    duration: Duration,
) -> Result<(), String> {
    let daemon = Daemon::spawn(DaemonConfig::default())
        .map_err(|error| format!("cannot start the daemon: {error}"))?;
    let conn = daemon
        .connect(server)
        .map_err(|error| format!("cannot connect to {server}: {error}"))?;
    println!("connected {} -> {}", conn.local_addr(), conn.peer_addr());
    let totals = run_client(&conn, rate, size, duration, |_| {})?;
    println!("{}", meter::summary(&totals, duration));
    Ok(())
}

/// Sends `size`-byte packets at `rate` per second for `duration`, counting echoes and
/// delivery notifications, printing a line per second. `each_second` runs before each line
/// (the demo changes the link there).
pub fn run_client(
    conn: &Connection,
    rate: u32,
    size: usize,
    duration: Duration,
    mut each_second: impl FnMut(u64),
) -> Result<Totals, String> {
    let payload = vec![0x5a; size];
    let interval = Duration::from_secs(1) / rate;
    let start = Instant::now();
    let end = start + duration;
    let mut next_send = start;
    let mut next_report = start + Duration::from_secs(1);
    let mut second = 0;
    let mut totals = Totals::default();
    let mut previous = Totals::default();
    println!("{}", meter::HEADER);
    loop {
        let now = Instant::now();
        while next_send <= now {
            match conn.try_send(&payload) {
                Ok(_) => totals.sent += 1,
                Err(SendError::OutboxFull | SendError::Paced) => totals.refused += 1,
                Err(error) => return Err(format!("send failed: {error}")),
            }
            next_send += interval;
        }
        totals.take_deliveries(conn);
        if now >= next_report {
            second += 1;
            println!("{}", meter::line(now - start, conn, &totals, &previous));
            previous = totals;
            each_second(second);
            next_report += Duration::from_secs(1);
        }
        if now >= end {
            totals.take_deliveries(conn);
            return Ok(totals);
        }
        // Sleep in the inbox until the next send or report, waking for every echo.
        match conn.recv_deadline(next_send.min(next_report).min(end)) {
            Ok(_echo) => totals.received += 1,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Closed(reason)) => {
                return Err(format!("connection ended: {reason}"))
            }
        }
    }
}
