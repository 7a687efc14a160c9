//! `gudp`: try GUDP from a terminal.
//!
//! - `gudp demo`: a server and a client in one process, through a link conditioner whose
//!   round trip steps past 250 ms and back, printing a line per second.
//! - `gudp serve --bind HOST:PORT [--max-connections N]`: an echo server printing
//!   per-second stats.
//! - `gudp connect HOST:PORT`: a client sending at a fixed rate, printing per-second stats.
//! - `gudp bench`: GUDP against raw UDP on loopback (see `docs/benchmarks.md`).
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
        #[arg(long, value_name = "FILE", conflicts_with = "messages")]
        chart: Option<PathBuf>,
        /// Show message mode instead: a reliable-ordered stream arriving complete and in
        /// order through 10 % loss beside an unreliable stream showing its losses (`--rate`
        /// messages per second each).
        #[arg(long)]
        messages: bool,
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
        /// `packet`: echo packets. Any message kind: message mode, echoing each message
        /// on the channel it came on (all four kinds are open; clients must use message
        /// mode too, or the handshake refuses them).
        #[arg(long, value_enum, default_value_t = peers::Channel::Packet)]
        channel: peers::Channel,
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
        /// What to send: packets, or messages on one channel kind (the server must run
        /// with a message `--channel` too).
        #[arg(long, value_enum, default_value_t = peers::Channel::Packet)]
        channel: peers::Channel,
    },
    /// Benchmarks GUDP against raw UDP on loopback, printing a table of figures and ratios.
    Bench(bench::Args),
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
            messages: true,
            ..
        } => demo::run_messages(Duration::from_secs(duration), rate),
        Command::Demo {
            duration,
            rate,
            chart,
            ..
        } => demo::run(Duration::from_secs(duration), rate, chart),
        Command::Serve {
            bind,
            duration,
            max_connections,
            channel,
        } => peers::serve(&bind, duration, max_connections as usize, channel),
        Command::Connect {
            server,
            rate,
            size,
            duration,
            chart,
            channel,
        } => peers::connect(peers::ConnectArgs {
            server,
            rate,
            size: usize::from(size),
            duration,
            chart,
            channel,
        }),
        Command::Bench(args) => bench::run(args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("gudp: {message}");
            ExitCode::FAILURE
        }
    }
}
