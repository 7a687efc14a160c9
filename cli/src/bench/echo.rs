//! A 60 Hz echo: clients send one input per frame, a server game loop echoes each input on
//! its next frame. What matters is the datagrams per input: an echo that goes out after the
//! peer's ack delay has run out costs a stand-alone ack as well. Real clients' frames are not
//! in step with the server's, and whether an input waits more or less than the ack delay for
//! the server's frame depends on that phase, so the clients' inputs are spread evenly over
//! the frame (client `i` sends in slot `i % SLOTS`): the figure covers every phase.

use super::fleet;
use super::report::{Goal, Row, Target};
use super::rounds::Stat;
use super::Plan;
use gudp::{Daemon, DaemonConfig};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const FRAME: Duration = Duration::from_nanos(1_000_000_000 / 60);
/// The client loop's slots per frame: each client sends in one of them.
const SLOTS: u32 = 8;

/// Sleeps until `*next + period`, which becomes the new `*next`.
fn sleep_until_next(next: &mut Instant, period: Duration) {
    *next += period;
    if let Some(wait) = next.checked_duration_since(Instant::now()) {
        thread::sleep(wait);
    }
}

pub fn run(plan: &Plan) -> Result<Vec<Row>, String> {
    let n = plan.echo_clients;
    println!("60 Hz echo: {n} clients ...");
    let server_daemon = Daemon::spawn(DaemonConfig::default()).map_err(|e| e.to_string())?;
    let client_daemon = Daemon::spawn(DaemonConfig::default()).map_err(|e| e.to_string())?;
    let listener = server_daemon
        .listen(([127, 0, 0, 1], 0).into())
        .map_err(|e| format!("listen: {e}"))?;
    let (clients, servers, _) = fleet::connect(&client_daemon, &listener, n)?;
    thread::sleep(Duration::from_millis(300)); // the handshakes' acks go out
    let stop = AtomicBool::new(false);
    let inputs = AtomicU64::new(0);
    let (mut sent, mut echoes) = (0u64, 0u64);
    let (before_server, before_client) = (server_daemon.counters(), client_daemon.counters());
    let elapsed = thread::scope(|scope| {
        let game = scope.spawn(|| {
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                for conn in &servers {
                    while let Ok(input) = conn.try_recv() {
                        inputs.fetch_add(1, Ordering::Relaxed);
                        let _ = conn.try_send_packet(input);
                    }
                }
                sleep_until_next(&mut next, FRAME);
            }
        });
        let start = Instant::now();
        let mut next = start;
        let payload = [0x60u8; 32];
        let mut slot = 0;
        while start.elapsed() < plan.echo_seconds {
            for conn in clients.iter().skip(slot).step_by(SLOTS as usize) {
                while conn.try_recv().is_ok() {
                    echoes += 1;
                }
                if conn.try_send(&payload).is_ok() {
                    sent += 1;
                }
            }
            slot = (slot + 1) % SLOTS as usize;
            sleep_until_next(&mut next, FRAME / SLOTS);
        }
        let elapsed = start.elapsed();
        thread::sleep(Duration::from_millis(100)); // the last echoes and acks
        stop.store(true, Ordering::Relaxed);
        let _ = game.join();
        elapsed
    });
    let (server, client) = (server_daemon.counters(), client_daemon.counters());
    let inputs = inputs.load(Ordering::Relaxed).max(1) as f64;
    let server_out = (server.datagrams_sent - before_server.datagrams_sent) as f64;
    let client_out = (client.datagrams_sent - before_client.datagrams_sent) as f64;
    let config = format!(
        "DaemonConfig::default() (max_ack_delay 10 ms); {n} clients on one spawned daemon, \
         server on another; both sides 60 Hz loops (try_recv / try_send), the clients' \
         inputs spread over {SLOTS} phases of the frame"
    );
    Ok(vec![
        Row {
            key: "echo60-server-datagrams-per-input".into(),
            measurement: "60 Hz echo: server datagrams out per input".into(),
            config: config.clone(),
            unit: "datagrams",
            value: Stat::one(server_out / inputs),
            ratio: None,
            target: Target::value(Goal::AtMost(1.1)),
            notes: format!(
                "{inputs:.0} inputs received in {:.1} s, {server_out:.0} datagrams out \
                 (daemon counters); 1.0 means every ack rode on an echo",
                elapsed.as_secs_f64()
            ),
        },
        Row {
            key: "echo60-wire-datagrams-per-input".into(),
            measurement: "60 Hz echo: datagrams both ways per input".into(),
            config,
            unit: "datagrams",
            value: Stat::one((server_out + client_out) / inputs),
            ratio: None,
            target: None,
            notes: format!(
                "{client_out:.0} client datagrams for {sent} inputs sent, {echoes} echoes \
                 received; 2.0 is the floor (input + echo)"
            ),
        },
    ])
}
