//! The daemon: one event loop that owns every socket and all protocol state.
//!
//! [`Daemon::spawn`] starts it on its own thread; [`Daemon::manual`] leaves it to the caller,
//! who drives the very same loop with [`Daemon::poll`] (an engine that owns its threads calls
//! it once per frame). The loop sleeps in `mio::Poll` until a socket is readable, the nearest
//! protocol deadline, or a wake from an outbox that went from empty to non-empty.

mod batch;
mod config;
mod counters;
pub(crate) mod driver;
mod lifecycle;
mod messages;
mod output;
mod registry;
mod sending;
mod shard;
pub(crate) mod shared;
mod timers;

pub use config::{DaemonConfig, LinkSetup};
pub use counters::DaemonCounters;
pub(crate) use registry::SocketKey;
pub use shard::ShardedListener;

use crate::conditioner::LinkConfig;
use crate::connection::Connection;
use crate::core::inbox::TryRecvError;
use crate::core::status::CloseReason;
use crate::error::ConnectError;
use crate::listener::Listener;
use crate::message::MessageConfig;
use crate::protocol::secure::{ConnectToken, PrivateKey};
use crate::trace::event;
use driver::{Driver, WAKER};
use registry::ConnectReply;
use shared::DaemonShared;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The GUDP daemon: owns the sockets and runs the protocol for every connection.
///
/// Dropping it shuts it down: every connection finishes with
/// [`CloseReason::DaemonStopped`] and every blocked caller wakes.
///
/// ```
/// use gudp::{Daemon, DaemonConfig};
/// let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
/// let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
/// let client = daemon.connect(listener.local_addr()).unwrap();
/// let server = listener.accept().unwrap();
/// client.send(b"hi").unwrap();
/// assert_eq!(&server.recv().unwrap()[..], b"hi");
/// ```
pub struct Daemon {
    shared: Arc<DaemonShared>,
    /// `Some` in manual mode: the caller's `poll` uses it. The spawned loop owns its own.
    poll: Option<Mutex<Loop>>,
    thread: Option<JoinHandle<()>>,
}

/// A connection attempt under way, from [`Daemon::connect_nonblocking`]. Poll it with
/// [`try_finish`](Self::try_finish) (never blocks) or [`wait`](Self::wait).
///
/// ```
/// # use gudp::{Daemon, DaemonConfig};
/// let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
/// let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
/// let pending = daemon.connect_nonblocking(listener.local_addr()).unwrap();
/// assert_eq!(pending.server_addr(), listener.local_addr());
/// let conn = pending.wait().unwrap();
/// # let _ = conn;
/// ```
#[derive(Debug)]
pub struct PendingConnection {
    reply: ConnectReply,
    server: SocketAddr,
    deadline: Instant,
}

impl PendingConnection {
    /// The connection, or why the attempt failed, once the handshake is over; `None` while
    /// it is still under way. Never blocks. Poll it until its first `Some`: the connection is
    /// handed out once.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap(); // never answers
    /// let pending = daemon.connect_nonblocking(silent.local_addr().unwrap()).unwrap();
    /// assert!(pending.try_finish().is_none()); // still requesting
    /// ```
    pub fn try_finish(&self) -> Option<Result<Connection, ConnectError>> {
        match self.reply.try_recv() {
            Ok(outcome) => Some(outcome.map_err(ConnectError::failed)),
            Err(TryRecvError::Empty) if Instant::now() < self.deadline => None,
            Err(TryRecvError::Empty) => {
                Some(Err(ConnectError::Failed(CloseReason::ConnectTimedOut)))
            }
            Err(TryRecvError::Closed(reason)) => Some(Err(ConnectError::failed(reason))),
        }
    }

    /// Blocks until the attempt is over (a spawned daemon; with a manual one, call
    /// [`Daemon::connect`], which drives the loop while it waits).
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// let conn = daemon.connect_nonblocking(listener.local_addr()).unwrap().wait().unwrap();
    /// assert!(!conn.status().is_finished());
    /// ```
    pub fn wait(self) -> Result<Connection, ConnectError> {
        match self.reply.recv_deadline(self.deadline) {
            Ok(outcome) => outcome.map_err(ConnectError::failed),
            Err(crate::RecvTimeoutError::Closed(reason)) => Err(ConnectError::failed(reason)),
            Err(_) => Err(ConnectError::Failed(CloseReason::ConnectTimedOut)),
        }
    }

