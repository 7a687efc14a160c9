//! Per-second reporting for the client side of `demo` and `connect`.

use gudp::{CongestionMode, Connection};
use std::time::Duration;

/// What a client did, in total.
#[derive(Clone, Copy, Default)]
pub struct Totals {
    pub sent: u64,
    pub refused: u64,
    pub received: u64,
    pub acked: u64,
    pub lost: u64,
}

impl Totals {
    /// Counts the delivery notifications waiting on `conn`.
    pub fn take_deliveries(&mut self, conn: &Connection) {
        while let Some(delivery) = conn.poll_delivery() {
            if delivery.is_acked() {
                self.acked += 1;
            } else {
                self.lost += 1;
            }
        }
    }
}

pub const HEADER: &str =
    "    t   rtt ms  jitter   loss %  mode  sent/s  recv/s  acked/s  lost/s  refused/s";

/// Prints one line: the connection's estimates and what changed since `previous`.
pub fn line(elapsed: Duration, conn: &Connection, now: &Totals, previous: &Totals) -> String {
    let (rtt, jitter, loss, mode) = match conn.stats() {
        Some(stats) => (
            stats.protocol.rtt.as_secs_f64() * 1e3,
            stats.protocol.rtt_variation.as_secs_f64() * 1e3,
            stats.protocol.packet_loss_percent,
            stats.protocol.congestion_mode,
        ),
        None => (f64::NAN, f64::NAN, f64::NAN, conn.status().congestion()),
    };
    let mode = match mode {
        CongestionMode::Good => "good",
        CongestionMode::Bad => "BAD ",
    };
    format!(
        "{:>4.0}s  {:>7.1}  {:>6.1}  {:>7.1}  {}  {:>6}  {:>6}  {:>7}  {:>6}  {:>9}",
        elapsed.as_secs_f64(),
        rtt,
        jitter,
        loss,
        mode,
        now.sent - previous.sent,
        now.received - previous.received,
        now.acked - previous.acked,
        now.lost - previous.lost,
        now.refused - previous.refused,
    )
}

/// The closing summary.
pub fn summary(totals: &Totals, elapsed: Duration) -> String {
    let resolved = totals.acked + totals.lost;
    format!(
        "summary: {:.1} s, sent {}, echoes received {}, acked {}, lost {} ({:.2} % of resolved), \
         refused by backpressure {}",
        elapsed.as_secs_f64(),
        totals.sent,
        totals.received,
        totals.acked,
        totals.lost,
        if resolved == 0 {
            0.0
        } else {
            100.0 * totals.lost as f64 / resolved as f64
        },
        totals.refused,
    )
}
