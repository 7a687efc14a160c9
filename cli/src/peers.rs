//! `gudp serve` and `gudp connect`, and the echo server and client loop `demo` reuses.

use crate::chart::{ChartFile, Recorder};
use crate::meter::{self, Totals};
use crate::stop::{self, say};
use gudp::message::MessageConfig;
use gudp::secure::{ConnectToken, PrivateKey};
use gudp::{CloseReason, Connection, Daemon, DaemonConfig, Listener, RecvTimeoutError, SendError};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

/// What `serve` and `connect` exercise (`--channel`): packets, or messages on one of the
/// four channels of `MessageConfig::default()` (both ends then run in message mode with all
/// four open, so any two message kinds can talk; a packet-mode peer is refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Channel {
    /// One payload per datagram (packet mode, the default).
    Packet,
    /// Messages on channel 0: unreliable.
    Unreliable,
    /// Messages on channel 1: unreliable sequenced (an older one than delivered is dropped).
    Sequenced,
    /// Messages on channel 2: reliable unordered.
    Reliable,
    /// Messages on channel 3: reliable ordered.
    Ordered,
}

impl Channel {
    /// The message channel, or `None` in packet mode.
    pub fn id(self) -> Option<u8> {
        match self {
            Channel::Packet => None,
            Channel::Unreliable => Some(0),
            Channel::Sequenced => Some(1),
            Channel::Reliable => Some(2),
            Channel::Ordered => Some(3),
        }
    }

    /// Puts `config` in message mode unless this is packet mode.
    pub fn configure(self, config: &mut DaemonConfig) {
        if self.id().is_some() {
            config.messages = Some(MessageConfig::default());
        }
    }
}

/// Sends one packet, or one message on `channel`.
pub fn send(conn: &Connection, channel: Option<u8>, bytes: &[u8]) -> Result<(), SendError> {
    match channel {
        None => conn.try_send(bytes).map(drop),
        Some(channel) => conn.try_send_message(channel, bytes).map(drop),
    }
}

/// Waits until `deadline` for a packet or message: `Ok(true)` if one came, `Err` with the
/// reason once the connection is finished and drained.
pub fn receive_until(conn: &Connection, deadline: Instant) -> Result<bool, CloseReason> {
    let got = if conn.is_message_mode() {
        let wait = deadline.saturating_duration_since(Instant::now());
        conn.recv_message_timeout(wait).map(drop)
    } else {
        conn.recv_deadline(deadline).map(drop)
    };
    match got {
        Ok(()) => Ok(true),
        Err(RecvTimeoutError::Closed(reason)) => Err(reason),
        Err(_) => Ok(false),
    }
}

/// Counts of an echo server, shared by its connection threads.
#[derive(Default)]
pub struct EchoCounts {
    pub accepted: AtomicU64,
    pub open: AtomicU64,
    pub received: AtomicU64,
    pub echoed: AtomicU64,
    pub refused: AtomicU64,
}

/// Accepts connections until the listener finishes, echoing each on its own thread. With
/// `verbose`, says when each client comes and goes.
pub fn spawn_echo_server(listener: Listener, counts: Arc<EchoCounts>, verbose: bool) {
    thread::spawn(move || {
        while let Ok(conn) = listener.accept() {
            counts.accepted.fetch_add(1, Ordering::Relaxed);
            counts.open.fetch_add(1, Ordering::Relaxed);
            let counts = counts.clone();
            thread::spawn(move || {
                if verbose {
                    say!("+ {} connected", conn.peer_addr());
                }
                let start = Instant::now();
                let (received, reason) = echo(&conn, &counts);
                counts.open.fetch_sub(1, Ordering::Relaxed);
                if verbose {
                    say!(
                        "- {} {reason} after {:.1} s ({received} packets received)",
                        conn.peer_addr(),
                        start.elapsed().as_secs_f64()
                    );
                }
            });
        }
    });
}

/// Echoes until the connection ends (a message on the channel it came on): how many
/// packets or messages came, and why it ended.
fn echo(conn: &Connection, counts: &EchoCounts) -> (u64, CloseReason) {
    let mut received = 0;
    loop {
        let sent = if conn.is_message_mode() {
            conn.recv_message()
                .map(|message| send(conn, Some(message.channel()), &message))
        } else {
            conn.recv().map(|packet| send(conn, None, &packet))
        };
        match sent {
            Ok(sent) => {
                received += 1;
                counts.received.fetch_add(1, Ordering::Relaxed);
                // Never block the echo on a full outbox: count what backpressure refused.
                match sent {
                    Ok(()) => counts.echoed.fetch_add(1, Ordering::Relaxed),
                    Err(_) => counts.refused.fetch_add(1, Ordering::Relaxed),
                };
            }
            Err(reason) => return (received, reason),
        }
    }
}

