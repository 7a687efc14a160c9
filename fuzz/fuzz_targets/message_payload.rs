//! Message-layer framing and reassembly under arbitrary payloads: decoding never panics and
//! every frame it accepts re-encodes to the same bytes; a `MessageConnection` fed any
//! sequence of payloads never panics and never holds more than its configured bound. It
//! has reliable messages in flight, so forged ack frames meet real send state: none may
//! ack a message twice.
#![no_main]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use gudp::message::frame::decode;
use gudp::message::{ChannelConfig, MessageConfig, MessageConnection, MessageEvent};
use gudp::protocol::PacketNumber;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Small payloads and budgets, so few bytes reach fragments, windows and evictions.
    let mut config = MessageConfig::new(vec![
        ChannelConfig::unreliable().with_max_message_size(2000).with_budget(4000),
        ChannelConfig::unreliable_sequenced().with_max_message_size(2000).with_budget(4000),
        ChannelConfig::reliable_unordered().with_max_message_size(3000).with_budget(6000),
        ChannelConfig::reliable_ordered().with_max_message_size(3000).with_budget(6000),
    ]);
    config.max_payload = 64;
    config.reliable_window = 16;
    config.unreliable_reassembly_budget = 3000;
    config.max_unreliable_partials = 3;
    config.max_ready_bytes = 5000;
    let bound = config.max_receive_memory();
    let fragment_size = config.fragment_size();
    let mut conn = MessageConnection::new(config).expect("valid config");
    let t0 = Instant::now();
    // Reliable messages in flight (whole and fragmented) for ack frames to name.
    for (channel, len) in [(2, 10), (3, 10), (2, 200), (3, 300), (3, 5)] {
        conn.send(channel, &vec![7; len]).expect("fits");
    }
    let mut out = [0u8; 64];
    let mut packet = 0;
    while conn.poll_payload(t0, &mut out).is_some() {
        conn.on_packet_sent(t0, PacketNumber(packet));
        packet += 1;
    }
    let mut acked = HashSet::new();
    // Input: [len][payload][len][payload]... with a millisecond tick between payloads;
    // a zero length polls every waiting message instead.
    let mut rest = data;
    let mut tick = 0u64;
    while let Some((&len, tail)) = rest.split_first() {
        let (payload, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        tick += 1;
        let now = t0 + Duration::from_millis(tick * 10);
        conn.handle_timeout(now);
        if len == 0 {
            while conn.poll_message().is_some() {}
            continue;
        }
        let mut offset = 0;
        for frame in decode(payload, fragment_size) {
            let Ok(frame) = frame else { break };
            let mut out = vec![0u8; frame.encoded_len()];
            let n = frame.encode(&mut out).expect("fits");
            assert_eq!(&out[..n], &payload[offset..offset + n]);
            offset += n;
        }
        let _ = conn.handle_payload(now, payload);
        assert!(conn.receive_memory() <= bound);
        while let Some(e) = conn.poll_event() {
            if let MessageEvent::Acked(id) = e {
                assert!(acked.insert(id), "{id:?} acked twice");
            }
        }
    }
});
