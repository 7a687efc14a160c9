//! The inbox: a connection's read buffer, shared by one producer (the daemon) and any number
//! of consumer threads.
//!
//! Two implementations sit behind one API. By default the inbox is lock-free: a
//! [`Ring`](crate::core::ring::Ring), a futex-style parker and a
//! [`StatusWord`]. With the cargo feature `naive-mutex` it is the
//! original `Mutex<VecDeque>` + `Condvar` design, so the two can be benchmarked by flag.
//!
//! The read rule is the same in both: a consumer blocks only while there is nothing to read
//! and the inbox is not finished. Items pushed before [`Inbox::finish`] are still received
//! before the close reason is reported (the drain rule).

mod lead;
#[cfg(not(feature = "naive-mutex"))]
mod lock_free;
#[cfg(feature = "naive-mutex")]
mod naive;

#[cfg(not(feature = "naive-mutex"))]
use lock_free::Shared;
#[cfg(feature = "naive-mutex")]
use naive::Shared;

pub use lead::LeadSlot;

use crate::core::status::{CloseReason, Status, StatusWord};
use crate::core::sync::Arc;
use std::fmt;
use std::time::{Duration, Instant};

/// Which core this build uses: `"lock-free"`, or `"naive-mutex"` with the `naive-mutex`
/// feature (the original `Mutex<VecDeque>` + `Condvar` buffers, for side-by-side benchmarks).
///
/// ```
/// assert!(["lock-free", "naive-mutex"].contains(&gudp::IMPLEMENTATION));
/// ```
pub const IMPLEMENTATION: &str = if cfg!(feature = "naive-mutex") {
    "naive-mutex"
} else {
    "lock-free"
};

/// A bounded multi-consumer read buffer with a status word.
///
/// Cloning gives another handle to the same inbox. `push` and `finish` are the producer's
/// side; every other method is for consumers.
pub struct Inbox<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for Inbox<T> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> fmt::Debug for Inbox<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbox")
            .field("implementation", &IMPLEMENTATION)
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("status", &self.status())
            .finish()
    }
}

impl<T> Inbox<T> {
    /// Creates an inbox that holds up to `capacity` items.
    ///
    /// # Panics
    /// If `capacity` is zero or above [`Ring::MAX_CAPACITY`](crate::core::ring::Ring::MAX_CAPACITY).
    pub fn new(capacity: usize) -> Self {
        Self {
            shared: Arc::new(Shared::new(capacity)),
        }
    }

    /// Producer: adds `item` without ever blocking, or hands it back so the caller can count
    /// the drop: when the inbox is full, and once it is finished (then
    /// [`status`](Self::status)`().is_finished()` tells the two apart).
    ///
    /// Refusing after `finish` keeps the rule that nothing follows the close reason: a
    /// consumer told the reason never finds an item after it. That is guaranteed when
    /// `finish` is called on the producer's own thread (the daemon's case); a `finish` racing
    /// on another thread may let one concurrent push in after it.
    pub fn push(&self, item: T) -> Result<(), T> {
        self.shared.push(item)
    }

    /// Producer: records a final state and, if this call was the first, wakes every consumer.
    /// Returns whether it was the first. Items already pushed can still be received.
    pub fn finish(&self, reason: CloseReason) -> bool {
        self.shared.finish(reason)
    }

    /// Takes an item if one is ready; never blocks.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.shared.try_recv()
    }

    /// Blocks until an item is ready, or returns the close reason once the inbox is finished
    /// and drained.
    pub fn recv(&self) -> Result<T, CloseReason> {
        self.shared.recv_until(None).map_err(|error| match error {
            RecvTimeoutError::Closed(reason) => reason,
            // Without a deadline the wait cannot time out.
            RecvTimeoutError::Timeout => unreachable!("recv without a deadline timed out"),
        })
    }

    /// Like [`recv`](Self::recv), but gives up after `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        // A timeout too large to represent as an instant is a wait without deadline.
        self.shared.recv_until(Instant::now().checked_add(timeout))
    }

    /// Like [`recv`](Self::recv), but gives up at `deadline`.
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.shared.recv_until(Some(deadline))
    }

    /// Moves up to `max` ready items into `out` without blocking: the once-per-frame drain of
    /// a game loop. Returns how many were moved (possibly 0), or the close reason once the
    /// inbox is finished and empty (also for `max == 0`). Nothing is allocated if `out` has
    /// room.
    ///
    /// `out.extend` is never called with a lock held, so it may call back into the inbox. If
    /// it panics, only the items already handed to it are gone: the rest stay in the inbox.
    pub fn drain_into(&self, out: &mut impl Extend<T>, max: usize) -> Result<usize, CloseReason> {
        self.shared.drain_into(out, max)
    }

    /// The number of items waiting (a snapshot).
    ///
    /// It counts only items a consumer can take: an item the producer is still writing is
    /// not counted. So with one producer, a consumer that reads `len() > 0` (or
    /// `!is_empty()`) gets an item from its next `try_recv` unless another consumer takes it
    /// first. With several producers pushing at once (nothing forbids it), `len` may also
    /// count items other producers are still writing, and `try_recv` takes items in the
    /// order their pushes claimed a place: it answers `Empty` while the oldest claimed item
    /// is still being written, even if newer ones, such as one this thread just pushed, are
    /// ready behind it ([`Ring::len`](crate::core::ring::Ring::len) has the details).
    pub fn len(&self) -> usize {
        self.shared.len()
    }

    /// Whether no item is waiting (a snapshot, with the meaning of [`len`](Self::len)).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The maximum number of items the inbox holds.
    pub fn capacity(&self) -> usize {
        self.shared.capacity()
    }

    /// The current status: congestion mode and, once finished, the close reason.
    pub fn status(&self) -> Status {
        self.shared.status().load()
    }

    /// The status word itself, for the producer to change working bits (congestion mode).
    pub fn status_word(&self) -> &StatusWord {
        self.shared.status()
    }
}

