//! How a daemon and its connections are sized, and the check that refuses a bad size by name.

use super::batch;
use crate::conditioner::LinkConfig;
use crate::message::MessageConfig;
use crate::protocol;
use std::io;
use std::time::Duration;

/// A link conditioner to put in front of every socket's outgoing datagrams (tests, demos).
///
/// ```
/// use gudp::{conditioner::LinkConfig, Daemon, DaemonConfig, LinkSetup};
/// use std::time::Duration;
/// let latency = Duration::from_millis(5);
/// let mut bad_wifi = LinkConfig::default();
/// bad_wifi.latency = latency;
/// bad_wifi.loss_percent = 1.0;
/// let link = Some(LinkSetup::new(bad_wifi, 7));
/// let mut config = DaemonConfig::default();
/// config.link = link;
/// let daemon = Daemon::spawn(config).unwrap();
/// assert!(daemon.set_link(LinkConfig::default())); // it has a conditioner to adjust
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct LinkSetup {
    /// Latency, jitter, loss and duplication to apply.
    pub config: LinkConfig,
    /// Seed of the conditioner's random choices.
    pub seed: u64,
}

impl LinkSetup {
    /// A conditioner applying `config`, its random choices fixed by `seed`.
    ///
    /// ```
    /// use gudp::{conditioner::LinkConfig, LinkSetup};
    /// let setup = LinkSetup::new(LinkConfig::default(), 7);
    /// assert_eq!(setup.seed, 7);
    /// ```
    pub fn new(config: LinkConfig, seed: u64) -> Self {
        Self { config, seed }
    }
}

