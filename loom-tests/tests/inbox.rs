//! Proofs for `gudp::internals::inbox::Inbox`: the read rule, with no lost wakeup on any path.
//!
//! The same models check both implementations: the lock-free inbox by default, the naive
//! `Mutex<VecDeque>` + `Condvar` inbox with `--features gudp/naive-mutex`.
//!
//! The main oracle is loom's deadlock detector. A consumer blocked in `recv` with nobody left
//! to wake it is a lost wakeup, and loom reports it as a deadlock in that interleaving.
//!
//! loom has no clock, so in these models a timed wait (`recv_timeout`) times out at the
//! moment it would start sleeping; loom explores whether a notification landed before that.
#![cfg(loom)]

use gudp::internals::inbox::{Inbox, RecvTimeoutError, TryRecvError};
use gudp::internals::status::CloseReason;
use loom::thread;
use loom_tests::check;
use std::time::Duration;

/// **Property (1 producer / 1 consumer):** a push racing a consumer on its way to sleep is
/// never missed: `recv` returns the item.
///
/// **Why it holds:** the consumer announces itself (`sleepers += 1`), fences, then re-checks
/// the ring; the producer publishes the item, fences, then reads `sleepers`. With a `SeqCst`
/// fence on both sides at least one sees the other: either the consumer finds the item, or
/// the producer finds the sleeper and bumps the epoch under the lock, which the consumer
/// checks under the same lock before sleeping.
#[test]
fn no_lost_wakeup_one_consumer() {
    check("inbox::no_lost_wakeup_one_consumer", 3, || {
        let inbox = Inbox::new(1);
        let consumer = {
            let inbox = inbox.clone();
            thread::spawn(move || inbox.recv())
        };
        inbox.push(7).unwrap();
        assert_eq!(consumer.join().unwrap(), Ok(7));
    });
}

/// **Property (1 producer / 2 consumers):** one item and then the close reach two consumers
/// racing to sleep: exactly one gets the item, both end with the close reason, neither hangs.
///
/// **Why it holds:** the push wakes one sleeper (or is seen by the re-check); `finish`
/// always takes the lock and wakes all, so whoever is left asleep is woken; a consumer that
/// sees the final bit pops once more before reporting it (drain rule), so the item cannot be
/// stranded behind the close.
#[test]
fn no_lost_wakeup_two_consumers() {
    check("inbox::no_lost_wakeup_two_consumers", 3, || {
        let inbox = Inbox::new(1);
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let inbox = inbox.clone();
                thread::spawn(move || {
                    let mut got = 0;
                    loop {
                        match inbox.recv() {
                            Ok(_) => got += 1,
                            Err(reason) => return (got, reason),
                        }
                    }
                })
            })
            .collect();
        inbox.push(1).unwrap();
        inbox.finish(CloseReason::Closed);
        let results: Vec<_> = consumers.into_iter().map(|c| c.join().unwrap()).collect();
        assert_eq!(results.iter().map(|r| r.0).sum::<usize>(), 1);
        assert!(results.iter().all(|r| r.1 == CloseReason::Closed));
    });
}

/// **Property (wake-next):** two items reach two blocked consumers: each gets one, neither
/// sleeps forever — with no close to rescue a consumer that was forgotten.
///
/// **Why it holds:** every push wakes one sleeper; and a consumer that takes an item and sees
/// more left wakes the next sleeper, so even when one woken consumer takes both wakes' worth of
/// attention the second item still has a consumer awake for it.
#[test]
fn wake_next_two_items_two_consumers() {
    check("inbox::wake_next_two_items_two_consumers", 3, || {
        let inbox = Inbox::new(2);
        let other = {
            let inbox = inbox.clone();
            thread::spawn(move || inbox.recv())
        };
        let producer = {
            let inbox = inbox.clone();
            thread::spawn(move || {
                inbox.push(1).unwrap();
                inbox.push(2).unwrap();
            })
        };
        let mine = inbox.recv().unwrap();
        let theirs = other.join().unwrap().unwrap();
        producer.join().unwrap();
        let mut both = [mine, theirs];
        both.sort();
        assert_eq!(both, [1, 2]);
    });
}