/// Why [`Connection::try_recv`](crate::Connection::try_recv) (or `Inbox::try_recv`)
/// returned no item.
///
/// ```
/// # use gudp::{Daemon, DaemonConfig};
/// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
/// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
/// # let client = daemon.connect(listener.local_addr()).unwrap();
/// # let server = listener.accept().unwrap();
/// use gudp::{CloseReason, TryRecvError};
/// assert_eq!(server.try_recv(), Err(TryRecvError::Empty));
/// client.close();
/// assert_eq!(server.recv(), Err(CloseReason::ClosedByPeer)); // once the peer's close arrives
/// assert_eq!(server.try_recv(), Err(TryRecvError::Closed(CloseReason::ClosedByPeer)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TryRecvError {
    /// Nothing to read right now; the inbox is still open.
    Empty,
    /// Finished and drained, with the reported reason.
    Closed(CloseReason),
}

/// Why [`Connection::recv_timeout`](crate::Connection::recv_timeout) or
/// [`Connection::recv_deadline`](crate::Connection::recv_deadline) returned no item.
///
/// ```
/// # use gudp::{Daemon, DaemonConfig};
/// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
/// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
/// # let client = daemon.connect(listener.local_addr()).unwrap();
/// # let server = listener.accept().unwrap();
/// use gudp::RecvTimeoutError;
/// use std::time::Duration;
/// let nothing = server.recv_timeout(Duration::from_millis(1));
/// assert_eq!(nothing, Err(RecvTimeoutError::Timeout));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecvTimeoutError {
    /// The time ran out with nothing to read.
    Timeout,
    /// Finished and drained, with the reported reason.
    Closed(CloseReason),
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("nothing to receive yet"),
            TryRecvError::Closed(reason) => write!(f, "connection finished: {reason}"),
        }
    }
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("timed out waiting to receive"),
            RecvTimeoutError::Closed(reason) => write!(f, "connection finished: {reason}"),
        }
    }
}

impl std::error::Error for TryRecvError {}
impl std::error::Error for RecvTimeoutError {}

#[cfg(all(test, not(loom)))]
mod tests {
    #[test]
    fn example_module() {
        use crate::core::inbox::Inbox;
        use crate::core::status::CloseReason;
        let inbox = Inbox::new(16);
        inbox.push("packet").unwrap();
        inbox.finish(CloseReason::ClosedByPeer);
        assert_eq!(inbox.recv(), Ok("packet")); // pushed before the finish: still received
        assert_eq!(inbox.recv(), Err(CloseReason::ClosedByPeer));
    }

