//! Proofs for the outbox (`gudp::internals::outbox`) used in reverse: the thread that may
//! have to wait is a *sender* waiting for space, and the daemon pops and notifies. The models
//! drive it through the connection's own code (`ConnCore::enqueue`, `close_inbox`, `finish`),
//! in both modes (`--features gudp/naive-mutex` for the `Mutex<VecDeque>` + `Condvar`
//! outbox).
//!
//! Oracles: loom's deadlock detector for a sender left asleep; for packets, each id the
//! sender was given must get exactly one notification once the connection has finished.
#![cfg(loom)]

use gudp::internals::conn::{ConnCore, Payload, Sizes, Wait};
use gudp::internals::delivery::{Delivery, PacketId};
use gudp::internals::pool::BufferPool;
use gudp::internals::status::CloseReason;
use gudp::SendError;
use loom::sync::Arc;
use loom::thread;
use loom_tests::check;

fn conn(outbox: usize) -> Arc<ConnCore> {
    let sizes = Sizes {
        inbox: 1,
        outbox,
        deliveries: 4,
        max_payload: 8,
    };
    Arc::new(ConnCore::new(sizes, BufferPool::new(4, 8)))
}

fn send(conn: &ConnCore, wait: Wait) -> Result<PacketId, SendError> {
    conn.enqueue(Payload::Borrowed(b"p"), wait, || {})
}

/// Every notification left in the ring, in order.
fn deliveries(conn: &ConnCore) -> Vec<Delivery> {
    std::iter::from_fn(|| conn.poll_delivery()).collect()
}

/// **Property:** a sender blocked on a full outbox is never left asleep once the daemon has
/// made room: `send` returns its id, and the packet is there for the daemon's next pop.
///
/// **Why it holds:** the sender announces itself to the outbox's parker, fences, re-checks
/// for room, then sleeps; the daemon's pop frees the slot (its Release stamp store), fences,
/// then reads the sleeper count (`Outbox::pop` → `notify_one`). One side sees the other, as
/// for the inbox: the sender finds room, or the daemon bumps the epoch under the lock that
/// the sender checks before it waits. (Naive mode: the pop notifies the condvar the sender
/// waits on, under the same mutex as the sender's check.)
#[test]
fn no_sender_sleeps_while_space_exists() {
    check("outbox::no_sender_sleeps_while_space_exists", 3, || {
        let conn = conn(1);
        assert_eq!(send(&conn, Wait::Never), Ok(PacketId(0)));
        let sender = {
            let conn = conn.clone();
            thread::spawn(move || send(&conn, Wait::Until(None)))
        };
        assert_eq!(conn.outbox.pop().map(|p| p.id), Some(0));
        assert_eq!(sender.join().unwrap(), Ok(PacketId(1)));
        assert_eq!(conn.outbox.pop().map(|p| p.id), Some(1));
    });
}

/// **Property:** a sender blocked on a full outbox is woken by the daemon's flushes even
/// though no pop inside a flush wakes anyone (`Outbox::pop_quietly`, as `flush_outbox` pops):
/// a flush that leaves more than half the limit waiting wakes nobody, and the one that
/// drains it to half wakes every waiting sender (`Outbox::wake_if_drained`).
///
/// **Why it holds:** `wake_if_drained` reads the ring's length after the flush's pops and,
/// at half the limit or less, notifies every sender (`notify_all`: a fence, then the sleeper
/// count, and the epoch bump under the parker's lock). A sender announces itself, fences and
/// re-checks for room before it sleeps. If its re-check ran before the pops, the notify
/// counts it; if after, it found room (a pop left fewer than the limit) and pushed without
/// sleeping. A flush that stops above half leaves packets waiting, and the daemon flushes
/// again while any wait (the model's second flush), so some flush always ends at half.
#[test]
fn a_quiet_flush_wakes_a_blocked_sender_once_drained() {
    check(
        "outbox::a_quiet_flush_wakes_a_blocked_sender_once_drained",
        3,
        || {
            let conn = conn(4);
            for id in 0..4 {
                assert_eq!(send(&conn, Wait::Never), Ok(PacketId(id)));
            }
            let sender = {
                let conn = conn.clone();
                thread::spawn(move || send(&conn, Wait::Until(None)))
            };
            // A flush that sends one packet: three of four still wait, nobody is woken.
            assert_eq!(conn.outbox.pop_quietly().map(|p| p.id), Some(0));
            conn.outbox.wake_if_drained();
            // A flush that sends one more: two of four wait (half), every sender is woken. (A
            // sender that found room after the first flush pushed instead, and does not wait.)
            assert_eq!(conn.outbox.pop_quietly().map(|p| p.id), Some(1));
            conn.outbox.wake_if_drained();
            assert_eq!(sender.join().unwrap(), Ok(PacketId(4)));
            for id in 2..=4 {
                assert_eq!(conn.outbox.pop_quietly().map(|p| p.id), Some(id));
            }
        },
    );
}

