//! One listening port served by several daemons: each shard is a daemon of its own with its
//! own socket bound to the port with `SO_REUSEPORT`, and the kernel's hash of a datagram's
//! addresses and ports sends every datagram of one client to the same shard.
//!
//! The shards share what a handshake needs, so that a challenge one shard issued is accepted
//! by any other (the kernel may move a client if the group changes between its request and
//! its response): the token secret, and the instant token timestamps count from. They also
//! share one accept queue and one event ring, so a server author accepts from them all at once.

use super::driver::Driver;
use super::shared::DaemonShared;
use super::{Daemon, DaemonConfig};
use crate::connection::Connection;
use crate::core::inbox::{Inbox, RecvTimeoutError, TryRecvError};
use crate::core::status::CloseReason;
use crate::listener::{Listener, ListenerEvents, ServerEvent};
use mio::net::UdpSocket;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What every shard of one port shares: the handshake's token secret, and the instant that
/// token timestamps and keepalive ticks count from.
pub(super) struct ShardKeys {
    pub(super) secret: [u8; 16],
    pub(super) anchor: Instant,
}

/// Connection ids of shard `i` start at `i << SHARD_ID_SHIFT`: unique across the shards of a
/// listener as long as no shard makes 2^48 connections.
const SHARD_ID_SHIFT: u32 = 48;

