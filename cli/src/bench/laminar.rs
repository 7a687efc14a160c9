//! laminar 0.5, the peer most Rust game developers find first, in the same run. Its
//! `Socket::start_polling` loop sleeps 1 ms per turn; a user who wants speed drives it
//! instead with `Socket::manual_poll` in a loop of their own, and so do we: both threads
//! call `manual_poll` in a loop with no sleep, yielding the core after a turn that found
//! nothing (on two shared cores two pure spinners starve each other).
//! Packets are `Packet::unreliable` (laminar's lightest kind, no acks: GUDP's packets carry
//! acks, so the comparison favours laminar).

use super::rounds::Sample;
use super::span::{self, Flags};
use laminar::{Config, Packet, Socket, SocketEvent};
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

/// Packets queued between two `manual_poll` calls of the blasting sender.
const SEND_BATCH: usize = 64;

fn socket() -> Result<(Socket, SocketAddr), String> {
    let socket = Socket::bind_any_with_config(Config::default())
        .map_err(|e| format!("laminar bind: {e}"))?;
    let addr = socket.local_addr().map_err(|e| e.to_string())?;
    Ok((socket, addr))
}

/// Counts the packets among the events waiting on `socket`; other events (connect,
/// timeout) are laminar's bookkeeping.
fn take_packets(socket: &mut Socket, mut each: impl FnMut(Packet)) {
    while let Some(event) = socket.recv() {
        if let SocketEvent::Packet(packet) = event {
            each(packet);
        }
    }
}

pub fn one_way(size: usize, span: Duration) -> Result<Sample, String> {
    let (mut sender, _) = socket()?;
    let (mut receiver, receiver_addr) = socket()?;
    span::measure(
        span,
        Box::new(move |flags: &Flags| {
            let payload = vec![0xab; size];
            while flags.sending() {
                for _ in 0..SEND_BATCH {
                    sender
                        .send(Packet::unreliable(receiver_addr, payload.clone()))
                        .map_err(|e| format!("laminar send: {e}"))?;
                }
                sender.manual_poll(Instant::now());
                flags.sent(SEND_BATCH as u64);
            }
            Ok(())
        }),
        Box::new(move |flags: &Flags| {
            while flags.receiving() {
                receiver.manual_poll(Instant::now());
                let mut n = 0;
                take_packets(&mut receiver, |_| n += 1);
                flags.delivered(n);
                if n == 0 {
                    thread::yield_now();
                }
            }
            Ok(())
        }),
    )
}

pub fn ping_pong(size: usize, span: Duration) -> Result<Sample, String> {
    let (mut client, _) = socket()?;
    let (mut server, server_addr) = socket()?;
    span::measure(
        span,
        Box::new(move |flags: &Flags| {
            let payload = vec![0x11; size];
            while flags.sending() {
                client
                    .send(Packet::unreliable(server_addr, payload.clone()))
                    .map_err(|e| format!("laminar send: {e}"))?;
                flags.sent(1);
                let deadline = Instant::now() + Duration::from_millis(200);
                let mut echoed = 0;
                while echoed == 0 && Instant::now() < deadline {
                    client.manual_poll(Instant::now());
                    take_packets(&mut client, |_| echoed += 1);
                    if echoed == 0 {
                        thread::yield_now();
                    }
                }
                flags.delivered(echoed.min(1));
            }
            Ok(())
        }),
        Box::new(move |flags: &Flags| {
            let mut echoes = Vec::new();
            while flags.receiving() {
                server.manual_poll(Instant::now());
                take_packets(&mut server, |packet| echoes.push(packet));
                if echoes.is_empty() {
                    thread::yield_now();
                }
                for packet in echoes.drain(..) {
                    let echo = Packet::unreliable(packet.addr(), packet.payload().to_vec());
                    server
                        .send(echo)
                        .map_err(|e| format!("laminar send: {e}"))?;
                }
            }
            Ok(())
        }),
    )
}