    #[test]
    fn example_inbox() {
        use crate::core::inbox::{Inbox, TryRecvError};
        use crate::core::status::CloseReason;

        let inbox = Inbox::new(8);
        let consumer = inbox.clone();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            while let Ok(item) = consumer.recv() {
                got.push(item);
            }
            got
        });
        for i in 0..5 {
            inbox.push(i).unwrap();
        }
        inbox.finish(CloseReason::Closed);
        let got = reader.join().unwrap();
        assert!(got.len() <= 5);
        // Whatever the reader did not take before the close is still here to drain.
        let mut rest = Vec::new();
        while let Ok(item) = inbox.try_recv() {
            rest.push(item);
        }
        assert_eq!(got.len() + rest.len(), 5);
        assert_eq!(
            inbox.try_recv(),
            Err(TryRecvError::Closed(CloseReason::Closed))
        );
    }

    #[test]
    fn example_new() {
        let inbox: crate::core::inbox::Inbox<Vec<u8>> = crate::core::inbox::Inbox::new(256);
        assert_eq!(inbox.capacity(), 256);
    }

    #[test]
    fn example_push() {
        use crate::core::status::CloseReason;
        let inbox = crate::core::inbox::Inbox::new(1);
        assert_eq!(inbox.push(1), Ok(()));
        assert_eq!(inbox.push(2), Err(2)); // full
        assert!(!inbox.status().is_finished());
        assert_eq!(inbox.recv(), Ok(1));
        inbox.finish(CloseReason::Closed);
        assert_eq!(inbox.push(3), Err(3)); // finished
        assert!(inbox.status().is_finished());
        assert_eq!(inbox.recv(), Err(CloseReason::Closed));
    }

    #[test]
    fn example_finish() {
        use crate::core::status::CloseReason;
        let inbox = crate::core::inbox::Inbox::<u8>::new(1);
        assert!(inbox.finish(CloseReason::TimedOut));
        assert!(!inbox.finish(CloseReason::Closed));
        assert_eq!(inbox.recv(), Err(CloseReason::TimedOut));
    }

    #[test]
    fn example_try_recv() {
        use crate::core::inbox::{Inbox, TryRecvError};
        let inbox = Inbox::new(4);
        assert_eq!(inbox.try_recv(), Err(TryRecvError::Empty));
        inbox.push("hello").unwrap();
        assert_eq!(inbox.try_recv(), Ok("hello"));
    }

    #[test]
    fn example_recv() {
        let inbox = crate::core::inbox::Inbox::new(4);
        inbox.push(7).unwrap();
        assert_eq!(inbox.recv(), Ok(7));
    }

    #[test]
    fn example_recv_timeout() {
        use crate::core::inbox::{Inbox, RecvTimeoutError};
        use std::time::Duration;
        let inbox = Inbox::<u8>::new(4);
        assert_eq!(
            inbox.recv_timeout(Duration::from_millis(1)),
            Err(RecvTimeoutError::Timeout)
        );
    }

    #[test]
    fn example_recv_deadline() {
        use crate::core::inbox::{Inbox, RecvTimeoutError};
        use std::time::Instant;
        let inbox = Inbox::<u8>::new(4);
        assert_eq!(
            inbox.recv_deadline(Instant::now()),
            Err(RecvTimeoutError::Timeout)
        );
    }

    #[test]
    fn example_drain_into() {
        use crate::core::status::CloseReason;
        let inbox = crate::core::inbox::Inbox::new(8);
        for i in 0..5 {
            inbox.push(i).unwrap();
        }
        let mut frame = Vec::with_capacity(64);
        assert_eq!(inbox.drain_into(&mut frame, 3), Ok(3));
        assert_eq!(inbox.drain_into(&mut frame, 64), Ok(2));
        assert_eq!(frame, [0, 1, 2, 3, 4]);
        inbox.finish(CloseReason::Closed);
        assert_eq!(inbox.drain_into(&mut frame, 0), Err(CloseReason::Closed));
    }

    #[test]
    fn example_len() {
        let inbox = crate::core::inbox::Inbox::new(4);
        inbox.push(1).unwrap();
        inbox.push(2).unwrap();
        assert_eq!(inbox.len(), 2);
        inbox.try_recv().unwrap();
        assert_eq!(inbox.len(), 1);
    }

    #[test]
    fn example_is_empty() {
        let inbox = crate::core::inbox::Inbox::new(4);
        assert!(inbox.is_empty());
        inbox.push("x").unwrap();
        assert!(!inbox.is_empty());
    }

    #[test]
    fn example_capacity() {
        let inbox = crate::core::inbox::Inbox::new(3);
        for i in 0..3 {
            inbox.push(i).unwrap();
        }
        assert_eq!(inbox.capacity(), 3);
        assert_eq!(inbox.push(3), Err(3)); // full at capacity
    }

    #[test]
    fn example_status() {
        use crate::core::status::CloseReason;
        let inbox = crate::core::inbox::Inbox::<u8>::new(1);
        assert_eq!(inbox.status().close_reason(), None);
        inbox.finish(CloseReason::TimedOut);
        assert_eq!(inbox.status().close_reason(), Some(CloseReason::TimedOut));
    }

    #[test]
    fn example_status_word() {
        use crate::core::status::CongestionMode;
        let inbox = crate::core::inbox::Inbox::<u8>::new(1);
        inbox
            .status_word()
            .set_congestion(CongestionMode::Bad)
            .unwrap();
        assert_eq!(inbox.status().congestion(), CongestionMode::Bad);
    }

    #[test]
    fn example_try_recv_error() {
        use crate::core::inbox::{Inbox, TryRecvError};
        use crate::core::status::CloseReason;
        let inbox = Inbox::new(1);
        assert_eq!(inbox.try_recv(), Err(TryRecvError::Empty));
        inbox.push(1).unwrap();
        inbox.finish(CloseReason::ClosedByPeer);
        assert_eq!(inbox.try_recv(), Ok(1)); // drained before the close is reported
        assert_eq!(
            inbox.try_recv(),
            Err(TryRecvError::Closed(CloseReason::ClosedByPeer))
        );
    }

    #[test]
    fn example_recv_timeout_error() {
        use crate::core::inbox::{Inbox, RecvTimeoutError};
        use crate::core::status::CloseReason;
        use std::time::Instant;
        let inbox = Inbox::<u8>::new(1);
        assert_eq!(
            inbox.recv_deadline(Instant::now()),
            Err(RecvTimeoutError::Timeout)
        );
        inbox.finish(CloseReason::Closed);
        assert_eq!(
            inbox.recv_deadline(Instant::now()),
            Err(RecvTimeoutError::Closed(CloseReason::Closed))
        );
    }
}
