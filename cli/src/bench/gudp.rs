//! GUDP's side of the one-way and ping-pong workloads: two daemons (two event-loop threads,
//! like the raw baseline's two sockets on two threads), or two manual daemons driven by the
//! application's own threads.

use super::rounds::{Drops, Sample};
use super::span::{self, Flags};
use gudp::protocol::PacingRate;
use gudp::{Connection, Daemon, DaemonConfig, ManualDaemon, Packet, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Which configuration a GUDP row runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    /// `DaemonConfig::default()`: what a user gets.
    Default,
    /// The default with pacing fixed far above what loopback carries (the rate controller's
    /// floor and ceiling and the bad-mode cap all 10^8 packets/s): an extra row, the daemon's
    /// own limit rather than the pacing controller's.
    Unpaced,
    /// The default with coalesced receives off (`udp_gro = false`): an extra row, so that what
    /// GRO gains is measured against the path without it in the same run.
    NoGro,
    /// The default with segmented sends off (`udp_segmentation = false`): GSO's baseline, an
    /// extra row in the same rounds. On loopback GRO only keeps GSO's runs together, so this
    /// row receives one datagram per message too.
    NoGso,
}

impl Setup {
    pub fn config(self) -> DaemonConfig {
        let mut config = DaemonConfig::default();
        if self == Setup::Unpaced {
            let unlimited = PacingRate::new(100_000_000, 100_000);
            config.protocol.good_rate = unlimited;
            config.protocol.bad_rate = unlimited;
            // A floor at the ceiling fixes the rate: the rate controller never holds it back.
            config.protocol.min_rate = unlimited.packets_per_second;
        }
        if self == Setup::NoGro {
            config.udp_gro = false;
        }
        if self == Setup::NoGso {
            config.udp_segmentation = false;
        }
        config
    }

    pub fn describe(self) -> &'static str {
        match self {
            Setup::Default => "DaemonConfig::default()",
            Setup::Unpaced => {
                "default but unpaced (min_rate, good_rate and bad_rate 10^8/s): extra"
            }
            Setup::NoGro => "default but udp_gro = false (one datagram per receive): extra",
            Setup::NoGso => {
                "default but udp_segmentation = false (one message per datagram sent): extra"
            }
        }
    }
}

/// A client and a server connection on two spawned daemons; the daemons must outlive them.
fn pair(setup: Setup) -> Result<(Daemon, Daemon, Connection, Connection), String> {
    let server_daemon = Daemon::spawn(setup.config()).map_err(|e| e.to_string())?;
    let client_daemon = Daemon::spawn(setup.config()).map_err(|e| e.to_string())?;
    let listener = server_daemon
        .listen(([127, 0, 0, 1], 0).into())
        .map_err(|e| format!("listen: {e}"))?;
    let client = client_daemon
        .connect(listener.local_addr())
        .map_err(|e| format!("connect: {e}"))?;
    let server = listener
        .accept_timeout(Duration::from_secs(5))
        .map_err(|e| format!("accept: {e}"))?;
    Ok((server_daemon, client_daemon, client, server))
}

/// The sender calls `send` (it waits while pacing or a full outbox holds it back: that is
/// backpressure, not loss); the receiver counts what `recv` hands the application.
pub fn one_way(setup: Setup, size: usize, span: Duration) -> Result<Sample, String> {
    let (server_daemon, client_daemon, client, server) = pair(setup)?;
    // Borrowed, not moved: a handle dropped as its thread ends would close the connection
    // under the other side's drain.
    let (client, server) = (&client, &server);
    let mut sample = span::measure(
        span,
        Box::new(move |flags: &Flags| {
            let payload = vec![0xab; size];
            while flags.sending() {
                match client.send_timeout(&payload, Duration::from_millis(50)) {
                    Ok(_) => flags.sent(1),
                    Err(gudp::SendError::OutboxFull | gudp::SendError::Paced) => {}
                    Err(e) => return Err(format!("send: {e}")),
                }
            }
            Ok(())
        }),
        Box::new(move |flags: &Flags| receive_each(server, flags, |_| flags.delivered(1))),
    )?;
    sample.drops = Some(Drops::of(
        &client_daemon.counters(),
        &server_daemon.counters(),
    ));
    Ok(sample)
}

