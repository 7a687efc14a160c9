//! One span of a workload: a sending and a receiving thread run while the measuring thread
//! lets them warm up, then reads their counters and the process's CPU time at both ends of
//! the span. After the span the sender stops, the receiver drains for a moment, and what
//! was never delivered of everything sent is the loss.

use super::procfs;
use super::rounds::Sample;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// After the sender stops, the receiver keeps reading (what socket buffers, outboxes and
/// inboxes still hold arrives, so it is not counted lost) until everything sent is in, or
/// nothing more came for `QUIET`, or `MAX_DRAIN` has passed.
const QUIET: Duration = Duration::from_millis(50);
const MAX_DRAIN: Duration = Duration::from_millis(500);

/// What the two threads of a span share: their counters and their stop flags.
pub struct Flags {
    sending: AtomicBool,
    receiving: AtomicBool,
    sent: AtomicU64,
    delivered: AtomicU64,
}

impl Flags {
    /// Whether the sender should go on.
    pub fn sending(&self) -> bool {
        self.sending.load(Ordering::Relaxed)
    }

    /// Whether the receiver (or echo) should go on.
    pub fn receiving(&self) -> bool {
        self.receiving.load(Ordering::Relaxed)
    }

    pub fn sent(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
    }

    pub fn delivered(&self, n: u64) {
        self.delivered.fetch_add(n, Ordering::Relaxed);
    }

    fn counts(&self) -> (u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.delivered.load(Ordering::Relaxed),
        )
    }
}

/// The thread body of one side of a span.
pub type Side<'a> = Box<dyn FnOnce(&Flags) -> Result<(), String> + Send + 'a>;

/// Runs `receiver` and `sender` on threads of their own and measures `span` of their work
/// after a warm-up of a fifth of it (at most 200 ms).
pub fn measure(span: Duration, sender: Side<'_>, receiver: Side<'_>) -> Result<Sample, String> {
    let flags = Flags {
        sending: AtomicBool::new(true),
        receiving: AtomicBool::new(true),
        sent: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
    };
    let warm_up = (span / 5).min(Duration::from_millis(200));
    thread::scope(|scope| {
        let flags = &flags;
        let receiving = scope.spawn(move || receiver(flags));
        let sending = scope.spawn(move || sender(flags));
        thread::sleep(warm_up);
        let (sent_0, delivered_0) = flags.counts();
        let (cpu_0, start) = (procfs::process_cpu(), Instant::now());
        thread::sleep(span);
        let (sent_1, delivered_1) = flags.counts();
        let (cpu_1, elapsed) = (procfs::process_cpu(), start.elapsed());
        flags.sending.store(false, Ordering::Relaxed);
        let sent = sending.join().map_err(|_| "the sending thread panicked")?;
        drain(flags);
        flags.receiving.store(false, Ordering::Relaxed);
        let received = receiving
            .join()
            .map_err(|_| "the receiving thread panicked")?;
        sent?;
        received?;
        let (sent_total, delivered_total) = flags.counts();
        if delivered_1 == delivered_0 {
            return Err(format!(
                "nothing was delivered in the span ({} sent)",
                sent_1 - sent_0
            ));
        }
        Ok(Sample {
            delivered: delivered_1 - delivered_0,
            offered: sent_1 - sent_0,
            lost_share: 1.0 - delivered_total as f64 / sent_total.max(1) as f64,
            elapsed,
            cpu: cpu_1.saturating_sub(cpu_0),
            drops: None,
        })
    })
}

/// Waits for the receiver to catch up with what was sent (see [`QUIET`]).
fn drain(flags: &Flags) {
    let start = Instant::now();
    let mut last = (flags.counts().1, Instant::now());
    while start.elapsed() < MAX_DRAIN {
        let (sent, delivered) = flags.counts();
        if delivered >= sent {
            return;
        }
        if delivered != last.0 {
            last = (delivered, Instant::now());
        } else if last.1.elapsed() >= QUIET {
            return;
        }
        thread::sleep(Duration::from_millis(2));
    }
}
