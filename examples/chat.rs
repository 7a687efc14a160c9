//! A chat over a reliable-ordered channel beside an unreliable-sequenced position stream,
//! through a lossy link: every chat line arrives, complete and in order; positions only ever
//! move forward, and the lost or overtaken ones simply never show.
//!
//! The message layer is sans-IO (`gudp::message`): this example drives two packet-layer
//! endpoints and their message connections through the seeded link conditioner in simulated
//! time, exactly as a daemon would drive them over sockets (`docs/message-layer.md` §7).
//!
//! ```text
//! cargo run --example chat -- [LOSS_PERCENT] [SECONDS]
//! ```

use gudp::conditioner::{Arrival, LinkConditioner, LinkConfig};
use gudp::message::{ChannelConfig, MessageConfig, MessageConnection};
use gudp::protocol::{Config, ConnectionId, Endpoint, Event, Incoming, TransmitError};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const CHAT: u8 = 0;
const POSITION: u8 = 1;

fn main() {
    let mut args = std::env::args().skip(1).map(|a| {
        a.parse::<f64>().unwrap_or_else(|_| {
            eprintln!("usage: chat [LOSS_PERCENT] [SECONDS] ('{a}' is not a number)");
            std::process::exit(2);
        })
    });
    let loss = args.next().unwrap_or(20.0);
    let seconds = args.next().unwrap_or(10.0);
    let r = run(loss, Duration::from_secs_f64(seconds));
    println!(
        "chat: {} of {} lines arrived, in order: {}; positions: {} of {} shown, always newer: {}",
        r.chat_received,
        r.chat_sent,
        r.chat_in_order,
        r.positions_shown,
        r.positions_sent,
        r.positions_forward
    );
}

#[derive(Debug, Default)]
struct Report {
    chat_sent: u64,
    chat_received: u64,
    chat_in_order: bool,
    positions_sent: u64,
    positions_shown: u64,
    positions_forward: bool,
}

/// One side: a packet-layer endpoint and the message connection on top of it.
struct Side {
    addr: SocketAddr,
    endpoint: Endpoint,
    conn: Option<ConnectionId>,
    connected: bool,
    messages: MessageConnection,
}

fn config() -> MessageConfig {
    // Both ends must agree (compare `MessageConfig::fingerprint` in the handshake).
    MessageConfig::new(vec![
        ChannelConfig::reliable_ordered(),
        ChannelConfig::unreliable_sequenced().with_weight(4), // positions first
    ])
}

fn side(i: u8) -> Side {
    Side {
        addr: SocketAddr::from(([10, 0, 0, i], 1000)),
        endpoint: Endpoint::new(Config::default(), [i; 16]),
        conn: None,
        connected: false,
        messages: MessageConnection::new(config()).expect("valid channels"),
    }
}

impl Side {
    /// Packet-layer events to the message layer, then payloads out while pacing allows.
    fn pump(&mut self, now: Instant, link: &mut LinkConditioner, buf: &mut [u8], out: &mut [u8]) {
        while let Some(event) = self.endpoint.poll_event() {
            match event {
                Event::Connected { conn, .. } => {
                    self.conn = Some(conn);
                    self.connected = true;
                }
                Event::Acked { packet_id, .. } => self.messages.on_packet_acked(now, packet_id),
                Event::Lost { packet_id, .. } => self.messages.on_packet_lost(packet_id),
                _ => {}
            }
        }
        while let Some(conn) = self.conn.filter(|_| self.connected) {
            if !self.messages.wants_to_send() {
                break;
            }
            if let Err(TransmitError::Paced { .. }) = self.endpoint.can_send(now, conn) {
                break;
            }
            let Some(n) = self.messages.poll_payload(now, out) else {
                break;
            };
            match self.endpoint.send(now, conn, &out[..n], buf) {
                Ok(t) => {
                    self.messages
                        .on_packet_sent(now, t.packet_id.expect("a payload's id"));
                    link.send(now, self.addr, t.destination, &buf[..t.len]);
                }
                Err(_) => self.messages.on_packet_unsent(),
            }
        }
        while let Some(t) = self.endpoint.poll_transmit(now, buf) {
            link.send(now, self.addr, t.destination, &buf[..t.len]);
        }
    }

