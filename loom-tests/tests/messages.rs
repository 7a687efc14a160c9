//! Proofs for a message-mode connection's shared state (`gudp::internals::messages::
//! MessageCore`): the budget reservations against the daemon's releases, the outbox handoff
//! against `finish`, and the receive path's refill request against the daemon's delivery.
//! Both modes (`--features gudp/naive-mutex` changes the inbox under the receive path).
#![cfg(loom)]

use gudp::internals::conn::Wait;
use gudp::internals::messages::{MessageCore, MessageSizes, OutMessage, Refused};
use gudp::internals::pool::BufferPool;
use gudp::internals::status::CloseReason;
use gudp::message::MessageEvent;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use loom_tests::check;

/// A core with one channel of `budget` bytes, rings of `outbox` and `inbox` slots.
fn core(budget: usize, outbox: usize, inbox: usize) -> Arc<MessageCore<u32>> {
    let sizes = MessageSizes {
        outbox,
        inbox,
        events: 2,
    };
    Arc::new(MessageCore::new(sizes, &[budget], BufferPool::new(2, 8)))
}

fn message(id: u64) -> OutMessage {
    OutMessage {
        id,
        channel: 0,
        bytes: Vec::new(),
        cost: 1,
    }
}

/// **Property:** reservations never take a channel past its budget, and a sender waiting
/// for room is woken by the release that makes it: two senders race for the one byte of a
/// full budget that the daemon releases; one gets it at once or after a wait, the other is
/// refused by `try_reserve`, and the budget ends exactly full. A lost wakeup would leave
/// the waiter parked: loom reports the deadlock.
///
/// **Why it holds:** `try_reserve` moves the count only by a CAS from the value it checked,
/// so no interleaving adds past the limit. The waiter announces itself on the parker
/// (`sleepers`, fence) before re-checking the room; `release` subtracts, fences, then reads
/// `sleepers` (`Parker::notify_waiters`): one of the two sees the other's write, so either
/// the re-check finds the room or the release wakes the sleeper.
#[test]
fn reserve_racing_release() {
    check("messages::reserve_racing_release", 2, || {
        let core = core(1, 1, 1);
        core.try_reserve(0, 1).unwrap(); // full: held by the layer
        let waiter = {
            let core = core.clone();
            thread::spawn(move || core.reserve(0, 1, Wait::Until(None), || None))
        };
        let racer = {
            let core = core.clone();
            thread::spawn(move || core.try_reserve(0, 1))
        };
        core.release(0, 1); // the daemon: the layer let the byte go
        let raced = racer.join().unwrap();
        match raced {
            Ok(()) => {
                // The racer took the byte: the waiter needs another release.
                core.release(0, 1);
            }
            Err(refused) => assert_eq!(
                refused,
                Refused::Full {
                    needed: 1,
                    available: 0
                }
            ),
        }
        waiter.join().unwrap().unwrap();
        assert_eq!(core.reserved(0), 1, "the budget is over- or under-counted");
    });
}

/// **Property:** a message handed to the daemon racing the connection's end is never
/// stranded: if `push` accepted it, its id gets exactly one event (`Lost`: the connection
/// ended before the daemon took it), its reservation is returned and the outbox ends
/// empty; if `push` refused, it was told the close reason and nothing was reported.
///
/// **Why it holds:** the Dekker handshake of `core::conn`, repeated: `finish` sets
/// `outbox_closed`, fences, then drains; `push` pushes, fences, then reads `outbox_closed`
/// and drains if it is set. One of the two sees the message; each pop takes a different
/// one, so none is reported twice.
#[test]
fn push_racing_finish() {
    check("messages::push_racing_finish", 3, || {
        let core = core(2, 1, 1);
        core.try_reserve(0, 1).unwrap();
        let sender = {
            let core = core.clone();
            thread::spawn(move || {
                let closed = || core.inbox.status().close_reason();
                core.push(message(7), Wait::Never, closed, || {})
                    .map_err(|(_, refused)| refused)
            })
        };
        core.finish(CloseReason::ClosedByPeer);
        let pushed = sender.join().unwrap();
        let events: Vec<MessageEvent> = std::iter::from_fn(|| core.poll_event()).collect();
        match pushed {
            Ok(()) => {
                assert_eq!(events.len(), 1, "stranded or reported twice: {events:?}");
                assert!(matches!(events[0], MessageEvent::Lost(id) if id.get() == 7));
                assert_eq!(core.reserved(0), 0, "the reservation was not returned");
            }
            Err(refused) => {
                assert_eq!(refused, Refused::Closed(CloseReason::ClosedByPeer));
                assert!(events.is_empty());
            }
        }
        assert!(core.outbox_is_empty(), "a message stranded in the outbox");
    });
}

/// The daemon's ready list, reduced to what the receive path needs: a flag a consumer sets
/// (`make_ready`) and the daemon sleeps on.
#[derive(Default)]
struct Ready {
    flag: Mutex<bool>,
    cond: Condvar,
}

impl Ready {
    fn make_ready(&self) {
        *self.flag.lock().unwrap() = true;
        self.cond.notify_one();
    }

    fn wait(&self) {
        let mut flag = self.flag.lock().unwrap();
        while !*flag {
            flag = self.cond.wait(flag).unwrap();
        }
        *flag = false;
    }
}

/// **Property:** a full inbox never strands received messages in the layer while the
/// application waits for them: the daemon holds two messages for an inbox of one slot and
/// sleeps when it has no room; a consumer blocked in `recv` gets both, in order. A lost
/// refill request leaves the daemon asleep and the consumer parked: loom reports the
/// deadlock.
///
/// **Why it holds:** `deliver` sets `starved`, fences, then pushes once more; `took` runs
/// after a pop, fences, then reads `starved`. Either the daemon's retry sees the slot the
/// pop freed, or the consumer sees `starved` and asks for a refill (the flag is swapped, so
/// one consumer asks).
#[test]
fn starved_against_take() {
    check("messages::starved_against_take", 3, || {
        let core = core(1, 1, 1);
        let ready = Arc::new(Ready::default());
        let received = Arc::new(AtomicUsize::new(0));
        let consumer = {
            let (core, ready, received) = (core.clone(), ready.clone(), received.clone());
            thread::spawn(move || {
                for expected in 0..2u32 {
                    assert_eq!(core.inbox.recv(), Ok(expected), "out of order");
                    received.fetch_add(1, Ordering::Relaxed);
                    core.took(|| ready.make_ready());
                }
            })
        };
        for item in 0..2u32 {
            let mut item = item;
            while let Err(back) = core.deliver(item) {
                item = back;
                ready.wait(); // no room: sleep until a consumer asks
            }
        }
        consumer.join().unwrap();
        assert_eq!(received.load(Ordering::Relaxed), 2);
    });
}
