//! The daemon: one event loop that owns every socket and all protocol state.
//!
//! [`Daemon::spawn`] starts it on its own thread; [`Daemon::manual`] leaves it to the caller,
//! who drives the very same loop with [`Daemon::poll`] (an engine that owns its threads calls
//! it once per frame). The loop sleeps in `mio::Poll` until a socket is readable, the nearest
//! protocol deadline, or a wake from an outbox that went from empty to non-empty.

mod batch;
pub(crate) mod driver;
mod lifecycle;
mod output;
mod registry;
mod sending;
pub(crate) mod shared;
mod timers;

pub(crate) use registry::SocketKey;

use crate::conditioner::LinkConfig;
use crate::connection::Connection;
use crate::core::inbox::TryRecvError;
use crate::core::status::CloseReason;
use crate::error::ConnectError;
use crate::listener::Listener;
use crate::protocol::{self, EndpointCounters};
use driver::{Driver, WAKER};
use shared::DaemonShared;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A link conditioner to put in front of every socket's outgoing datagrams (tests, demos).
///
/// ```
/// use gudp::{conditioner::LinkConfig, Daemon, DaemonConfig, LinkSetup};
/// use std::time::Duration;
/// let latency = Duration::from_millis(5);
/// let bad_wifi = LinkConfig { latency, loss_percent: 1.0, ..LinkConfig::default() };
/// let link = Some(LinkSetup { config: bad_wifi, seed: 7 });
/// let daemon = Daemon::spawn(DaemonConfig { link, ..DaemonConfig::default() }).unwrap();
/// assert!(daemon.set_link(LinkConfig::default())); // it has a conditioner to adjust
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkSetup {
    /// Latency, jitter, loss and duplication to apply.
    pub config: LinkConfig,
    /// Seed of the conditioner's random choices.
    pub seed: u64,
}

/// How a daemon and its connections are sized.
///
/// ```
/// let config = gudp::DaemonConfig {
///     inbox_capacity: 4096,
///     ..gudp::DaemonConfig::default()
/// };
/// assert_eq!(config.protocol.max_payload, 1200);
/// ```
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    /// Protocol settings (MTU, timeouts, congestion avoidance, connection limit per socket).
    pub protocol: protocol::Config,
    /// Received packets each connection buffers before new ones are dropped and counted.
    pub inbox_capacity: usize,
    /// Packets each connection queues for sending before `try_send` refuses.
    pub outbox_capacity: usize,
    /// Delivery notifications each connection keeps before new ones are dropped and counted.
    pub delivery_capacity: usize,
    /// Handshaken connections a listener queues until `accept`.
    pub accept_backlog: usize,
    /// Spare packet buffers the daemon keeps for reuse.
    pub pool_capacity: usize,
    /// Socket readiness events handled per wake.
    pub events_capacity: usize,
    /// Datagrams moved per system call, 1 to 64 (default 64): on Linux the daemon reads with
    /// `recvmmsg` and writes with `sendmmsg`; at 1, and on other systems, each call moves one
    /// datagram. A batch never waits to fill: it goes out when the work at hand is done.
    pub io_batch: usize,
    /// Longest a packet accepted by `try_send` may wait in the outbox for its pacing slot
    /// (default 100 ms). Each connection's outbox holds only what its current pacing rate
    /// sends in this time (at least one packet), so `try_send` refuses with
    /// [`SendError::Paced`](crate::SendError::Paced) rather than build a backlog, and a
    /// packet that still waits longer is dropped and reported lost
    /// ([`DaemonCounters::sends_expired`]), never delivered late.
    pub max_send_delay: Duration,
    /// Longest a closed connection lingers to send what its outbox holds and to learn the
    /// fate of what it sent (default 1 s); then the disconnect goes out and whatever is
    /// unresolved is reported lost. Also bounds how long a shutdown waits.
    pub close_linger: Duration,
    /// Name of the daemon's thread (default `gudp-daemon`), so that two daemons can be told
    /// apart in a profiler or a debugger. A manual daemon has no thread of its own.
    pub thread_name: String,
    /// Optional link conditioner in front of every socket.
    pub link: Option<LinkSetup>,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            protocol: protocol::Config::default(),
            inbox_capacity: 1024,
            outbox_capacity: 1024,
            delivery_capacity: 4096,
            accept_backlog: 1024,
            pool_capacity: 8192,
            events_capacity: 1024,
            io_batch: batch::MAX_BATCH,
            max_send_delay: Duration::from_millis(100),
            close_linger: Duration::from_secs(1),
            thread_name: "gudp-daemon".into(),
            link: None,
        }
    }
}