/// Resolves `HOST:PORT` (a name or an IP literal) once, in the resolver's order.
fn resolve(target: &str) -> Result<Vec<SocketAddr>, String> {
    if let Ok(addr) = target.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    let Some((host, port)) = target.rsplit_once(':') else {
        return Err(format!(
            "'{target}' has no port: give HOST:PORT, e.g. 127.0.0.1:9000 or localhost:9000"
        ));
    };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(format!(
            "'{target}' is not HOST:PORT (PORT from 0 to 65535), e.g. localhost:9000"
        ));
    }
    let addrs: Vec<SocketAddr> = target
        .to_socket_addrs()
        .map_err(|error| format!("cannot resolve '{host}': {error}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("'{host}' resolves to no address"));
    }
    Ok(addrs)
}

/// Why `addr` cannot be a server to connect to, if it cannot.
fn not_a_destination(addr: SocketAddr) -> Option<String> {
    let ip = addr.ip();
    if addr.port() == 0 {
        Some(format!("{addr}: port 0 is not a destination"))
    } else if ip.is_unspecified() {
        Some(format!(
            "{addr}: {ip} means \"any address\" and is not a destination (for this machine, \
             use 127.0.0.1 or localhost)"
        ))
    } else if ip.is_multicast() || ip == std::net::Ipv4Addr::BROADCAST {
        Some(format!("{addr}: GUDP connects to one host, not a group"))
    } else {
        None
    }
}

/// Runs an echo server on `bind` holding at most `max_connections` connections (further
/// clients are denied).
pub fn serve(
    bind: &str,
    duration: Option<Duration>,
    max_connections: usize,
    secure: Option<(PrivateKey, Option<SocketAddr>)>,
    channel: Channel,
) -> Result<ExitCode, String> {
    let addrs = resolve(bind)?;
    let mut config = DaemonConfig::default();
    config.protocol.max_connections = max_connections;
    channel.configure(&mut config);
    let daemon =
        Daemon::spawn(config).map_err(|error| format!("cannot start the daemon: {error}"))?;
    let mut errors = Vec::new();
    let listener = addrs
        .iter()
        .find_map(|&addr| {
            match &secure {
                Some((key, public)) => daemon.listen_secure(addr, key.clone(), *public),
                None => daemon.listen(addr),
            }
            .map_err(|error| errors.push(error.to_string()))
            .ok()
        })
        .ok_or_else(|| format!("cannot listen on {}", attempts(bind, &addrs, &errors)))?;
    let mode = match channel {
        Channel::Packet => "packets",
        _ => "messages on every channel",
    };
    say!(
        "gudp echo server on {} echoing {mode} (Ctrl-C to stop)",
        listener.local_addr()
    );
    let counts = Arc::new(EchoCounts::default());
    spawn_echo_server(listener, counts.clone(), true);
    say!("    t  open  accepted  recv/s  echoed/s  refused/s  inbox-full/s  invalid/s  stray/s");
    let start = Instant::now();
    let mut previous = ServeTotals::default();
    let mut printed = (0, 0);
    let mut tick = start;
    let interrupted = loop {
        tick += Duration::from_secs(1);
        let end = duration.map(|d| start + d);
        let next = end.map_or(tick, |end| end.min(tick));
        if stop::wait_until(next) {
            break true;
        }
        let now = ServeTotals::read(&counts, &daemon);
        let d = now.since(&previous);
        let people = (
            counts.open.load(Ordering::Relaxed),
            counts.accepted.load(Ordering::Relaxed),
        );
        // An idle server stays quiet: a line only when something happened or is open.
        if d != ServeTotals::default() || people.0 > 0 || people != printed {
            say!(
                "{:>4.0}s  {:>4}  {:>8}  {:>6}  {:>8}  {:>9}  {:>12}  {:>9}  {:>7}",
                start.elapsed().as_secs_f64(),
                people.0,
                people.1,
                d.received,
                d.echoed,
                d.refused,
                d.inbox_full,
                d.invalid,
                d.stray,
            );
            printed = people;
        }
        previous = now;
        if end.is_some_and(|end| Instant::now() >= end) {
            break false;
        }
    };
    let open = counts.open.load(Ordering::Relaxed);
    if interrupted {
        say!("interrupted: closing {open} open connection(s)");
    }
    // Sends what is queued, waits for its acks (bounded by the close linger) and tells every
    // client, which sees `closed by peer` instead of waiting out its idle timeout.
    daemon.shutdown();
    let t = ServeTotals::read(&counts, &daemon);
    drop(daemon);
    say!(
        "totals: {:.1} s, {} connection(s) accepted, {} packets received, {} echoed, {} refused; \
         dropped: {} inbox full, {} invalid, {} stray",
        start.elapsed().as_secs_f64(),
        counts.accepted.load(Ordering::Relaxed),
        t.received,
        t.echoed,
        t.refused,
        t.inbox_full,
        t.invalid,
        t.stray
    );
    say!(
        "(invalid: malformed, foreign or out-of-place datagrams; stray: datagrams from an \
         address with no connection, among them the redundant copies of each client's \
         disconnect)"
    );
    Ok(ExitCode::SUCCESS)
}