/// **Property (finish wakes all):** three consumers blocked on an empty inbox all wake when it
/// is finished, and all report the reason.
///
/// **Why it holds:** the first `finish` sets the final bit and then bumps the epoch under the
/// lock and signals all. A consumer re-checks the final bit after announcing itself, and checks
/// the epoch under the lock before sleeping, so it either sees the bit or gets the signal.
#[test]
fn finish_wakes_all_consumers() {
    check("inbox::finish_wakes_all_consumers", 3, || {
        let inbox = Inbox::<u8>::new(1);
        let consumers: Vec<_> = (0..3)
            .map(|_| {
                let inbox = inbox.clone();
                thread::spawn(move || inbox.recv())
            })
            .collect();
        inbox.finish(CloseReason::TimedOut);
        for consumer in consumers {
            assert_eq!(consumer.join().unwrap(), Err(CloseReason::TimedOut));
        }
    });
}

/// **Property (drain rule):** an item pushed before `finish` is received before the close
/// reason, even by a consumer that races both.
///
/// **Why it holds:** the push publishes the item before `finish`'s Release `fetch_or`; a
/// consumer whose Acquire load sees the final bit therefore also sees the item, and it pops
/// once more after seeing the bit before it reports the reason.
#[test]
fn drain_rule_item_before_close() {
    check("inbox::drain_rule_item_before_close", 3, || {
        let inbox = Inbox::new(1);
        let consumer = {
            let inbox = inbox.clone();
            thread::spawn(move || loop {
                match inbox.try_recv() {
                    Ok(item) => return item,
                    Err(TryRecvError::Closed(reason)) => {
                        panic!("closed ({reason}) before the item")
                    }
                    Err(_) => thread::yield_now(), // empty
                }
            })
        };
        inbox.push(5).unwrap();
        inbox.finish(CloseReason::ClosedByPeer);
        assert_eq!(consumer.join().unwrap(), 5);
        assert_eq!(
            inbox.try_recv(),
            Err(TryRecvError::Closed(CloseReason::ClosedByPeer))
        );
    });
}

/// **Property (a consumer that leaves without an item passes the wake on):** consumer A waits
/// with a timeout, consumer B waits without one, and one item is pushed. If A times out, B
/// must still get the item with nothing else to wake it; if A took the item, B is released by
/// a close. In no interleaving is the item stranded while B sleeps.
///
/// **Why it holds:** the push's wake may land on A just as A times out. A never leaves on a
/// timeout without one more look at the inbox: if the item is there, A takes it (and the wake
/// was used for its purpose); if it is not, someone else took it and no wake is owed. The
/// model makes the timeout fire at the worst moment, so loom explores exactly that race.
#[test]
fn timeout_passes_the_wake_on() {
    check("inbox::timeout_passes_the_wake_on", 3, || {
        let inbox = Inbox::new(1);
        let a = {
            let inbox = inbox.clone();
            thread::spawn(move || inbox.recv_timeout(Duration::from_secs(1)))
        };
        let b = {
            let inbox = inbox.clone();
            thread::spawn(move || inbox.recv())
        };
        inbox.push(9).unwrap();
        let a_result = a.join().unwrap();
        match a_result {
            Ok(item) => {
                assert_eq!(item, 9);
                inbox.finish(CloseReason::Closed);
                assert_eq!(b.join().unwrap(), Err(CloseReason::Closed));
            }
            Err(error) => {
                assert_eq!(error, RecvTimeoutError::Timeout);
                assert_eq!(b.join().unwrap(), Ok(9));
            }
        }
    });
}