impl DaemonConfig {
    fn validate(&self) -> io::Result<()> {
        let sizes = [
            ("inbox_capacity", self.inbox_capacity),
            ("outbox_capacity", self.outbox_capacity),
            ("delivery_capacity", self.delivery_capacity),
            ("accept_backlog", self.accept_backlog),
            ("events_capacity", self.events_capacity),
        ];
        for (name, value) in sizes {
            check_range(name, value, 1, 1 << 24)?;
        }
        check_range("io_batch", self.io_batch, 1, batch::MAX_BATCH)?;
        if self.thread_name.is_empty() || self.thread_name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "DaemonConfig::thread_name must be non-empty and contain no NUL byte",
            ));
        }
        let durations = [
            ("max_send_delay", self.max_send_delay),
            ("close_linger", self.close_linger),
        ];
        for (name, value) in durations {
            if value > protocol::config::MAX_DURATION {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("DaemonConfig::{name} must be at most one day, got {value:?}"),
                ));
            }
        }
        // The largest IPv4 UDP payload is 65,507 bytes, and a datagram adds its header.
        let max_payload = 65_507 - protocol::wire::CONNECTED_HEADER_LEN;
        check_range(
            "protocol.max_payload",
            self.protocol.max_payload,
            0,
            max_payload,
        )
    }
}

fn check_range(name: &str, value: usize, min: usize, max: usize) -> io::Result<()> {
    if (min..=max).contains(&value) {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("DaemonConfig::{name} must be between {min} and {max}, got {value}"),
    ))
}

/// What the daemon counted. Every datagram read ends in exactly one of `payloads_delivered`,
/// `protocol_packets`, `dropped_by_protocol` (by reason in `endpoints`), `dropped_inbox_full`,
/// `dropped_no_handle` or `dropped_unknown_source`, so their sum equals `datagrams_received` — see
/// [`DaemonCounters::unaccounted`].
///
/// ```
/// # use gudp::{Daemon, DaemonConfig};
/// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
/// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
/// # let client = daemon.connect(listener.local_addr()).unwrap();
/// # let server = listener.accept().unwrap();
/// // `client` and `server` are the two ends of one connection over loopback.
/// client.send(b"x").unwrap();
/// server.recv().unwrap();
/// let counters: gudp::DaemonCounters = daemon.counters();
/// assert_eq!(counters.payloads_delivered, 1);
/// assert!(counters.protocol_packets >= 4); // the handshake, both ends on this daemon
/// assert_eq!(counters.unaccounted(), 0);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DaemonCounters {
    /// Datagrams read from sockets.
    pub datagrams_received: u64,
    /// Datagrams written to sockets.
    pub datagrams_sent: u64,
    /// Payloads pushed into a connection's inbox.
    pub payloads_delivered: u64,
    /// Valid protocol-only datagrams (handshake, keepalive, ack, disconnect).
    pub protocol_packets: u64,
    /// Datagrams the protocol dropped (invalid, wrong protocol id, unknown peer, duplicate,
    /// stale, too large, bad token, ...): see `endpoints` for the reasons.
    pub dropped_by_protocol: u64,
    /// Payloads dropped because the connection's inbox was full.
    pub dropped_inbox_full: u64,
    /// Payloads for a connection the application has closed (the daemon may still be sending
    /// its outbox) or that has no handle. Never acked: the sender sees them lost.
    pub dropped_no_handle: u64,
    /// Datagrams whose source the kernel gave in an address family other than IPv4 or IPv6
    /// (not seen on an IP socket; counted so that no datagram can vanish uncounted).
    pub dropped_unknown_source: u64,
    /// Datagrams the kernel dropped before the daemon could read them, because a socket's
    /// receive buffer was full (Linux, from `SO_RXQ_OVFL`). Not part of `datagrams_received`:
    /// the count arrives with the next datagram the socket receives.
    pub dropped_by_kernel: u64,
    /// Handshaken connections closed because the accept queue was full.
    pub accept_queue_full: u64,
    /// Handshaken connections closed because their socket no longer had a listener.
    pub refused_no_listener: u64,
    /// Packets a connection could not send any more (reported to it as lost).
    pub sends_refused: u64,
    /// Packets that waited in an outbox longer than `DaemonConfig::max_send_delay` and were
    /// dropped unsent (reported to their connection as lost).
    pub sends_expired: u64,
    /// Datagrams the kernel refused with "would block" (dropped; the protocol sees a loss).
    pub send_would_block: u64,
    /// Other send errors (dropped; the protocol sees a loss).
    pub send_errors: u64,
    /// ICMP errors (port unreachable) reported on a receive and skipped.
    pub icmp_errors: u64,
    /// Sockets that failed; their connections ended with `SocketError`.
    pub sockets_failed: u64,
    /// Link-conditioner datagrams whose socket had closed before their delivery time.
    pub link_orphans: u64,
    /// Failed wake-ups of the event loop.
    pub wake_errors: u64,
    /// The protocol endpoints' counters, summed over every socket, closed ones included.
    pub endpoints: EndpointCounters,
}

