//! The lead slot: how a consumer that waits on its connection's socket (rather than on the
//! inbox's parker) is told of an item the daemon delivered meanwhile.
//!
//! A consumer about to block in `recv` on a spawned daemon waits for the socket itself, so
//! that the kernel wakes it directly when the reply arrives (`src/connection/lead.rs`); it
//! then reads the socket for the loop. The daemon thread still owns the socket's readiness
//! and may read first: then it must wake that consumer, which does not sleep on the parker
//! but on its connection's eventfd. The slot says whether such a consumer waits.
//!
//! Protocol (Dekker, as the parker's): the consumer claims the slot, fences, then re-checks
//! the inbox and waits only if it is empty and not finished; the producer publishes (a push,
//! a finish), fences, then reads the slot and signals the eventfd if it is claimed. At least
//! one side sees the other's write, so an item is either seen by the re-check or signalled.
//! An eventfd keeps a signal until it is read, so a signal sent before the wait begins ends
//! it at once. Model-checked in `loom-tests/tests/lead.rs`.

use crate::core::sync::{fence, AtomicBool, Ordering};

/// Whether a consumer waits on the connection's eventfd (at most one at a time).
#[derive(Debug, Default)]
pub struct LeadSlot {
    claimed: AtomicBool,
}

impl LeadSlot {
    /// A free slot.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumer: claims the slot; `false` if another consumer holds it (then park on the
    /// inbox as usual). After `true`, re-check the inbox before waiting.
    pub fn claim(&self) -> bool {
        // AcqRel: a producer that reads `true` (Acquire) sees what the consumer set up
        // before claiming (its eventfd).
        if self
            .claimed
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        // Dekker point (consumer side): the claim is ordered before the re-check.
        fence(Ordering::SeqCst);
        true
    }

    /// Consumer, once its wait is over.
    pub fn release(&self) {
        self.claimed.store(false, Ordering::Release);
    }

    /// Producer, after publishing an item or a finish: whether the waiting consumer must be
    /// signalled.
    pub fn must_signal(&self) -> bool {
        // Dekker point (producer side): the publication is ordered before this read.
        fence(Ordering::SeqCst);
        self.claimed.load(Ordering::Acquire)
    }
}
