//! The status word: one atomic that says how a connection is doing and, once it is over, why.
//!
//! Layout of the `u64`:
//!
//! | bits   | meaning                                                        |
//! |--------|----------------------------------------------------------------|
//! | 0      | congestion mode: 0 = [`CongestionMode::Good`], 1 = `Bad`       |
//! | 1..32  | reserved working bits (always 0 today)                         |
//! | 32..40 | final bits, one per [`CloseReason`]                            |
//!
//! Two rules make the word easy to reason about, and [`StatusWord`]'s methods are the only way
//! to touch it, so nothing can break them:
//!
//! * **Final bits are absorbing.** They are only ever set, with `fetch_or`; no store, swap or
//!   CAS can clear them.
//! * **Working bits freeze at the end.** They change only through a compare-and-swap loop that
//!   gives up as soon as it sees any final bit, so a connection that is over never appears to
//!   change congestion mode again.

use crate::core::sync::{AtomicU64, Ordering};
use std::fmt;

const CONGESTION_BAD: u64 = 1;
const WORKING_MASK: u64 = (1 << 32) - 1;
const FINAL_SHIFT: u32 = 32;
const FINAL_MASK: u64 = !WORKING_MASK;

/// The congestion mode of a connection.
///
/// ```
/// use gudp::{protocol::Config, CongestionMode};
/// // The most a mode lets the rate controller pace at.
/// let config = Config::default();
/// let ceiling = |mode: CongestionMode| match mode {
///     CongestionMode::Good => config.good_rate,
///     CongestionMode::Bad => config.bad_rate,
/// };
/// assert_eq!(ceiling(CongestionMode::Bad).packets_per_second, 30);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CongestionMode {
    /// Conditions are good: the rate controller paces at what the path sustains, up to the
    /// configured good rate.
    Good,
    /// The RTT is above the threshold, or has not yet been good for the penalty time: pacing
    /// at the lower bad rate.
    Bad,
}

/// Why a connection (or an inbox) finished.
///
/// Several reasons can be recorded at once (a peer's disconnect may race a local close).
/// [`Status::close_reason`] then reports the one declared **first** in this enum: faults before
/// orderly endings, because a fault is the more useful thing to tell a user. All recorded
/// reasons are available from [`Status::close_reasons`].
///
/// ```
/// # use gudp::{Daemon, DaemonConfig};
/// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
/// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
/// # let client = daemon.connect(listener.local_addr()).unwrap();
/// # let server = listener.accept().unwrap();
/// use gudp::CloseReason;
/// client.close();
/// assert_eq!(server.recv(), Err(CloseReason::ClosedByPeer)); // once the peer's close arrives
/// assert_eq!(server.status().close_reason(), Some(CloseReason::ClosedByPeer));
/// assert_eq!(CloseReason::ClosedByPeer.to_string(), "closed by peer");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum CloseReason {
    /// The socket failed (an I/O error other than "would block").
    SocketError = 0,
    /// The daemon stopped (shut down, dropped, or its thread died).
    DaemonStopped = 1,
    /// Nothing was heard from the peer within the idle timeout.
    TimedOut = 2,
    /// The handshake did not complete within the connect timeout.
    ConnectTimedOut = 3,
    /// The server refused the connection (for example, it is at its connection limit).
    ConnectionDenied = 4,
    /// The peer closed the connection.
    ClosedByPeer = 5,
    /// This side closed the connection.
    Closed = 6,
    /// The server refused the connection because the two ends configured different
    /// message channels (`DaemonConfig::messages`; or one end is in packet mode): their
    /// message-layer fingerprints differ.
    ChannelMismatch = 7,
}

impl CloseReason {
    /// Every reason, in reporting priority order.
    ///
    /// ```
    /// use gudp::CloseReason;
    /// assert_eq!(CloseReason::ALL.len(), 8);
    /// assert_eq!(CloseReason::ALL[0], CloseReason::SocketError); // faults first
    /// ```
    pub const ALL: [CloseReason; 8] = [
        CloseReason::SocketError,
        CloseReason::DaemonStopped,
        CloseReason::TimedOut,
        CloseReason::ConnectTimedOut,
        CloseReason::ConnectionDenied,
        CloseReason::ClosedByPeer,
        CloseReason::Closed,
        CloseReason::ChannelMismatch,
    ];

