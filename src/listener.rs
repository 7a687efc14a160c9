//! A listening socket: accepts connections from any number of clients.

use crate::connection::Connection;
use crate::core::inbox::{Inbox, RecvTimeoutError, TryRecvError};
use crate::core::ring::Ring;
use crate::core::status::CloseReason;
use crate::daemon::shared::{DaemonShared, Ready};
use crate::daemon::SocketKey;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What happened to the connections of a listener, from [`Listener::poll_event`]: a server's
/// frame loop learns of joins and leaves without polling every connection.
///
/// ```
/// use gudp::{CloseReason, Daemon, DaemonConfig, ServerEvent};
/// let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
/// let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
/// let client = daemon.connect(listener.local_addr()).unwrap();
/// let player = listener.accept().unwrap();
/// let id = player.id();
/// assert_eq!(
///     listener.poll_event(),
///     Some(ServerEvent::Connected { id, peer: player.peer_addr(), client_id: None })
/// );
/// client.close();
/// let left = loop {
///     if let Some(event) = listener.poll_event() {
///         break event;
///     }
///     std::thread::sleep(std::time::Duration::from_millis(1));
/// };
/// assert_eq!(
///     left,
///     ServerEvent::Disconnected { id, peer: player.peer_addr(), reason: CloseReason::ClosedByPeer }
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A client completed its handshake; its connection waits in the accept queue.
    Connected {
        /// [`Connection::id`] of its connection.
        id: u64,
        /// The client's address.
        peer: SocketAddr,
        /// On a secure listener, the client id of its connect token (its user data is
        /// [`Connection::token_info`]); `None` on a plain listener.
        client_id: Option<u64>,
    },
    /// A connection announced by `Connected` ended, for this reason.
    Disconnected {
        /// [`Connection::id`] of its connection.
        id: u64,
        /// The client's address.
        peer: SocketAddr,
        /// Why it ended.
        reason: CloseReason,
    },
}

/// The events of one listener: pushed by the daemon, polled by the application.
pub(crate) struct ListenerEvents {
    ring: Ring<ServerEvent>,
    dropped: AtomicU64,
}

impl ListenerEvents {
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            ring: Ring::new(capacity),
            dropped: AtomicU64::new(0),
        })
    }

    /// Records an event, counting it if the ring is full (nobody polls).
    pub(crate) fn push(&self, event: ServerEvent) {
        if self.ring.try_push(event).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Accepts connections arriving on one UDP socket. Connections whose handshake completed wait
/// in a bounded accept queue (`DaemonConfig::accept_backlog`); a handshake that finds it full is
/// closed and counted. Dropping the last clone stops accepting; connections already accepted
/// live on.
///
/// ```
/// use gudp::{Daemon, DaemonConfig};
/// let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
/// let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
/// assert!(listener.try_accept().is_err()); // nobody yet
/// let _client = daemon.connect(listener.local_addr()).unwrap();
/// let server_side = listener.accept().unwrap();
/// assert_eq!(server_side.local_addr(), listener.local_addr());
/// ```
#[derive(Clone)]
pub struct Listener {
    inner: Arc<Inner>,
}

struct Inner {
    accept: Inbox<Connection>,
    events: Arc<ListenerEvents>,
    local: SocketAddr,
    socket: SocketKey,
    daemon: Arc<DaemonShared>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.accept.finish(CloseReason::Closed);
        self.daemon.make_ready(Ready::ListenerClosed(self.socket));
    }
}

impl Listener {
    pub(crate) fn new(
        accept: Inbox<Connection>,
        events: Arc<ListenerEvents>,
        local: SocketAddr,
        socket: SocketKey,
        daemon: Arc<DaemonShared>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                accept,
                events,
                local,
                socket,
                daemon,
            }),
        }
    }

    /// Waits for the next connection, or returns why the listener finished (for example
    /// [`CloseReason::DaemonStopped`] or [`CloseReason::SocketError`]).
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// let client = daemon.connect(listener.local_addr()).unwrap();
    /// let server = listener.accept().unwrap();
    /// assert_eq!(server.peer_addr().port(), client.local_addr().port());
    /// ```
    pub fn accept(&self) -> Result<Connection, CloseReason> {
        self.inner.accept.recv()
    }

    /// Takes a connection if one is waiting; never blocks.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # use gudp::TryRecvError;
    /// assert_eq!(listener.try_accept().unwrap_err(), TryRecvError::Empty);
    /// let _client = daemon.connect(listener.local_addr()).unwrap();
    /// // The server end was queued before the client's handshake completed.
    /// assert!(listener.try_accept().is_ok());
    /// ```
    pub fn try_accept(&self) -> Result<Connection, TryRecvError> {
        self.inner.accept.try_recv()
    }

    /// The next [`ServerEvent`] (a client joined, a connection ended), if any; never blocks.
    /// Events wait in a ring of `4 × DaemonConfig::accept_backlog` (4,096 by default); poll
    /// it at least once per frame, or the excess is dropped and counted
    /// ([`dropped_events`](Self::dropped_events)).
    ///
    /// ```
    /// use gudp::{Daemon, DaemonConfig, ServerEvent};
    /// let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// assert_eq!(listener.poll_event(), None);
    /// let _client = daemon.connect(listener.local_addr()).unwrap();
    /// let _player = listener.accept().unwrap();
    /// assert!(matches!(listener.poll_event(), Some(ServerEvent::Connected { .. })));
    /// ```
    pub fn poll_event(&self) -> Option<ServerEvent> {
        self.inner.events.ring.pop_ready()
    }

    /// Events dropped because nobody polled them in time.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// assert_eq!(listener.dropped_events(), 0);
    /// ```
    pub fn dropped_events(&self) -> u64 {
        self.inner.events.dropped.load(Ordering::Relaxed)
    }

    /// Like [`accept`](Self::accept), but gives up after `timeout`.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # use gudp::RecvTimeoutError;
    /// # use std::time::Duration;
    /// let nobody = listener.accept_timeout(Duration::from_millis(1));
    /// assert_eq!(nobody.unwrap_err(), RecvTimeoutError::Timeout);
    /// ```
    pub fn accept_timeout(&self, timeout: Duration) -> Result<Connection, RecvTimeoutError> {
        self.inner.accept.recv_timeout(timeout)
    }

    /// The socket's local address (with the port the system chose, if 0 was asked for).
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// let addr = listener.local_addr();
    /// assert!(addr.ip().is_loopback());
    /// assert_ne!(addr.port(), 0); // the port the system chose for port 0
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("local", &self.inner.local)
            .field("waiting", &self.inner.accept.len())
            .finish()
    }
}