/// **Property:** a sender blocked by the outbox's pacing limit (below its capacity) is woken
/// when the daemon raises the limit.
///
/// **Why it holds:** `set_limit` that raises the limit wakes every waiting sender
/// unconditionally (`notify_all` takes the parker's lock and bumps the epoch), and a sender
/// re-checks `has_room` after announcing itself: either it sees the new limit, or it waits
/// under the lock and is woken by the bump.
#[test]
fn no_sender_sleeps_when_the_limit_rises() {
    check("outbox::no_sender_sleeps_when_the_limit_rises", 3, || {
        let conn = conn(2);
        conn.outbox.set_limit(1);
        assert_eq!(send(&conn, Wait::Never), Ok(PacketId(0)));
        let sender = {
            let conn = conn.clone();
            thread::spawn(move || send(&conn, Wait::Until(None)))
        };
        conn.outbox.set_limit(2);
        assert_eq!(sender.join().unwrap(), Ok(PacketId(1)));
    });
}

/// **Property:** closing the connection wakes every sender blocked on its full outbox, and
/// each is told the close reason. `close_inbox` alone must do it: a closed connection
/// lingers, and `finish` may come a second later.
///
/// **Why it holds:** `close_inbox` sets a final bit in the status word, then wakes every
/// sender (`Outbox::wake_all`: the epoch bump under the lock, then `notify_all`). A sender
/// checks the status word before each try and again after announcing itself: it sees the
/// bit, or it is waiting under the lock when the bump comes (or sees the bump when it takes
/// the lock).
#[test]
fn close_wakes_every_blocked_sender() {
    check("outbox::close_wakes_every_blocked_sender", 3, || {
        let conn = conn(1);
        assert_eq!(send(&conn, Wait::Never), Ok(PacketId(0)));
        let senders: Vec<_> = (0..2)
            .map(|_| {
                let conn = conn.clone();
                thread::spawn(move || send(&conn, Wait::Until(None)))
            })
            .collect();
        conn.close_inbox(CloseReason::Closed);
        for sender in senders {
            assert_eq!(
                sender.join().unwrap(),
                Err(SendError::Closed(CloseReason::Closed))
            );
        }
    });
}

/// **Property:** when two senders race the daemon's `finish`, the outbox has up to three
/// consumers at once (the daemon's drain and each sender that sees `outbox_closed` and drains
/// too: `discard_queued` on a user thread), and still no packet is lost or reported twice:
/// every id a send returned gets exactly one `Lost`, and the outbox ends empty.
///
/// **Why it holds:** each drain pops; a pop takes a position by CAS (or under the mutex), so
/// two drains never take the same packet, and a packet is reported only by the drain that
/// popped it. A packet still being written when a drain looks is not popped by that drain;
/// its sender then sees `outbox_closed` (the Dekker handshake, `conn::enqueue_racing_finish`)
/// and drains it itself.
#[test]
fn pops_from_user_threads_during_close_lose_nothing() {
    check(
        "outbox::pops_from_user_threads_during_close_lose_nothing",
        3,
        || {
            let conn = conn(2);
            let senders: Vec<_> = (0..2)
                .map(|_| {
                    let conn = conn.clone();
                    thread::spawn(move || send(&conn, Wait::Never))
                })
                .collect();
            conn.finish(CloseReason::TimedOut);
            let mut accepted = Vec::new();
            for sender in senders {
                match sender.join().unwrap() {
                    Ok(PacketId(id)) => accepted.push(id),
                    Err(error) => assert_eq!(error, SendError::Closed(CloseReason::TimedOut)),
                }
            }
            let mut lost: Vec<u64> = deliveries(&conn)
                .into_iter()
                .map(|d| match d {
                    Delivery::Lost(PacketId(id)) => id,
                    other => panic!("{other:?} for a packet that was never sent"),
                })
                .collect();
            lost.sort_unstable();
            accepted.sort_unstable();
            assert_eq!(lost, accepted, "each accepted packet reported lost once");
            assert_eq!(conn.outbox.len(), 0, "a packet left in the outbox");
        },
    );
}