    fn bit(self) -> u64 {
        1 << (FINAL_SHIFT + self as u32)
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CloseReason::SocketError => "socket error",
            CloseReason::DaemonStopped => "daemon stopped",
            CloseReason::TimedOut => "timed out",
            CloseReason::ConnectTimedOut => "connect timed out",
            CloseReason::ConnectionDenied => "connection denied",
            CloseReason::ClosedByPeer => "closed by peer",
            CloseReason::Closed => "closed",
            CloseReason::ChannelMismatch => "channel configurations differ",
        })
    }
}

impl std::error::Error for CloseReason {}

/// A snapshot of a connection's status: its congestion mode and, once it has finished, why
/// ([`Connection::status`](crate::Connection::status)).
///
/// ```
/// # use gudp::{Daemon, DaemonConfig};
/// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
/// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
/// # let client = daemon.connect(listener.local_addr()).unwrap();
/// use gudp::{CloseReason, CongestionMode};
/// let status: gudp::Status = client.status();
/// assert_eq!((status.congestion(), status.is_finished()), (CongestionMode::Good, false));
/// client.close();
/// // Finished at once if the daemon is idle, else as soon as it takes the close request.
/// while client.status().close_reason().is_none() {
///     std::thread::yield_now();
/// }
/// assert_eq!(client.status().close_reason(), Some(CloseReason::Closed));
/// assert_eq!(status.close_reason(), None); // a snapshot does not change
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status(u64);

impl Status {
    /// The congestion mode (frozen at its last value once finished).
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// assert_eq!(client.status().congestion(), gudp::CongestionMode::Good);
    /// ```
    pub fn congestion(self) -> CongestionMode {
        if self.0 & CONGESTION_BAD != 0 {
            CongestionMode::Bad
        } else {
            CongestionMode::Good
        }
    }

    /// Whether the connection has finished (a close reason is recorded).
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// assert!(!client.status().is_finished());
    /// # let server = listener.accept().unwrap();
    /// client.close();
    /// let _ = server.recv(); // returns once the peer's close has arrived
    /// assert!(server.status().is_finished());
    /// ```
    pub fn is_finished(self) -> bool {
        self.0 & FINAL_MASK != 0
    }

    /// The reported close reason: the highest-priority one recorded (see [`CloseReason`]).
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// assert_eq!(client.status().close_reason(), None);
    /// # let server = listener.accept().unwrap();
    /// client.close();
    /// let _ = server.recv(); // returns once the peer's close has arrived
    /// assert_eq!(server.status().close_reason(), Some(gudp::CloseReason::ClosedByPeer));
    /// ```
    pub fn close_reason(self) -> Option<CloseReason> {
        self.close_reasons().next()
    }

    /// Every close reason recorded, in priority order.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// # let server = listener.accept().unwrap();
    /// client.close();
    /// let _ = server.recv(); // returns once the peer's close has arrived
    /// let reasons: Vec<_> = server.status().close_reasons().collect();
    /// assert_eq!(reasons, [gudp::CloseReason::ClosedByPeer]);
    /// ```
    pub fn close_reasons(self) -> impl Iterator<Item = CloseReason> {
        CloseReason::ALL
            .into_iter()
            .filter(move |reason| self.0 & reason.bit() != 0)
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Status")
            .field("congestion", &self.congestion())
            .field("close_reason", &self.close_reason())
            .finish()
    }
}

/// The atomic status of one connection. Its methods are the only way to change it.
#[derive(Debug)]
pub struct StatusWord(AtomicU64);

impl Default for StatusWord {
    fn default() -> Self {
        Self::new()
    }
}

impl StatusWord {
    /// A fresh word: congestion mode `Good`, not finished.
    pub fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// Reads the current status.
    pub fn load(&self) -> Status {
        // Acquire: a reader that sees a final bit also sees what the finisher wrote before
        // finishing (items pushed into an inbox before `finish` are visible to the drain).
        Status(self.0.load(Ordering::Acquire))
    }

    /// Whether a final bit is set.
    pub fn is_finished(&self) -> bool {
        self.load().is_finished()
    }

