//! `gudp bench`: GUDP with its default configuration against raw UDP and its peers on
//! loopback, every figure the median of alternating rounds, with its spread.
//!
//! - **one-way** (each `--sizes`): a sender thread blasts, a receiver thread counts what the
//!   application gets: goodput, offered rate, loss, CPU per delivered packet;
//! - **ping-pong**: one packet in flight, spawned daemons (and `--rows manual`: manual-mode
//!   daemons driven by the application's threads);
//! - **echo**: a 60 Hz echo server, datagrams on the wire per input;
//! - **idle**: idle connection pairs on one daemon, the daemon thread's CPU;
//! - **many**: many clients at a fixed rate into one server daemon: CPU, memory, RTT;
//! - **shard**: the same load into a sharded listener against one daemon: capacity.
//!
//! In each round every contestant of a workload runs one `--span` in turn (raw UDP, GUDP,
//! the unpaced GUDP extra, laminar, renet, then the next workload), so drift on a shared machine
//! hits them all; a ratio is the median of the per-round ratios. See `docs/benchmarks.md`.

mod echo;
mod fleet;
mod gudp;
mod idle;
#[cfg(feature = "peers")]
mod laminar;
mod many;
mod procfs;
mod raw;
#[cfg(feature = "peers")]
mod renet;
mod report;
mod rounds;
mod shard;
mod span;
mod workloads;

use clap::{Args as ClapArgs, ValueEnum};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A group of rows of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Group {
    /// One-way blast: goodput, loss and CPU per packet against raw UDP.
    Oneway,
    /// Ping-pong between spawned daemons against raw UDP.
    Pingpong,
    /// Ping-pong between manual-mode daemons against raw UDP.
    Manual,
    /// 60 Hz echo: datagrams per input.
    Echo,
    /// Idle connection pairs: the daemon's CPU.
    Idle,
    /// Many clients into one server daemon.
    Many,
    /// The many-clients load into a sharded listener against one daemon.
    Shard,
}

/// A peer library measured in the same rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Peer {
    /// laminar 0.5, driven with `Socket::manual_poll` (needs the `peers` feature, on by default).
    Laminar,
    /// renet 2 over renet_netcode's UDP transport (needs the `peers` feature).
    Renet,
    /// No peer.
    None,
}

/// Options of `gudp bench`.
#[derive(ClapArgs)]
pub struct Args {
    /// Short spans, 3 rounds, fewer connections: under a minute, for checking a change.
    /// Explicit options below still win.
    #[arg(long)]
    pub quick: bool,
    /// Rounds per figure [default: 5; 3 with --quick].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: Option<u32>,
    /// Seconds each contestant runs in each round [default: 1; 0.25 with --quick]
    /// (`--seconds` is the old name).
    #[arg(long, alias = "seconds", value_parser = seconds)]
    pub span: Option<Duration>,
    /// Payload sizes for one-way and ping-pong, in bytes (1 to 1200).
    #[arg(long, value_delimiter = ',', default_values_t = [64usize, 1200])]
    pub sizes: Vec<usize>,
    /// Groups of rows to run, in any order.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Group::Oneway, Group::Pingpong, Group::Manual, Group::Echo, Group::Idle, Group::Many])]
    pub rows: Vec<Group>,
    /// Peers in the same rounds as GUDP and raw UDP (one-way and ping-pong).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Peer::Laminar, Peer::Renet])]
    pub peers: Vec<Peer>,
    /// Clients in the many-connections rows (0 skips them) [default: 10000; 1000 with --quick].
    /// Setting up 10,000 takes 1.5 to 8 minutes on a loaded 2-core machine.
    #[arg(long)]
    pub clients: Option<usize>,
    /// Packets per second each of those clients sends.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub client_rate: u32,
    /// Shards of the sharded listener in the `shard` rows (which run the many-connections
    /// load into it and into one daemon, alternating, `--rounds` times each; not in the
    /// default rows).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(2..=64))]
    pub shards: u32,
    /// Seconds the many-connections traffic runs [default: 10; 3 with --quick].
    #[arg(long, value_parser = seconds)]
    pub many_seconds: Option<Duration>,
    /// Idle connection pairs, one row per count [default: 2000,10000; 2000 with --quick].
    #[arg(long, value_delimiter = ',')]
    pub idle: Option<Vec<usize>>,
    /// Seconds over which idle CPU is measured, after a 1 s settling time [default: 3; 1 with --quick].
    #[arg(long, value_parser = seconds)]
    pub idle_seconds: Option<Duration>,
    /// Clients of the 60 Hz echo.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=5000))]
    pub echo_clients: u32,
    /// Seconds the 60 Hz echo runs [default: 3; 1.5 with --quick].
    #[arg(long, value_parser = seconds)]
    pub echo_seconds: Option<Duration>,
    /// Also write the table as CSV to this file.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Also write the table as Markdown to this file (docs/benchmarks.md takes it verbatim).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Also write a bar chart of the ratios to raw UDP as SVG to this file.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

/// A positive number of seconds, at most ten minutes.
fn seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 600.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!(
            "'{text}' is not a number of seconds greater than 0 and at most 600"
        )),
    }
}

