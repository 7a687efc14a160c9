//! The message layer's steady state allocates nothing for small messages (counted by a
//! global allocator): send, poll_payload, handle_payload, poll_message, acks, losses and
//! resend timeouts.

mod common;

use common::alloc::{allocations, Counting};
use std::time::{Duration, Instant};

use gudp::message::{MessageConfig, MessageConnection};
use gudp::protocol::PacketNumber;

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn steady_state_small_messages_do_not_allocate() {
    let t0 = Instant::now();
    let mut a = MessageConnection::new(MessageConfig::default()).unwrap();
    let mut b = MessageConnection::new(MessageConfig::default()).unwrap();
    let mut payload = vec![0u8; 1200];
    let mut next_packet = 0u64;
    let mut received = 0u64;
    // Every 1 ms: a sends a message on each channel; its payloads reach b except 1 in 7,
    // which is reported lost; acks come back 1 ms later; timers fire.
    let mut step = |i: u64, received: &mut u64| {
        let now = t0 + Duration::from_millis(i);
        for channel in 0..4 {
            a.send(channel, &i.to_be_bytes()).unwrap();
        }
        a.handle_timeout(now);
        let mut acks = [None; 8];
        let mut n_acks = 0;
        while let Some(n) = a.poll_payload(now, &mut payload) {
            let id = PacketNumber(next_packet);
            next_packet += 1;
            a.on_packet_sent(now, id);
            if id.0 % 7 == 3 {
                a.on_packet_lost(id);
                continue;
            }
            b.handle_payload(now, &payload[..n]).unwrap();
            if n_acks < acks.len() {
                acks[n_acks] = Some(id);
                n_acks += 1;
            }
        }
        while let Some(m) = b.poll_message() {
            assert_eq!(m.data.len(), 8);
            *received += 1;
        }
        let later = now + Duration::from_millis(1);
        for id in acks.iter().flatten() {
            a.on_packet_acked(later, *id);
        }
        while a.poll_event().is_some() {}
    };
    for i in 0..5_000 {
        step(i, &mut received);
    }
    let before = allocations();
    for i in 5_000..10_000 {
        step(i, &mut received);
    }
    let allocations = allocations() - before;
    assert_eq!(allocations, 0, "{allocations} allocations in steady state");
    assert!(received > 30_000, "{received}");
}