impl DaemonCounters {
    /// Datagrams read that no counter accounts for: always 0.
    ///
    /// ```
    /// let daemon = gudp::Daemon::spawn(gudp::DaemonConfig::default()).unwrap();
    /// assert_eq!(daemon.counters().unaccounted(), 0);
    /// ```
    pub fn unaccounted(&self) -> i128 {
        i128::from(self.datagrams_received)
            - i128::from(self.payloads_delivered)
            - i128::from(self.protocol_packets)
            - i128::from(self.dropped_by_protocol)
            - i128::from(self.dropped_inbox_full)
            - i128::from(self.dropped_no_handle)
            - i128::from(self.dropped_unknown_source)
    }

    /// Adds what one flush of a send batch did.
    fn add_flushed(&mut self, flushed: batch::Flushed) {
        self.datagrams_sent += flushed.sent;
        self.send_would_block += flushed.would_block;
        self.send_errors += flushed.errors;
    }
}

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
        let next = shared.driver().next_timeout(Instant::now());
        let timeout = match (next, limit) {
            _ if work_waiting => Some(Duration::ZERO),
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
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
    /// let bad = DaemonConfig { io_batch: 0, ..DaemonConfig::default() };
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
        let listener = self.shared.driver().listen(addr, &self.shared)?;
        self.shared.wake();
        Ok(listener)
    }

    /// Connects to a GUDP server, blocking until the handshake completes or fails (within
    /// the protocol's `connect_timeout`, 5 s by default). In manual mode it drives the event
    /// loop itself while it waits.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// let conn = daemon.connect(listener.local_addr()).unwrap(); // the handshake is done
    /// assert_eq!(conn.peer_addr(), listener.local_addr());
    /// assert!(!conn.status().is_finished());
    /// ```
    pub fn connect(&self, server: SocketAddr) -> Result<Connection, ConnectError> {
        let now = Instant::now();
        let reply = self
            .shared
            .driver()
            .connect(server, &self.shared, now)
            .map_err(ConnectError::Io)?;
        self.shared.wake();
        // The protocol's connect timeout ends the attempt; the margin covers a daemon that
        // is late to notice (a stopped daemon answers `DaemonStopped` at once).
        let deadline = now + self.shared.config.protocol.connect_timeout + Duration::from_secs(1);
        let outcome = match &self.poll {
            None => reply.recv_deadline(deadline).ok(),
            Some(_) => loop {
                match reply.try_recv() {
                    Ok(outcome) => break Some(outcome),
                    Err(TryRecvError::Closed(_)) => break None,
                    Err(TryRecvError::Empty) if Instant::now() >= deadline => break None,
                    Err(TryRecvError::Empty) => {
                        self.poll(Some(Duration::from_millis(10)))
                            .map_err(ConnectError::Io)?;
                    }
                }
            },
        };
        match outcome {
            Some(Ok(connection)) => Ok(connection),
            Some(Err(reason)) => Err(ConnectError::Failed(reason)),
            None => Err(ConnectError::Failed(CloseReason::ConnectTimedOut)),
        }
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
