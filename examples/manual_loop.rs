//! A game client that owns its thread: a manual daemon driven from a 60 Hz frame loop.
//!
//! `Daemon::manual` runs no thread of its own: the frame loop calls `daemon.poll(timeout)`,
//! which receives, sends, acks and runs timers, and doubles as the frame's sleep (it returns
//! early when a datagram arrives, and the loop polls again until the frame is due). The
//! server here is an echo server on a spawned daemon, standing in for a remote one.
//!
//! ```sh
//! cargo run --release --example manual_loop          # 10 s
//! cargo run --release --example manual_loop -- 30    # 30 s
//! ```

use gudp::{Connection, Daemon, DaemonConfig, Packet, SendError};
use std::thread;
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_micros(16_667); // 60 Hz

fn main() {
    let seconds = std::env::args().nth(1).map_or(10, |a| {
        a.parse().unwrap_or_else(|_| {
            eprintln!("usage: manual_loop [SECONDS] ('{a}' is not a number)");
            std::process::exit(2);
        })
    });
    let r = run(Duration::from_secs(seconds));
    println!(
        "summary: {} frames, {} inputs sent ({} acked, {} lost), {} echoes received",
        r.frames, r.sent, r.acked, r.lost, r.received
    );
}

#[derive(Debug, Default)]
struct Report {
    frames: u64,
    sent: u64,
    acked: u64,
    lost: u64,
    received: u64,
}

fn run(duration: Duration) -> Report {
    // The "remote" server: echoes every packet, on a spawned daemon.
    let server = Daemon::spawn(DaemonConfig::default()).expect("server daemon");
    let listener = server
        .listen("127.0.0.1:0".parse().unwrap())
        .expect("listen");
    let addr = listener.local_addr();
    let echo = thread::spawn(move || {
        let conn = listener.accept().expect("a client");
        while let Ok(packet) = conn.recv() {
            let _ = conn.try_send(&packet);
        }
    });

    // The game: a manual daemon. `connect` drives it while the handshake runs.
    let daemon = Daemon::manual(DaemonConfig::default()).expect("manual daemon");
    let conn = daemon.connect(addr).expect("connect");
    println!("connected to {addr}; 60 frames a second for {duration:?}");

    let start = Instant::now();
    let mut report = Report::default();
    let mut echoes: Vec<Packet> = Vec::with_capacity(64);
    let mut next_frame = start;
    let mut next_print = start + Duration::from_secs(1);
    while start.elapsed() < duration {
        // Network in: whatever arrived since the last frame.
        daemon.poll(Some(Duration::ZERO)).expect("poll");
        echoes.clear();
        if let Err(reason) = conn.drain_into(&mut echoes, 64) {
            println!("connection ended: {reason}");
            break;
        }
        report.received += echoes.len() as u64;

        // Game logic would run here; then network out: this frame's input.
        match conn.try_send(&report.frames.to_le_bytes()) {
            Ok(_) => report.sent += 1,
            Err(SendError::Paced | SendError::OutboxFull) => {}
            Err(error) => {
                println!("send: {error}");
                break;
            }
        }
        report.count_deliveries(&conn);
        report.frames += 1;

        if Instant::now() >= next_print {
            let rtt = conn
                .stats()
                .map_or(0.0, |s| s.protocol.rtt.as_secs_f64() * 1e3);
            println!(
                "{:>3.0}s  frames {:>5}  sent {:>5}  acked {:>5}  echoes {:>5}  rtt {rtt:.2} ms",
                start.elapsed().as_secs_f64(),
                report.frames,
                report.sent,
                report.acked,
                report.received
            );
            next_print += Duration::from_secs(1);
        }

        // Sleep in the poller until the next frame: it sends and acks meanwhile, which
        // `thread::sleep` would not. A late frame does not try to catch up.
        next_frame += TICK;
        loop {
            let now = Instant::now();
            if now >= next_frame {
                if now - next_frame > TICK {
                    next_frame = now;
                }
                break;
            }
            daemon.poll(Some(next_frame - now)).expect("poll");
        }
    }

    // A manual daemon's close runs when it is polled: `shutdown` runs the linger itself.
    // After it, every input's fate is known.
    conn.close();
    daemon.shutdown();
    report.count_deliveries(&conn);
    echo.join().expect("echo thread");
    report
}

impl Report {
    fn count_deliveries(&mut self, conn: &Connection) {
        while let Some(delivery) = conn.poll_delivery() {
            if delivery.is_acked() {
                self.acked += 1;
            } else {
                self.lost += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CI runs the example briefly: frames keep their pace and the round trips complete.
    #[test]
    fn runs_briefly() {
        let report = run(Duration::from_secs(1));
        assert!(report.frames >= 40, "{report:?}");
        assert!(report.acked >= 30 && report.received >= 30, "{report:?}");
        assert_eq!(
            report.sent,
            report.acked + report.lost,
            "every input resolved"
        );
    }
}
