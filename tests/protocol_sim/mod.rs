//! A deterministic simulation harness shared by the `protocol_*` integration tests: endpoints
//! joined by a seeded link conditioner under simulated time.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gudp::conditioner::{LinkConditioner, LinkConfig};
use gudp::protocol::{
    CloseReason, Config, ConnectionId, DropReason, Endpoint, Event, Incoming, PacketNumber,
    TransmitError,
};

/// One endpoint and everything observed at it.
pub struct Node {
    pub addr: SocketAddr,
    pub ep: Endpoint,
    pub events: Vec<(Instant, Event)>,
    /// Payloads delivered: (connection, the u64 id the sender wrote in the first 8 bytes).
    pub delivered: Vec<(ConnectionId, u64)>,
    pub drops: HashMap<String, u64>,
    /// Largest datagram received from each address (for the amplification check).
    pub largest_in: HashMap<SocketAddr, usize>,
    /// Every datagram sent: (destination, length, first byte of type).
    pub sent: Vec<(SocketAddr, usize, u8)>,
    /// Application packets sent: id → the u64 written in the payload.
    pub app_sent: Vec<(ConnectionId, PacketNumber, u64)>,
    pub next_payload: u64,
    /// Payloads the application refuses (a full buffer): `refuse(payload id)` says which.
    pub refuse: fn(u64) -> bool,
    /// Payloads refused: the u64 ids, in arrival order.
    pub refused: Vec<u64>,
    /// A dead node (a crashed host) receives nothing, sends nothing and runs no timers.
    pub dead: bool,
    /// When set, every datagram this node sends is also copied here: (destination, bytes).
    /// Only an on-path observer has these; an off-path attacker never does.
    pub captured: Option<Vec<(SocketAddr, Vec<u8>)>>,
}

impl Node {
    pub fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|(_, e)| f(e)).count()
    }

    pub fn disconnects(&self) -> Vec<(Instant, CloseReason)> {
        self.events
            .iter()
            .filter_map(|(t, e)| match e {
                Event::Disconnected { reason, .. } => Some((*t, *reason)),
                _ => None,
            })
            .collect()
    }

    pub fn connected(&self) -> Option<ConnectionId> {
        self.events.iter().find_map(|(_, e)| match e {
            Event::Connected { conn, .. } => Some(*conn),
            _ => None,
        })
    }
}

pub struct Sim {
    pub t0: Instant,
    pub now: Instant,
    pub link: LinkConditioner,
    pub nodes: Vec<Node>,
    buf: Vec<u8>,
}

pub const MS: Duration = Duration::from_millis(1);

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn link(latency_ms: u64, jitter_ms: u64, loss: f64, dup: f64) -> LinkConfig {
    let mut link = LinkConfig::default();
    link.latency = Duration::from_millis(latency_ms);
    link.jitter = Duration::from_millis(jitter_ms);
    link.loss_percent = loss;
    link.duplicate_percent = dup;
    link
}

