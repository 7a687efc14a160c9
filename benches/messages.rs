//! GUDP's message layer against renet's reliable-ordered channel. Both are sans-IO, so both
//! run in memory through the same seeded `LinkConditioner`, in simulated time; this prints a
//! markdown table (`docs/benchmarks.md`, "Message layer against renet").
//!
//! ```sh
//! cargo bench --bench messages              # SEEDS=9 REPS=5 by default
//! SEEDS=3 REPS=3 cargo bench --bench messages
//! ```
//!
//! Both stacks run the same 60 Hz frame loop: the application queues its messages at the
//! start of a frame, then the stack flushes (GUDP: `poll_payload` → `Endpoint::send`; renet:
//! `update` + `get_packets_to_send`, which is also when renet sends its acks and resends).
//! Datagrams are handled the moment they arrive, and received messages are read at once.
//! GUDP's own timers (delayed acks, resend timeouts) fire at their deadlines, as its daemon
//! would fire them; renet has no deadlines, so its acks and resends wait for the next frame.
//! Renet gets its documented defaults: 300 ms resend time, 60,000 bytes per tick, 5 MiB per
//! channel. GUDP runs the default message config with one reliable-ordered channel and a
//! packet layer paced at 100,000 packets/s (no throttling).
//!
//! Only the CPU figure reads a clock; every other figure is fixed by the seed. Allocations
//! are counted by this binary's global allocator, outside the link conditioner.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gudp::conditioner::{Arrival, LinkConditioner, LinkConfig};
use gudp::message::{ChannelConfig, MessageConfig, MessageConnection};
use gudp::protocol::{Config, ConnectionId, Endpoint, Event, Incoming, PacingRate, TransmitError};
use renet::{Bytes, ChannelConfig as RenetChannel, ConnectionConfig, RenetClient, RenetServer};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
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

const FRAME: Duration = Duration::from_nanos(16_666_667);
const ONE_WAY_MS: u64 = 50;
const RTT_MS: f64 = 2.0 * ONE_WAY_MS as f64;
const SMALL: usize = 100;
const BIG: usize = 1 << 20;

fn link(latency_ms: u64, loss: f64) -> LinkConfig {
    let mut link = LinkConfig::default();
    link.latency = Duration::from_millis(latency_ms);
    link.loss_percent = loss;
    link
}

/// The conditioner, counting every datagram put on it (both directions).
struct Link {
    cond: LinkConditioner,
    datagrams: u64,
    bytes: u64,
}

impl Link {
    fn new(config: LinkConfig, seed: u64) -> Self {
        Self {
            cond: LinkConditioner::new(config, seed),
            datagrams: 0,
            bytes: 0,
        }
    }

    fn send(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, datagram: &[u8]) {
        self.datagrams += 1;
        self.bytes += datagram.len() as u64;
        uncounted(|| self.cond.send(now, from, to, datagram));
    }

    fn poll(&mut self, until: Instant) -> Option<Arrival> {
        uncounted(|| self.cond.poll_deliver(until))
    }
}

/// A message: its sequence number, send time (ns since the epoch), then a seq-keyed pattern.
fn write_message(buf: &mut [u8], seq: u64, sent: Duration) {
    buf[..8].copy_from_slice(&seq.to_be_bytes());
    buf[8..16].copy_from_slice(&(sent.as_nanos() as u64).to_be_bytes());
    for (i, b) in buf[16..].iter_mut().enumerate() {
        *b = (seq as usize).wrapping_add(i) as u8;
    }
}

/// (seq, send time), after checking the last byte of the pattern.
fn read_message(m: &[u8]) -> (u64, Duration) {
    let seq = u64::from_be_bytes(m[..8].try_into().unwrap());
    let sent = Duration::from_nanos(u64::from_be_bytes(m[8..16].try_into().unwrap()));
    let last = m.len() - 1;
    assert_eq!(m[last], (seq as usize).wrapping_add(last - 16) as u8);
    (seq, sent)
}

