//! The two stacks under comparison, driven through one `LinkConditioner` in simulated time,
//! and the CPU/wire/allocation run shared by `benches/messages.rs` and
//! `benches/message_cpu.rs` (each uses a subset).
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gudp::conditioner::{Arrival, LinkConditioner, LinkConfig};
use gudp::message::{ChannelConfig, MessageConfig, MessageConnection};
use gudp::protocol::{Config, ConnectionId, Endpoint, Event, Incoming, PacingRate, TransmitError};
use renet::{Bytes, ChannelConfig as RenetChannel, ConnectionConfig, RenetClient, RenetServer};

struct Counting;

pub static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
/// Cleared while the link conditioner runs: its copies are the harness's, not a stack's.
static COUNTING: AtomicBool = AtomicBool::new(true);

// SAFETY: forwards every call unchanged to the system allocator, which upholds the
// GlobalAlloc contract; the counter has no effect on the memory returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: `ptr` was allocated by `System` with `layout`; forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn uncounted<R>(f: impl FnOnce() -> R) -> R {
    COUNTING.store(false, Ordering::Relaxed);
    let r = f();
    COUNTING.store(true, Ordering::Relaxed);
    r
}

pub const FRAME: Duration = Duration::from_nanos(16_666_667);
pub const ONE_WAY_MS: u64 = 50;
pub const SMALL: usize = 100;

/// `ONE_WAY_MS` each way, ± `jitter_ms` (uniform, drawn per datagram), `loss` percent.
pub fn link(jitter_ms: u64, loss: f64) -> LinkConfig {
    let mut link = LinkConfig::default();
    link.latency = Duration::from_millis(ONE_WAY_MS);
    link.jitter = Duration::from_millis(jitter_ms);
    link.loss_percent = loss;
    link
}

/// The conditioner, counting every datagram put on it (both directions).
pub struct Link {
    cond: LinkConditioner,
    pub datagrams: u64,
    pub bytes: u64,
    /// Wall time spent in the conditioner (the harness's share of the CPU figure).
    pub time: Duration,
}

impl Link {
    fn new(config: LinkConfig, seed: u64) -> Self {
        Self {
            cond: LinkConditioner::new(config, seed),
            datagrams: 0,
            bytes: 0,
            time: Duration::ZERO,
        }
    }

    fn send(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, datagram: &[u8]) {
        self.datagrams += 1;
        self.bytes += datagram.len() as u64;
        let t = Instant::now();
        uncounted(|| self.cond.send(now, from, to, datagram));
        self.time += t.elapsed();
    }

    fn poll(&mut self, until: Instant) -> Option<Arrival> {
        let t = Instant::now();
        let arrival = uncounted(|| self.cond.poll_deliver(until));
        self.time += t.elapsed();
        arrival
    }
}

/// A message: its sequence number, send time (ns since the epoch), then a seq-keyed pattern.
pub fn write_message(buf: &mut [u8], seq: u64, sent: Duration) {
    buf[..8].copy_from_slice(&seq.to_be_bytes());
    buf[8..16].copy_from_slice(&(sent.as_nanos() as u64).to_be_bytes());
    for (i, b) in buf[16..].iter_mut().enumerate() {
        *b = (seq as usize).wrapping_add(i) as u8;
    }
}

/// (seq, send time), after checking the last byte of the pattern.
pub fn read_message(m: &[u8]) -> (u64, Duration) {
    let seq = u64::from_be_bytes(m[..8].try_into().unwrap());
    let sent = Duration::from_nanos(u64::from_be_bytes(m[8..16].try_into().unwrap()));
    let last = m.len() - 1;
    assert_eq!(m[last], (seq as usize).wrapping_add(last - 16) as u8);
    (seq, sent)
}