/// `quick`'s value under `--quick`, else `full`.
fn pick<T>(quick: bool, quick_value: T, full: T) -> T {
    if quick {
        quick_value
    } else {
        full
    }
}

/// The options with `--quick` or the full run's defaults filled in.
pub struct Plan {
    pub rounds: usize,
    pub span: Duration,
    pub sizes: Vec<usize>,
    pub rows: Vec<Group>,
    pub laminar: bool,
    pub renet: bool,
    pub clients: usize,
    pub client_rate: u32,
    pub shards: usize,
    pub many_seconds: Duration,
    pub idle: Vec<usize>,
    pub idle_seconds: Duration,
    pub echo_clients: usize,
    pub echo_seconds: Duration,
}

impl Plan {
    fn new(args: &Args) -> Result<Plan, String> {
        let quick = args.quick;
        if let Some(size) = args.sizes.iter().find(|&&s| s == 0 || s > 1200) {
            return Err(format!("--sizes: {size} is not 1 to 1200 bytes"));
        }
        let (mut laminar, mut renet) = (
            args.peers.contains(&Peer::Laminar),
            args.peers.contains(&Peer::Renet),
        );
        if (laminar || renet) && !cfg!(feature = "peers") {
            println!("(no peer rows: this build has no `peers` feature)");
            (laminar, renet) = (false, false);
        }
        if args.idle.as_ref().is_some_and(|idle| idle.contains(&0)) {
            return Err("--idle: a count of pairs must be at least 1".into());
        }
        let mut rows = Vec::new();
        for group in &args.rows {
            if !rows.contains(group) {
                rows.push(*group);
            }
        }
        Ok(Plan {
            rounds: args.rounds.map_or(pick(quick, 3, 5), |r| r as usize),
            span: args.span.unwrap_or(pick(
                quick,
                Duration::from_millis(250),
                Duration::from_secs(1),
            )),
            sizes: args.sizes.clone(),
            rows,
            laminar,
            renet,
            clients: args.clients.unwrap_or(pick(quick, 1000, 10_000)),
            client_rate: args.client_rate,
            shards: args.shards as usize,
            many_seconds: args.many_seconds.unwrap_or(pick(
                quick,
                Duration::from_secs(3),
                Duration::from_secs(10),
            )),
            idle: args
                .idle
                .clone()
                .unwrap_or_else(|| pick(quick, vec![2000], vec![2000, 10_000])),
            idle_seconds: args.idle_seconds.unwrap_or(pick(
                quick,
                Duration::from_secs(1),
                Duration::from_secs(3),
            )),
            echo_clients: args.echo_clients as usize,
            echo_seconds: args.echo_seconds.unwrap_or(pick(
                quick,
                Duration::from_millis(1500),
                Duration::from_secs(3),
            )),
        })
    }

    fn has(&self, group: Group) -> bool {
        self.rows.contains(&group)
    }
}

pub fn run(args: Args) -> Result<(), String> {
    let plan = Plan::new(&args)?;
    let started = Instant::now();
    println!(
        "gudp bench: {} rounds of {:.2} s spans; inbox implementation {}; {}",
        plan.rounds,
        plan.span.as_secs_f64(),
        ::gudp::IMPLEMENTATION,
        procfs::machine()
    );
    let mut rows = workloads::run(&plan)?;
    if plan.has(Group::Echo) {
        rows.extend(echo::run(&plan)?);
    }
    if plan.has(Group::Idle) {
        for &pairs in &plan.idle {
            rows.extend(idle::run(pairs, plan.idle_seconds)?);
        }
    }
    if plan.has(Group::Many) && plan.clients > 0 {
        rows.extend(many::run(&plan)?);
    }
    if plan.has(Group::Shard) && plan.clients > 0 {
        rows.extend(shard::run(&plan)?);
    }
    println!();
    print!("{}", report::text(&rows));
    println!("({:.0} s in all)", started.elapsed().as_secs_f64());
    let write = |path: &Option<PathBuf>, text: String| match path {
        None => Ok(()),
        Some(path) => {
            std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
    };
    write(&args.csv, report::csv(&rows))?;
    write(&args.markdown, report::markdown(&rows))?;
    write(&args.svg, report::svg(&rows))
}