    /// Sets the congestion mode, unless the word is finished: then nothing changes and the
    /// reported close reason is returned.
    pub fn set_congestion(&self, mode: CongestionMode) -> Result<(), CloseReason> {
        self.update_working(|bits| match mode {
            CongestionMode::Good => bits & !CONGESTION_BAD,
            CongestionMode::Bad => bits | CONGESTION_BAD,
        })
    }

    /// The one way to change working bits: a CAS loop that refuses once any final bit is set.
    fn update_working(&self, change: impl Fn(u64) -> u64) -> Result<(), CloseReason> {
        // Relaxed initial read: the CAS below validates it.
        let mut current = self.0.load(Ordering::Relaxed);
        loop {
            let status = Status(current);
            if let Some(reason) = status.close_reason() {
                return Err(reason);
            }
            let next = change(current & WORKING_MASK);
            if next == current {
                return Ok(());
            }
            // AcqRel on success: orders this change with the caller's surrounding writes like
            // any other publication; Relaxed on failure: we only loop and re-check.
            match self
                .0
                .compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(actual) => current = actual,
            }
        }
    }

    /// Records `reason` as a final state. Returns `true` if this call finished the word (no
    /// final bit was set before), so exactly one caller wakes everyone and runs cleanup.
    pub fn finish(&self, reason: CloseReason) -> bool {
        // AcqRel: Release publishes everything the finisher wrote before (pushed items) to a
        // consumer that Acquire-loads the final bit; Acquire lets a later finisher see the
        // first one's writes. `fetch_or` can only add bits: final is absorbing by construction.
        let previous = self.0.fetch_or(reason.bit(), Ordering::AcqRel);
        previous & FINAL_MASK == 0
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_reported_by_priority_and_all_are_kept() {
        let word = StatusWord::new();
        assert!(word.finish(CloseReason::Closed));
        assert!(!word.finish(CloseReason::SocketError));
        assert!(!word.finish(CloseReason::Closed));
        let status = word.load();
        assert_eq!(status.close_reason(), Some(CloseReason::SocketError));
        let all: Vec<_> = status.close_reasons().collect();
        assert_eq!(all, [CloseReason::SocketError, CloseReason::Closed]);
    }

    #[test]
    fn each_reason_has_its_own_bit() {
        for reason in CloseReason::ALL {
            let word = StatusWord::new();
            word.finish(reason);
            assert_eq!(word.load().close_reason(), Some(reason));
            assert_eq!(word.load().close_reasons().count(), 1);
        }
    }

    #[test]
    fn congestion_toggles_until_finished() {
        let word = StatusWord::new();
        word.set_congestion(CongestionMode::Bad).unwrap();
        assert_eq!(word.load().congestion(), CongestionMode::Bad);
        word.set_congestion(CongestionMode::Good).unwrap();
        assert_eq!(word.load().congestion(), CongestionMode::Good);
        word.finish(CloseReason::TimedOut);
        assert_eq!(
            word.set_congestion(CongestionMode::Bad),
            Err(CloseReason::TimedOut)
        );
        assert_eq!(word.load().congestion(), CongestionMode::Good);
        assert!(word.is_finished());
    }

    #[test]
    fn example_module() {
        use crate::core::status::{CloseReason, CongestionMode, StatusWord};
        let word = StatusWord::new();
        word.set_congestion(CongestionMode::Bad).unwrap();
        word.finish(CloseReason::TimedOut);
        let status = word.load();
        assert_eq!(status.congestion(), CongestionMode::Bad);
        assert_eq!(status.close_reason(), Some(CloseReason::TimedOut));
    }

    #[test]
    fn example_close_reason() {
        use crate::core::status::{CloseReason, StatusWord};
        let word = StatusWord::new();
        word.finish(CloseReason::Closed);
        word.finish(CloseReason::TimedOut);
        assert_eq!(word.load().close_reason(), Some(CloseReason::TimedOut));
    }

    #[test]
    fn example_all() {
        use crate::core::status::CloseReason;
        assert_eq!(CloseReason::ALL.len(), 8);
        assert_eq!(CloseReason::ALL[0], CloseReason::SocketError); // faults first
        assert_eq!(CloseReason::ALL[6], CloseReason::Closed);
    }

    #[test]
    fn example_status() {
        use crate::core::status::{CongestionMode, StatusWord};
        let status = StatusWord::new().load();
        assert!(!status.is_finished());
        assert_eq!(status.congestion(), CongestionMode::Good);
    }

    #[test]
    fn example_congestion() {
        use crate::core::status::{CongestionMode, StatusWord};
        let word = StatusWord::new();
        assert_eq!(word.load().congestion(), CongestionMode::Good);
        word.set_congestion(CongestionMode::Bad).unwrap();
        assert_eq!(word.load().congestion(), CongestionMode::Bad);
    }

    #[test]
    fn example_is_finished() {
        use crate::core::status::{CloseReason, StatusWord};
        let word = StatusWord::new();
        let before = word.load();
        word.finish(CloseReason::Closed);
        assert!(!before.is_finished()); // a snapshot does not change
        assert!(word.load().is_finished());
    }

    #[test]
    fn example_close_reason_2() {
        use crate::core::status::{CloseReason, StatusWord};
        let word = StatusWord::new();
        assert_eq!(word.load().close_reason(), None);
        word.finish(CloseReason::ClosedByPeer);
        word.finish(CloseReason::SocketError);
        assert_eq!(word.load().close_reason(), Some(CloseReason::SocketError)); // the fault wins
    }

    #[test]
    fn example_close_reasons() {
        use crate::core::status::{CloseReason, StatusWord};
        let word = StatusWord::new();
        word.finish(CloseReason::Closed);
        word.finish(CloseReason::ClosedByPeer);
        let reasons: Vec<_> = word.load().close_reasons().collect();
        assert_eq!(reasons, [CloseReason::ClosedByPeer, CloseReason::Closed]);
    }

    #[test]
    fn example_status_word() {
        use crate::core::status::{CloseReason, CongestionMode, StatusWord};
        let word = StatusWord::new();
        assert_eq!(word.set_congestion(CongestionMode::Bad), Ok(()));
        assert!(word.finish(CloseReason::ClosedByPeer)); // first to finish
        assert!(!word.finish(CloseReason::Closed)); // already finished
        assert_eq!(
            word.set_congestion(CongestionMode::Good),
            Err(CloseReason::ClosedByPeer)
        );
        assert_eq!(word.load().congestion(), CongestionMode::Bad); // frozen
    }

    #[test]
    fn example_new() {
        use crate::core::status::{CongestionMode, StatusWord};
        let status = StatusWord::new().load();
        assert_eq!(
            (status.congestion(), status.close_reason()),
            (CongestionMode::Good, None)
        );
    }

    #[test]
    fn example_load() {
        use crate::core::status::{CongestionMode, StatusWord};
        let word = StatusWord::new();
        word.set_congestion(CongestionMode::Bad).unwrap();
        let status = word.load();
        assert_eq!(status.congestion(), CongestionMode::Bad);
        assert!(!status.is_finished());
    }

    #[test]
    fn example_is_finished_2() {
        use crate::core::status::{CloseReason, StatusWord};
        let word = StatusWord::new();
        assert!(!word.is_finished());
        word.finish(CloseReason::DaemonStopped);
        assert!(word.is_finished());
    }

    #[test]
    fn example_set_congestion() {
        use crate::core::status::{CloseReason, CongestionMode, StatusWord};
        let word = StatusWord::new();
        assert_eq!(word.set_congestion(CongestionMode::Bad), Ok(()));
        word.finish(CloseReason::TimedOut);
        assert_eq!(
            word.set_congestion(CongestionMode::Good),
            Err(CloseReason::TimedOut)
        );
        assert_eq!(word.load().congestion(), CongestionMode::Bad); // unchanged
    }

    #[test]
    fn example_finish() {
        use crate::core::status::{CloseReason, StatusWord};
        let word = StatusWord::new();
        assert!(word.finish(CloseReason::ClosedByPeer)); // this call finished it: run the cleanup
        assert!(!word.finish(CloseReason::Closed)); // recorded, but someone else finished first
        assert_eq!(word.load().close_reasons().count(), 2);
    }
}
