//! `gudp`: try GUDP from a terminal.
//!
//! - `gudp demo`: a server and a client in one process, through a link conditioner whose
//!   round trip steps past 250 ms and back, printing a line per second.
//! - `gudp serve --bind ADDR [--max-connections N]`: an echo server printing per-second
//!   stats.
//! - `gudp connect ADDR`: a client sending at a fixed rate, printing per-second stats.
//! - `gudp bench`: GUDP against raw UDP on loopback (see `docs/benchmarks.md`).

mod bench;
mod demo;
mod meter;
mod peers;

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "gudp", version, about = "GUDP: a UDP transport for games")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Server and client in one process over a conditioned loopback link: watch the
    /// congestion mode go good → bad → good as the round trip steps up and down (~20 s).
    Demo {
        /// Seconds to run (the RTT schedule scales with it).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(6..=3600))]
        duration: u64,
        /// Packets per second the client sends.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        rate: u32,
    },
    /// Echo server: sends every packet back to its sender; prints stats each second.
    Serve {
        /// Address to listen on, e.g. 0.0.0.0:9000 or 127.0.0.1:9000.
        #[arg(long)]
        bind: SocketAddr,
        /// Stop after this many seconds (default: run until interrupted).
        #[arg(long)]
        duration: Option<u64>,
        /// Most connections held at once; further clients are answered `Denied`.
        #[arg(long, default_value_t = 16_384, value_parser = clap::value_parser!(u32).range(1..u32::MAX as i64))]
        max_connections: u32,
    },
    /// Client: connects, sends at a fixed rate, counts echoes; prints stats each second.
    Connect {
        /// Server address, e.g. 127.0.0.1:9000.
        server: SocketAddr,
        /// Packets per second.
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        rate: u32,
        /// Payload bytes per packet (at most 1200).
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(0..=1200))]
        size: u16,
        /// Seconds to run.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
        duration: u64,
    },
    /// Benchmarks GUDP against raw UDP on loopback, printing a table of figures and ratios.
    Bench(bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { duration, rate } => demo::run(Duration::from_secs(duration), rate),
        Command::Serve {
            bind,
            duration,
            max_connections,
        } => peers::serve(
            bind,
            duration.map(Duration::from_secs),
            max_connections as usize,
        ),
        Command::Connect {
            server,
            rate,
            size,
            duration,
        } => peers::connect(
            server,
            rate,
            usize::from(size),
            Duration::from_secs(duration),
        ),
        Command::Bench(args) => bench::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("gudp: {message}");
            ExitCode::FAILURE
        }
    }
}