/// How a daemon and its connections are sized.
///
/// ```
/// let mut config = gudp::DaemonConfig::default();
/// config.inbox_capacity = 4096;
/// assert_eq!(config.protocol.max_payload, 1200);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DaemonConfig {
    /// Protocol settings (MTU, timeouts, congestion avoidance, connection limit per socket).
    pub protocol: protocol::Config,
    /// Received packets each connection buffers before new ones are dropped and counted
    /// (default 4,096). A payload dropped here is not acked, so the sender takes it for a
    /// loss and slows down. The inbox is what covers the receiving thread being descheduled:
    /// 4,096 packets are about 12 ms of a 64-byte blast at 350,000 packets/s on loopback
    /// (1,024 were 3 ms, and lost 1-2 % of such a blast). A packet-mode slot costs 40 bytes
    /// whether used or not (160 KiB per connection at the default, 1.6 GB for 10,000);
    /// a server of many connections at game rates (30-60 packets/s each) can set 64-256.
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
    /// Linux: sends each run of equal-length datagrams to one destination in a send batch as
    /// one segmentation-offload message (`UDP_SEGMENT`, GSO; default `true`): the kernel
    /// moves the run through its stack once and cuts it into datagrams at the end. If the
    /// kernel or the route refuses it, the daemon falls back to one message per datagram for
    /// good. Elsewhere, and with `io_batch = 1`, it has no effect. It matters: a one-way
    /// blast over loopback costs about 1.8 µs of CPU per 64-byte packet with it and 8.4 µs
    /// without (raw UDP: 4.0 µs; docs/benchmarks.md, R6), so where the kernel does not offer
    /// it GUDP's per-packet cost is above raw UDP's.
    pub udp_segmentation: bool,
    /// Linux: asks each socket to take a run of datagrams of one flow as one receive
    /// (`UDP_GRO`; default `true`), which the daemon cuts back into datagrams, so a burst costs
    /// the kernel one trip through its stack instead of one per datagram. On loopback a peer's
    /// segmentation-offload send (see `udp_segmentation`) arrives this way still whole. Each of
    /// the `io_batch` receive buffers is then 64 KiB (4 MiB in all at the default; only what
    /// the kernel fills is touched) instead of one datagram. A kernel without it (before 5.0)
    /// refuses, and the socket receives one datagram per message. Elsewhere, and with
    /// `io_batch = 1`, it has no effect.
    pub udp_gro: bool,
    /// Longest a packet accepted by `try_send` may wait in the outbox for its pacing slot
    /// (default 100 ms). Each connection's outbox holds only what its current pacing rate
    /// sends in this time (at least one packet), so `try_send` refuses with
    /// [`SendError::Paced`](crate::SendError::Paced) rather than build a backlog, and a
    /// packet that still waits longer is dropped and reported lost
    /// ([`DaemonCounters::sends_expired`](crate::DaemonCounters::sends_expired)), never delivered late.
    pub max_send_delay: Duration,
    /// Receive buffer requested for each socket, in bytes (default 4 MiB; 0 keeps the
    /// system's). The kernel caps it at `net.core.rmem_max` (on Linux often 208 KiB unless
    /// raised). A datagram the kernel drops for want of room is lost before any protocol
    /// sees it; a large buffer turns a busy receiver's backlog into queueing delay, which the
    /// rate controller sees and backs off from (docs/protocol.md §6.4), instead of loss.
    pub socket_receive_buffer: usize,
    /// Longest a closed connection lingers to send what its outbox holds and to learn the
    /// fate of what it sent (default 1 s); then the disconnect goes out and whatever is
    /// unresolved is reported lost. Also bounds how long a shutdown waits.
    pub close_linger: Duration,
    /// Name of the daemon's thread (default `gudp-daemon`), so that two daemons can be told
    /// apart in a profiler or a debugger. A manual daemon has no thread of its own.
    pub thread_name: String,
    /// Optional link conditioner in front of every socket.
    pub link: Option<LinkSetup>,
    /// `Some`: every connection of this daemon runs in **message mode** — channels of
    /// messages (unreliable, sequenced, reliable unordered, reliable ordered; aggregated,
    /// fragmented, resent from the acks) through
    /// [`Connection::try_send_message`](crate::Connection::try_send_message) and
    /// [`Connection::try_recv_message`](crate::Connection::try_recv_message), and the packet
    /// calls refuse with [`SendError::WrongMode`](crate::SendError::WrongMode). `None` (the
    /// default): packet mode, one payload per datagram. Both ends must configure the same
    /// channels: the handshake compares [`MessageConfig::fingerprint`] and refuses a
    /// mismatch. `max_payload` must not exceed `protocol.max_payload`.
    ///
    /// ```
    /// use gudp::message::MessageConfig;
    /// let mut config = gudp::DaemonConfig::default();
    /// config.messages = Some(MessageConfig::default()); // channels 0..=3, one of each kind
    /// let daemon = gudp::Daemon::spawn(config).unwrap();
    /// # drop(daemon);
    /// ```
    pub messages: Option<MessageConfig>,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            protocol: protocol::Config::default(),
            inbox_capacity: 4096,
            outbox_capacity: 1024,
            delivery_capacity: 4096,
            accept_backlog: 1024,
            pool_capacity: 8192,
            events_capacity: 1024,
            io_batch: batch::MAX_BATCH,
            udp_segmentation: true,
            udp_gro: true,
            max_send_delay: Duration::from_millis(100),
            socket_receive_buffer: 4 << 20,
            close_linger: Duration::from_secs(1),
            thread_name: "gudp-daemon".into(),
            link: None,
            messages: None,
        }
    }
}

impl DaemonConfig {
    pub(super) fn validate(&self) -> io::Result<()> {
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
        check_range(
            "socket_receive_buffer",
            self.socket_receive_buffer,
            0,
            1 << 30,
        )?;
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
        if let Some(messages) = &self.messages {
            messages.validate().map_err(|error| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("DaemonConfig::messages is invalid: {error}"),
                )
            })?;
            if messages.max_payload > self.protocol.max_payload {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "DaemonConfig::messages.max_payload ({}) exceeds protocol.max_payload ({})",
                        messages.max_payload, self.protocol.max_payload
                    ),
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