    /// The server being connected to.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// let pending = daemon.connect_nonblocking(listener.local_addr()).unwrap();
    /// assert_eq!(pending.server_addr(), listener.local_addr());
    /// ```
    pub fn server_addr(&self) -> SocketAddr {
        self.server
    }
}

/// Refuses an address no server can listen on, at once rather than after a timeout.
fn check_server_address(server: SocketAddr) -> Result<(), ConnectError> {
    let ip = server.ip();
    let broadcast = matches!(ip, std::net::IpAddr::V4(v4) if v4.is_broadcast());
    if server.port() == 0 || ip.is_unspecified() || ip.is_multicast() || broadcast {
        return Err(ConnectError::InvalidAddress(server));
    }
    Ok(())
}

/// A daemon that runs only when its owner calls [`poll`](Self::poll), from
/// [`Daemon::manual`]. Everything else is the [`Daemon`]'s: it derefs to one.
///
/// ```
/// use gudp::{Daemon, DaemonConfig};
/// use std::time::Duration;
/// let daemon = Daemon::manual(DaemonConfig::default()).unwrap();
/// daemon.poll(Some(Duration::ZERO)).unwrap(); // nothing to do: returns at once
/// daemon.shutdown();
/// assert!(daemon.poll(Some(Duration::ZERO)).is_err()); // stopped
/// ```
#[derive(Debug)]
pub struct ManualDaemon {
    daemon: Daemon,
}

impl ManualDaemon {
    /// Runs one turn of the event loop, sleeping at most `timeout` (or until the nearest
    /// protocol deadline) for something to do. Fails once the daemon has stopped.
    ///
    /// ```
    /// use gudp::{Daemon, DaemonConfig};
    /// use std::time::Duration;
    /// let daemon = Daemon::manual(DaemonConfig::default()).unwrap();
    /// daemon.poll(Some(Duration::ZERO)).unwrap(); // nothing to do: returns at once
    /// daemon.shutdown();
    /// assert!(daemon.poll(Some(Duration::ZERO)).is_err()); // stopped
    /// ```
    pub fn poll(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.daemon.poll(timeout)
    }
}

impl std::ops::Deref for ManualDaemon {
    type Target = Daemon;

    fn deref(&self) -> &Daemon {
        &self.daemon
    }
}

/// The part of the event loop that sleeps: mio's poller and its event buffer.
struct Loop {
    poll: mio::Poll,
    events: mio::Events,
}

impl Loop {
    /// One turn of the event loop, the same code whether a spawned thread or `Daemon::poll`
    /// runs it: sleep until an event or `limit` (capped by the nearest deadline), then work.
    fn turn(&mut self, shared: &Arc<DaemonShared>, limit: Option<Duration>) -> io::Result<()> {
        self.turn_with(shared, limit, true)
    }

