//! Proofs for the `scheduled` ready flag (`ConnCore::enqueue` / `begin_flush` /
//! `hold_for_pacing`) together with the daemon's ready list and wake gate
//! (`gudp::internals::ready::ReadyList`): the path by which a packet a user queues reaches
//! the daemon's attention.
//!
//! The daemon is modelled as its event loop (`Loop::turn` in `src/daemon/mod.rs`): raise the
//! gate and look at the ready list; sleep (on an eventfd, as in `wake_gate.rs`) only if it
//! found nothing and no timer is due; take the list; flush each connection in it. A
//! connection left with queued packets and nobody due to look at it leaves the loop asleep
//! for ever, which loom reports as a deadlock: that is the oracle.
#![cfg(loom)]

use gudp::internals::conn::{ConnCore, Payload, Sizes, Wait};
use gudp::internals::pool::BufferPool;
use gudp::internals::ready::ReadyList;
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

struct Daemon {
    conn: ConnCore,
    /// The connection's entries (one connection, so an entry is `()`).
    ready: ReadyList<()>,
    waker: EventFd,
}

impl Daemon {
    fn new() -> Arc<Self> {
        let sizes = Sizes {
            inbox: 1,
            outbox: 2,
            deliveries: 1,
            max_payload: 8,
        };
        Arc::new(Self {
            conn: ConnCore::new(sizes, BufferPool::new(4, 8)),
            ready: ReadyList::new(),
            waker: EventFd::default(),
        })
    }

    /// A user thread's `try_send`; `make_ready` is the daemon's (push, then wake if told).
    fn send(&self) {
        let make_ready = || {
            if self.ready.push(()) {
                self.waker.wake();
            }
        };
        self.conn
            .enqueue(Payload::Borrowed(b"p"), Wait::Never, make_ready)
            .unwrap();
    }

    /// The event loop, until it has sent `packets`. With `paced_first`, the loop starts
    /// with a flush that the flag did not ask for (a close request or a timer does that),
    /// which may find the outbox empty, and pacing holds it back: it sends nothing, keeps the
    /// connection scheduled if packets are queued, and then arms a timer (the next turn does
    /// not sleep).
    fn run(&self, packets: usize, paced_first: bool) {
        let (mut sent, mut paced, mut timer) = (0, paced_first, paced_first);
        let mut taken = Vec::new();
        while sent < packets {
            if !self.ready.prepare_sleep() && !timer {
                self.waker.sleep();
            }
            self.ready.awake();
            self.ready.take(&mut taken);
            // Once per burst, when every flush comes from the list (see the paced model).
            assert!(
                paced_first || taken.len() <= 1,
                "scheduled {} times at once",
                taken.len()
            );
            if std::mem::take(&mut timer) {
                taken.push(()); // the pacing timer fired: flush again
            }
            for () in taken.drain(..) {
                self.conn.begin_flush();
                if std::mem::take(&mut paced) {
                    timer = self.conn.hold_for_pacing();
                    continue;
                }
                while self.conn.outbox.pop().is_some() {
                    sent += 1;
                }
            }
        }
    }
}

/// **Property:** a connection with queued packets is always eventually scheduled: a burst of
/// two sends from a user thread, racing the loop on its way to sleep, is sent in full; and a
/// burst schedules it once: the ready list never holds the connection twice.
///
/// **Why it holds:** a sender's `scheduled.swap(true)` that reads `false` appends the
/// connection and asks the wake gate (no lost wake-up: `wake_gate.rs`). One that reads
/// `true` skips both: the connection is in the list and not yet flushed, because the daemon
/// clears the flag (`begin_flush`, `swap(false)`) only when it takes it out, *before* it
/// drains. Swaps on one flag are totally ordered: a push before the daemon's swap is
/// released to it by the sender's swap (read by the daemon's, or earlier in its release
/// sequence), so the drain sees it; a push after it is followed by a swap that reads the
/// daemon's `false` and schedules again. Each `true` is read by one flush's swap, so the
/// connection is in the list at most once.
#[test]
fn queued_packets_are_always_scheduled() {
    check("ready::queued_packets_are_always_scheduled", 3, || {
        let daemon = Daemon::new();
        let sender = {
            let daemon = daemon.clone();
            thread::spawn(move || {
                daemon.send();
                daemon.send();
            })
        };
        daemon.run(2, false);
        sender.join().unwrap();
    });
}

/// **Property:** a connection held back by pacing is not forgotten: the daemon keeps it
/// scheduled (senders skip the wake) only while packets are queued, and then comes back on
/// its timer; a packet queued as the flush gives up is still sent, also when the held flush
/// found the outbox empty.
///
/// **Why it holds:** `hold_for_pacing` stores `true` only after it saw a packet in the
/// outbox, and the daemon then arms a timer, so a sender that reads that `true` and skips
/// the wake has its packet flushed when the timer fires. If the hold saw an empty outbox it
/// leaves the flag `false` (as `begin_flush` set it), and the next sender's swap reads it and
/// schedules the connection again.
///
/// Not claimed here: once per burst. A flush the flag did not ask for clears it while the
/// connection may still be in the list, so the next send lists it a second time (loom shows
/// it). That costs one empty flush, and at most one wake, and loses nothing.
#[test]
fn paced_connection_is_scheduled_again() {
    check("ready::paced_connection_is_scheduled_again", 3, || {
        let daemon = Daemon::new();
        let sender = {
            let daemon = daemon.clone();
            thread::spawn(move || {
                daemon.send();
                daemon.send();
            })
        };
        daemon.run(2, true);
        sender.join().unwrap();
    });
}

/// **Property:** the same for a burst from two sender threads at once: both packets are
/// sent, and the connection is in the ready list at most once.
///
/// **Why it holds:** as above; and of two senders whose swaps both follow the daemon's
/// `false`, only the first reads it (a swap, not a load and a store: swaps on one flag are
/// totally ordered and each reads the one before), so only one of them appends.
#[test]
fn a_burst_from_two_senders_schedules_once() {
    check("ready::a_burst_from_two_senders_schedules_once", 3, || {
        let daemon = Daemon::new();
        let senders: Vec<_> = (0..2)
            .map(|_| {
                let daemon = daemon.clone();
                thread::spawn(move || daemon.send())
            })
            .collect();
        daemon.run(2, false);
        for sender in senders {
            sender.join().unwrap();
        }
    });
}
