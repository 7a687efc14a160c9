//! A 60 Hz server frame loop and client frame loops that never block: the clients connect
//! with `Daemon::connect_nonblocking` and poll the pending connection each frame; the
//! server learns of joins and leaves from `Listener::poll_event`, keys its players by
//! `Connection` (which is `Eq + Hash`), and reads each player's RTT every frame with the
//! lock-free `Connection::quick_stats`.
//!
//! ```text
//! cargo run --example frame_loop -- [CLIENTS] [SECONDS]
//! ```

use gudp::{Connection, Daemon, DaemonConfig, PendingConnection, ServerEvent};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const FRAME: Duration = Duration::from_micros(16_667);

fn main() {
    let mut args = std::env::args().skip(1).map(|a| {
        a.parse::<u64>().unwrap_or_else(|_| {
            eprintln!("usage: frame_loop [CLIENTS] [SECONDS] ('{a}' is not a number)");
            std::process::exit(2);
        })
    });
    let clients = args.next().unwrap_or(8) as usize;
    let seconds = args.next().unwrap_or(5);
    let report = run(clients, Duration::from_secs(seconds));
    println!(
        "summary: {} joined, {} left, {} inputs received, worst frame {:.2} ms",
        report.joined,
        report.left,
        report.inputs,
        report.worst_frame.as_secs_f64() * 1e3
    );
}

#[derive(Debug, Default)]
struct Report {
    joined: usize,
    left: usize,
    inputs: u64,
    worst_frame: Duration,
}

/// A client: first connecting (polled each frame), then sending one input per frame.
enum Client {
    Connecting(PendingConnection),
    Playing(Connection),
    Done,
}

fn run(clients: usize, duration: Duration) -> Report {
    let daemon = Daemon::spawn(DaemonConfig::default()).expect("daemon");
    let listener = daemon
        .listen(([127, 0, 0, 1], 0).into())
        .expect("listen on loopback");
    let server = listener.local_addr();
    let mut bots: Vec<Client> = (0..clients)
        .map(|_| Client::Connecting(daemon.connect_nonblocking(server).expect("connect")))
        .collect();
    let mut players: HashMap<Connection, u64> = HashMap::new();
    let mut report = Report::default();
    let start = Instant::now();
    let mut next_frame = start;
    let mut frame = 0u64;
    while start.elapsed() < duration {
        let frame_start = Instant::now();
        // Clients: never block; the last one leaves half-way through.
        for (i, bot) in bots.iter_mut().enumerate() {
            match bot {
                Client::Connecting(pending) => match pending.try_finish() {
                    Some(Ok(conn)) => *bot = Client::Playing(conn),
                    Some(Err(error)) => panic!("bot {i}: {error}"),
                    None => {}
                },
                Client::Playing(_) if i + 1 == clients && start.elapsed() > duration / 2 => {
                    *bot = Client::Done; // dropping the connection closes it
                }
                Client::Playing(conn) => {
                    let _ = conn.try_send(&frame.to_le_bytes()); // Paced: skip this frame
                    while conn.try_recv().is_ok() {}
                }
                Client::Done => {}
            }
        }
        // Server: joins and leaves from the listener, inputs from each player.
        while let Ok(conn) = listener.try_accept() {
            players.insert(conn, 0);
        }
        while let Some(event) = listener.poll_event() {
            match event {
                ServerEvent::Connected { .. } => report.joined += 1,
                ServerEvent::Disconnected { id, reason, .. } => {
                    report.left += 1;
                    players.retain(|conn, _| conn.id() != id);
                    println!("player {id} left: {reason}");
                }
                _ => {}
            }
        }
        for (conn, inputs) in &mut players {
            while let Ok(input) = conn.try_recv() {
                *inputs += 1;
                report.inputs += 1;
                let _ = conn.try_send(&input); // the snapshot: an echo, here
            }
        }
        if frame % 60 == 59 {
            let rtts: Vec<f64> = players
                .keys()
                .map(|conn| conn.quick_stats().rtt.as_secs_f64() * 1e3)
                .collect();
            let mean = rtts.iter().sum::<f64>() / rtts.len().max(1) as f64;
            println!(
                "{:>3.0}s  players {}  inputs {}  mean rtt {mean:.2} ms",
                start.elapsed().as_secs_f64(),
                players.len(),
                report.inputs
            );
        }
        report.worst_frame = report.worst_frame.max(frame_start.elapsed());
        frame += 1;
        next_frame += FRAME;
        std::thread::sleep(next_frame.saturating_duration_since(Instant::now()));
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CI runs the example briefly: every bot joins without a frame ever blocking on the
    /// handshake, inputs flow, and the bot that leaves is reported once.
    #[test]
    fn runs_briefly() {
        let report = run(4, Duration::from_secs(2));
        assert_eq!(report.joined, 4, "{report:?}");
        assert_eq!(report.left, 1, "{report:?}");
        assert!(report.inputs > 100, "{report:?}");
        assert!(
            report.worst_frame < Duration::from_millis(500),
            "{report:?}"
        );
    }
}