    /// A turn; `watch_stop` makes a stop request end the sleep at once (a shutdown that
    /// is already lingering sleeps until its deadline or its work instead).
    fn turn_with(
        &mut self,
        shared: &Arc<DaemonShared>,
        limit: Option<Duration>,
        watch_stop: bool,
    ) -> io::Result<()> {
        // Raise the wake gate before looking for work, so that work published after the look
        // wakes us (`src/daemon/shared.rs`).
        let work_waiting = shared.prepare_sleep(watch_stop);
        let mut driver = shared.driver();
        let now = Instant::now();
        let timeout = match (driver.next_timeout(now), limit) {
            _ if work_waiting => Some(Duration::ZERO),
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        driver.sleeping(now, timeout);
        drop(driver);
        let polled = self.poll.poll(&mut self.events, timeout);
        shared.awake();
        match polled {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
        let now = Instant::now();
        shared.driver().turn(shared, &self.events, now);
        Ok(())
    }
}

impl Daemon {
    /// Starts a daemon on its own thread.
    ///
    /// ```
    /// use gudp::{Daemon, DaemonConfig};
    /// let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// let mut bad = DaemonConfig::default();
    /// bad.io_batch = 0;
    /// assert_eq!(Daemon::spawn(bad).unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    ///
    /// Its own thread runs the loop, so there is nothing to poll:
    ///
    /// ```compile_fail
    /// let daemon = gudp::Daemon::spawn(gudp::DaemonConfig::default()).unwrap();
    /// daemon.poll(None); // only a `ManualDaemon` has `poll`
    /// ```
    pub fn spawn(config: DaemonConfig) -> io::Result<Daemon> {
        let (shared, event_loop) = Self::build(config)?;
        shared.loop_thread.store(true, Ordering::Release);
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(shared.config.thread_name.clone())
            .spawn(move || run(thread_shared, event_loop))?;
        Ok(Daemon {
            shared,
            poll: None,
            thread: Some(thread),
        })
    }

    /// Creates a daemon that runs only when the caller calls [`ManualDaemon::poll`]: for an
    /// engine that owns its threads and drives the network once per frame. A
    /// [`ManualDaemon`] is a `Daemon` (it derefs to one) that can also be polled; a spawned
    /// daemon has no `poll` to call by mistake.
    ///
    /// ```
    /// use gudp::{Daemon, DaemonConfig};
    /// use std::time::Duration;
    /// let daemon = Daemon::manual(DaemonConfig::default()).unwrap();
    /// let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// let client = daemon.connect(listener.local_addr()).unwrap(); // drives the loop itself
    /// client.try_send(b"frame 1").unwrap();
    /// let server = loop {
    ///     daemon.poll(Some(Duration::from_millis(5))).unwrap(); // once per frame
    ///     if let Ok(server) = listener.try_accept() {
    ///         break server;
    ///     }
    /// };
    /// let packet = loop {
    ///     daemon.poll(Some(Duration::from_millis(5))).unwrap();
    ///     if let Ok(packet) = server.try_recv() {
    ///         break packet;
    ///     }
    /// };
    /// assert_eq!(&packet[..], b"frame 1");
    /// ```
    pub fn manual(config: DaemonConfig) -> io::Result<ManualDaemon> {
        let (shared, event_loop) = Self::build(config)?;
        Ok(ManualDaemon {
            daemon: Daemon {
                shared,
                poll: Some(Mutex::new(event_loop)),
                thread: None,
            },
        })
    }

    fn build(config: DaemonConfig) -> io::Result<(Arc<DaemonShared>, Loop)> {
        config.validate()?;
        let mut config = config;
        // The handshake compares it: both ends must frame payloads alike.
        config.protocol.message_fingerprint = config
            .messages
            .as_ref()
            .map_or(0, MessageConfig::fingerprint);
        let poll = mio::Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        let registry = poll.registry().try_clone()?;
        let driver = Driver::new(registry, &config, random_seed());
        let events = mio::Events::with_capacity(config.events_capacity);
        let shared = DaemonShared::new(config, waker, driver);
        Ok((shared, Loop { poll, events }))
    }

    /// One turn of a manual daemon's loop (the thread of a spawned one runs its own).
    fn poll(&self, timeout: Option<Duration>) -> io::Result<()> {
        let Some(event_loop) = &self.poll else {
            return Err(io::Error::other("a spawned daemon runs its own loop"));
        };
        if self.shared.stop.load(Ordering::Acquire) {
            return Err(io::Error::other("the daemon has stopped"));
        }
        let mut event_loop = event_loop.lock().unwrap_or_else(|p| p.into_inner());
        event_loop.turn(&self.shared, timeout)
    }

    /// Binds a listening socket at `addr` (port 0 picks a free port).
    ///
    /// ```
    /// use gudp::{Daemon, DaemonConfig};
    /// let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// assert_ne!(listener.local_addr().port(), 0); // the system picked a port
    /// ```
    pub fn listen(&self, addr: SocketAddr) -> io::Result<Listener> {
        let listener = self.shared.driver().listen(addr, None, &self.shared)?;
        self.shared.wake();
        Ok(listener)
    }

    /// Binds a listening socket in secure mode: it accepts only clients holding a valid
    /// connect token minted with `key` that lists `public_addr` (default: the bound
    /// address, which must then be the one clients reach), refuses the plain handshake, and
    /// encrypts every packet. Each refusal is counted by reason in
    /// [`DaemonCounters::endpoints`] (`connect_token_expired`, `connect_token_forged`,
    /// `connect_token_wrong_server`, `connect_token_in_use`, `client_id_in_use`,
    /// `wrong_mode_handshakes`). One client id has at most one connection at a time: a
    /// client that reconnects from a new address waits until its old connection ends.
    /// Token expiry is checked against the system clock.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a wildcard `addr` (`0.0.0.0`, `::`) without `public_addr`: no token
    /// can list a wildcard, so every client would be refused as `connect_token_wrong_server`.
    /// Otherwise as [`listen`](Self::listen).
    ///
    /// ```
    /// use gudp::secure::PrivateKey;
    /// use gudp::{Daemon, DaemonConfig};
    /// let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// let listener = daemon.listen_secure("127.0.0.1:0".parse().unwrap(), PrivateKey::generate().unwrap(), None).unwrap();
    /// // A plain client is refused: its requests go unanswered.
    /// let mut config = DaemonConfig::default();
    /// config.protocol.connect_timeout = std::time::Duration::from_millis(300);
    /// let client = Daemon::spawn(config).unwrap();
    /// assert!(client.connect(listener.local_addr()).is_err());
    /// assert!(daemon.counters().endpoints.wrong_mode_handshakes > 0);
    /// let wildcard = "0.0.0.0:0".parse().unwrap();
    /// assert!(daemon.listen_secure(wildcard, PrivateKey::generate().unwrap(), None).is_err());
    /// ```
    pub fn listen_secure(
        &self,
        addr: SocketAddr,
        key: PrivateKey,
        public_addr: Option<SocketAddr>,
    ) -> io::Result<Listener> {
        if public_addr.is_none() && addr.ip().is_unspecified() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a secure listener bound to {addr} needs the public address clients reach it at (tokens list it)"),
            ));
        }
        let secure = Some((key, public_addr));
        let listener = self.shared.driver().listen(addr, secure, &self.shared)?;
        self.shared.wake();
        Ok(listener)
    }

    /// Connects with a connect token, trying the servers it lists in order (as netcode
    /// does), each until the protocol's `connect_timeout` (5 s by default), blocking until
    /// one accepts; every packet of the connection is encrypted with the token's keys.
    /// Returns the last server's failure if none accepts. A server refuses an expired,
    /// forged or otherwise invalid token by not answering, so such a token costs each
    /// server's full timeout.
    ///
    /// ```
    /// use gudp::secure::{ConnectToken, PrivateKey, TokenParams};
    /// use gudp::{Daemon, DaemonConfig};
    /// let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// let key = PrivateKey::generate().unwrap();
    /// let listener = daemon.listen_secure("127.0.0.1:0".parse().unwrap(), key.clone(), None).unwrap();
    /// let protocol_id = DaemonConfig::default().protocol.protocol_id.into();
    /// let params = TokenParams::new(protocol_id, 42, vec![listener.local_addr()]);
    /// let client = daemon.connect_with_token(&ConnectToken::mint(&key, &params).unwrap()).unwrap();
    /// assert_eq!(client.peer_addr(), listener.local_addr());
    /// ```
    pub fn connect_with_token(&self, token: &ConnectToken) -> Result<Connection, ConnectError> {
        let mut last = None;
        for &server in token.server_addresses() {
            let pending = match self.start_connect(server, Some(token)) {
                Ok(pending) => pending,
                Err(error) => {
                    last = Some(error);
                    continue;
                }
            };
            match self.wait_for(pending) {
                Ok(conn) => return Ok(conn),
                Err(error) => last = Some(error),
            }
        }
        Err(last.expect("a token lists at least one server"))
    }

    /// Connects to a GUDP server, blocking until the handshake completes or fails (within
    /// the protocol's `connect_timeout`, 5 s by default). In manual mode it drives the event
    /// loop itself while it waits. A frame loop that must not block uses
    /// [`connect_nonblocking`](Self::connect_nonblocking) instead.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// let conn = daemon.connect(listener.local_addr()).unwrap(); // the handshake is done
    /// assert_eq!(conn.peer_addr(), listener.local_addr());
    /// assert!(!conn.status().is_finished());
    /// let nowhere = "127.0.0.1:0".parse().unwrap(); // port 0: refused at once
    /// assert!(matches!(daemon.connect(nowhere), Err(gudp::ConnectError::InvalidAddress(_))));
    /// ```
    pub fn connect(&self, server: SocketAddr) -> Result<Connection, ConnectError> {
        let pending = self.connect_nonblocking(server)?;
        self.wait_for(pending)
    }

    /// Waits for a pending connection, driving the loop of a manual daemon meanwhile.
    fn wait_for(&self, pending: PendingConnection) -> Result<Connection, ConnectError> {
        if self.poll.is_none() {
            return pending.wait();
        }
        loop {
            if let Some(outcome) = pending.try_finish() {
                return outcome;
            }
            self.poll(Some(Duration::from_millis(10)))
                .map_err(ConnectError::Io)?;
        }
    }

    /// Starts connecting to a GUDP server and returns at once: poll the
    /// [`PendingConnection`] each frame until it yields the connection or the reason it
    /// failed. Dropping it abandons the attempt (a connection that completes later is closed).
    /// An address no server can have (port 0, unspecified, multicast or broadcast) is
    /// refused at once.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// let pending = daemon.connect_nonblocking(listener.local_addr()).unwrap();
    /// let conn = loop {
    ///     // ... the rest of the frame ...
    ///     if let Some(outcome) = pending.try_finish() {
    ///         break outcome.unwrap();
    ///     }
    ///     std::thread::sleep(std::time::Duration::from_millis(1));
    /// };
    /// assert_eq!(conn.peer_addr(), listener.local_addr());
    /// ```
    pub fn connect_nonblocking(
        &self,
        server: SocketAddr,
    ) -> Result<PendingConnection, ConnectError> {
        self.start_connect(server, None)
    }

    fn start_connect(
        &self,
        server: SocketAddr,
        token: Option<&ConnectToken>,
    ) -> Result<PendingConnection, ConnectError> {
        check_server_address(server)?;
        let now = Instant::now();
        let reply = self
            .shared
            .driver()
            .connect(server, token, &self.shared, now)
            .map_err(ConnectError::Io)?;
        self.shared.wake();
        // The protocol's connect timeout ends the attempt; the margin covers a daemon that
        // is late to notice (a stopped daemon answers `DaemonStopped` at once).
        let deadline = now + self.shared.config.protocol.connect_timeout + Duration::from_secs(1);
        Ok(PendingConnection {
            reply,
            server,
            deadline,
        })
    }

    /// A snapshot of the daemon's counters.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// # let server = listener.accept().unwrap();
    /// // `client` and `server` are the two ends of one connection over loopback.
    /// let counters = daemon.counters();
    /// assert_eq!(counters.endpoints.connections_opened, 2); // one for each end
    /// assert_eq!(counters.unaccounted(), 0);
    /// ```
    pub fn counters(&self) -> DaemonCounters {
        self.shared.driver().counters(&self.shared)
    }

    /// Changes the link conditioner's conditions (for datagrams sent from now on). Returns
    /// `false` if the daemon was built without one (`DaemonConfig::link`).
    ///
    /// ```
    /// use gudp::{conditioner::LinkConfig, Daemon, DaemonConfig};
    /// let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// assert!(!daemon.set_link(LinkConfig::default())); // built without a conditioner
    /// ```
    pub fn set_link(&self, config: LinkConfig) -> bool {
        self.shared.driver().set_link(config)
    }

    /// Stops the daemon: every peer is sent a disconnect, every connection and listener
    /// finishes with [`CloseReason::DaemonStopped`], and every blocked call returns.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// # let server = listener.accept().unwrap();
    /// // `client` and `server` are the two ends of one connection over loopback.
    /// # use gudp::CloseReason;
    /// daemon.shutdown();
    /// assert_eq!(client.recv(), Err(CloseReason::DaemonStopped));
    /// assert_eq!(listener.accept().unwrap_err(), CloseReason::DaemonStopped);
    /// ```
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake();
        if let Some(event_loop) = &self.poll {
            // Manual mode: nobody else runs the loop, so run the linger here.
            let mut event_loop = event_loop.lock().unwrap_or_else(|p| p.into_inner());
            linger(&self.shared, &mut event_loop);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl fmt::Debug for Daemon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Daemon")
            .field(
                "mode",
                &if self.poll.is_some() {
                    "manual"
                } else {
                    "thread"
                },
            )
            .finish()
    }
}