/// **Property (batch drain):** a game-loop style `drain_into` racing the producer and the close
/// gets every item exactly once and then the close reason.
///
/// **Why it holds:** the drain pops until the ring is empty; once it sees nothing it applies
/// the same drain rule as `try_recv` (final bit, then one more pop) before reporting the close.
#[test]
fn drain_into_gets_everything_then_close() {
    check("inbox::drain_into_gets_everything_then_close", 3, || {
        let inbox = Inbox::new(2);
        let consumer = {
            let inbox = inbox.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    match inbox.drain_into(&mut got, 8) {
                        Ok(0) => thread::yield_now(),
                        Ok(_) => {}
                        Err(reason) => return (got, reason),
                    }
                }
            })
        };
        inbox.push(1).unwrap();
        inbox.push(2).unwrap();
        inbox.finish(CloseReason::Closed);
        let (got, reason) = consumer.join().unwrap();
        assert_eq!(got, [1, 2]);
        assert_eq!(reason, CloseReason::Closed);
    });
}

/// **Property (`len` agrees with `try_recv`, one producer):** a consumer that reads
/// `!is_empty()` (or `len() > 0`) gets an item from its own next `try_recv`; it never answers
/// `Empty` for an item it has just counted.
///
/// **Why it holds:** `len` counts claimed positions minus the newest one if its stamp still
/// says "claimed, not published". The tail load that saw the claim synchronizes with the
/// claiming CAS, after which the stamp can only move forward, so the stamp read is not stale.
/// With one producer every older position was published before the newest was claimed. The
/// Acquire stamp load (or the tail load, for older positions) makes the publication visible
/// to the `try_recv` that follows on the same thread, and with one consumer nobody moves head
/// in between.
#[test]
fn len_agrees_with_try_recv_one_producer() {
    check("inbox::len_agrees_with_try_recv_one_producer", 3, || {
        let inbox = Inbox::new(1);
        let producer = {
            let inbox = inbox.clone();
            thread::spawn(move || {
                inbox.push(1).unwrap();
                // The second push lands only after the consumer took the first.
                while inbox.push(2).is_err() {
                    thread::yield_now();
                }
            })
        };
        let mut next = 1;
        while next <= 2 {
            let counted = if next == 1 {
                !inbox.is_empty()
            } else {
                inbox.len() > 0
            };
            if counted {
                assert_eq!(inbox.try_recv(), Ok(next), "counted, but not received");
                next += 1;
            } else {
                thread::yield_now();
            }
        }
        producer.join().unwrap();
    });
}

/// **Property (nothing follows the close):** the producer pushes items and then finishes on
/// its own thread, and keeps trying to push; a consumer that has been told the close reason
/// never receives an item after it, and receives every item pushed before it.
///
/// **Why it holds:** `push` refuses once it sees a final bit, and a `finish` on the
/// producer's own thread is sequenced before its later pushes, whose status load therefore
/// sees the bit (coherence), so the pushed items are exactly those before `finish`. Their
/// publications happen before `finish`'s Release `fetch_or`; a consumer whose Acquire load sees
/// the final bit sees them all, and reports the reason only after one more pop finds nothing,
/// that is after every one of them was taken.
#[test]
fn nothing_follows_the_close_reason() {
    check("inbox::nothing_follows_the_close_reason", 3, || {
        let inbox = Inbox::new(2);
        let consumer = {
            let inbox = inbox.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    match inbox.try_recv() {
                        Ok(item) => got.push(item),
                        Err(TryRecvError::Closed(reason)) => {
                            assert_eq!(reason, CloseReason::ClosedByPeer);
                            break;
                        }
                        Err(_) => thread::yield_now(), // empty
                    }
                }
                // Told the reason: nothing may follow it.
                assert_eq!(
                    inbox.try_recv(),
                    Err(TryRecvError::Closed(CloseReason::ClosedByPeer)),
                    "an item after the close"
                );
                got
            })
        };
        inbox.push(1).unwrap();
        inbox.finish(CloseReason::ClosedByPeer);
        assert_eq!(inbox.push(2), Err(2), "a push after finish");
        assert_eq!(consumer.join().unwrap(), [1]);
    });
}