/// One sender (client) and one receiver (server) over one link, in simulated time.
pub trait Stack: Sized {
    /// Connected, the link set to `link` and its counters at zero.
    fn new(link: LinkConfig, seed: u64) -> Self;
    /// The simulated time when `new` returned.
    fn epoch(&self) -> Instant;
    /// Queues a client → server message; `false` when the channel is full.
    fn send(&mut self, msg: &[u8]) -> bool;
    /// The end of the application's frame work: hand what is due to the link.
    fn flush(&mut self);
    /// Runs to `until`, passing each message the server receives, and when, to `got`.
    fn run_until(&mut self, until: Instant, got: &mut impl FnMut(Instant, &[u8]));
    fn link(&self) -> &Link;
}

struct GudpPeer {
    addr: SocketAddr,
    ep: Endpoint,
    conn: Option<ConnectionId>,
    msg: MessageConnection,
    retry_at: Option<Instant>,
}

pub struct Gudp {
    epoch: Instant,
    now: Instant,
    link: Link,
    peers: [GudpPeer; 2],
    buf: Vec<u8>,
    payload: Vec<u8>,
}

impl Gudp {
    fn connected(p: &GudpPeer) -> bool {
        p.conn
            .is_some_and(|c| p.ep.connection_stats(c).is_some_and(|s| s.connected))
    }

    /// Endpoint events to the message layer, then payloads out while pacing allows.
    fn pump(&mut self, i: usize) {
        let now = self.now;
        let p = &mut self.peers[i];
        while let Some(e) = p.ep.poll_event() {
            match e {
                Event::Connected { conn, .. } => p.conn = Some(conn),
                Event::Acked { packet_id, .. } => p.msg.on_packet_acked(now, packet_id),
                Event::Lost { packet_id, .. } => p.msg.on_packet_lost(packet_id),
                Event::Disconnected { reason, .. } => panic!("peer {i} disconnected: {reason:?}"),
                _ => {}
            }
        }
        while p.msg.poll_event().is_some() {}
        p.retry_at = None;
        if let Some(conn) = p.conn {
            while p.msg.wants_to_send() {
                match p.ep.can_send(now, conn) {
                    Ok(()) => {}
                    Err(TransmitError::Paced { retry_at }) => {
                        p.retry_at = Some(retry_at);
                        break;
                    }
                    Err(e) => panic!("can_send: {e:?}"),
                }
                let Some(n) = p.msg.poll_payload(now, &mut self.payload) else {
                    break;
                };
                let t = p.ep.send(now, conn, &self.payload[..n], &mut self.buf);
                let t = t.expect("send");
                p.msg
                    .on_packet_sent(now, t.packet_id.expect("payload packet"));
                self.link
                    .send(now, p.addr, t.destination, &self.buf[..t.len]);
            }
        }
        while let Some(t) = p.ep.poll_transmit(now, &mut self.buf) {
            self.link
                .send(now, p.addr, t.destination, &self.buf[..t.len]);
        }
    }

    fn deliver(&mut self, d: &Arrival, got: &mut impl FnMut(Instant, &[u8])) {
        let now = self.now;
        let i = usize::from(d.to == self.peers[1].addr);
        let p = &mut self.peers[i];
        if let Incoming::Payload {
            payload, receipt, ..
        } = p.ep.handle_datagram(now, d.from, &d.data)
        {
            p.msg.handle_payload(now, payload).expect("honest payload");
            assert!(p.ep.deliver(now, receipt));
        }
        while let Some(m) = p.msg.poll_message() {
            got(now, m.data);
        }
        self.pump(i);
    }
}