/// A UDP socket bound to `addr` with `SO_REUSEPORT`, non-blocking.
#[cfg(target_os = "linux")]
pub(super) fn bind_reuse_port(addr: SocketAddr) -> io::Result<UdpSocket> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let kind = libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: a plain system call; the result is checked.
    let fd = unsafe { libc::socket(domain, kind, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a socket just opened and owned by nothing else.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let on: libc::c_int = 1;
    // SAFETY: a valid socket and a pointer to a `c_int` of the length given.
    let set = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_REUSEPORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if set != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: zeroed storage is a valid (unspecified) address of every family.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = super::batch::write_sockaddr(addr, &mut storage);
    // SAFETY: `storage` holds an address of `len` bytes.
    let bound = unsafe {
        libc::bind(
            socket.as_raw_fd(),
            (&storage as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if bound != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(UdpSocket::from_std(std::net::UdpSocket::from(socket)))
}

/// `SO_REUSEPORT` spreads datagrams by address hash on Linux only.
#[cfg(not(target_os = "linux"))]
pub(super) fn bind_reuse_port(_addr: SocketAddr) -> io::Result<UdpSocket> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "a sharded listener needs Linux's SO_REUSEPORT",
    ))
}

impl Driver {
    /// Binds a shard of a listening port: its socket joins the port's group, and its
    /// connections go to the group's accept queue and event ring.
    fn listen_shard(
        &mut self,
        addr: SocketAddr,
        keys: &ShardKeys,
        (accept, events): (Inbox<Connection>, Arc<ListenerEvents>),
        shared: &Arc<DaemonShared>,
    ) -> io::Result<Listener> {
        let key = self.bind(addr, Some(keys), shared)?;
        Ok(self.attach_listener(key, accept, events, shared))
    }
}

/// A server whose one listening port is served by several daemon threads (Linux,
/// `SO_REUSEPORT`): each shard is a [`Daemon`] with its own socket on the port, and the
/// kernel keeps every client on one shard (it hashes the addresses and ports of each
/// datagram). Connections from every shard wait in one accept queue, and their
/// [`ServerEvent`]s in one ring: accept and poll as from one [`Listener`]. A connection is
/// served entirely by its shard's thread, so N shards use up to N cores.
///
/// The shards share the handshake's token secret and clock, so a challenge response is
/// accepted by whichever shard receives it. [`Connection::id`]s are unique across the shards.
///
/// Limits: the shards stop together when this is dropped (every connection then ends with
/// [`CloseReason::DaemonStopped`]); each shard holds up to `config.protocol.max_connections`
/// connections, so the server up to `shards` times as many; the accept queue holds
/// `config.accept_backlog` connections for all shards together. Any process of the same user
/// could join the port's group with `SO_REUSEPORT` and take a share of its clients. Plain mode
/// only (no secure listener).
///
/// ```
/// use gudp::{Daemon, DaemonConfig, ShardedListener};
/// let server = ShardedListener::bind("127.0.0.1:0".parse().unwrap(), 2, DaemonConfig::default())?;
/// assert_eq!(server.shards().len(), 2);
/// let client_daemon = Daemon::spawn(DaemonConfig::default())?;
/// let client = client_daemon.connect(server.local_addr())?;
/// let player = server.accept()?; // from whichever shard the kernel chose
/// client.send(b"hello")?;
/// assert_eq!(&player.recv()?[..], b"hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[non_exhaustive]
pub struct ShardedListener {
    // Dropped first: the shards stop accepting while their daemons still run.
    listeners: Vec<Listener>,
    daemons: Vec<Daemon>,
}

impl ShardedListener {
    /// Spawns `shards` daemons with `config` (threads named `config.thread_name` and the
    /// shard's number) and binds each a socket at `addr` (port 0: the first shard picks a
    /// free port, the others join it).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for zero shards or an invalid `config`; `Unsupported` off Linux; the
    /// system's error if the port is taken by a socket without `SO_REUSEPORT`.
    ///
    /// ```
    /// use gudp::{DaemonConfig, ShardedListener};
    /// let zero = ShardedListener::bind("127.0.0.1:0".parse().unwrap(), 0, DaemonConfig::default());
    /// assert_eq!(zero.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn bind(addr: SocketAddr, shards: usize, config: DaemonConfig) -> io::Result<Self> {
        if shards == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a sharded listener needs at least one shard",
            ));
        }
        config.validate()?;
        let keys = ShardKeys {
            secret: random_secret(),
            anchor: Instant::now(),
        };
        let queues = (
            Inbox::new(config.accept_backlog),
            ListenerEvents::new(4 * config.accept_backlog),
        );
        let (mut listeners, mut daemons) = (Vec::new(), Vec::new());
        let mut addr = addr;
        for shard in 0..shards {
            let mut shard_config = config.clone();
            shard_config.thread_name = format!("{}-{shard}", config.thread_name);
            let daemon = Daemon::spawn(shard_config)?;
            let listener = {
                let mut driver = daemon.shared.driver();
                driver.next_conn_id = (shard as u64) << SHARD_ID_SHIFT;
                driver.listen_shard(addr, &keys, queues.clone(), &daemon.shared)?
            };
            daemon.shared.wake();
            addr = listener.local_addr();
            listeners.push(listener);
            daemons.push(daemon);
        }
        Ok(Self { listeners, daemons })
    }

    /// Waits for the next connection from any shard, or returns why the listener finished
    /// (a shard's daemon stopped).
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig, ShardedListener};
    /// # let server = ShardedListener::bind("127.0.0.1:0".parse().unwrap(), 2, DaemonConfig::default()).unwrap();
    /// # let client_daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// let client = client_daemon.connect(server.local_addr()).unwrap();
    /// let player = server.accept().unwrap();
    /// assert_eq!(player.peer_addr(), client.local_addr());
    /// ```
    pub fn accept(&self) -> Result<Connection, CloseReason> {
        self.listeners[0].accept()
    }

    /// Takes a connection if one is waiting; never blocks.
    ///
    /// ```
    /// # use gudp::{DaemonConfig, ShardedListener, TryRecvError};
    /// # let server = ShardedListener::bind("127.0.0.1:0".parse().unwrap(), 2, DaemonConfig::default()).unwrap();
    /// assert_eq!(server.try_accept().unwrap_err(), TryRecvError::Empty);
    /// ```
    pub fn try_accept(&self) -> Result<Connection, TryRecvError> {
        self.listeners[0].try_accept()
    }

    /// Like [`accept`](Self::accept), but gives up after `timeout`.
    ///
    /// ```
    /// # use gudp::{DaemonConfig, RecvTimeoutError, ShardedListener};
    /// # let server = ShardedListener::bind("127.0.0.1:0".parse().unwrap(), 2, DaemonConfig::default()).unwrap();
    /// let nobody = server.accept_timeout(std::time::Duration::from_millis(1));
    /// assert_eq!(nobody.unwrap_err(), RecvTimeoutError::Timeout);
    /// ```
    pub fn accept_timeout(&self, timeout: Duration) -> Result<Connection, RecvTimeoutError> {
        self.listeners[0].accept_timeout(timeout)
    }

    /// The next [`ServerEvent`] of any shard, if any; never blocks (as
    /// [`Listener::poll_event`], one ring of `4 × accept_backlog` for all shards).
    ///
    /// ```
    /// # use gudp::{DaemonConfig, ShardedListener};
    /// # let server = ShardedListener::bind("127.0.0.1:0".parse().unwrap(), 2, DaemonConfig::default()).unwrap();
    /// assert_eq!(server.poll_event(), None);
    /// ```
    pub fn poll_event(&self) -> Option<ServerEvent> {
        self.listeners[0].poll_event()
    }

    /// The port's address (every shard's socket is bound to it).
    ///
    /// ```
    /// # use gudp::{DaemonConfig, ShardedListener};
    /// # let server = ShardedListener::bind("127.0.0.1:0".parse().unwrap(), 2, DaemonConfig::default()).unwrap();
    /// assert_ne!(server.local_addr().port(), 0);
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.listeners[0].local_addr()
    }

    /// The shards' daemons, in order (their [`Daemon::counters`] say how the kernel spread
    /// the clients).
    ///
    /// ```
    /// # use gudp::{DaemonConfig, ShardedListener};
    /// # let server = ShardedListener::bind("127.0.0.1:0".parse().unwrap(), 3, DaemonConfig::default()).unwrap();
    /// let received: u64 = server.shards().iter().map(|d| d.counters().datagrams_received).sum();
    /// assert_eq!(received, 0);
    /// ```
    pub fn shards(&self) -> &[Daemon] {
        &self.daemons
    }
}

