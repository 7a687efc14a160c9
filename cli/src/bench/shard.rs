//! Sharding: the same offered load (N clients at R packets/s, the `many` workload) into one
//! server daemon and into a `ShardedListener` of several daemons on one port, in alternating
//! rounds. The capacity of a server is estimated from its busiest daemon thread: the
//! delivered rate divided by that thread's share of a core is the rate at which it would
//! saturate, each shard on a core of its own.

use super::fleet::{self, Accept};
use super::many::{self, Load};
use super::procfs;
use super::report::{Goal, Row, Target};
use super::rounds::Stat;
use super::Plan;
use gudp::{Daemon, DaemonConfig, ShardedListener};

const SERVER: &str = "gb-shard-srv";
const CLIENT: &str = "gb-shard-cli";

/// One round's figures for one server shape.
struct Round {
    /// Delivered packets/s over the busiest server thread's share of a core.
    capacity: f64,
    /// Server daemon CPU (all threads) per delivered packet, µs.
    cpu_per_packet_us: f64,
    rtt_p99_ms: f64,
    /// The busiest and the idlest server thread's share of a core, %.
    shares: (f64, f64),
}

impl Round {
    fn of(load: &Load) -> Round {
        let secs = load.elapsed.as_secs_f64();
        let delivered = load.delivered.max(1) as f64;
        let shares: Vec<f64> = load
            .server_cpu
            .iter()
            .map(|cpu| cpu.as_secs_f64() / secs)
            .collect();
        let busiest = shares.iter().copied().fold(0.0, f64::max);
        let idlest = shares.iter().copied().fold(f64::INFINITY, f64::min);
        let total: f64 = load.server_cpu.iter().map(|c| c.as_secs_f64()).sum();
        let mut rtts = load.rtts.clone();
        rtts.sort_by(f64::total_cmp);
        Round {
            capacity: delivered / secs / busiest.max(1e-9),
            cpu_per_packet_us: 1e6 * total / delivered,
            rtt_p99_ms: many::percentile(&rtts, 0.99),
            shares: (100.0 * busiest, 100.0 * idlest),
        }
    }
}

/// A round: a fresh server of `shards` daemons (1: a plain `Daemon::listen`) and a fresh
/// client daemon, the fleet connected, the load driven, everything dropped.
fn round(plan: &Plan, shards: usize) -> Result<Round, String> {
    let config = |name: String| {
        let mut config = DaemonConfig::default();
        config.thread_name = name;
        config
    };
    let mut client_config = config(CLIENT.into());
    client_config.protocol.connect_timeout = fleet::SETUP_CONNECT_TIMEOUT;
    let client_daemon = Daemon::spawn(client_config).map_err(|e| e.to_string())?;
    let loopback = ([127, 0, 0, 1], 0).into();
    let n = plan.clients;
    let run = |accept: &dyn Fn() -> Result<Load, String>| accept();
    if shards == 1 {
        let daemon = Daemon::spawn(config(format!("{SERVER}-0"))).map_err(|e| e.to_string())?;
        let listener = daemon
            .listen(loopback)
            .map_err(|e| format!("listen: {e}"))?;
        run(&|| drive(plan, &client_daemon, &listener, 1, n))
    } else {
        let server = ShardedListener::bind(loopback, shards, config(SERVER.into()))
            .map_err(|e| format!("sharded listen: {e}"))?;
        run(&|| drive(plan, &client_daemon, &server, shards, n))
    }
    .map(|load| Round::of(&load))
}

fn drive(
    plan: &Plan,
    client_daemon: &Daemon,
    listener: &impl Accept,
    shards: usize,
    n: usize,
) -> Result<Load, String> {
    let (clients, servers, _retries) = fleet::connect(client_daemon, listener, n)?;
    let tids = (0..shards)
        .map(|i| procfs::wait_for_thread(&format!("{SERVER}-{i}")))
        .collect::<Result<Vec<_>, _>>()?;
    many::drive(
        &clients,
        &servers,
        &tids,
        plan.client_rate,
        plan.many_seconds,
    )
}

pub fn run(plan: &Plan) -> Result<Vec<Row>, String> {
    let (n, rate, shards) = (plan.clients, plan.client_rate, plan.shards);
    println!("sharding: {n} clients x {rate} packets/s into 1 daemon and {shards} shards ...");
    let (mut one, mut sharded) = (Vec::new(), Vec::new());
    for _ in 0..plan.rounds {
        one.push(round(plan, 1)?);
        sharded.push(round(plan, shards)?);
    }
    let ratios = |figure: fn(&Round) -> f64| {
        Stat::of(one.iter().zip(&sharded).map(|(a, b)| figure(b) / figure(a)))
    };
    let values = |figure: fn(&Round) -> f64| Stat::of(sharded.iter().map(figure));
    let config = format!(
        "{shards} shards (ShardedListener, SO_REUSEPORT, DaemonConfig::default() each) against \
         one daemon (Daemon::listen), alternating rounds; {n} clients on one client daemon, each \
         {rate} packets/s of 64 B; a 60 Hz game loop drains every connection"
    );
    let shares = |rounds: &[Round]| {
        let busiest = Stat::of(rounds.iter().map(|r| r.shares.0)).map_or(f64::NAN, |s| s.median);
        let idlest = Stat::of(rounds.iter().map(|r| r.shares.1)).map_or(f64::NAN, |s| s.median);
        (busiest, idlest)
    };
    let ((one_busy, _), (shard_busy, shard_idle)) = (shares(&one), shares(&sharded));
    let row = |key: &str, measurement: String, unit, value, ratio, target, notes: String| Row {
        key: format!("shard-{n}-{key}"),
        measurement,
        config: config.clone(),
        unit,
        value,
        ratio,
        target,
        notes,
    };
    Ok(vec![
        row(
            "capacity",
            format!("{shards} shards, {n} clients x {rate}/s: capacity (ratio: to one daemon)"),
            "packets/s",
            values(|r| r.capacity),
            ratios(|r| r.capacity),
            Target::ratio(Goal::AtLeast(1.7)),
            format!(
                "delivered rate / busiest server thread's share of a core (where it would \
                 saturate, each shard on its own core); busiest thread {shard_busy:.1} % and \
                 idlest {shard_idle:.1} % of a core sharded, {one_busy:.1} % for one daemon \
                 (medians)"
            ),
        ),
        row(
            "cpu-per-packet",
            format!("{shards} shards: server CPU per delivered packet (ratio: to one daemon)"),
            "µs",
            values(|r| r.cpu_per_packet_us),
            ratios(|r| r.cpu_per_packet_us),
            None,
            "all server daemon threads".into(),
        ),
        row(
            "rtt-p99",
            format!("{shards} shards: RTT p99 (ratio: to one daemon)"),
            "ms",
            values(|r| r.rtt_p99_ms),
            ratios(|r| r.rtt_p99_ms),
            None,
            "smoothed RTT of every client, sampled each second".into(),
        ),
    ])
}