    /// A datagram from the link: a payload goes to the message layer, and is acked only if
    /// it took it.
    fn receive(&mut self, now: Instant, arrival: &Arrival) {
        if let Incoming::Payload {
            payload, receipt, ..
        } = self
            .endpoint
            .handle_datagram(now, arrival.from, &arrival.data)
        {
            if self.messages.handle_payload(now, payload).is_ok() {
                self.endpoint.deliver(now, receipt);
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        [self.endpoint.next_deadline(), self.messages.next_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    fn on_timers(&mut self, now: Instant) {
        self.endpoint.handle_timeout(now);
        self.messages.handle_timeout(now);
    }
}

fn run(loss_percent: f64, duration: Duration) -> Report {
    let t0 = Instant::now();
    let mut link_config = LinkConfig::default();
    link_config.latency = Duration::from_millis(40);
    link_config.jitter = Duration::from_millis(5);
    let mut link = LinkConditioner::new(link_config, 7);
    let (mut player, mut server) = (side(1), side(2));
    player.conn = Some(player.endpoint.connect(t0, server.addr).expect("connect"));
    let (mut buf, mut out) = (vec![0; 2048], vec![0; 2048]);
    let mut report = Report {
        chat_in_order: true,
        positions_forward: true,
        ..Report::default()
    };
    let (mut last_chat, mut last_position) = (None::<u64>, None::<u64>);
    let mut now = t0;
    let mut next_frame = t0;
    let mut frame = 0u64;
    while now < t0 + duration + Duration::from_secs(3) {
        if now >= next_frame && player.connected {
            if now == next_frame {
                // The lossy part of the run; the last 3 s let the link heal and drain.
                let lossy = now < t0 + duration;
                link_config.loss_percent = if lossy { loss_percent } else { 0.0 };
                link.set_config(link_config);
            }
            if now < t0 + duration {
                // 60 Hz positions, a chat line every 10 frames.
                if player.messages.send(POSITION, &frame.to_be_bytes()).is_ok() {
                    report.positions_sent += 1;
                }
                if frame % 10 == 0
                    && player
                        .messages
                        .send(CHAT, format!("line {}", report.chat_sent).as_bytes())
                        .is_ok()
                {
                    report.chat_sent += 1;
                }
            }
            frame += 1;
            next_frame += Duration::from_micros(16_667);
        }
        player.pump(now, &mut link, &mut buf, &mut out);
        server.pump(now, &mut link, &mut buf, &mut out);
        while let Some(arrival) = link.poll_deliver(now) {
            let to = if arrival.to == server.addr {
                &mut server
            } else {
                &mut player
            };
            to.receive(now, &arrival);
        }
        while let Some(message) = server.messages.poll_message() {
            match message.channel {
                CHAT => {
                    let n: u64 = std::str::from_utf8(message.data)
                        .ok()
                        .and_then(|line| line.strip_prefix("line "))
                        .and_then(|n| n.parse().ok())
                        .expect("a chat line");
                    report.chat_in_order &= last_chat.map_or(n == 0, |last| n == last + 1);
                    last_chat = Some(n);
                    report.chat_received += 1;
                }
                _ => {
                    let n = u64::from_be_bytes(message.data.try_into().expect("8 bytes"));
                    report.positions_forward &= last_position.is_none_or(|last| n > last);
                    last_position = Some(n);
                    report.positions_shown += 1;
                }
            }
        }
        for side in [&mut player, &mut server] {
            if side.next_deadline().is_some_and(|d| d <= now) {
                side.on_timers(now);
            }
        }
        // Next thing to happen: a frame, a datagram arriving, or a timer.
        let next = [
            Some(next_frame),
            link.next_delivery(),
            player.next_deadline(),
            server.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
        .expect("the next frame is always due");
        now = next.max(now + Duration::from_micros(100));
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CI runs the example: at 20 % loss, the chat arrives whole and in order; positions move
    /// only forward and some are missing.
    #[test]
    fn chat_arrives_whole_and_positions_only_move_forward() {
        let r = run(20.0, Duration::from_secs(5));
        assert!(r.chat_sent >= 25, "{r:?}");
        assert_eq!(r.chat_received, r.chat_sent, "{r:?}");
        assert!(r.chat_in_order, "{r:?}");
        assert!(r.positions_forward, "{r:?}");
        assert!(r.positions_shown < r.positions_sent, "{r:?}");
        assert!(r.positions_shown > r.positions_sent / 2, "{r:?}");
    }
}
