//! Proofs for `gudp::internals::wake_gate::WakeGate`, the gate in front of the daemon's wake-up syscall.
//!
//! The models stand in for the daemon: "work" is a counter the producers bump under a mutex
//! (the daemon's ready list), the `mio::Waker` is an event flag (an eventfd: a wake sets it,
//! the poller's sleep returns once it is set and clears it), and "sleeping in `mio::Poll`" is
//! waiting on a condvar for that flag. A lost wake-up leaves the poller waiting forever, which
//! loom reports as a deadlock: that is the oracle.
#![cfg(loom)]

use gudp::internals::wake_gate::WakeGate;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use loom_tests::check;

/// An eventfd as epoll sees it: a wake sets it; a sleep returns once it is set, clearing it.
#[derive(Default)]
struct EventFd {
    signalled: Mutex<bool>,
    condvar: Condvar,
}

impl EventFd {
    fn wake(&self) {
        *self.signalled.lock().unwrap() = true;
        self.condvar.notify_one();
    }

    fn sleep(&self) {
        let mut signalled = self.signalled.lock().unwrap();
        while !*signalled {
            signalled = self.condvar.wait(signalled).unwrap();
        }
        *signalled = false;
    }
}

/// What the poller and the producers share.
#[derive(Default)]
struct Daemon {
    gate: WakeGate,
    work: Mutex<usize>,
    waker: EventFd,
    wakes: AtomicUsize,
}

impl Daemon {
    /// A producer: publish one item, then wake the poller if the gate says so.
    fn produce(&self) {
        *self.work.lock().unwrap() += 1;
        if self.gate.must_wake() {
            self.wakes.fetch_add(1, Ordering::Relaxed);
            self.waker.wake();
        }
    }

    /// The poller: loops until it has seen `items`, sleeping only when the look after
    /// `prepare_sleep` finds nothing new. Returns how many times it raised the gate.
    fn poll_until(&self, items: usize) -> usize {
        let (mut seen, mut prepares) = (0, 0);
        while seen < items {
            self.gate.prepare_sleep();
            prepares += 1;
            let now = *self.work.lock().unwrap();
            if now == seen {
                self.waker.sleep();
            }
            self.gate.awake();
            seen = now.max(seen);
        }
        prepares
    }
}

/// **Property:** a producer that publishes while the poller is going to sleep never leaves
/// it asleep with the work unseen (no lost wake-up).
///
/// **Why it holds:** the poller writes `sleeping`, fences (`SeqCst`), then reads the work; the
/// producer writes the work, fences (`SeqCst`), then reads `sleeping`. `SeqCst` fences are
/// totally ordered, so whichever fence comes second is followed by a read that sees the
/// other side's write: either the poller sees the work and does not sleep, or the producer
/// sees `sleeping` and wakes it.
#[test]
fn no_lost_wakeup() {
    check("wake_gate::no_lost_wakeup", 3, || {
        let daemon = Arc::new(Daemon::default());
        let producer = {
            let daemon = daemon.clone();
            thread::spawn(move || daemon.produce())
        };
        daemon.poll_until(1);
        producer.join().unwrap();
    });
}

/// **Property:** with a burst of two producers the poller still sees both items, and the
/// gate never asks for more wake-up syscalls than the poller raised it: a burst landing on one
/// sleep costs one syscall.
///
/// **Why it holds:** no lost wake-up, as above, for each producer. And a producer wakes only
/// after its `swap(false)` read `true`; each `true` is written by one `prepare_sleep`, and swaps
/// on one atomic are totally ordered, so each `true` is taken by at most one producer.
#[test]
fn burst_wakes_at_most_once_per_sleep() {
    check("wake_gate::burst_wakes_at_most_once_per_sleep", 3, || {
        let daemon = Arc::new(Daemon::default());
        let producers: Vec<_> = (0..2)
            .map(|_| {
                let daemon = daemon.clone();
                thread::spawn(move || daemon.produce())
            })
            .collect();
        let prepares = daemon.poll_until(2);
        for producer in producers {
            producer.join().unwrap();
        }
        let wakes = daemon.wakes.load(Ordering::Relaxed);
        assert!(
            wakes <= prepares,
            "{wakes} wake-ups for {prepares} raises of the gate"
        );
    });
}
