//! Proofs for the lead slot (`LeadSlot` in `src/core/inbox/lead.rs`): a consumer about to
//! block in `recv` on a spawned daemon waits on its connection's socket and eventfd (with
//! `ppoll`) rather than on the inbox's parker (`src/connection/lead.rs`); the daemon thread,
//! or another consumer reading the shared socket, may deliver its item meanwhile, and must
//! then signal the eventfd, since the parker's wake would reach nobody.
//!
//! The model uses the real `Inbox` and the real `LeadSlot`. The eventfd is modelled as the
//! kernel has it: a signal sets it, a wait returns once it is set without clearing it, and a
//! drain clears it (the consumer waits, releases the slot, then drains, in that order). The
//! socket side of the wait is left out: a readable socket only ends the wait early, which is
//! a spurious wake here (the loop goes back to looking). A consumer left waiting with its
//! item in the inbox, and nobody due to signal it, waits for ever, which loom reports as a
//! deadlock: that is the oracle.
#![cfg(loom)]

use gudp::internals::inbox::{Inbox, LeadSlot, TryRecvError};
use gudp::internals::status::CloseReason;
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use loom_tests::check;

/// A connection as far as the lead slot is concerned: its inbox, its slot, its eventfd.
struct Conn {
    inbox: Inbox<u8>,
    lead: LeadSlot,
    signalled: Mutex<bool>,
    eventfd: Condvar,
}

impl Conn {
    fn new(capacity: usize) -> Self {
        Self {
            inbox: Inbox::new(capacity),
            lead: LeadSlot::new(),
            signalled: Mutex::new(false),
            eventfd: Condvar::new(),
        }
    }

    /// `LeadWait::signal`: sets the eventfd.
    fn signal(&self) {
        *self.signalled.lock().unwrap() = true;
        self.eventfd.notify_all();
    }

    /// `ConnShared::signal_leader`, after a push or a finish.
    fn signal_leader(&self) {
        if self.lead.must_signal() {
            self.signal();
        }
    }

    /// The daemon's delivery (`Driver::handle_datagram`): push, then signal the leader.
    fn deliver(&self, item: u8) {
        self.inbox.push(item).unwrap();
        self.signal_leader();
    }

    /// `ConnShared::finish`.
    fn finish(&self) {
        self.inbox.finish(CloseReason::ClosedByPeer);
        self.signal_leader();
    }

    /// `lead::recv` without the socket and the deadline; a consumer that cannot claim the
    /// slot parks on the inbox instead, as `Connection::recv` does.
    fn recv(&self) -> Result<u8, CloseReason> {
        loop {
            match self.inbox.try_recv() {
                Ok(item) => return Ok(item),
                Err(TryRecvError::Closed(reason)) => return Err(reason),
                Err(_) => {} // empty
            }
            if !self.lead.claim() {
                return self.inbox.recv();
            }
            // The re-check after claiming: the Dekker point against `signal_leader`.
            if !self.inbox.is_empty() || self.inbox.status().is_finished() {
                self.lead.release();
                continue;
            }
            // `ppoll`: returns once the eventfd is set, leaving it set.
            let mut signalled = self.signalled.lock().unwrap();
            while !*signalled {
                signalled = self.eventfd.wait(signalled).unwrap();
            }
            drop(signalled);
            self.lead.release();
            // `LeadWait::drain`: a signal sent after this is kept for the next wait.
            *self.signalled.lock().unwrap() = false;
        }
    }
}

/// The daemon thread, doing `work` on the connection.
fn daemon(conn: &Arc<Conn>, work: fn(&Conn)) -> thread::JoinHandle<()> {
    let conn = conn.clone();
    thread::spawn(move || work(&conn))
}

/// The daemon delivering two items.
fn deliver_two(conn: &Conn) {
    conn.deliver(1);
    conn.deliver(2);
}

/// **Property:** items the daemon delivers while the consumer leads are all received; the
/// consumer never waits on its eventfd with an item in the inbox and no signal coming.
///
/// **Why it holds:** the consumer claims the slot, fences, and re-checks the inbox; the
/// daemon pushes, fences, and reads the slot (`LeadSlot::must_signal`). Of the two fenced
/// pairs at least one side sees the other's write: the re-check finds the item, or the
/// daemon finds the slot claimed and signals. A signal before the wait begins is kept by the
/// eventfd; one that the drain after a wait clears belonged to an item the next look (the
/// `try_recv` after it) or the next claim's re-check finds.
#[test]
fn an_item_delivered_meanwhile_wakes_the_leader() {
    check(
        "lead::an_item_delivered_meanwhile_wakes_the_leader",
        3,
        || {
            let conn = Arc::new(Conn::new(2));
            let daemon = {
                let conn = conn.clone();
                thread::spawn(move || {
                    conn.deliver(1);
                    conn.deliver(2);
                })
            };
            assert_eq!(conn.recv(), Ok(1));
            assert_eq!(conn.recv(), Ok(2));
            daemon.join().unwrap();
        },
    );
}

/// **Property:** a consumer that leads learns the close reason, after the item delivered
/// before it (the drain rule holds on this path too).
///
/// **Why it holds:** the finish is published, then signalled under the same handshake as a
/// push; the re-check reads the status as well as the ring.
#[test]
fn a_finish_wakes_the_leader() {
    check("lead::a_finish_wakes_the_leader", 3, || {
        let conn = Arc::new(Conn::new(2));
        let daemon = daemon(&conn, |conn| {
            conn.deliver(1);
            conn.finish();
        });
        assert_eq!(conn.recv(), Ok(1));
        assert_eq!(conn.recv(), Err(CloseReason::ClosedByPeer));
        daemon.join().unwrap();
    });
}

/// **Property:** with two consumers on one connection, one leads and the other parks on the
/// inbox; each gets an item, whichever path it took.
///
/// **Why it holds:** the slot admits one leader (a compare-and-swap); the other consumer's
/// wait is the parker's, which every push notifies (`inbox.rs` proves it); the leader's is
/// the slot's, as above. An item the leader's look leaves to the other consumer is passed on
/// by the parker's wake-next rule.
#[test]
fn two_consumers_one_leads_the_other_parks() {
    check("lead::two_consumers_one_leads_the_other_parks", 2, || {
        let conn = Arc::new(Conn::new(2));
        let daemon = daemon(&conn, deliver_two);
        let other = {
            let conn = conn.clone();
            thread::spawn(move || conn.recv().unwrap())
        };
        let mine = conn.recv().unwrap();
        let theirs = other.join().unwrap();
        assert_eq!(mine + theirs, 3);
        daemon.join().unwrap();
    });
}