/// The running totals behind the serve table's per-second columns.
#[derive(Clone, Copy, Default, PartialEq)]
struct ServeTotals {
    received: u64,
    echoed: u64,
    refused: u64,
    inbox_full: u64,
    invalid: u64,
    stray: u64,
}

impl ServeTotals {
    fn read(counts: &EchoCounts, daemon: &Daemon) -> Self {
        let daemon = daemon.counters();
        let e = daemon.endpoints;
        // A disconnect's redundant copies arrive after the first ended the connection, so the
        // protocol counts them as `unknown_peer`, like any datagram from a stranger: they are
        // shown as stray, apart from the invalid. Duplicates and stale packets are the
        // network's doing, not the peer's: neither.
        let stray = e.unknown_peer;
        Self {
            received: counts.received.load(Ordering::Relaxed),
            echoed: counts.echoed.load(Ordering::Relaxed),
            refused: counts.refused.load(Ordering::Relaxed),
            inbox_full: daemon.dropped_inbox_full,
            invalid: daemon
                .dropped_by_protocol
                .saturating_sub(stray + e.connections.duplicates + e.connections.stale),
            stray,
        }
    }

    fn since(&self, earlier: &Self) -> Self {
        Self {
            received: self.received - earlier.received,
            echoed: self.echoed - earlier.echoed,
            refused: self.refused - earlier.refused,
            inbox_full: self.inbox_full - earlier.inbox_full,
            invalid: self.invalid - earlier.invalid,
            stray: self.stray - earlier.stray,
        }
    }
}

/// What `gudp connect` was asked to do.
pub struct ConnectArgs {
    pub server: String,
    /// Secure mode: connect with this token to the servers it lists (`server` unused).
    pub token: Option<ConnectToken>,
    pub rate: u32,
    pub size: usize,
    pub duration: Duration,
    pub chart: Option<PathBuf>,
    pub channel: Channel,
}

