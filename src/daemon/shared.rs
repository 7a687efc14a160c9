//! What user threads share with the daemon thread besides each connection's own state: the
//! ready list, the wake gate, the buffer pool, and the driver behind its control-plane lock.
//!
//! The ready list and its wake gate are the concurrent core's (`core::ready`); this side adds
//! the `mio::Waker` that the gate decides about.

use super::driver::Driver;
use super::{DaemonConfig, SocketKey};
use crate::connection::{ConnKey, ConnShared};
use crate::core::pool::BufferPool;
use crate::core::ready::ReadyList;
use crate::protocol::ProtocolStats;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// Something the daemon must look at.
pub(crate) enum Ready {
    /// A connection whose outbox has packets, or whose close was requested.
    Connection(Arc<ConnShared>),
    /// A socket whose listener was dropped: drain its accept queue and stop accepting.
    ListenerClosed(SocketKey),
}

pub(crate) struct DaemonShared {
    pub(crate) config: DaemonConfig,
    pub(crate) pool: Arc<BufferPool>,
    ready: ReadyList<Ready>,
    waker: mio::Waker,
    /// Waker calls that failed (the daemon then wakes at its next deadline instead).
    pub(crate) wake_errors: AtomicU64,
    pub(crate) stop: AtomicBool,
    /// The control plane: listen, connect and stats lock it briefly; the event loop holds it
    /// while it processes a batch (never while it sleeps in `poll`).
    driver: Mutex<Driver>,
    /// Whether a spawned thread runs the loop (then it owns every socket's readiness, and a
    /// consumer may read a socket for it: `src/connection/lead.rs`).
    pub(crate) loop_thread: AtomicBool,
}

impl DaemonShared {
    pub(crate) fn new(config: DaemonConfig, waker: mio::Waker, driver: Driver) -> Arc<Self> {
        let pool = BufferPool::new(config.pool_capacity, config.protocol.max_payload);
        Arc::new(Self {
            config,
            pool,
            ready: ReadyList::new(),
            waker,
            wake_errors: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            driver: Mutex::new(driver),
            loop_thread: AtomicBool::new(false),
        })
    }

    pub(crate) fn driver(&self) -> MutexGuard<'_, Driver> {
        // A panic on the daemon thread poisons the lock; the driver is then only used to
        // finish every connection, which is safe on whatever state it left.
        self.driver
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The driver, if no other thread holds it (never waits).
    pub(crate) fn try_driver(&self) -> Option<MutexGuard<'_, Driver>> {
        match self.driver.try_lock() {
            Ok(driver) => Some(driver),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Hands `item` to the event loop. If the loop sleeps without having seen it, the caller
    /// does the loop's work itself when it can (`serve_sleeping_loop`), else wakes it.
    pub(crate) fn make_ready(self: &Arc<Self>, item: Ready) {
        if self.ready.push(item) && !self.serve_sleeping_loop() {
            self.wake_loop();
        }
    }

    /// A sender found the loop asleep (in `mio::Poll`) without having seen its work. Waking
    /// it is a thread hand-off, tens of microseconds from idle, paid twice per round trip;
    /// instead, if nobody holds the driver lock, the sender does that work here: it takes the
    /// ready list and sends what the connections hold, then, on behalf of the loop that still
    /// sleeps, raises the wake gate again and looks once more, exactly as the loop does before
    /// it sleeps (work pushed before that look is served here, work pushed after it is told
    /// by the gate). The loop is woken only if the work armed a timer earlier than its sleep
    /// ends, or if a stop was requested meanwhile. `false` if the lock is held (the loop is in its turn, or a control-plane call
    /// runs): then the caller wakes the loop. The protocol is model-checked in
    /// `loom-tests/tests/serve_sleeping.rs`.
    fn serve_sleeping_loop(self: &Arc<Self>) -> bool {
        let Some(mut driver) = self.try_driver() else {
            return false;
        };
        if !driver.may_serve(Instant::now()) {
            return false; // a stream: the loop sends it in batches
        }
        loop {
            driver.serve_ready(self, Instant::now());
            if !self.ready.prepare_sleep() {
                break; // the gate is raised for the sleeping loop again
            }
            self.ready.awake(); // more work came in meanwhile: serve it too
        }
        // The loop's look also reads the stop flag: its setter found the gate lowered (we
        // held its `true`), so only this look, after the raise, is sure to see it.
        let wake = driver.sleep_ends_too_late() || self.stop.load(Ordering::Acquire);
        drop(driver);
        if wake {
            self.wake_loop();
        }
        true
    }

    /// After publishing work (the stop flag, a control-plane change): wakes the event loop if
    /// it may be asleep without having seen it.
    pub(crate) fn wake(&self) {
        if self.ready.must_wake() {
            self.wake_loop();
        }
    }

    fn wake_loop(&self) {
        if self.waker.wake().is_err() {
            self.wake_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Event loop, before it sleeps: raises the gate, then reports whether work is already
    /// waiting (then it must not sleep). Control-plane changes to the driver are seen by the
    /// look at the driver that follows this call (`next_timeout`).
    pub(crate) fn prepare_sleep(&self, watch_stop: bool) -> bool {
        // The stop flag is read after the gate is raised (inside `prepare_sleep`).
        let ready = self.ready.prepare_sleep();
        ready || (watch_stop && self.stop.load(Ordering::Acquire))
    }

    /// Event loop, when its sleep returns.
    pub(crate) fn awake(&self) {
        self.ready.awake();
    }

    /// Event loop: takes everything in the ready list into `into` (which must be empty; the
    /// two vectors trade places, so neither reallocates once both reached the peak).
    pub(crate) fn take_ready(&self, into: &mut Vec<Ready>) {
        self.ready.take(into);
    }

    /// The fd a consumer of a connection on `socket` may wait on to lead, if the loop runs
    /// on its own thread (with a manual daemon nobody else would read what it waits for).
    #[cfg(target_os = "linux")]
    pub(crate) fn lead_socket(&self, socket: SocketKey) -> Option<std::os::fd::RawFd> {
        if !self.loop_thread.load(Ordering::Acquire) {
            return None;
        }
        self.driver().socket_fd(socket)
    }

    /// A leading consumer found `socket` readable: reads it for the loop, unless another
    /// thread holds the driver (`false`: that thread, or the loop the arrival also woke,
    /// reads it, and its push wakes the consumer) or the socket is gone (`false` as well).
    ///
    /// The loop is woken if the read armed a timer earlier than its sleep ends, as for a
    /// sender serving it: the arrival does not reliably wake it too (measured: a daemon
    /// slept through the ack timer of ten datagrams a consumer read, once in a few tries).
    #[cfg(target_os = "linux")]
    pub(crate) fn lead_read(self: &Arc<Self>, socket: SocketKey) -> bool {
        let Some(mut driver) = self.try_driver() else {
            return false;
        };
        if !driver.lead_read(socket, self, Instant::now()) {
            return false;
        }
        let wake = driver.sleep_ends_too_late();
        drop(driver);
        if wake {
            self.wake_loop();
        }
        true
    }

    pub(crate) fn connection_stats(&self, key: ConnKey) -> Option<ProtocolStats> {
        self.driver().connection_stats(key)
    }
}
