//! A 60 Hz authoritative game server with bot clients, over loopback.
//!
//! Each bot sends its input (which way it is moving) every frame; the server applies every
//! input it received to its world, then sends each client a snapshot of every player's
//! position, every frame. Inputs go up, snapshots go down, nothing waits: each side runs a
//! frame loop of non-blocking calls (`try_accept`, `drain_into`, `try_send`,
//! `poll_delivery`). The server prints its stats each second.
//!
//! ```sh
//! cargo run --release --example game_server            # 4 bots for 10 s
//! cargo run --release --example game_server -- 8 30    # 8 bots for 30 s
//! ```
//!
//! See `docs/guide.md` for the pattern, line by line.

use gudp::{CloseReason, Connection, Daemon, DaemonConfig, Listener, Packet, SendError};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_micros(16_667); // 60 Hz

fn main() {
    let mut args = std::env::args().skip(1);
    let parse = |arg: Option<String>, default: u64, what: &str| -> u64 {
        arg.map_or(default, |a| {
            a.parse().unwrap_or_else(|_| {
                eprintln!("usage: game_server [BOTS] [SECONDS] ({what} '{a}' is not a number)");
                std::process::exit(2);
            })
        })
    };
    let bots = parse(args.next(), 4, "BOTS");
    let seconds = parse(args.next(), 10, "SECONDS");
    let r = run(bots as usize, Duration::from_secs(seconds));
    println!(
        "summary: {} players, {} inputs received, {} snapshots sent ({} acked, {} lost so far), \
         {} refused by pacing",
        r.players_seen,
        r.inputs,
        r.snapshots_sent,
        r.snapshots_acked,
        r.snapshots_lost,
        r.snapshots_refused
    );
}

/// What the server saw over a run.
#[derive(Debug, Default)]
struct Report {
    players_seen: usize,
    inputs: u64,
    snapshots_sent: u64,
    snapshots_acked: u64,
    snapshots_lost: u64,
    snapshots_refused: u64,
}

/// Runs the server for `duration` with `bots` clients, then stops everything cleanly.
fn run(bots: usize, duration: Duration) -> Report {
    // The server's daemon runs on its own thread; the bots share another, as separate
    // processes on other machines would each have their own.
    let server_daemon = Daemon::spawn(DaemonConfig::default()).expect("server daemon");
    let listener = server_daemon
        .listen("127.0.0.1:0".parse().unwrap())
        .expect("listen on loopback");
    let addr = listener.local_addr();
    println!(
        "server on {addr}, {bots} bots, {:.0} s",
        duration.as_secs_f64()
    );

    let bot_daemon = Daemon::spawn(DaemonConfig::default()).expect("bot daemon");
    let bot_threads: Vec<_> = (0..bots)
        .map(|i| {
            let conn = bot_daemon.connect(addr).expect("bot connects");
            thread::spawn(move || bot(i, conn, duration))
        })
        .collect();

    let report = serve(&listener, duration + Duration::from_millis(200));
    for bot in bot_threads {
        bot.join().expect("bot thread");
    }
    report
}

/// One player in the server's world.
struct Player {
    conn: Connection,
    position: (i32, i32),
    /// The last input applied: its frame number and direction.
    input: (u32, i8, i8),
}

