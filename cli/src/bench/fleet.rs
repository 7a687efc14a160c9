//! Many connections at once: both ends of `n` connections, set up in parallel handshakes.

use gudp::{Connection, Daemon, Listener, PendingConnection, RecvTimeoutError, ShardedListener};
use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

/// A server's listening side: one daemon's listener, or a sharded one.
pub trait Accept: Sync {
    fn accept_timeout(&self, timeout: Duration) -> Result<Connection, RecvTimeoutError>;
    fn local_addr(&self) -> SocketAddr;
}

impl Accept for Listener {
    fn accept_timeout(&self, timeout: Duration) -> Result<Connection, RecvTimeoutError> {
        Listener::accept_timeout(self, timeout)
    }
    fn local_addr(&self) -> SocketAddr {
        Listener::local_addr(self)
    }
}

impl Accept for ShardedListener {
    fn accept_timeout(&self, timeout: Duration) -> Result<Connection, RecvTimeoutError> {
        ShardedListener::accept_timeout(self, timeout)
    }
    fn local_addr(&self) -> SocketAddr {
        ShardedListener::local_addr(self)
    }
}

/// The handshake timeout of a load-generating client daemon: on a loaded machine a daemon
/// serving thousands of connections can take longer than the default 5 s to finish one, and
/// a client that gives up leaves the server a connection nobody uses.
pub const SETUP_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Handshakes in flight at once (half the listener's default accept backlog, 1,024): the
/// more per daemon turn, the fewer turns, and a turn's cost grows with the connections up.
const IN_FLIGHT: usize = 512;

/// `n` connections from `client_daemon` to `listener`: (client ends, server ends, handshakes
/// that timed out and were tried again). On a loaded machine a handshake can miss its 5 s
/// timeout while the daemon serves thousands of connections already up; those are retried,
/// up to `n` retries in all.
pub fn connect(
    client_daemon: &Daemon,
    listener: &impl Accept,
    n: usize,
) -> Result<(Vec<Connection>, Vec<Connection>, usize), String> {
    let server_addr = listener.local_addr();
    thread::scope(|scope| {
        let accepting = scope.spawn(move || {
            let mut servers = Vec::with_capacity(n);
            while servers.len() < n {
                match listener.accept_timeout(Duration::from_secs(30)) {
                    Ok(conn) => servers.push(conn),
                    Err(e) => {
                        return Err(format!("accept {} of {n}: {e}", servers.len() + 1));
                    }
                }
            }
            Ok(servers)
        });
        let (mut clients, mut retries) = (Vec::with_capacity(n), 0);
        while clients.len() < n {
            let batch = IN_FLIGHT.min(n - clients.len());
            let pending: Vec<PendingConnection> = (0..batch)
                .map(|_| client_daemon.connect_nonblocking(server_addr))
                .collect::<Result<_, _>>()
                .map_err(|e| format!("connect {} of {n}: {e}", clients.len() + 1))?;
            for attempt in pending {
                match attempt.wait() {
                    Ok(conn) => clients.push(conn),
                    Err(e) if retries >= n => {
                        return Err(format!("connect {} of {n}: {e}", clients.len() + 1));
                    }
                    Err(_) => retries += 1,
                }
            }
        }
        let servers = accepting
            .join()
            .map_err(|_| "the accepting thread panicked")??;
        Ok((clients, servers, retries))
    })
}
