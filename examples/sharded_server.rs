//! One server port served by several daemon threads (Linux `SO_REUSEPORT`): a
//! `ShardedListener` accepts from every shard at once, the kernel keeps each client on one
//! shard, and the server's 60 Hz loop echoes every player's inputs whichever shard serves it.
//! It prints how the kernel spread the clients over the shards.
//!
//! ```text
//! cargo run --example sharded_server -- [SHARDS] [CLIENTS] [SECONDS]
//! ```

use gudp::{Daemon, DaemonConfig, ShardedListener};
use std::time::{Duration, Instant};

const FRAME: Duration = Duration::from_micros(16_667);

/// What a run did: echoes the clients got back, and the clients each shard accepted.
#[derive(Debug)]
struct Report {
    echoes: u64,
    per_shard: Vec<u64>,
}

fn run(
    shards: usize,
    clients: usize,
    seconds: Duration,
) -> Result<Report, Box<dyn std::error::Error>> {
    let server =
        ShardedListener::bind(([127, 0, 0, 1], 0).into(), shards, DaemonConfig::default())?;
    let bots = Daemon::spawn(DaemonConfig::default())?;
    let clients: Vec<_> = (0..clients)
        .map(|_| bots.connect(server.local_addr()))
        .collect::<Result<_, _>>()?;
    let mut players = Vec::new();
    let (start, mut echoes) = (Instant::now(), 0);
    while start.elapsed() < seconds {
        let frame = Instant::now();
        while let Ok(player) = server.try_accept() {
            players.push(player);
        }
        for client in &clients {
            let _ = client.try_send(b"input");
        }
        for player in &players {
            while let Ok(input) = player.try_recv() {
                let _ = player.try_send(&input); // the server's answer
            }
        }
        for client in &clients {
            while client.try_recv().is_ok() {
                echoes += 1;
            }
        }
        std::thread::sleep(FRAME.saturating_sub(frame.elapsed()));
    }
    let per_shard = server
        .shards()
        .iter()
        .map(|daemon| daemon.counters().endpoints.connections_opened)
        .collect();
    Ok(Report { echoes, per_shard })
}

fn main() {
    let mut args = std::env::args().skip(1).map(|a| {
        a.parse::<u64>().unwrap_or_else(|_| {
            eprintln!("usage: sharded_server [SHARDS] [CLIENTS] [SECONDS] ('{a}' is not a number)");
            std::process::exit(2);
        })
    });
    let shards = args.next().unwrap_or(2) as usize;
    let clients = args.next().unwrap_or(16) as usize;
    let seconds = Duration::from_secs(args.next().unwrap_or(3));
    match run(shards, clients, seconds) {
        Ok(report) => println!(
            "{} echoes; clients per shard: {:?}",
            report.echoes, report.per_shard
        ),
        Err(error) => {
            eprintln!("sharded_server: {error}");
            std::process::exit(1);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// CI runs the example briefly: echoes come back through every shard the clients
    /// landed on, and every client was accepted by some shard.
    #[test]
    fn runs_briefly() {
        let report = run(2, 16, Duration::from_secs(1)).unwrap();
        assert!(report.echoes > 100, "{report:?}");
        assert_eq!(report.per_shard.iter().sum::<u64>(), 16, "{report:?}");
    }
}