impl Stack for Gudp {
    fn new(link_config: LinkConfig, seed: u64) -> Self {
        let rate = PacingRate::new(100_000, 256);
        let mut ep = Config::default();
        ep.good_rate = rate;
        ep.min_rate = rate.packets_per_second; // fixed: renet has no congestion control
        ep.bad_rate = rate;
        let msg = MessageConfig::new(vec![ChannelConfig::reliable_ordered()]);
        let t0 = Instant::now();
        let peer = |i: u8| GudpPeer {
            addr: format!("10.0.0.{}:1000", i + 1).parse().unwrap(),
            ep: Endpoint::new(ep.clone(), [i + 1; 16]),
            conn: None,
            msg: MessageConnection::new(msg.clone()).unwrap(),
            retry_at: None,
        };
        let mut s = Self {
            epoch: t0,
            now: t0,
            link: Link::new(link(0, 0.0), seed),
            peers: [peer(0), peer(1)],
            buf: vec![0; 2048],
            payload: vec![0; 2048],
        };
        let server = s.peers[1].addr;
        s.peers[0].conn = Some(s.peers[0].ep.connect(t0, server).unwrap());
        while !s.peers.iter().all(Self::connected) {
            assert!(s.now < t0 + Duration::from_secs(5), "handshake");
            s.flush();
            s.run_until(s.now + Duration::from_millis(10), &mut |_, _| {});
        }
        s.link.cond.set_config(link_config);
        (s.link.datagrams, s.link.bytes, s.link.time) = (0, 0, Duration::ZERO);
        s.epoch = s.now;
        s
    }

    fn epoch(&self) -> Instant {
        self.epoch
    }

    fn send(&mut self, msg: &[u8]) -> bool {
        self.peers[0].msg.send(0, msg).is_ok()
    }

    fn flush(&mut self) {
        self.pump(0);
        self.pump(1);
    }

    fn run_until(&mut self, until: Instant, got: &mut impl FnMut(Instant, &[u8])) {
        loop {
            let mut next = self.link.cond.next_delivery();
            for p in &self.peers {
                for d in [p.ep.next_deadline(), p.msg.next_deadline(), p.retry_at] {
                    next = match (next, d) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
            }
            let Some(next) = next.filter(|&t| t <= until) else {
                break;
            };
            self.now = self.now.max(next);
            while let Some(d) = self.link.poll(self.now) {
                self.deliver(&d, got);
            }
            for i in 0..2 {
                let p = &mut self.peers[i];
                if p.ep.next_deadline().is_some_and(|d| d <= self.now) {
                    p.ep.handle_timeout(self.now);
                }
                if p.msg.next_deadline().is_some_and(|d| d <= self.now) {
                    p.msg.handle_timeout(self.now);
                }
                self.pump(i);
            }
        }
        self.now = until;
    }

    fn link(&self) -> &Link {
        &self.link
    }
}

const CLIENT: renet::ClientId = 1;

pub struct Renet {
    epoch: Instant,
    now: Instant,
    /// The time both sides were last `update`d to.
    updated: Instant,
    link: Link,
    addrs: [SocketAddr; 2],
    client: RenetClient,
    server: RenetServer,
}

impl Renet {
    fn advance(&mut self) {
        let dt = self.now - self.updated;
        self.client.update(dt);
        self.server.update(dt);
        self.updated = self.now;
    }
}

impl Stack for Renet {
    fn new(link: LinkConfig, seed: u64) -> Self {
        let channels = vec![RenetChannel {
            channel_id: 0,
            max_memory_usage_bytes: 5 << 20,
            send_type: renet::SendType::ReliableOrdered {
                resend_time: Duration::from_millis(300),
            },
        }];
        let config = ConnectionConfig {
            server_channels_config: channels.clone(),
            client_channels_config: channels,
            ..ConnectionConfig::default()
        };
        let mut client = RenetClient::new(config.clone());
        client.set_connected();
        let mut server = RenetServer::new(config);
        server.add_connection(CLIENT);
        let t0 = Instant::now();
        Self {
            epoch: t0,
            now: t0,
            updated: t0,
            link: Link::new(link, seed),
            addrs: [
                "10.0.0.1:1000".parse().unwrap(),
                "10.0.0.2:1000".parse().unwrap(),
            ],
            client,
            server,
        }
    }

    fn epoch(&self) -> Instant {
        self.epoch
    }

    fn send(&mut self, msg: &[u8]) -> bool {
        // renet disconnects on a send to a full channel, so ask first.
        if !self.client.can_send_message(0, msg.len()) {
            return false;
        }
        self.client.send_message(0, Bytes::copy_from_slice(msg));
        true
    }