pub fn connect(args: ConnectArgs) -> Result<ExitCode, String> {
    let mut addrs = match &args.token {
        Some(token) => token.server_addresses().to_vec(),
        None => resolve(&args.server)?,
    };
    let unusable: Vec<String> = addrs.iter().filter_map(|&a| not_a_destination(a)).collect();
    addrs.retain(|&a| not_a_destination(a).is_none());
    if addrs.is_empty() {
        return Err(format!("cannot connect to {}", unusable.join("; ")));
    }
    let chart = args.chart.map(ChartFile::create).transpose()?;
    let mut config = DaemonConfig::default();
    args.channel.configure(&mut config);
    if addrs.len() > 1 {
        // A name that resolves to several addresses (localhost: ::1 and 127.0.0.1) should
        // not make the user wait the full 5 s on each one that nothing answers.
        config.protocol.connect_timeout = Duration::from_secs(2);
    }
    let daemon = Arc::new(
        Daemon::spawn(config).map_err(|error| format!("cannot start the daemon: {error}"))?,
    );
    let token = args.token.map(Arc::new);
    let Some(conn) = connect_any(&daemon, &args.server, &addrs, token)? else {
        eprintln!("gudp: interrupted while connecting");
        return Ok(ExitCode::from(stop::INTERRUPTED_EXIT));
    };
    say!("connected {} -> {}", visible_local(&conn), conn.peer_addr());
    let channel = args.channel.id();
    let run = run_client(&conn, channel, args.rate, args.size, args.duration, |_| {})?;
    say!("{}", meter::summary(&run.totals, run.elapsed));
    if let Some(chart) = chart {
        let title = format!(
            "gudp connect {}: {} packets/s of {} bytes",
            conn.peer_addr(),
            args.rate,
            args.size
        );
        chart.write(&run.chart, &title, run.elapsed.as_secs_f64())?;
    }
    let at = run.elapsed.as_secs_f64();
    match run.end {
        End::Interrupted => {
            eprintln!("gudp: interrupted after {at:.1} s");
            Ok(ExitCode::from(stop::INTERRUPTED_EXIT))
        }
        End::Closed(CloseReason::ClosedByPeer) => {
            Err(format!("the server closed the connection after {at:.1} s"))
        }
        End::Closed(CloseReason::TimedOut) => Err(format!(
            "the server stopped answering: the connection timed out after {at:.1} s"
        )),
        End::Closed(reason) => Err(format!("the connection ended after {at:.1} s: {reason}")),
        End::Completed if run.totals.sent > 0 && run.totals.acked == 0 => {
            Err("the server never acknowledged a packet".into())
        }
        End::Completed => {
            let silence = run.silence.as_secs_f64();
            // A live server's echoes come about once per send interval: a much longer
            // silence at the end means it went away before the idle timeout could say so.
            let expected = (4.0 / f64::from(args.rate)).max(1.5);
            if silence > expected {
                Err(format!(
                    "the server stopped answering: nothing heard for the last {silence:.1} s \
                     of the run"
                ))
            } else {
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

/// Tries each address in turn; `None` if a signal came first. Connecting blocks for up to
/// the connect timeout, so it runs on its own thread while this one watches for a signal.
fn connect_any(
    daemon: &Arc<Daemon>,
    target: &str,
    addrs: &[SocketAddr],
    token: Option<Arc<ConnectToken>>,
) -> Result<Option<Connection>, String> {
    let mut errors = Vec::new();
    // With a token the daemon tries its servers in order itself: one attempt.
    let attempts_made = if token.is_some() { &addrs[..1] } else { addrs };
    for &addr in attempts_made {
        let (tx, rx) = mpsc::channel();
        let d = daemon.clone();
        let attempt = token.clone();
        thread::spawn(move || {
            let _ = tx.send(match attempt {
                Some(token) => d.connect_with_token(&token),
                None => d.connect(addr),
            });
        });
        let outcome = loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(outcome) => break outcome,
                Err(_) if stop::requested() => return Ok(None),
                Err(_) => {}
            }
        };
        match outcome {
            Ok(conn) => return Ok(Some(conn)),
            Err(error) if token.is_some() => {
                let servers: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
                return Err(format!(
                    "cannot connect to any server the token lists ({}): {error}",
                    servers.join(", ")
                ));
            }
            Err(error) => {
                if addrs.len() > 1 {
                    eprintln!("gudp: cannot connect to {addr}: {error}");
                }
                errors.push(error.to_string());
            }
        }
    }
    Err(format!(
        "cannot connect to {}",
        attempts(target, addrs, &errors)
    ))
}

/// `target: error`, naming each address a name resolved to only if it is not the target.
fn attempts(target: &str, addrs: &[SocketAddr], errors: &[String]) -> String {
    match (addrs, errors) {
        ([addr], [error]) if addr.to_string() == target => format!("{target}: {error}"),
        _ => {
            let each: Vec<String> = addrs
                .iter()
                .zip(errors)
                .map(|(addr, error)| format!("{addr}: {error}"))
                .collect();
            format!("{target}: {}", each.join("; "))
        }
    }
}

/// The address the server sees for us: the client's socket is bound to the unspecified
/// address, so ask the routing table which source address it would use to reach the peer.
pub fn visible_local(conn: &Connection) -> SocketAddr {
    let local = conn.local_addr();
    if !local.ip().is_unspecified() {
        return local;
    }
    let any: SocketAddr = match conn.peer_addr() {
        SocketAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    UdpSocket::bind(any)
        .and_then(|probe| {
            probe.connect(conn.peer_addr())?;
            probe.local_addr()
        })
        .map_or(local, |routed| SocketAddr::new(routed.ip(), local.port()))
}

/// How a client run ended.
pub enum End {
    Completed,
    Interrupted,
    Closed(CloseReason),
}

/// A client run: its totals (every sent packet resolved, once the daemon kept its promise),
/// its chart and how it ended.
pub struct Run {
    pub totals: Totals,
    pub elapsed: Duration,
    pub chart: Recorder,
    pub end: End,
    /// How long nothing (no echo, no ack) had come from the server when sending stopped.
    pub silence: Duration,
}

/// Sends `size`-byte packets (or messages on `channel`) at `rate` per second for
/// `duration`, counting echoes and delivery notifications, printing a line per second.
/// `each_second` runs after each line with the whole seconds elapsed (the demo changes the
/// link there). Then closes the connection and waits until every sent packet is reported
/// acked or lost.
pub fn run_client(
    conn: &Connection,
    channel: Option<u8>,
    rate: u32,
    size: usize,
    duration: Duration,
    mut each_second: impl FnMut(u64),
) -> Result<Run, String> {
    let payload = vec![0x5a; size];
    let interval = Duration::from_secs(1) / rate;
    let start = Instant::now();
    let end = start + duration;
    let mut chart = Recorder::new(start, DaemonConfig::default().protocol.bad_rtt_threshold);
    let mut next_send = start;
    let mut next_report = start + Duration::from_secs(1);
    let mut last_heard = start;
    let mut totals = Totals::default();
    let mut previous = Totals::default();
    say!("{}", meter::HEADER);
    let outcome = loop {
        let now = Instant::now();
        if stop::requested() {
            break End::Interrupted;
        }
        // A loop starved of CPU skips the slots it missed rather than burst them out.
        if now.saturating_duration_since(next_send) > MAX_LAG {
            next_send = now;
        }
        while next_send <= now && next_send < end {
            match send(conn, channel, &payload) {
                Ok(()) => totals.sent += 1,
                Err(SendError::OutboxFull | SendError::Paced | SendError::ChannelFull { .. }) => {
                    totals.refused += 1
                }
                // The receive below reports why.
                Err(SendError::Closed(_)) => break,
                Err(error) => return Err(format!("send failed: {error}")),
            }
            next_send += interval;
        }
        if totals.take_deliveries(conn) {
            last_heard = now;
        }
        chart.observe(now, conn, totals.acked > 0);
        if now >= next_report {
            let delta = totals.since(&previous);
            say!("{}", meter::line(now - start, conn, &delta));
            chart.second(now, delta);
            previous = totals;
            each_second((now - start).as_secs());
            while next_report <= now {
                next_report += Duration::from_secs(1);
            }
        }
        if now >= end {
            break End::Completed;
        }
        // Sleep in the inbox until the next send or report, waking for every echo, and at
        // least every 50 ms to notice a signal.
        let wake = next_send.min(next_report).min(end).min(now + SIGNAL_POLL);
        match receive_until(conn, wake) {
            Ok(true) => {
                totals.received += 1;
                last_heard = Instant::now();
            }
            Ok(false) => {}
            Err(reason) => break End::Closed(reason),
        }
    };
    let elapsed = start.elapsed();
    let silence = last_heard.elapsed();
    if matches!(outcome, End::Completed) {
        // Let the last echoes and acks come in (a round trip or so) before closing, as
        // nothing is received after.
        let deadline = Instant::now() + Duration::from_secs(1);
        while totals.unresolved() > 0 && Instant::now() < deadline && !stop::requested() {
            totals.take_deliveries(conn);
            let wake = deadline.min(Instant::now() + Duration::from_millis(5));
            match receive_until(conn, wake) {
                Ok(true) => totals.received += 1,
                Ok(false) => {}
                Err(_) => break,
            }
        }
    }
    // After close, the daemon reports the fate of every packet within its close linger.
    conn.close();
    let deadline = Instant::now() + DaemonConfig::default().close_linger + Duration::from_secs(1);
    while totals.unresolved() > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
        totals.take_deliveries(conn);
    }
    Ok(Run {
        totals,
        elapsed,
        chart,
        end: outcome,
        silence,
    })
}

const SIGNAL_POLL: Duration = Duration::from_millis(50);
const MAX_LAG: Duration = Duration::from_millis(100);