/// Hands every packet `conn` receives to `each` until the span's receiver stops.
fn receive_each(
    conn: &Connection,
    flags: &Flags,
    mut each: impl FnMut(Packet),
) -> Result<(), String> {
    while flags.receiving() {
        match conn.recv_timeout(Duration::from_millis(50)) {
            Ok(packet) => each(packet),
            Err(RecvTimeoutError::Closed(reason)) => return Err(format!("receiver: {reason}")),
            Err(_) => {}
        }
    }
    Ok(())
}

/// One packet in flight between spawned daemons; the echo thread blocks in `recv`.
pub fn ping_pong(setup: Setup, size: usize, span: Duration) -> Result<Sample, String> {
    let (server_daemon, client_daemon, client, server) = pair(setup)?;
    // Borrowed, not moved: a handle dropped as its thread ends would close the connection
    // under the other side's drain.
    let (client, server) = (&client, &server);
    let mut sample = span::measure(
        span,
        Box::new(move |flags: &Flags| {
            let payload = vec![0x11; size];
            while flags.sending() {
                client.send(&payload).map_err(|e| format!("send: {e}"))?;
                flags.sent(1);
                match client.recv_timeout(Duration::from_millis(200)) {
                    Ok(_) => flags.delivered(1),
                    Err(RecvTimeoutError::Closed(reason)) => {
                        return Err(format!("ping-pong: {reason}"))
                    }
                    Err(_) => {} // lost: rare on loopback; the next one goes
                }
            }
            Ok(())
        }),
        Box::new(move |flags: &Flags| {
            receive_each(server, flags, |packet| {
                let _ = server.try_send_packet(packet);
            })
        }),
    )?;
    sample.drops = Some(Drops::of(
        &client_daemon.counters(),
        &server_daemon.counters(),
    ));
    Ok(sample)
}

/// Ping-pong with no daemon threads: each side's thread runs its own manual daemon with
/// `ManualDaemon::poll`, as a game's loop would, so a round trip wakes two threads, not six.
pub fn ping_pong_manual(setup: Setup, size: usize, span: Duration) -> Result<Sample, String> {
    let manual = || Daemon::manual(setup.config()).map_err(|e| e.to_string());
    let (server_daemon, client_daemon) = (manual()?, manual()?);
    let listener = server_daemon
        .listen(([127, 0, 0, 1], 0).into())
        .map_err(|e| format!("listen: {e}"))?;
    let pending = client_daemon
        .connect_nonblocking(listener.local_addr())
        .map_err(|e| format!("connect: {e}"))?;
    let (client, server) = handshake(&client_daemon, &server_daemon, &listener, &pending)?;
    let (client, server) = (&client, &server);
    let (client_daemon, server_daemon) = (&client_daemon, &server_daemon);
    let poll = |daemon: &ManualDaemon| {
        daemon
            .poll(Some(Duration::from_millis(5)))
            .map_err(|e| format!("poll: {e}"))
    };
    span::measure(
        span,
        Box::new(move |flags: &Flags| {
            let payload = vec![0x11; size];
            while flags.sending() {
                client
                    .try_send(&payload)
                    .map_err(|e| format!("send: {e}"))?;
                flags.sent(1);
                let deadline = Instant::now() + Duration::from_millis(200);
                while Instant::now() < deadline {
                    poll(client_daemon)?;
                    if client.try_recv().is_ok() {
                        flags.delivered(1);
                        break;
                    }
                }
            }
            Ok(())
        }),
        Box::new(move |flags: &Flags| {
            while flags.receiving() {
                poll(server_daemon)?;
                while let Ok(packet) = server.try_recv() {
                    let _ = server.try_send_packet(packet);
                }
            }
            Ok(())
        }),
    )
}

/// Polls both manual daemons until the connection is up at both ends.
fn handshake(
    client_daemon: &ManualDaemon,
    server_daemon: &ManualDaemon,
    listener: &gudp::Listener,
    pending: &gudp::PendingConnection,
) -> Result<(Connection, Connection), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let (mut client, mut server) = (None, None);
    while Instant::now() < deadline {
        for daemon in [client_daemon, server_daemon] {
            daemon
                .poll(Some(Duration::from_millis(1)))
                .map_err(|e| format!("poll: {e}"))?;
        }
        if client.is_none() {
            client = pending
                .try_finish()
                .transpose()
                .map_err(|e| format!("connect: {e}"))?;
        }
        if server.is_none() {
            server = listener.try_accept().ok();
        }
        if let (Some(c), Some(s)) = (&client, &server) {
            return Ok((c.clone(), s.clone()));
        }
    }
    Err("manual-mode handshake did not finish in 5 s".into())
}
