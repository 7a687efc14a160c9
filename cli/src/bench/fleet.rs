//! Many connections at once: both ends of `n` connections, set up in parallel handshakes.

use gudp::{Connection, Daemon, Listener, PendingConnection};
use std::thread;
use std::time::Duration;

/// Handshakes in flight at once (well under the listener's default accept backlog, 1,024).
const IN_FLIGHT: usize = 256;

/// `n` connections from `client_daemon` to `listener`: (client ends, server ends).
pub fn connect(
    client_daemon: &Daemon,
    listener: &Listener,
    n: usize,
) -> Result<(Vec<Connection>, Vec<Connection>), String> {
    let server_addr = listener.local_addr();
    thread::scope(|scope| {
        let accepting = scope.spawn(move || {
            let mut servers = Vec::with_capacity(n);
            while servers.len() < n {
                match listener.accept_timeout(Duration::from_secs(10)) {
                    Ok(conn) => servers.push(conn),
                    Err(e) => {
                        return Err(format!("accept {} of {n}: {e}", servers.len() + 1));
                    }
                }
            }
            Ok(servers)
        });
        let mut clients = Vec::with_capacity(n);
        while clients.len() < n {
            let batch = IN_FLIGHT.min(n - clients.len());
            let pending: Vec<PendingConnection> = (0..batch)
                .map(|_| client_daemon.connect_nonblocking(server_addr))
                .collect::<Result<_, _>>()
                .map_err(|e| format!("connect {} of {n}: {e}", clients.len() + 1))?;
            for attempt in pending {
                let conn = attempt
                    .wait()
                    .map_err(|e| format!("connect {} of {n}: {e}", clients.len() + 1))?;
                clients.push(conn);
            }
        }
        let servers = accepting
            .join()
            .map_err(|_| "the accepting thread panicked")??;
        Ok((clients, servers))
    })
}
