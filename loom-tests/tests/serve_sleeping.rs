//! Proofs for a sender serving the sleeping event loop (`DaemonShared::serve_sleeping_loop`
//! in `src/daemon/shared.rs`): a sender whose push finds the loop asleep, instead of waking
//! it, takes the driver lock if it is free (`try_lock`), does the loop's work on the ready
//! list, then raises the wake gate again for the loop that still sleeps and looks once more,
//! as the loop does before it sleeps; only if the lock was taken does it wake the loop.
//!
//! The model stands in for the daemon as `wake_gate.rs` does: the ready list is the real
//! `ReadyList`, the driver lock a mutex over the count of items served, the `mio::Waker` an
//! eventfd (a wake sets it; a sleep returns once it is set, clearing it). An item left in the
//! list while the loop sleeps and nobody is due to wake it leaves the loop asleep for ever
//! and the main thread waiting for that item, which loom reports as a deadlock: that is the
//! oracle. The main thread stops the loop (as `Daemon::shutdown` does) only once every item
//! was served, by the loop or by a sender; a stop request that finds the gate lowered by a
//! serving sender must still end the loop's sleep (the first version of the protocol lost
//! it: loom found the loop asleep for ever after the stop).
#![cfg(loom)]

use gudp::internals::ready::ReadyList;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use loom_tests::{check, EventFd};

struct Daemon {
    ready: ReadyList<u8>,
    /// The driver lock; what it guards stands for the driver: the items served so far.
    driver: Mutex<usize>,
    /// Signalled on every item served (the main thread waits for all of them).
    served: Condvar,
    waker: EventFd,
    stop: AtomicBool,
}

impl Daemon {
    fn new() -> Self {
        Self {
            ready: ReadyList::new(),
            driver: Mutex::new(0),
            served: Condvar::new(),
            waker: EventFd::default(),
            stop: AtomicBool::new(false),
        }
    }

    /// The driver's work on the ready list, under the driver lock.
    fn serve(&self, driver: &mut usize) {
        let mut items = Vec::new();
        self.ready.take(&mut items);
        if !items.is_empty() {
            *driver += items.len();
            self.served.notify_all();
        }
    }

    /// A sender: `make_ready` and `serve_sleeping_loop` as the daemon has them.
    fn send(&self, item: u8) {
        if !self.ready.push(item) {
            return; // the loop is awake, or another sender serves it
        }
        let Ok(mut driver) = self.driver.try_lock() else {
            self.waker.wake();
            return;
        };
        loop {
            self.serve(&mut driver);
            if !self.ready.prepare_sleep() {
                break;
            }
            self.ready.awake();
        }
        // The loop's look also reads the stop flag, whose setter found the gate lowered
        // (this sender held its `true`): only this look can see it.
        if self.stop.load(Ordering::Acquire) {
            self.waker.wake();
        }
    }

    /// The event loop (`Loop::turn_with` and `run`): raise the gate and look, sleep if
    /// nothing is waiting, then serve under the driver lock; until stopped.
    fn run(&self) {
        loop {
            let waiting = self.ready.prepare_sleep();
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            if !waiting {
                self.waker.sleep();
            }
            self.ready.awake();
            self.serve(&mut self.driver.lock().unwrap());
        }
    }

    /// Main thread: waits until `items` were served, then stops the loop.
    fn wait_and_stop(&self, items: usize) {
        let mut served = self.driver.lock().unwrap();
        while *served < items {
            served = self.served.wait(served).unwrap();
        }
        drop(served);
        self.stop.store(true, Ordering::Release);
        if self.ready.must_wake() {
            self.waker.wake();
        }
    }
}

/// **Property:** a sender's item is always served, by the loop or by a sender, however the
/// sender's serving and the loop's sleep interleave (no item left behind a sleeping loop).
///
/// **Why it holds:** a sender that took the gate's `true` either wakes the loop (lock taken)
/// or serves the list itself and then re-raises the gate and looks again before it lets go
/// of the lock: an item pushed before that look is served by it, one pushed after it finds
/// the gate raised and its sender serves or wakes in turn (the wake gate's proof,
/// `wake_gate.rs`, with the serving sender in the poller's place).
#[test]
fn a_served_or_woken_item_is_never_left_behind() {
    check(
        "serve_sleeping::a_served_or_woken_item_is_never_left_behind",
        3,
        || {
            let daemon = Arc::new(Daemon::new());
            let sender = {
                let daemon = daemon.clone();
                thread::spawn(move || daemon.send(1))
            };
            let event_loop = {
                let daemon = daemon.clone();
                thread::spawn(move || daemon.run())
            };
            daemon.wait_and_stop(1);
            sender.join().unwrap();
            event_loop.join().unwrap();
        },
    );
}

/// **Property:** with two senders, one of which may be serving while the other pushes,
/// every item is still served.
///
/// **Why it holds:** the second sender's push either precedes the serving sender's re-raise
/// (its look finds it) or follows it (the second sender takes the raised gate, finds the lock
/// held or free, and wakes or serves).
#[test]
fn two_senders_never_leave_an_item_behind() {
    check(
        "serve_sleeping::two_senders_never_leave_an_item_behind",
        2,
        || {
            let daemon = Arc::new(Daemon::new());
            let senders: Vec<_> = (0..2)
                .map(|i| {
                    let daemon = daemon.clone();
                    thread::spawn(move || daemon.send(i))
                })
                .collect();
            let event_loop = {
                let daemon = daemon.clone();
                thread::spawn(move || daemon.run())
            };
            daemon.wait_and_stop(2);
            for sender in senders {
                sender.join().unwrap();
            }
            event_loop.join().unwrap();
        },
    );
}
