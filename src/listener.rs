//! A listening socket: accepts connections from any number of clients.

use crate::connection::Connection;
use crate::daemon::shared::{DaemonShared, Ready};
use crate::inbox::{Inbox, RecvTimeoutError, TryRecvError};
use crate::status::CloseReason;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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
    local: SocketAddr,
    socket: usize,
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
        local: SocketAddr,
        socket: usize,
        daemon: Arc<DaemonShared>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                accept,
                local,
                socket,
                daemon,
            }),
        }
    }

    /// Waits for the next connection, or returns why the listener finished (for example
    /// [`CloseReason::DaemonStopped`] or [`CloseReason::SocketError`]).
    pub fn accept(&self) -> Result<Connection, CloseReason> {
        self.inner.accept.recv()
    }

    /// Takes a connection if one is waiting; never blocks.
    pub fn try_accept(&self) -> Result<Connection, TryRecvError> {
        self.inner.accept.try_recv()
    }

    /// Like [`accept`](Self::accept), but gives up after `timeout`.
    pub fn accept_timeout(&self, timeout: Duration) -> Result<Connection, RecvTimeoutError> {
        self.inner.accept.recv_timeout(timeout)
    }

    /// The socket's local address (with the port the system chose, if 0 was asked for).
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
