//! An idle daemon with open connections sleeps: over three idle seconds its thread uses a small
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
    // One keepalive interval (2 s) and the daemon's keepalive tick (at most 250 ms later).
    std::thread::sleep(Duration::from_secs(3));
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

/// The work an idle connection costs, counted rather than timed: with the default
/// configuration, in simulated time (the protocol core, no sockets), an idle connection sends
/// two datagrams per `keepalive_interval` (the client's keepalive and the server's ack of it;
/// the client's next keepalive acks that ack, which gives the server its RTT sample) and fires
/// three timers (the client's keepalive, the server's ack, and the server's keepalive
/// deadline, which the client's keepalive pushed back after its heap entry was set), however
/// long it stays idle. Before, both ends sent keepalives every 250 ms and acked each other's
/// on their own: 16 datagrams per 2 s; then 2.5 datagrams and 3.5 timers, the server turning
/// every second ack into a keepalive for its RTT sample.
#[test]
fn an_idle_connection_costs_two_datagrams_per_keepalive_interval() {
    idle_connections_in_simulated_time(false);
}

/// The same with every endpoint's keepalives on the daemon's shared grid of ticks
/// (`Endpoint::align_keepalives`): no more datagrams or timers, and nothing times out, though
/// each keepalive may wait up to an eighth of an interval for its tick.
#[test]
fn aligned_idle_connections_stay_open_at_the_same_cost() {
    idle_connections_in_simulated_time(true);
}

fn idle_connections_in_simulated_time(aligned: bool) {
    use gudp::protocol::{Config, Endpoint, EndpointCounters};
    use std::net::SocketAddr;

    const CLIENTS: u16 = 20;
    let config = Config::default();
    let interval = config.keepalive_interval;
    let t0 = Instant::now();
    let endpoint = |secret| {
        let mut endpoint = Endpoint::new(config.clone(), [secret; 16]);
        if aligned {
            endpoint.align_keepalives(t0 + Duration::from_millis(37));
        }
        endpoint
    };
    let server_addr: SocketAddr = ([10, 0, 0, 1], 9000).into();
    let mut server = endpoint(200);
    let mut clients: Vec<(SocketAddr, Endpoint)> = (0..CLIENTS)
        .map(|i| {
            let addr = SocketAddr::from(([10, 0, 1, 1], 1000 + i));
            (addr, endpoint(i as u8))
        })
        .collect();
    for (_, client) in &mut clients {
        client.connect(t0, server_addr).unwrap();
    }
    let mut buf = [0u8; 1500];
    let mut datagrams = 0u64;
    // Delivers everything due at `now` (zero latency) until the link is quiet.
    let mut exchange = |now: Instant,
                        server: &mut Endpoint,
                        clients: &mut Vec<(SocketAddr, Endpoint)>,
                        datagrams: &mut u64| loop {
        let mut moved = false;
        for (addr, client) in clients.iter_mut() {
            while let Some(t) = client.poll_transmit(now, &mut buf) {
                *datagrams += 1;
                moved = true;
                let _ = server.handle_datagram(now, *addr, &buf[..t.len]);
            }
        }
        while let Some(t) = server.poll_transmit(now, &mut buf) {
            *datagrams += 1;
            moved = true;
            let (_, client) = clients
                .iter_mut()
                .find(|(addr, _)| *addr == t.destination)
                .expect("the server answers its clients only");
            let _ = client.handle_datagram(now, server_addr, &buf[..t.len]);
        }
        while server.poll_event().is_some() {}
        for (_, client) in clients.iter_mut() {
            while client.poll_event().is_some() {}
        }
        if !moved {
            break;
        }
    };
    let timers = |server: &Endpoint, clients: &[(SocketAddr, Endpoint)]| {
        let total = clients
            .iter()
            .fold(server.counters(), |mut total, (_, client)| {
                total += client.counters();
                total
            });
        let EndpointCounters { timers_fired, .. } = total;
        timers_fired
    };
    let mut now = t0;
    let warm_up = t0 + 5 * interval;
    let end = warm_up + 30 * interval;
    let (mut datagrams_then, mut timers_then) = (0, 0);
    while now < end {
        exchange(now, &mut server, &mut clients, &mut datagrams);
        let next = clients
            .iter()
            .filter_map(|(_, client)| client.next_deadline())
            .chain(server.next_deadline())
            .min()
            .expect("connections always have a deadline");
        if now < warm_up && next >= warm_up {
            (datagrams_then, timers_then) = (datagrams, timers(&server, &clients));
        }
        now = next.max(now);
        server.handle_timeout(now);
        for (_, client) in &mut clients {
            client.handle_timeout(now);
        }
    }
    assert_eq!(
        server.connection_count(),
        usize::from(CLIENTS),
        "all stayed open"
    );
    let per_interval = |count: u64| count as f64 / f64::from(CLIENTS) / 30.0;
    let sent = per_interval(datagrams - datagrams_then);
    let fired = per_interval(timers(&server, &clients) - timers_then);
    eprintln!("per idle connection and keepalive interval: {sent:.2} datagrams, {fired:.2} timers");
    assert!(
        sent <= 2.1,
        "{sent:.2} datagrams per connection per interval"
    );
    assert!(
        fired <= 3.1,
        "{fired:.2} timers fired per connection per interval"
    );
}
