//! `gudp`: try GUDP from a terminal.
//!
//! - `gudp demo`: a server and a client in one process, through a link conditioner whose
//!   round trip steps past 250 ms and back, printing a line per second.
//! - `gudp serve --bind HOST:PORT [--max-connections N]`: an echo server printing
//!   per-second stats.
//! - `gudp connect HOST:PORT`: a client sending at a fixed rate, printing per-second stats.
//! - `gudp bench [--quick]`: GUDP against raw UDP and laminar on loopback (see
//!   `docs/benchmarks.md`).
//! - `gudp keygen --out KEY` and `gudp token --key-file KEY --server HOST:PORT --out TOKEN`:
//!   secure mode's key and connect tokens (`serve --key-file`, `connect --token-file`).
//!
//! `demo`, `serve` and `connect` close their connections cleanly on SIGINT or SIGTERM.

mod bench;
mod chart;
mod demo;
mod meter;
mod peers;
mod stop;
mod token;

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
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
        /// Secure mode: accept only clients with a connect token minted with this key file
        /// (`gudp keygen`); every packet is encrypted.
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// Secure mode: the address clients reach this server at, which tokens must list
        /// (default: the bound address; required with a wildcard --bind such as 0.0.0.0).
        #[arg(long, value_name = "HOST:PORT", requires = "key_file")]
        public_addr: Option<SocketAddr>,
    },
    /// Client: connects, sends at a fixed rate, counts echoes; prints stats each second.
    #[command(allow_negative_numbers = true, after_help = CONNECT_END)]
    Connect {
        /// Server address, e.g. 127.0.0.1:9000 or localhost:9000 (every address a name
        /// resolves to is tried in turn). Not with --token-file, whose token lists them.
        #[arg(
            value_name = "HOST:PORT",
            required_unless_present = "token_file",
            conflicts_with = "token_file"
        )]
        server: Option<String>,
        /// Secure mode: connect with this connect token file (`gudp token`), trying the
        /// servers it lists in order.
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
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
    /// Benchmarks GUDP (default configuration) against raw UDP and laminar on loopback:
    /// medians of alternating rounds, with spreads, ratios and issue 12's targets.
    Bench(Box<bench::Args>),
    /// Makes a secure-mode private key file (64 hex digits) from the OS's randomness.
    Keygen {
        /// The key file to create (it must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Mints a connect token (netcode 1.02 layout, 2,048 bytes) with a key file.
    Token {
        /// The key file shared with the servers.
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
        /// A server the token is valid for; repeat for several, tried in this order.
        #[arg(long = "server", value_name = "HOST:PORT", required = true)]
        servers: Vec<String>,
        /// The client id the server's application sees.
        #[arg(long, default_value_t = 1)]
        client_id: u64,
        /// Seconds until the token expires.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
        lifetime: u64,
        /// Text for the token's user data (at most 256 bytes).
        #[arg(long)]
        user_data: Option<String>,
        /// The token file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
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
            key_file,
            public_addr,
            channel,
        } => key_file
            .map(|path| token::read_key(&path).map(|key| (key, public_addr)))
            .transpose()
            .and_then(|secure| {
                peers::serve(&bind, duration, max_connections as usize, secure, channel)
            }),
        Command::Connect {
            server,
            token_file,
            rate,
            size,
            duration,
            chart,
            channel,
        } => token_file
            .map(|path| token::read_token(&path))
            .transpose()
            .and_then(|token| {
                peers::connect(peers::ConnectArgs {
                    server: server.unwrap_or_default(),
                    token,
                    rate,
                    size: usize::from(size),
                    duration,
                    chart,
                    channel,
                })
            }),
        Command::Bench(args) => bench::run(*args).map(|()| ExitCode::SUCCESS),
        Command::Keygen { out } => token::keygen(&out),
        Command::Token {
            key_file,
            servers,
            client_id,
            lifetime,
            user_data,
            out,
        } => token::mint(token::TokenArgs {
            key_file,
            servers,
            client_id,
            lifetime,
            user_data,
            out,
        }),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("gudp: {message}");
            ExitCode::FAILURE
        }
    }
}
