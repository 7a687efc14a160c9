//! Per-second reporting for the client side of `demo` and `connect`.

use gudp::message::MessageEvent;
use gudp::{CongestionMode, Connection};
use std::time::Duration;

/// What a client did, in total (or, as a difference of two totals, in one second).
#[derive(Clone, Copy, Default)]
pub struct Totals {
    pub sent: u64,
    pub refused: u64,
    pub received: u64,
    pub acked: u64,
    pub lost: u64,
}

impl Totals {
    /// Counts the delivery notifications waiting on `conn`; `true` if any was an ack.
    pub fn take_deliveries(&mut self, conn: &Connection) -> bool {
        let acked = self.acked;
        while let Some(delivery) = conn.poll_delivery() {
            if delivery.is_acked() {
                self.acked += 1;
            } else {
                self.lost += 1;
            }
        }
        // In message mode: one event per message instead.
        while let Some(event) = conn.poll_message_event() {
            match event {
                MessageEvent::Acked(_) => self.acked += 1,
                _ => self.lost += 1,
            }
        }
        self.acked > acked
    }

    /// Sent packets whose ack or loss has not been reported yet.
    pub fn unresolved(&self) -> u64 {
        self.sent - self.acked - self.lost
    }

    pub fn since(&self, earlier: &Totals) -> Totals {
        Totals {
            sent: self.sent - earlier.sent,
            refused: self.refused - earlier.refused,
            received: self.received - earlier.received,
            acked: self.acked - earlier.acked,
            lost: self.lost - earlier.lost,
        }
    }
}

pub const HEADER: &str =
    "    t   rtt ms  jitter   loss %  mode  sent/s  recv/s  acked/s  lost/s  refused/s";

/// One line: the connection's estimates and what happened in the last second (`delta`).
pub fn line(elapsed: Duration, conn: &Connection, delta: &Totals) -> String {
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
        delta.sent,
        delta.received,
        delta.acked,
        delta.lost,
        delta.refused,
    )
}

/// The closing summary: every packet sent is acked, lost or (only if the daemon broke its
/// promise to report each one) unresolved.
pub fn summary(totals: &Totals, elapsed: Duration) -> String {
    let percent = |n: u64| {
        if totals.sent == 0 {
            0.0
        } else {
            100.0 * n as f64 / totals.sent as f64
        }
    };
    let unresolved = match totals.unresolved() {
        0 => String::new(),
        n => format!(", unresolved {n}"),
    };
    format!(
        "summary: {:.1} s, sent {} = acked {} + lost {} ({:.2} %){unresolved}; echoes received \
         {}; refused by pacing or a full outbox {} (never sent)",
        elapsed.as_secs_f64(),
        totals.sent,
        totals.acked,
        totals.lost,
        percent(totals.lost),
        totals.received,
        totals.refused,
    )
}