    fn flush(&mut self) {
        self.advance();
        let [client, server] = self.addrs;
        for p in self.client.get_packets_to_send() {
            self.link.send(self.now, client, server, &p);
        }
        for p in self.server.get_packets_to_send(CLIENT).unwrap() {
            self.link.send(self.now, server, client, &p);
        }
    }

    fn run_until(&mut self, until: Instant, got: &mut impl FnMut(Instant, &[u8])) {
        while let Some(d) = self.link.poll(until) {
            self.now = self.now.max(d.at);
            self.advance();
            if d.to == self.addrs[1] {
                self.server.process_packet_from(&d.data, CLIENT).unwrap();
                while let Some(m) = self.server.receive_message(CLIENT, 0) {
                    got(self.now, &m);
                }
            } else {
                self.client.process_packet(&d.data);
            }
        }
        assert!(self.client.is_connected() && self.server.is_connected(CLIENT));
        self.now = until;
    }

    fn link(&self) -> &Link {
        &self.link
    }
}

/// The time of the end of frame `f` (frames start at the epoch).
pub fn frame_end(epoch: Instant, f: u64) -> Instant {
    epoch + FRAME * (f as u32 + 1)
}

pub struct Throughput {
    /// Wall time per message, conditioner included.
    pub ns_per_msg: f64,
    /// The same without the time spent in the conditioner: the two stacks and the glue.
    pub stack_ns_per_msg: f64,
    /// Messages per simulated second, first send to last delivery.
    pub sim_rate: f64,
    pub datagrams_per_msg: f64,
    pub bytes_per_msg: f64,
    pub allocs_per_msg: f64,
}

/// `n` messages of 100 bytes on a lossless link (± `jitter_ms`), `per_frame` offered each frame (queued
/// again next frame when refused); the CPU time covers both ends, the harness and the
/// conditioner; allocations count from the 10 % to the 90 % delivered mark.
pub fn throughput<S: Stack>(n: u64, per_frame: u64, jitter_ms: u64) -> Throughput {
    let mut s = S::new(link(jitter_ms, 0.0), 1);
    let epoch = s.epoch();
    let mut buf = [0u8; SMALL];
    let (mut sent, mut received) = (0u64, 0u64);
    let (mut from, mut to) = (None, None);
    let mut sim = Duration::ZERO;
    let wall = Instant::now();
    for f in 0.. {
        let now = epoch + FRAME * f as u32;
        for _ in 0..per_frame.min(n - sent) {
            write_message(&mut buf, sent, now - epoch);
            if !s.send(&buf) {
                break;
            }
            sent += 1;
        }
        s.flush();
        s.run_until(frame_end(epoch, f), &mut |_, m| {
            assert_eq!(read_message(m).0, received, "order");
            received += 1;
        });
        let mark = (ALLOCATIONS.load(Ordering::Relaxed), received);
        if from.is_none() && received >= n / 10 {
            from = Some(mark);
        }
        if to.is_none() && received >= n * 9 / 10 {
            to = Some(mark);
        }
        if received == n {
            sim = FRAME * (f as u32 + 1);
            break;
        }
        assert!(f < 2 * n / per_frame + 60 * 120, "stalled at {received}");
    }
    let elapsed = wall.elapsed();
    let ((a0, r0), (a1, r1)) = (from.unwrap(), to.unwrap());
    let link = s.link();
    Throughput {
        ns_per_msg: elapsed.as_nanos() as f64 / n as f64,
        stack_ns_per_msg: (elapsed - link.time).as_nanos() as f64 / n as f64,
        sim_rate: n as f64 / sim.as_secs_f64(),
        datagrams_per_msg: link.datagrams as f64 / n as f64,
        bytes_per_msg: link.bytes as f64 / n as f64,
        allocs_per_msg: (a1 - a0) as f64 / (r1 - r0) as f64,
    }
}