impl fmt::Debug for ShardedListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardedListener")
            .field("local", &self.local_addr())
            .field("shards", &self.daemons.len())
            .finish()
    }
}

/// A token secret for a group of shards, from the system's random hasher keys.
fn random_secret() -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    let mut secret = [0; 16];
    for half in secret.chunks_mut(8) {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(super::random_seed().into());
        half.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    secret
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::super::registry::Sockets;
    use crate::protocol::{Config, Endpoint, Event, Role};
    use std::time::{Duration, Instant};

    /// The kernel may hand a client's challenge response to another shard than the one that
    /// issued the challenge (the group changed in between): the two shards the daemon binds
    /// share the secret and the token clock, so the other one accepts it. Shard `b` sees its
    /// first datagram seconds after shard `a` did.
    #[test]
    fn a_challenge_from_one_shard_is_accepted_by_another() {
        let poll = mio::Poll::new().unwrap();
        let mut sockets = Sockets::new(poll.registry().try_clone().unwrap());
        let t0 = Instant::now();
        let config = Config::default();
        let any = "127.0.0.1:0".parse().unwrap();
        let a = sockets.bind(any, &config, [9; 16], Some(t0)).unwrap();
        let port = sockets.get(a).unwrap().local;
        let b = sockets.bind(port, &config, [9; 16], Some(t0)).unwrap();
        assert_eq!(
            sockets.get(b).unwrap().local,
            port,
            "both bound to one port"
        );

        let client_addr = "127.0.0.1:40000".parse().unwrap();
        let mut buf = [0u8; 1500];
        // Shard a has been answering requests since the start.
        let mut early = Endpoint::new(config.clone(), [2; 16]);
        early.connect(t0, port).unwrap();
        let request = early.poll_transmit(t0, &mut buf).unwrap();
        let early_addr = "127.0.0.1:40001".parse().unwrap();
        let shard_a = &mut sockets.get_mut(a).unwrap().endpoint;
        let _ = shard_a.handle_datagram(t0, early_addr, &buf[..request.len]);
        while shard_a.poll_transmit(t0, &mut buf).is_some() {}

        let mut client = Endpoint::new(config.clone(), [1; 16]);
        let now = t0 + Duration::from_secs(3);
        client.connect(now, port).unwrap();
        // The request reaches shard a, its challenge goes back, the response reaches b.
        let request = client.poll_transmit(now, &mut buf).unwrap();
        let shard_a = &mut sockets.get_mut(a).unwrap().endpoint;
        let _ = shard_a.handle_datagram(now, client_addr, &buf[..request.len]);
        let challenge = shard_a.poll_transmit(now, &mut buf).unwrap();
        let _ = client.handle_datagram(now, port, &buf[..challenge.len]);
        let response = client.poll_transmit(now, &mut buf).unwrap();
        let shard_b = &mut sockets.get_mut(b).unwrap().endpoint;
        let _ = shard_b.handle_datagram(now, client_addr, &buf[..response.len]);
        assert!(
            matches!(
                shard_b.poll_event(),
                Some(Event::Connected {
                    role: Role::Server,
                    ..
                })
            ),
            "shard b refused shard a's challenge: {:?}",
            shard_b.counters()
        );
    }
}
