//! `gudp`: try GUDP from a terminal.
//!
//! - `gudp demo`: a server and a client in one process, through a link conditioner whose
//!   round trip steps past 250 ms and back, printing a line per second.
//! - `gudp serve --bind HOST:PORT [--max-connections N]`: an echo server printing
//!   per-second stats.
//! - `gudp connect HOST:PORT`: a client sending at a fixed rate, printing per-second stats.
//! - `gudp bench [--quick]`: GUDP against raw UDP and laminar on loopback (see
//!   `docs/benchmarks.md`).
//!
//! `demo`, `serve` and `connect` close their connections cleanly on SIGINT or SIGTERM.

mod bench;
mod chart;
mod demo;
mod meter;
mod peers;
mod stop;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "gudp", version, about = "GUDP: a UDP transport for games")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// `allow_negative_numbers`: `--rate -5` is a bad value, not an unknown flag: say so rather
// than suggest `-- -5`.
#[derive(Subcommand)]
enum Command {
    /// Server and client in one process over a conditioned loopback link: watch the
    /// congestion mode go good → bad → good as the round trip steps up and down (~20 s).
    #[command(allow_negative_numbers = true)]
    Demo {
        /// Seconds to run (the RTT schedule scales with it).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(6..=3600))]
        duration: u64,
        /// Packets per second the client sends.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        rate: u32,
        /// Write a chart of the run: SVG, or an HTML page for a .html name.
        #[arg(long, value_name = "FILE")]
        chart: Option<PathBuf>,
    },
    /// Echo server: sends every packet back to its sender; prints stats each second.
    #[command(allow_negative_numbers = true, after_help = SERVE_END)]
    Serve {
        /// Address to listen on, e.g. 0.0.0.0:9000, 127.0.0.1:9000 or localhost:9000.
        #[arg(long, value_name = "HOST:PORT")]
        bind: String,
        /// Stop after this many seconds, e.g. 30 or 2.5 (default: until SIGINT/SIGTERM).
        #[arg(long, value_parser = seconds)]
        duration: Option<Duration>,
        /// Most connections held at once; further clients are answered `Denied`.
        #[arg(long, default_value_t = 16_384, value_parser = clap::value_parser!(u32).range(1..u32::MAX as i64))]
        max_connections: u32,
    },
    /// Client: connects, sends at a fixed rate, counts echoes; prints stats each second.
    #[command(allow_negative_numbers = true, after_help = CONNECT_END)]
    Connect {
        /// Server address, e.g. 127.0.0.1:9000 or localhost:9000 (every address a name
        /// resolves to is tried in turn).
        #[arg(value_name = "HOST:PORT")]
        server: String,
        /// Packets per second.
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        rate: u32,
        /// Payload bytes per packet (at most 1200).
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(0..=1200))]
        size: u16,
        /// Seconds to run, e.g. 10 or 0.5.
        #[arg(long, default_value = "10", value_parser = seconds)]
        duration: Duration,
        /// Write a chart of the run: SVG, or an HTML page for a .html name.
        #[arg(long, value_name = "FILE")]
        chart: Option<PathBuf>,
    },
    /// Benchmarks GUDP (default configuration) against raw UDP and laminar on loopback:
    /// medians of alternating rounds, with spreads, ratios and issue 12's targets.
    Bench(Box<bench::Args>),
}

const SERVE_END: &str = "SIGINT or SIGTERM (Ctrl-C, kill) closes every connection cleanly \
    (clients see 'closed by peer' at once), prints the totals and exits 0; a second signal \
    exits at once.";

const CONNECT_END: &str = "Exit status: 0 for a complete run; 1 if it could not connect, the \
    connection ended early or the server stopped answering (the reason is printed); 130 if \
    SIGINT or SIGTERM cut it short (the connection is closed cleanly first); 2 for a bad \
    argument.";

/// A positive number of seconds, at most a day.
fn seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 86_400.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!(
            "'{text}' is not a number of seconds greater than 0 and at most 86400"
        )),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Bench(_)) {
        if let Err(message) = stop::install() {
            eprintln!("gudp: {message}");
            return ExitCode::FAILURE;
        }
    }
    let result = match cli.command {
        Command::Demo {
            duration,
            rate,
            chart,
        } => demo::run(Duration::from_secs(duration), rate, chart),
        Command::Serve {
            bind,
            duration,
            max_connections,
        } => peers::serve(&bind, duration, max_connections as usize),
        Command::Connect {
            server,
            rate,
            size,
            duration,
            chart,
        } => peers::connect(peers::ConnectArgs {
            server,
            rate,
            size: usize::from(size),
            duration,
            chart,
        }),
        Command::Bench(args) => bench::run(*args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("gudp: {message}");
            ExitCode::FAILURE
        }
    }
}
