//! An idle daemon with open connections sleeps: over two idle seconds its thread uses a small
//! fraction of one CPU (keepalives and their acks only). Linux only: the thread's CPU time
//! comes from /proc. Not a timing test: the bound is loose enough never to flake, and the
//! measured figure is printed.
#![cfg(target_os = "linux")]

mod common;

use common::{connect, loopback, watchdog};
use gudp::{Daemon, DaemonConfig};
use std::fs;
use std::time::{Duration, Instant};

/// CPU time the threads named `gudp-daemon` of this process have used. `schedstat` gives
/// nanoseconds; `stat` (utime + stime, in 10 ms clock ticks) is the fallback.
fn daemon_cpu_time() -> Duration {
    let mut total = Duration::ZERO;
    let mut found = 0;
    for task in fs::read_dir("/proc/self/task").unwrap() {
        let path = task.unwrap().path();
        let Ok(comm) = fs::read_to_string(path.join("comm")) else {
            continue; // the thread exited meanwhile
        };
        if comm.trim_end() != "gudp-daemon" {
            continue;
        }
        found += 1;
        if let Ok(schedstat) = fs::read_to_string(path.join("schedstat")) {
            let ns: u64 = schedstat
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap();
            total += Duration::from_nanos(ns);
        } else {
            let stat = fs::read_to_string(path.join("stat")).unwrap();
            // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
            let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
            let ticks: u64 =
                fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
            total += Duration::from_millis(ticks * 10);
        }
    }
    assert_eq!(found, 1, "exactly one daemon thread in this test binary");
    total
}

#[test]
fn idle_daemon_with_open_connections_uses_little_cpu() {
    let _watchdog = watchdog("idle cpu", Duration::from_secs(60));
    const CONNECTIONS: usize = 16;
    // One daemon holds both ends of every connection, so one thread does all the work.
    let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    let listener = daemon.listen(loopback()).unwrap();
    let pairs: Vec<_> = (0..CONNECTIONS)
        .map(|_| connect(&daemon, &listener))
        .collect();
    for (client, server) in &pairs {
        client.send(b"ping").unwrap();
        assert_eq!(
            &server.recv_timeout(Duration::from_secs(5)).unwrap()[..],
            b"ping"
        );
    }
    std::thread::sleep(Duration::from_millis(200)); // let the acks settle

    let (cpu0, t0) = (daemon_cpu_time(), Instant::now());
    std::thread::sleep(Duration::from_secs(2));
    let (cpu, wall) = (daemon_cpu_time() - cpu0, t0.elapsed());
    let fraction = cpu.as_secs_f64() / wall.as_secs_f64();
    eprintln!(
        "idle daemon, {CONNECTIONS} connections: {cpu:?} CPU in {wall:?} ({:.3} %)",
        fraction * 100.0
    );
    // Everything stayed open: the idle period is one of keepalives, not of timeouts.
    for (client, server) in &pairs {
        assert_eq!(client.status().close_reason(), None);
        assert_eq!(server.status().close_reason(), None);
    }
    let c = daemon.counters();
    assert!(
        c.endpoints.connections.keepalives_sent > 0,
        "connections were kept alive: {c:?}"
    );
    assert!(
        fraction < 0.05,
        "idle daemon used {:.1} % of a CPU",
        fraction * 100.0
    );
}