/// The spawned event loop. If anything in it panics, every connection still finishes
/// (`DaemonStopped`) so that no caller blocks forever.
fn run(shared: Arc<DaemonShared>, mut event_loop: Loop) {
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        while !shared.stop.load(Ordering::Acquire) {
            if event_loop.turn(&shared, None).is_err() {
                break; // the poller itself failed: nothing can be received any more
            }
        }
        linger(&shared, &mut event_loop);
    }));
    if result.is_err() {
        shared.driver().abandon();
    }
}

/// Shuts down the way a close does: every connection finishes at once for its users, then
/// the loop keeps running until every connection has sent what it accepted and learned its
/// fate, or until `close_linger`; then the rest is dropped and every peer told.
fn linger(shared: &Arc<DaemonShared>, event_loop: &mut Loop) {
    event!(
        info,
        "daemon stopping: connections linger to send what they accepted"
    );
    let until = shared.driver().begin_shutdown(Instant::now());
    if let Some(until) = until {
        loop {
            let now = Instant::now();
            if now >= until || shared.driver().is_settled() {
                break;
            }
            if event_loop
                .turn_with(shared, Some(until - now), false)
                .is_err()
            {
                break;
            }
        }
    }
    shared.driver().shutdown(Instant::now());
    event!(info, "daemon stopped");
}

/// A seed for the per-socket token keys, from the OS's randomness (std seeds `RandomState`
/// from it) mixed with the time, so no two daemons share keys.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}
