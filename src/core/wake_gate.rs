//! The gate between work producers and a poller that sleeps in a system call (the daemon in
//! `mio::Poll`): a producer pays for a wake-up syscall only when the poller is asleep, and
//! then only the first producer of a burst does.
//!
//! One flag, `sleeping`, touched only by read-modify-writes (swaps), so every access reads
//! the one before it in the flag's modification order. The poller swaps in `true`, then looks
//! for work, then sleeps if it found none; a producer publishes its work, then swaps in
//! `false`, and wakes the poller if it took a `true`. Of the poller's raise and a producer's
//! swap, one comes first:
//! - the producer's: the poller's raise reads the producer's release swap (or a later swap,
//!   which extends its release sequence), so the work is visible to the poller's look;
//! - the poller's: the producer's swap takes that `true` (and wakes the poller), or another
//!   producer took it first (and wakes the poller).
//!
//! Either way the poller does not sleep with the work unseen, and each `true` wakes at most
//! once. Proven in `loom-tests/tests/wake_gate.rs`.

use crate::core::sync::{AtomicBool, Ordering};

/// Tells producers whether the poller must be woken.
#[derive(Debug, Default)]
pub struct WakeGate {
    sleeping: AtomicBool,
}

impl WakeGate {
    /// A gate whose poller is awake.
    pub fn new() -> Self {
        Self {
            sleeping: AtomicBool::new(false),
        }
    }

    /// Poller: announces that it is about to sleep. Look for work *after* this call, and
    /// sleep only if there is none: work published before the look is found by it, work
    /// published after it makes its producer's [`must_wake`](Self::must_wake) say `true`.
    pub fn prepare_sleep(&self) {
        // Acquire: reading a producer's release swap makes its work visible to the look.
        self.sleeping.swap(true, Ordering::Acquire);
    }

    /// Poller: its sleep has returned (woken or not); producers need not wake it.
    pub fn awake(&self) {
        // A swap, not a store: a store would end the release sequence of a producer's swap,
        // and the next raise could read it without seeing that producer's work.
        self.sleeping.swap(false, Ordering::Relaxed);
    }

    /// Producer: call after publishing work. `true` means the poller may be asleep without
    /// having seen that work, and this caller must wake it; of concurrent callers at most one
    /// per raise is told so.
    pub fn must_wake(&self) -> bool {
        // Release: the poller's next raise, reading this swap, sees the work published before
        // it. A swap, not a load: a load could read a stale `false` and skip a needed wake.
        self.sleeping.swap(false, Ordering::Release)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    #[test]
    fn example_module() {
        use crate::core::wake_gate::WakeGate;
        let gate = WakeGate::new();
        assert!(!gate.must_wake()); // the poller is awake: producers skip the syscall
        gate.prepare_sleep(); // the poller looked, found no work, and is going to sleep
        assert!(gate.must_wake()); // the first producer of a burst wakes it
        assert!(!gate.must_wake()); // the others do not
    }

    #[test]
    fn example_wake_gate() {
        use crate::core::wake_gate::WakeGate;
        use std::sync::Mutex;

        let gate = WakeGate::new();
        let work: Mutex<Vec<u32>> = Mutex::new(Vec::new());

        // Poller, before sleeping: announce, then look.
        gate.prepare_sleep();
        let may_sleep = work.lock().unwrap().is_empty();
        assert!(may_sleep);

        // Producer: publish, then ask. The poller is asleep: this producer wakes it...
        work.lock().unwrap().push(1);
        assert!(gate.must_wake());
        // ...and the next one of the burst need not.
        work.lock().unwrap().push(2);
        assert!(!gate.must_wake());

        // Poller, after its sleep returns.
        gate.awake();
    }

    #[test]
    fn example_new() {
        let gate = crate::core::wake_gate::WakeGate::new();
        assert!(!gate.must_wake()); // the poller is awake: no wake-up needed
    }

    #[test]
    fn example_prepare_sleep() {
        let gate = crate::core::wake_gate::WakeGate::new();
        gate.prepare_sleep();
        // Work published from here on must wake the poller.
        assert!(gate.must_wake());
    }

    #[test]
    fn example_awake() {
        let gate = crate::core::wake_gate::WakeGate::new();
        gate.prepare_sleep();
        gate.awake(); // the sleep timed out: nobody needs to wake the poller
        assert!(!gate.must_wake());
    }

    #[test]
    fn example_must_wake() {
        use crate::core::wake_gate::WakeGate;
        use std::sync::Arc;
        let gate = Arc::new(WakeGate::new());
        gate.prepare_sleep();
        let producers: Vec<_> = (0..4)
            .map(|_| {
                let gate = gate.clone();
                std::thread::spawn(move || gate.must_wake())
            })
            .collect();
        let wakes = producers.into_iter().map(|p| p.join().unwrap());
        assert_eq!(wakes.filter(|&woke| woke).count(), 1); // one wake per raise
    }
}
