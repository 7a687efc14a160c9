//! The daemon's ready list and the wake gate in front of it: what senders hand the event
//! loop, and whether they must wake it to look.
//!
//! A sender that makes an outbox non-empty (and finds the connection's `scheduled` flag
//! clear) pushes the connection here; `push` then asks the [`WakeGate`] whether the loop is
//! asleep, and only then does the caller make the wake-up syscall (the daemon's
//! `mio::Waker`), and of a burst only the first sender does. Before it sleeps, the loop
//! raises the gate and then looks at the list: whatever was pushed before its look, it finds;
//! whatever after, the gate reports to its pusher (the proof is in `wake_gate.rs`). So a busy
//! loop, or a manual daemon between `poll` calls, costs senders no syscall at all.

use super::sync::{Mutex, MutexGuard};
use super::wake_gate::WakeGate;

/// Work for the event loop, and the gate that says whether it must be woken to see it.
#[derive(Debug, Default)]
pub struct ReadyList<R> {
    items: Mutex<Vec<R>>,
    gate: WakeGate,
}

impl<R> ReadyList<R> {
    /// An empty list whose loop is awake.
    pub fn new() -> Self {
        Self {
            items: Mutex::new(Vec::new()),
            gate: WakeGate::new(),
        }
    }

    /// Sender: appends `item`; `true` means the caller must wake the loop.
    pub fn push(&self, item: R) -> bool {
        self.lock().push(item);
        self.gate.must_wake()
    }

    /// After publishing work elsewhere (a stop flag, a control-plane change): `true` means
    /// the caller must wake the loop.
    pub fn must_wake(&self) -> bool {
        self.gate.must_wake()
    }

    /// Loop, before it sleeps: raises the gate, then reports whether work is already waiting
    /// (then it must not sleep). Work published elsewhere before a `must_wake` is seen by any
    /// look that follows this call.
    pub fn prepare_sleep(&self) -> bool {
        self.gate.prepare_sleep();
        !self.lock().is_empty()
    }

    /// Loop, when its sleep returns.
    pub fn awake(&self) {
        self.gate.awake();
    }

    /// Loop: takes everything in the list into `into` (which must be empty; the two vectors
    /// trade places, so neither reallocates once both reached the peak).
    pub fn take(&self, into: &mut Vec<R>) {
        let mut items = self.lock();
        // The two vectors alternate every turn, so one could stay unallocated through any
        // warm-up whose wakes happen to fall on the same parity, and a sender would then
        // allocate in the steady state. Growing the loop's one to match keeps the list that
        // senders push into at its peak capacity whichever vector it is.
        into.reserve(items.capacity());
        std::mem::swap(&mut *items, into);
    }

    fn lock(&self) -> MutexGuard<'_, Vec<R>> {
        // No user code runs under the lock: poison leaves the vector consistent.
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }
}
