//! What a game developer writes with message mode: one connection, three channels.
//!
//! * **input** (client → server): unreliable sequenced, weight 4: one per 60 Hz frame; a
//!   late one is useless, so only the newest counts and a chat burst cannot starve it;
//! * **state** (server → client): unreliable sequenced: a snapshot per frame, latest wins;
//! * **chat** (both ways): reliable ordered: every line arrives, once, in order.
//!
//! Both daemons run over loopback through a lossy link conditioner; both frame loops never
//! block (`try_send_message`, `drain_messages`). Only the public API is used.
//!
//! ```text
//! cargo run --example messages -- [LOSS_PERCENT] [SECONDS]
//! ```

use gudp::conditioner::LinkConfig;
use gudp::message::{ChannelConfig, MessageConfig};
use gudp::{Connection, Daemon, DaemonConfig, LinkSetup, ReceivedMessage, SendError};
use std::time::{Duration, Instant};

const INPUT: u8 = 0;
const STATE: u8 = 1;
const CHAT: u8 = 2;
const FRAME: Duration = Duration::from_micros(16_667);

fn main() {
    let mut args = std::env::args().skip(1).map(|a| {
        a.parse::<f64>().unwrap_or_else(|_| {
            eprintln!("usage: messages [LOSS_PERCENT] [SECONDS] ('{a}' is not a number)");
            std::process::exit(2);
        })
    });
    let loss = args.next().unwrap_or(10.0);
    let seconds = args.next().unwrap_or(3.0);
    let report = run(loss, Duration::from_secs_f64(seconds));
    println!(
        "inputs {}/{} (newest only), states {}/{}, chat {}/{} in order: {}",
        report.inputs_received,
        report.frames,
        report.states_received,
        report.frames,
        report.chat_received.len(),
        report.chat_sent,
        report.chat_in_order()
    );
}

/// The channels, identical at both ends (the handshake refuses a mismatch).
fn channels() -> MessageConfig {
    MessageConfig::new(vec![
        ChannelConfig::unreliable_sequenced().with_weight(4), // INPUT
        ChannelConfig::unreliable_sequenced(),                // STATE
        ChannelConfig::reliable_ordered(),                    // CHAT
    ])
}

fn daemon(loss: f64, seed: u64) -> Daemon {
    let mut link = LinkConfig::default();
    link.latency = Duration::from_millis(10);
    link.jitter = Duration::from_millis(2);
    link.loss_percent = loss;
    let mut config = DaemonConfig::default();
    config.link = Some(LinkSetup::new(link, seed));
    config.messages = Some(channels());
    Daemon::spawn(config).expect("a daemon")
}

#[derive(Debug, Default)]
struct Report {
    frames: u32,
    inputs_received: u32,
    states_received: u32,
    chat_sent: u32,
    chat_received: Vec<u32>,
}

impl Report {
    fn chat_in_order(&self) -> bool {
        self.chat_received.iter().copied().eq(0..self.chat_sent)
    }
}

/// Sends unless the channel is full this frame (a frame loop never waits).
fn offer(conn: &Connection, channel: u8, bytes: &[u8]) -> bool {
    match conn.try_send_message(channel, bytes) {
        Ok(_) => true,
        Err(SendError::ChannelFull { .. } | SendError::OutboxFull) => false,
        Err(error) => panic!("send failed: {error}"),
    }
}

fn run(loss: f64, duration: Duration) -> Report {
    let (server_daemon, client_daemon) = (daemon(loss, 1), daemon(loss, 2));
    let listener = server_daemon
        .listen("127.0.0.1:0".parse().unwrap())
        .expect("listen");
    let client = client_daemon
        .connect(listener.local_addr())
        .expect("connect");
    let server = listener.accept().expect("accept");
    let mut report = Report::default();
    let (mut server_inbox, mut client_inbox) = (Vec::with_capacity(256), Vec::new());
    let mut newest_input = None;
    let start = Instant::now();
    let mut next_frame = start;
    while start.elapsed() < duration {
        let frame = report.frames;
        // Client frame: one input; a chat line every tenth frame.
        offer(&client, INPUT, &frame.to_le_bytes());
        if frame % 10 == 0 && offer(&client, CHAT, &report.chat_sent.to_le_bytes()) {
            report.chat_sent += 1;
        }
        // Server frame: take what arrived, apply the newest input, send a snapshot.
        server.drain_messages(&mut server_inbox, 256).expect("open");
        for message in server_inbox.drain(..) {
            match message.channel() {
                INPUT => newest_input = Some(number(&message)),
                CHAT => {
                    offer(&server, CHAT, &message); // the chat room echoes every line
                }
                _ => unreachable!("the client sends no state"),
            }
            if message.channel() == INPUT {
                report.inputs_received += 1;
            }
        }
        let snapshot = newest_input.unwrap_or(u32::MAX).to_le_bytes();
        offer(&server, STATE, &snapshot);
        // Client: states and the chat room's echoes.
        client.drain_messages(&mut client_inbox, 256).expect("open");
        tally(&mut client_inbox, &mut report);
        report.frames += 1;
        next_frame += FRAME;
        std::thread::sleep(next_frame.saturating_duration_since(Instant::now()));
    }
    // The last chat lines are still on their way: reliable ones arrive, so wait for them.
    let deadline = Instant::now() + Duration::from_secs(10);
    while (report.chat_received.len() as u32) < report.chat_sent && Instant::now() < deadline {
        while let Ok(message) = server.try_recv_message() {
            if message.channel() == CHAT {
                offer(&server, CHAT, &message);
            }
        }
        if let Ok(message) = client.recv_message_timeout(Duration::from_millis(10)) {
            client_inbox.push(message);
            tally(&mut client_inbox, &mut report);
        }
    }
    report
}

fn tally(inbox: &mut Vec<ReceivedMessage>, report: &mut Report) {
    for message in inbox.drain(..) {
        match message.channel() {
            STATE => report.states_received += 1,
            CHAT => report.chat_received.push(number(&message)),
            _ => unreachable!("the server sends no input"),
        }
    }
}

fn number(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CI runs it briefly through 10 % loss: every chat line arrives in order, inputs and
    /// states flow but show their losses.
    #[test]
    fn runs_briefly() {
        let report = run(10.0, Duration::from_secs(1));
        assert!(report.chat_in_order(), "{report:?}");
        assert!(report.chat_sent >= 3, "{report:?}");
        assert!(report.inputs_received > report.frames / 3, "{report:?}");
        assert!(report.inputs_received < report.frames, "{report:?}");
        assert!(report.states_received > report.frames / 3, "{report:?}");
    }
}
