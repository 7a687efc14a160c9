//! What the per-packet MAC costs, measured in one run against the same work without it.
//!
//! * `codec/plain/N`: encode a payload packet of N payload bytes, then decode it: wire
//!   version 1's whole per-packet codec work.
//! * `codec/mac/N`: the same, plus sealing after encoding and verifying before decoding
//!   (SipHash-2-4-128 over the extended sequence and the datagram): what every connected
//!   packet now costs its two ends.
//! * `codec/aead/N`: the same with secure mode's keys instead: ChaCha20-Poly1305 sealing
//!   (encrypting the payload) after encoding and opening (decrypting in place) before
//!   decoding.
//! * `codec/aead-rustcrypto/N`: the same AEAD (ChaCha20-Poly1305, the header's first 16
//!   bytes as associated data, the body encrypted in place) through RustCrypto's
//!   `chacha20poly1305`, the backend before ring: the baseline of the switch, same run.
//! * `endpoint/N`: the whole protocol core per packet, MAC included: `send` on a client,
//!   `handle_datagram` and `deliver` on the server, timers, and the acks going back.
//!
//! The MAC's share of a packet's CPU is `(codec/mac - codec/plain) / endpoint`; the
//! daemon adds a system call or a share of a batched one per datagram on top
//! (`docs/benchmarks.md`), so its share of a packet's total cost is smaller still.

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gudp::protocol::protection::PacketProtection;
use gudp::protocol::wire::{decode, ConnectedHeader, WirePacket, DEFAULT_PROTOCOL_ID};
use gudp::protocol::{Config, Endpoint, Incoming, Role};
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const SIZES: [usize; 2] = [64, 1200];

fn header(seq: u64) -> ConnectedHeader {
    ConnectedHeader::new(
        seq as u16,
        Some(gudp::protocol::wire::AckFields {
            ack: 7,
            ack_bits: 0xffff_ffff,
            ack_delay: 3,
        }),
    )
}

/// Encodes payload packet `seq` into `buf`; returns its length.
fn encode(seq: u64, payload: &[u8], buf: &mut [u8]) -> usize {
    let packet = WirePacket::Payload {
        header: header(seq),
        payload,
    };
    packet.encode(DEFAULT_PROTOCOL_ID, buf).unwrap()
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    let client = PacketProtection::derive(Role::Client, DEFAULT_PROTOCOL_ID, &[7; 16], 42, 1500);
    let server = PacketProtection::derive(Role::Server, DEFAULT_PROTOCOL_ID, &[7; 16], 42, 1500);
    let secure_client = PacketProtection::secure(Role::Client, &[3; 32], &[4; 32], 42, 1500);
    let secure_server = PacketProtection::secure(Role::Server, &[3; 32], &[4; 32], 42, 1500);
    for size in SIZES {
        let payload = vec![0x5a; size];
        let mut buf = vec![0u8; 1500];
        group.throughput(Throughput::Elements(1));
        let mut seq = 0u64;
        group.bench_function(format!("plain/{size}"), |b| {
            b.iter(|| {
                seq += 1;
                let n = encode(seq, black_box(&payload), &mut buf);
                black_box(decode(DEFAULT_PROTOCOL_ID, black_box(&buf[..n])).is_ok())
            })
        });
        group.bench_function(format!("mac/{size}"), |b| {
            b.iter(|| {
                seq += 1;
                let n = encode(seq, black_box(&payload), &mut buf);
                client.seal(seq, &mut buf[..n]);
                let d = black_box(&buf[..n]);
                black_box(server.verify(seq, d) && decode(DEFAULT_PROTOCOL_ID, d).is_ok())
            })
        });
        group.bench_function(format!("aead/{size}"), |b| {
            b.iter(|| {
                seq += 1;
                let n = encode(seq, black_box(&payload), &mut buf);
                secure_client.seal(seq, &mut buf[..n]);
                let d = black_box(&mut buf[..n]);
                black_box(secure_server.open(seq, d) && decode(DEFAULT_PROTOCOL_ID, d).is_ok())
            })
        });
        let rustcrypto = ChaCha20Poly1305::new(&[3; 32].into());
        group.bench_function(format!("aead-rustcrypto/{size}"), |b| {
            b.iter(|| {
                seq += 1;
                let n = encode(seq, black_box(&payload), &mut buf);
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&seq.to_be_bytes());
                let (head, body) = buf[..n].split_at_mut(32);
                let tag = rustcrypto
                    .encrypt_in_place_detached(&nonce.into(), &head[..16], body)
                    .unwrap();
                head[16..].copy_from_slice(&tag);
                let (head, body) = black_box(&mut buf[..n]).split_at_mut(32);
                let tag: [u8; 16] = head[16..].try_into().unwrap();
                let ok = rustcrypto
                    .decrypt_in_place_detached(&nonce.into(), &head[..16], body, &tag.into())
                    .is_ok();
                black_box(ok && decode(DEFAULT_PROTOCOL_ID, &buf[..n]).is_ok())
            })
        });
    }
    group.finish();
}

/// A client and a server endpoint that completed a handshake in memory.
fn pair(now: Instant, ca: SocketAddr, sa: SocketAddr) -> (Endpoint, Endpoint) {
    let mut client = Endpoint::new(Config::default(), [1; 16]);
    let mut server = Endpoint::new(Config::default(), [2; 16]);
    client.connect(now, sa).unwrap();
    let mut buf = [0u8; 1500];
    for _ in 0..3 {
        while let Some(t) = client.poll_transmit(now, &mut buf) {
            server.handle_datagram(now, ca, &buf[..t.len]);
        }
        while let Some(t) = server.poll_transmit(now, &mut buf) {
            client.handle_datagram(now, sa, &buf[..t.len]);
        }
    }
    (client, server)
}

fn endpoint(c: &mut Criterion) {
    let mut group = c.benchmark_group("endpoint");
    let (ca, sa): (SocketAddr, SocketAddr) = (
        "10.0.0.1:5000".parse().unwrap(),
        "10.0.0.2:6000".parse().unwrap(),
    );
    for size in SIZES {
        let mut now = Instant::now();
        let (mut client, mut server) = pair(now, ca, sa);
        let conn = client.connection_by_addr(sa).unwrap();
        let payload = vec![0x5a; size];
        let mut buf = vec![0u8; 1500];
        let mut back = vec![0u8; 1500];
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("{size}"), |b| {
            b.iter(|| {
                // 1,000 packets/s of simulated time: under the pacing rate.
                now += Duration::from_millis(1);
                let t = client.send(now, conn, &payload, &mut buf).unwrap();
                if let Incoming::Payload { receipt, .. } =
                    server.handle_datagram(now, ca, &buf[..t.len])
                {
                    server.deliver(now, receipt);
                }
                server.handle_timeout(now);
                while let Some(t) = server.poll_transmit(now, &mut back) {
                    client.handle_datagram(now, sa, &back[..t.len]);
                }
                client.handle_timeout(now);
                while client.poll_transmit(now, &mut back).is_some() {}
                while client.poll_event().is_some() {}
                while server.poll_event().is_some() {}
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = codec, endpoint
}
criterion_main!(benches);
