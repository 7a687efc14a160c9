//! What user threads share with the daemon thread besides each connection's own state: the
//! ready list, the wake gate, the buffer pool, and the driver behind its control-plane lock.
//!
//! **Ready list and wake gate.** A sender that makes an outbox non-empty (and finds the
//! connection's `scheduled` flag clear) appends the connection to the ready list and wakes the
//! daemon, unless a wake is already pending. The gate is one `AtomicBool`, swapped with AcqRel
//! on both sides: the daemon swaps it to `false` *before* it takes the list, so a sender that
//! appends afterwards sees `false` and wakes it again, while a sender whose `swap(true)` the
//! daemon's `swap(false)` read is ordered before the daemon's look at the list. A burst of
//! sends costs one `mio::Waker` syscall.

use super::driver::Driver;
use super::DaemonConfig;
use crate::connection::{ConnKey, ConnShared};
use crate::pool::BufferPool;
use crate::protocol::ConnectionStats;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Something the daemon must look at.
pub(crate) enum Ready {
    /// A connection whose outbox has packets, or whose close was requested.
    Connection(Arc<ConnShared>),
    /// A socket whose listener was dropped: drain its accept queue and stop accepting.
    ListenerClosed(usize),
}

pub(crate) struct DaemonShared {
    pub(crate) config: DaemonConfig,
    pub(crate) pool: Arc<BufferPool>,
    ready: Mutex<Vec<Ready>>,
    wake_pending: AtomicBool,
    waker: mio::Waker,
    /// Waker calls that failed (the daemon then wakes at its next deadline instead).
    pub(crate) wake_errors: AtomicU64,
    pub(crate) stop: AtomicBool,
    /// The control plane: listen, connect and stats lock it briefly; the event loop holds it
    /// while it processes a batch (never while it sleeps in `poll`).
    driver: Mutex<Driver>,
}

impl DaemonShared {
    pub(crate) fn new(config: DaemonConfig, waker: mio::Waker, driver: Driver) -> Arc<Self> {
        let pool = BufferPool::new(config.pool_capacity, config.protocol.max_payload);
        Arc::new(Self {
            config,
            pool,
            ready: Mutex::new(Vec::new()),
            wake_pending: AtomicBool::new(false),
            waker,
            wake_errors: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            driver: Mutex::new(driver),
        })
    }

    pub(crate) fn driver(&self) -> MutexGuard<'_, Driver> {
        // A panic on the daemon thread poisons the lock; the driver is then only used to
        // finish every connection, which is safe on whatever state it left.
        self.driver
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn make_ready(&self, item: Ready) {
        self.ready
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(item);
        self.wake();
    }

    /// Wakes the daemon unless a wake is already pending.
    pub(crate) fn wake(&self) {
        if !self.wake_pending.swap(true, Ordering::AcqRel) && self.waker.wake().is_err() {
            self.wake_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Daemon: reopens the wake gate, then takes everything in the ready list into `into`
    /// (which must be empty; the two vectors trade places, so neither reallocates).
    pub(crate) fn take_ready(&self, into: &mut Vec<Ready>) {
        self.wake_pending.swap(false, Ordering::AcqRel);
        let mut ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::swap(&mut *ready, into);
    }

    pub(crate) fn connection_stats(&self, key: ConnKey) -> Option<ConnectionStats> {
        self.driver().connection_stats(key)
    }
}