/// The server's frame loop: accept, read inputs, simulate, send snapshots, count deliveries.
fn serve(listener: &Listener, duration: Duration) -> Report {
    let start = Instant::now();
    let mut players: HashMap<SocketAddr, Player> = HashMap::new();
    let mut inbox: Vec<Packet> = Vec::with_capacity(64);
    let mut snapshot = Vec::with_capacity(1200);
    let mut report = Report::default();
    let mut second = Report::default();
    let mut next_frame = start;
    let mut next_print = start + Duration::from_secs(1);
    while start.elapsed() < duration {
        // New players join between frames; `try_accept` never blocks.
        while let Ok(conn) = listener.try_accept() {
            println!("player {} joined", conn.peer_addr());
            report.players_seen += 1;
            let player = Player {
                conn,
                position: (0, 0),
                input: (0, 0, 0),
            };
            players.insert(player.conn.peer_addr(), player);
        }

        // Inputs: take what arrived since the last frame, keep the newest per player.
        players.retain(|addr, player| {
            inbox.clear();
            match player.conn.drain_into(&mut inbox, 64) {
                Ok(_) => {}
                Err(reason) => {
                    println!("player {addr} left: {reason}");
                    return false;
                }
            }
            for packet in &inbox {
                if let Some(input) = decode_input(packet) {
                    second.inputs += 1;
                    // Unreliable and unordered: an older input that arrives late is ignored.
                    if input.0 >= player.input.0 {
                        player.input = input;
                    }
                }
            }
            true
        });

        // Simulate one frame.
        for player in players.values_mut() {
            player.position.0 += i32::from(player.input.1);
            player.position.1 += i32::from(player.input.2);
        }

        // Snapshots: every player's position, to every player. A refused snapshot is fine:
        // the next frame's supersedes it.
        snapshot.clear();
        snapshot.extend_from_slice(&(start.elapsed().as_millis() as u32).to_le_bytes());
        for player in players.values().take(140) {
            snapshot.extend_from_slice(&player.position.0.to_le_bytes());
            snapshot.extend_from_slice(&player.position.1.to_le_bytes());
        }
        for player in players.values() {
            match player.conn.try_send(&snapshot) {
                Ok(_) => second.snapshots_sent += 1,
                Err(SendError::Paced | SendError::OutboxFull) => second.snapshots_refused += 1,
                Err(_) => {} // closed, or a snapshot too large: nothing to retry
            }
            while let Some(delivery) = player.conn.poll_delivery() {
                if delivery.is_acked() {
                    second.snapshots_acked += 1;
                } else {
                    second.snapshots_lost += 1;
                }
            }
        }

        if Instant::now() >= next_print {
            let rtt_ms = mean_rtt_ms(&players);
            println!(
                "{:>3.0}s  players {:>3}  inputs/s {:>5}  snapshots/s sent {:>5} acked {:>5} \
                 lost {:>3} refused {:>3}  mean rtt {rtt_ms:.2} ms",
                start.elapsed().as_secs_f64(),
                players.len(),
                second.inputs,
                second.snapshots_sent,
                second.snapshots_acked,
                second.snapshots_lost,
                second.snapshots_refused,
            );
            report.add(&std::mem::take(&mut second));
            next_print += Duration::from_secs(1);
        }

        // Sleep to the next frame; a late frame does not try to catch up.
        next_frame += TICK;
        let now = Instant::now();
        if next_frame > now {
            thread::sleep(next_frame - now);
        } else {
            next_frame = now;
        }
    }
    report.add(&second);
    report
}

impl Report {
    fn add(&mut self, second: &Report) {
        self.inputs += second.inputs;
        self.snapshots_sent += second.snapshots_sent;
        self.snapshots_acked += second.snapshots_acked;
        self.snapshots_lost += second.snapshots_lost;
        self.snapshots_refused += second.snapshots_refused;
    }
}

fn mean_rtt_ms(players: &HashMap<SocketAddr, Player>) -> f64 {
    let rtts: Vec<f64> = players
        .values()
        .filter_map(|p| p.conn.stats())
        .map(|s| s.protocol.rtt.as_secs_f64() * 1e3)
        .collect();
    rtts.iter().sum::<f64>() / rtts.len().max(1) as f64
}

/// A bot: sends its input every frame, reads the snapshots, then leaves cleanly.
fn bot(index: usize, conn: Connection, duration: Duration) {
    let start = Instant::now();
    let mut frame: u32 = 0;
    let mut snapshots = Vec::with_capacity(64);
    let mut next_frame = start;
    while start.elapsed() < duration {
        // Walk in a square, changing direction every second.
        let (dx, dy) = [(1, 0), (0, 1), (-1, 0), (0, -1)][(frame as usize / 60 + index) % 4];
        let mut input = [0u8; 6];
        input[..4].copy_from_slice(&frame.to_le_bytes());
        input[4] = dx as u8;
        input[5] = dy as u8;
        match conn.try_send(&input) {
            Ok(_) | Err(SendError::Paced | SendError::OutboxFull) => {}
            Err(error) => {
                println!("bot {index}: {error}");
                return;
            }
        }
        snapshots.clear();
        match conn.drain_into(&mut snapshots, 64) {
            Ok(_) | Err(CloseReason::Closed) => {}
            Err(reason) => {
                println!("bot {index}: {reason}");
                return;
            }
        }
        while conn.poll_delivery().is_some() {}
        frame += 1;
        next_frame += TICK;
        let now = Instant::now();
        if next_frame > now {
            thread::sleep(next_frame - now);
        } else {
            next_frame = now;
        }
    }
    // Sends what is queued, then tells the server, which sees `closed by peer` at once.
    conn.close();
}

fn decode_input(packet: &[u8]) -> Option<(u32, i8, i8)> {
    let bytes: [u8; 6] = packet.try_into().ok()?;
    let frame = u32::from_le_bytes(bytes[..4].try_into().ok()?);
    Some((frame, bytes[4] as i8, bytes[5] as i8))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CI runs the example briefly: every bot joins, inputs flow up and snapshots down.
    #[test]
    fn runs_briefly() {
        let report = run(3, Duration::from_secs(2));
        assert_eq!(report.players_seen, 3);
        assert!(report.inputs > 100, "{report:?}");
        assert!(report.snapshots_acked > 100, "{report:?}");
    }
}