/// One sender (client) and one receiver (server) over one link, in simulated time.
trait Stack: Sized {
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

struct Gudp {
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
            link: Link::new(link(ONE_WAY_MS, 0.0), seed),
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
        (s.link.datagrams, s.link.bytes) = (0, 0);
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

struct Renet {
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
fn frame_end(epoch: Instant, f: u64) -> Instant {
    epoch + FRAME * (f as u32 + 1)
}

struct Throughput {
    ns_per_msg: f64,
    /// Messages per simulated second, first send to last delivery.
    sim_rate: f64,
    datagrams_per_msg: f64,
    bytes_per_msg: f64,
    allocs_per_msg: f64,
}

/// `n` messages of 100 bytes on a lossless link, `per_frame` offered each frame (queued
/// again next frame when refused); the CPU time covers both ends, the harness and the
/// conditioner; allocations count from the 10 % to the 90 % delivered mark.
fn throughput<S: Stack>(n: u64, per_frame: u64) -> Throughput {
    let mut s = S::new(link(ONE_WAY_MS, 0.0), 1);
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
        assert!(f < 100_000, "stalled at {received}");
    }
    let elapsed = wall.elapsed();
    let ((a0, r0), (a1, r1)) = (from.unwrap(), to.unwrap());
    let link = s.link();
    Throughput {
        ns_per_msg: elapsed.as_nanos() as f64 / n as f64,
        sim_rate: n as f64 / sim.as_secs_f64(),
        datagrams_per_msg: link.datagrams as f64 / n as f64,
        bytes_per_msg: link.bytes as f64 / n as f64,
        allocs_per_msg: (a1 - a0) as f64 / (r1 - r0) as f64,
    }
}

/// Simulated time to deliver one 1 MiB reliable message, and bytes on the wire per byte.
fn big_message<S: Stack>(loss: f64, seed: u64) -> (Duration, f64) {
    let mut s = S::new(link(ONE_WAY_MS, loss), seed);
    let epoch = s.epoch();
    let mut msg = vec![0u8; BIG];
    write_message(&mut msg, 0, Duration::ZERO);
    assert!(s.send(&msg));
    let mut done = None;
    for f in 0.. {
        s.flush();
        s.run_until(frame_end(epoch, f), &mut |at, m| {
            assert_eq!((m.len(), read_message(m).0), (BIG, 0));
            done = Some(at - epoch);
        });
        if let Some(d) = done {
            return (d, s.link().bytes as f64 / BIG as f64);
        }
        assert!(f < 60 * 120, "1 MiB not delivered in 2 minutes");
    }
    unreachable!()
}

/// Delivery latencies, sorted, of 100-byte messages sent one per frame for `seconds`.
fn latencies<S: Stack>(loss: f64, seed: u64, seconds: u64) -> Vec<Duration> {
    let mut s = S::new(link(ONE_WAY_MS, loss), seed);
    let epoch = s.epoch();
    let n = seconds * 60;
    let mut buf = [0u8; SMALL];
    let mut out = Vec::with_capacity(n as usize);
    for f in 0.. {
        if f < n {
            write_message(&mut buf, f, FRAME * f as u32);
            assert!(s.send(&buf));
        }
        s.flush();
        s.run_until(frame_end(epoch, f), &mut |at, m| {
            let (seq, sent) = read_message(m);
            assert_eq!(seq, out.len() as u64, "order");
            out.push(at - (epoch + sent));
        });
        if out.len() as u64 == n {
            break;
        }
        assert!(
            f < n + 60 * 60,
            "not all delivered a minute after the last send"
        );
    }
    out.sort();
    out
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Median, min and max.
fn summary(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Whether a larger figure is better (it decides which way GUDP's lead is computed).
#[derive(Clone, Copy, PartialEq)]
enum Better {
    Lower,
    Higher,
}

/// One table row: "median (min–max)" for both stacks, and GUDP's lead: how many times
/// better GUDP's median is than renet's (above 1: GUDP ahead).
fn row(name: &str, unit: &str, digits: usize, better: Better, g: Vec<f64>, r: Vec<f64>) {
    let ((gm, g0, g1), (rm, r0, r1)) = (summary(g), summary(r));
    let fmt = |m: f64, lo: f64, hi: f64| {
        if lo == hi {
            format!("{m:.digits$} {unit}")
        } else {
            format!("{m:.digits$} {unit} ({lo:.digits$}–{hi:.digits$})")
        }
    };
    let (num, den) = match better {
        Better::Lower => (rm, gm),
        Better::Higher => (gm, rm),
    };
    let lead = match (num == 0.0, den == 0.0) {
        (true, true) => "equal".to_string(),
        (_, true) => "∞".to_string(),
        _ => format!("{:.2}×", num / den),
    };
    println!(
        "| {name} | {} | {} | {lead} |",
        fmt(gm, g0, g1),
        fmt(rm, r0, r1)
    );
}

fn main() {
    use Better::{Higher, Lower};
    let seeds = env("SEEDS", 9);
    let reps = env("REPS", 5);
    let n = env("MESSAGES", 100_000);
    let seconds = 60;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let pick = |v: &[Throughput], f: fn(&Throughput) -> f64| v.iter().map(f).collect::<Vec<_>>();

    // 100 a frame is 6,000 messages/s: within both stacks' windows at 100 ms RTT.
    let (mut gt, mut rt) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        gt.push(throughput::<Gudp>(n, 100));
        rt.push(throughput::<Renet>(n, 100));
    }
    println!("{seeds} seeds, {reps} CPU runs of {n} messages; median (min–max)\n");
    println!("| figure | GUDP | renet | GUDP's lead |");
    println!("| --- | --- | --- | --- |");
    row(
        "CPU per 100 B message, lossless, 6,000 msg/s",
        "µs",
        2,
        Lower,
        pick(&gt, |t| t.ns_per_msg / 1e3),
        pick(&rt, |t| t.ns_per_msg / 1e3),
    );
    row(
        "messages per second of CPU",
        "k",
        0,
        Higher,
        pick(&gt, |t| 1e6 / t.ns_per_msg),
        pick(&rt, |t| 1e6 / t.ns_per_msg),
    );
    row(
        "datagrams per message (both ways)",
        "",
        3,
        Lower,
        pick(&gt, |t| t.datagrams_per_msg),
        pick(&rt, |t| t.datagrams_per_msg),
    );
    row(
        "bytes on the wire per message (both ways)",
        "B",
        1,
        Lower,
        pick(&gt, |t| t.bytes_per_msg),
        pick(&rt, |t| t.bytes_per_msg),
    );
    row(
        "allocations per message (steady state)",
        "",
        2,
        Lower,
        pick(&gt, |t| t.allocs_per_msg),
        pick(&rt, |t| t.allocs_per_msg),
    );
    // 300 a frame (18,000/s) is more than GUDP's 1,024-message window carries per RTT.
    let (g, r) = (throughput::<Gudp>(n, 300), throughput::<Renet>(n, 300));
    row(
        "delivered msg/s with 18,000/s offered (simulated)",
        "",
        0,
        Higher,
        vec![g.sim_rate],
        vec![r.sim_rate],
    );
    row(
        "bytes on the wire per message at 18,000/s",
        "B",
        1,
        Lower,
        vec![g.bytes_per_msg],
        vec![r.bytes_per_msg],
    );

    for loss in [1.0, 5.0] {
        let (mut g, mut r, mut gw, mut rw) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for seed in 1..=seeds {
            let (t, w) = big_message::<Gudp>(loss, seed);
            g.push(ms(t));
            gw.push(w);
            let (t, w) = big_message::<Renet>(loss, seed);
            r.push(ms(t));
            rw.push(w);
        }
        row(
            &format!("1 MiB reliable, 100 ms RTT, {loss} % loss: time"),
            "ms",
            0,
            Lower,
            g,
            r,
        );
        row(
            &format!("1 MiB, {loss} % loss: wire bytes / message bytes"),
            "",
            3,
            Lower,
            gw,
            rw,
        );
    }

    let mut p99 = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
    for (k, loss) in [0.0, 5.0].into_iter().enumerate() {
        let (mut g50, mut g99, mut r50, mut r99) = (vec![], vec![], vec![], vec![]);
        for seed in 1..=seeds {
            let g = latencies::<Gudp>(loss, seed, seconds);
            let r = latencies::<Renet>(loss, seed, seconds);
            g50.push(ms(percentile(&g, 50.0)));
            g99.push(ms(percentile(&g, 99.0)));
            r50.push(ms(percentile(&r, 50.0)));
            r99.push(ms(percentile(&r, 99.0)));
        }
        p99[k] = [g99.clone(), r99.clone()];
        row(
            &format!("p50 latency, 60 msg/s of 100 B, {loss} % loss"),
            "ms",
            1,
            Lower,
            g50,
            r50,
        );
        row(
            &format!("p99 latency, 60 msg/s of 100 B, {loss} % loss"),
            "ms",
            1,
            Lower,
            g99,
            r99,
        );
    }
    let excess = |lossy: &[f64], clean: &[f64]| {
        lossy
            .iter()
            .zip(clean)
            .map(|(a, b)| (a - b) / RTT_MS)
            .collect::<Vec<_>>()
    };
    row(
        "p99 at 5 % minus p99 at 0 %, in RTTs (target ≤ 2)",
        "RTT",
        2,
        Lower,
        excess(&p99[1][0], &p99[0][0]),
        excess(&p99[1][1], &p99[0][1]),
    );
}