impl Sim {
    /// Nodes at 10.0.0.1:1000, 10.0.0.2:1000, ... each with its own config and secret.
    pub fn new(link: LinkConfig, seed: u64, configs: Vec<Config>) -> Self {
        let t0 = Instant::now();
        let nodes = configs
            .into_iter()
            .enumerate()
            .map(|(i, c)| Node {
                addr: format!("10.0.0.{}:1000", i + 1).parse().unwrap(),
                ep: Endpoint::new(c, [i as u8 + 1; 16]),
                events: Vec::new(),
                delivered: Vec::new(),
                drops: HashMap::new(),
                largest_in: HashMap::new(),
                sent: Vec::new(),
                app_sent: Vec::new(),
                next_payload: 0,
                refuse: |_| false,
                refused: Vec::new(),
                dead: false,
                captured: None,
            })
            .collect();
        Self {
            t0,
            now: t0,
            link: LinkConditioner::new(link, seed),
            nodes,
            buf: vec![0; 2048],
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    /// Drains every node's transmits onto the link and its events into its log.
    fn flush(&mut self) {
        for n in self.nodes.iter_mut().filter(|n| !n.dead) {
            while let Some(t) = n.ep.poll_transmit(self.now, &mut self.buf) {
                n.sent.push((t.destination, t.len, self.buf[4]));
                if let Some(c) = &mut n.captured {
                    c.push((t.destination, self.buf[..t.len].to_vec()));
                }
                self.link
                    .send(self.now, n.addr, t.destination, &self.buf[..t.len]);
            }
            while let Some(e) = n.ep.poll_event() {
                n.events.push((self.now, e));
            }
        }
    }

    /// Sends an application payload carrying the node's next u64 id (padded to `size`).
    pub fn send(
        &mut self,
        node: usize,
        conn: ConnectionId,
        size: usize,
    ) -> Result<PacketNumber, TransmitError> {
        let n = &mut self.nodes[node];
        let mut payload = [0u8; 1200];
        payload[..8].copy_from_slice(&n.next_payload.to_be_bytes());
        let size = size.clamp(8, 1200);
        let t = n.ep.send(self.now, conn, &payload[..size], &mut self.buf)?;
        let id = t.packet_id.expect("send returns an id");
        n.app_sent.push((conn, id, n.next_payload));
        n.next_payload += 1;
        n.sent.push((t.destination, t.len, self.buf[4]));
        if let Some(c) = &mut n.captured {
            c.push((t.destination, self.buf[..t.len].to_vec()));
        }
        self.link
            .send(self.now, n.addr, t.destination, &self.buf[..t.len]);
        self.flush();
        Ok(id)
    }

    /// A datagram that claims to come from `from` (any address: the link does not check)
    /// arrives at node `to` now, outside the link: how an attacker injects a forged or
    /// replayed datagram. Its outcome is recorded like any other arrival's.
    pub fn inject(&mut self, to: usize, from: SocketAddr, datagram: &[u8]) {
        let d = gudp::conditioner::Arrival {
            from,
            to: self.nodes[to].addr,
            at: self.now,
            data: datagram.to_vec(),
        };
        self.deliver(d);
        self.flush();
    }

    /// Sum of the drops recorded at node `at` under `reason` (the `DropReason` variant name).
    pub fn drops(&self, at: usize, reason: &str) -> u64 {
        self.nodes[at].drops.get(reason).copied().unwrap_or(0)
    }

    fn deliver(&mut self, d: gudp::conditioner::Arrival) {
        let Some(n) = self.nodes.iter_mut().find(|n| n.addr == d.to && !n.dead) else {
            return;
        };
        let largest = n.largest_in.entry(d.from).or_default();
        *largest = (*largest).max(d.data.len());
        // In place, so that secure-mode packets are decrypted (MAC mode reads it as is).
        let mut data = d.data;
        match n.ep.handle_datagram_mut(self.now, d.from, &mut data) {
            Incoming::Payload {
                conn,
                payload,
                receipt,
            } => {
                let id = u64::from_be_bytes(payload[..8].try_into().unwrap());
                if (n.refuse)(id) {
                    n.refused.push(id);
                } else {
                    n.delivered.push((conn, id));
                    assert!(n.ep.deliver(self.now, receipt), "a fresh receipt is valid");
                }
            }
            Incoming::Consumed => {}
            Incoming::Dropped(reason) => {
                let key = match reason {
                    DropReason::Invalid(_) => "Invalid".to_string(),
                    DropReason::TooLarge { .. } => "TooLarge".to_string(),
                    other => format!("{other:?}"),
                };
                *n.drops.entry(key).or_default() += 1;
            }
            other => panic!("an outcome this simulation does not know: {other:?}"),
        }
    }

    /// Advances simulated time to `until`, delivering datagrams and firing timers in order.
    pub fn run_until(&mut self, until: Instant) {
        self.flush();
        loop {
            let mut next = self.link.next_delivery();
            for n in self.nodes.iter().filter(|n| !n.dead) {
                next = match (next, n.ep.next_deadline()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            let Some(next) = next.filter(|&t| t <= until) else {
                break;
            };
            self.now = self.now.max(next);
            // As the endpoint's contract asks: transmits after each datagram, so that an
            // ack due at once is not overtaken by the next arrival.
            while let Some(d) = self.link.poll_deliver(self.now) {
                self.deliver(d);
                self.flush();
            }
            for n in self.nodes.iter_mut().filter(|n| !n.dead) {
                if n.ep.next_deadline().is_some_and(|d| d <= self.now) {
                    n.ep.handle_timeout(self.now);
                }
            }
            self.flush();
        }
        self.now = until;
    }

    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Connects node `client` to node `server`; runs until both report Connected (or `limit`).
    pub fn connect(
        &mut self,
        client: usize,
        server: usize,
        limit: Duration,
    ) -> Option<(ConnectionId, ConnectionId)> {
        let addr = self.nodes[server].addr;
        let c = self.nodes[client].ep.connect(self.now, addr).unwrap();
        let end = self.now + limit;
        while self.now < end {
            self.run_for(10 * MS);
            let cc = self.nodes[client].connected();
            let sc = self.nodes[server].connected();
            if let (Some(cc), Some(sc)) = (cc, sc) {
                assert_eq!(cc, c);
                return Some((cc, sc));
            }
        }
        None
    }

    /// Both sides send one payload every `interval` for `duration` (paced sends are skipped).
    pub fn exchange(
        &mut self,
        pairs: &[(usize, ConnectionId)],
        interval: Duration,
        duration: Duration,
        size: usize,
    ) -> u64 {
        let end = self.now + duration;
        let mut paced = 0;
        while self.now < end {
            for &(node, conn) in pairs {
                match self.send(node, conn, size) {
                    Ok(_) => {}
                    Err(TransmitError::Paced { .. }) => paced += 1,
                    Err(e) => panic!(
                        "send failed at {:?}: {e:?}; disconnects {:?}, peer's {:?}",
                        self.elapsed(),
                        self.nodes[node]
                            .disconnects()
                            .iter()
                            .map(|d| (d.0 - self.t0, d.1))
                            .collect::<Vec<_>>(),
                        self.nodes[1 - node.min(1)]
                            .disconnects()
                            .iter()
                            .map(|d| (d.0 - self.t0, d.1))
                            .collect::<Vec<_>>(),
                    ),
                }
            }
            self.run_for(interval);
        }
        paced
    }

    /// Checks the delivery-notification contract for every packet node `from` sent:
    /// each is reported exactly once, Acked or Lost, and only delivered packets are acked.
    pub fn check_notifications(&self, from: usize, to: usize) -> (usize, usize) {
        let sender = &self.nodes[from];
        let receiver = &self.nodes[to];
        let delivered: std::collections::HashSet<u64> =
            receiver.delivered.iter().map(|d| d.1).collect();
        let mut outcome: HashMap<PacketNumber, u32> = HashMap::new();
        let (mut acked, mut lost) = (0, 0);
        for (_, e) in &sender.events {
            match e {
                Event::Acked { packet_id, .. } => {
                    acked += 1;
                    *outcome.entry(*packet_id).or_default() += 1;
                }
                Event::Lost { packet_id, .. } => {
                    lost += 1;
                    *outcome.entry(*packet_id).or_default() += 1;
                }
                _ => {}
            }
        }
        let ids: HashMap<PacketNumber, u64> =
            sender.app_sent.iter().map(|&(_, id, p)| (id, p)).collect();
        let mut outcome: Vec<(PacketNumber, u32)> = outcome.into_iter().collect();
        outcome.sort();
        for (id, count) in &outcome {
            assert!(
                ids.contains_key(id),
                "notification for a packet never sent: {id:?}"
            );
            if *count != 1 {
                let evs: Vec<_> = sender.events.iter().filter(|(_, e)| matches!(e, Event::Acked { packet_id, .. } | Event::Lost { packet_id, .. } if packet_id == id)).collect();
                panic!("packet {id:?} reported {count} times: {evs:?}");
            }
        }
        for (_, e) in &sender.events {
            if let Event::Acked { packet_id, .. } = e {
                assert!(
                    delivered.contains(&ids[packet_id]),
                    "false ack for {packet_id:?}"
                );
            }
        }
        (acked, lost)
    }

    /// Asserts no payload was delivered twice at node `at`.
    pub fn check_no_duplicate_delivery(&self, at: usize) {
        let mut seen = std::collections::HashSet::new();
        for d in &self.nodes[at].delivered {
            assert!(seen.insert(*d), "payload {d:?} delivered twice");
        }
    }
}

/// What an off-path attacker writes into its payloads, so a delivery of one is recognised.
pub const MARK: u64 = 0xbad0_bad0_bad0_bad0;

/// A packet an attacker writes: it has no key, so its tag field is zero.
pub fn forge(packet: gudp::protocol::wire::WirePacket<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; 1500];
    let n = packet
        .encode(gudp::protocol::wire::DEFAULT_PROTOCOL_ID, &mut buf)
        .unwrap();
    buf.truncate(n);
    buf
}

/// A forged payload carrying [`MARK`], at `sequence`.
pub fn forged_payload(sequence: u16) -> Vec<u8> {
    let mark = MARK.to_be_bytes();
    forge(gudp::protocol::wire::WirePacket::Payload {
        header: gudp::protocol::wire::ConnectedHeader::new(sequence, None),
        payload: &mark,
    })
}
