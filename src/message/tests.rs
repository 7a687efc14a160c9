//! Unit tests of the whole connection: arbitrary payloads, and a lossy round trip.

use super::frame::Frame;
use super::*;
use proptest::prelude::*;

/// The configuration of `fuzz/fuzz_targets/message_payload.rs`: tiny payloads and
/// budgets, so few bytes reach fragments, windows and evictions.
fn tiny() -> MessageConfig {
    let mut config = MessageConfig::new(vec![
        ChannelConfig::unreliable()
            .with_max_message_size(2000)
            .with_budget(4000),
        ChannelConfig::unreliable_sequenced()
            .with_max_message_size(2000)
            .with_budget(4000),
        ChannelConfig::reliable_unordered()
            .with_max_message_size(3000)
            .with_budget(6000),
        ChannelConfig::reliable_ordered()
            .with_max_message_size(3000)
            .with_budget(6000),
    ]);
    config.max_payload = 64;
    config.reliable_window = 16;
    config.unreliable_reassembly_budget = 3000;
    config.max_unreliable_partials = 3;
    config.max_ready_bytes = 5000;
    config
}

/// Plausible frames (valid headers, arbitrary fields) make better inputs than noise.
fn arb_payload() -> impl Strategy<Value = Vec<u8>> {
    let frame = (0u8..5, any::<u16>(), 1u32..3500, 0u16..70, 0usize..60).prop_map(
        |(channel, id, total, index, len)| {
            let mut b = vec![0u8; 64];
            let fragment = total % 2 == 0;
            let f = if fragment {
                let index = index % (total as usize).div_ceil(55) as u16;
                let n = frame::fragment_len(total, 55, index).unwrap();
                Frame::Fragment {
                    channel,
                    id: id % 20,
                    total,
                    index,
                    data: &[0xAA; 64][..n],
                }
            } else {
                Frame::Message {
                    channel,
                    id: id % 20,
                    data: &[0x55; 64][..len],
                }
            };
            let mut n = f.encode(&mut b).unwrap_or(0);
            if !fragment {
                // Empty next messages after it: the most messages a payload can carry.
                for k in 0..index % 8 {
                    let next = Frame::NextMessage {
                        channel,
                        id: (id % 20).wrapping_add(k + 1),
                        data: b"",
                    };
                    n += next.encode(&mut b[n..]).unwrap_or(0);
                }
            }
            b.truncate(n);
            b
        },
    );
    proptest::collection::vec(frame, 0..3).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn any_payloads_never_panic_and_stay_bounded(
        payloads in proptest::collection::vec(
            prop_oneof![arb_payload(), proptest::collection::vec(any::<u8>(), 0..80)],
            0..60,
        ),
        polls in any::<u64>(),
    ) {
        let config = tiny();
        let bound = config.max_receive_memory();
        let mut conn = MessageConnection::new(config).unwrap();
        let t0 = Instant::now();
        for (i, p) in payloads.iter().enumerate() {
            let now = t0 + Duration::from_millis(i as u64 * 300);
            conn.handle_timeout(now);
            let _ = conn.handle_payload(now, p);
            prop_assert!(conn.receive_memory() <= bound);
            if polls >> (i % 64) & 1 == 1 {
                while conn.poll_message().is_some() {}
            }
        }
    }
}

#[test]
fn fragmented_reliable_messages_round_trip_with_losses() {
    let t0 = Instant::now();
    let mut a = MessageConnection::new(tiny()).unwrap();
    let mut b = MessageConnection::new(tiny()).unwrap();
    let msgs: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 37 * usize::from(i)]).collect();
    let mut queued = msgs.iter().peekable();
    let mut out = [0u8; 64];
    let mut packet = 0;
    let mut got = Vec::new();
    for step in 0..20_000u64 {
        let now = t0 + Duration::from_millis(step);
        while let Some(m) = queued.peek() {
            match a.send(3, m) {
                Ok(_) => {
                    queued.next();
                }
                Err(MessageSendError::ChannelFull { .. }) => break,
                Err(e) => panic!("{e}"),
            }
        }
        a.handle_timeout(now);
        while let Some(n) = a.poll_payload(now, &mut out) {
            a.on_packet_sent(now, PacketNumber(packet));
            // Every third packet is lost; the loss is reported for every other one only
            // (the rest are found by the resend timeout).
            if packet % 3 == 0 {
                if packet % 2 == 0 {
                    a.on_packet_lost(PacketNumber(packet));
                }
            } else if b.handle_payload(now, &out[..n]).is_ok() {
                a.on_packet_acked(now, PacketNumber(packet));
            }
            packet += 1;
        }
        while let Some(m) = b.poll_message() {
            got.push(m.data.to_vec());
        }
        if got.len() == msgs.len() {
            break;
        }
    }
    assert_eq!(got, msgs);
    assert!(a.counters().rto_expiries > 0 && a.counters().resends > 0);
}

/// Frames in `payload` as (channel, id, fragment index).
fn frames(payload: &[u8], fs: usize) -> Vec<(u8, u16, Option<u16>)> {
    frame::decode(payload, fs)
        .map(|f| match f.unwrap() {
            Frame::Message { channel, id, .. } | Frame::NextMessage { channel, id, .. } => {
                (channel, id, None)
            }
            Frame::Fragment {
                channel, id, index, ..
            } => (channel, id, Some(index)),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

#[test]
fn reliable_ids_stay_within_the_window_and_fragments_within_theirs() {
    let mut config = MessageConfig::new(vec![ChannelConfig::reliable_ordered()]);
    config.reliable_window = 16;
    config.fragment_window = 4;
    let fs = config.fragment_size();
    let mut a = MessageConnection::new(config).unwrap();
    let now = Instant::now();
    a.send(0, &vec![1; 10 * fs]).unwrap(); // id 0: ten fragments
    for _ in 0..100 {
        a.send(0, b"small").unwrap();
    }
    let mut out = [0u8; 1200];
    let mut sent = Vec::new();
    let mut packet = 0;
    while let Some(n) = a.poll_payload(now, &mut out) {
        a.on_packet_sent(now, PacketNumber(packet));
        sent.push((packet, frames(&out[..n], fs)));
        packet += 1;
    }
    // Four fragments of message 0 (the fragment window), and the whole messages 1..=15
    // behind it: nothing from id 16 on.
    let all: Vec<_> = sent.iter().flat_map(|(_, f)| f.clone()).collect();
    assert_eq!(all.iter().filter(|f| f.2.is_some()).count(), 4);
    assert_eq!(all.iter().map(|f| f.1).max(), Some(15));
    // Acking everything but message 0 does not open the id window.
    for (p, f) in &sent {
        if f.iter().all(|f| f.1 != 0) {
            a.on_packet_acked(now, PacketNumber(*p));
        }
    }
    assert!(a.poll_payload(now, &mut out).is_none());
    // Each acked fragment lets the next one out.
    let first = sent
        .iter()
        .find(|(_, f)| f.contains(&(0, 0, Some(0))))
        .unwrap()
        .0;
    a.on_packet_acked(now, PacketNumber(first));
    let n = a.poll_payload(now, &mut out).unwrap();
    assert_eq!(frames(&out[..n], fs), vec![(0, 0, Some(4))]);
}

#[test]
fn weights_share_each_payload() {
    let config = MessageConfig::new(vec![
        ChannelConfig::unreliable().with_weight(4),
        ChannelConfig::reliable_ordered().with_weight(1),
    ]);
    let fs = config.fragment_size();
    let mut a = MessageConnection::new(config).unwrap();
    let now = Instant::now();
    for _ in 0..2000 {
        a.send(0, &[0; 45]).unwrap(); // 50 bytes on the wire
        a.send(1, &[0; 45]).unwrap();
    }
    let mut out = [0u8; 1200];
    let mut bytes = [0usize; 2];
    for p in 0..20 {
        let n = a.poll_payload(now, &mut out).unwrap();
        a.on_packet_sent(now, PacketNumber(p));
        for f in frames(&out[..n], fs) {
            bytes[usize::from(f.0)] += 50;
        }
    }
    let ratio = bytes[0] as f64 / bytes[1] as f64;
    assert!((3.5..4.5).contains(&ratio), "{bytes:?}");
}

/// An ack frame acks only parts that were sent: a peer claiming more (here: every fragment
/// and ids beyond) completes nothing, and the rest still goes out.
#[test]
fn ack_frames_ack_only_what_was_sent() {
    let now = Instant::now();
    let mut a = MessageConnection::new(MessageConfig::default()).unwrap();
    let fs = a.config().fragment_size();
    let id = a.send(3, &vec![1; 10 * fs]).unwrap();
    let mut out = [0u8; 1200];
    for p in 0..2 {
        a.poll_payload(now, &mut out).unwrap();
        a.on_packet_sent(now, PacketNumber(p));
    }
    let mut blocks = [0u8; 7];
    let b = frame::AckBlock::Fragments {
        id: 0,
        start: 0,
        count: 10,
    };
    b.encode(&mut blocks).unwrap();
    let (blocks, _) = frame::AckBlocks::parse(&blocks, 1).unwrap();
    let ack = Frame::Ack {
        channel: 3,
        next: 5,
        blocks,
    };
    let n = ack.encode(&mut out).unwrap();
    a.handle_payload(now, &out[..n]).unwrap();
    assert_eq!(a.poll_event(), None, "8 fragments were never sent");
    assert_eq!(a.counters().ack_frames_received, 1);
    // The two sent fragments are acked (their packets' outcomes change nothing now); the
    // others still go out, and the message is acked once, when the last of them is.
    a.on_packet_lost(PacketNumber(0));
    a.on_packet_lost(PacketNumber(1));
    let mut p = 2;
    let mut frags = Vec::new();
    while let Some(n) = a.poll_payload(now, &mut out) {
        frags.extend(frames(&out[..n], fs));
        a.on_packet_sent(now, PacketNumber(p));
        a.on_packet_acked(now, PacketNumber(p));
        p += 1;
    }
    let sent: Vec<_> = (2..10).map(|i| (3, 0, Some(i))).collect();
    assert_eq!(frags, sent);
    assert_eq!(a.poll_event(), Some(MessageEvent::Acked(id)));
    assert_eq!(a.poll_event(), None);
    assert!(a.is_flushed());
}

/// A resent whole message goes out twice, in two payloads, so that one more loss does not
/// cost another timeout; a resent fragment goes once.
#[test]
fn resent_whole_messages_are_echoed_in_the_next_payload() {
    let now = Instant::now();
    let mut a = MessageConnection::new(MessageConfig::default()).unwrap();
    let fs = a.config().fragment_size();
    let id = a.send(3, b"chat").unwrap();
    a.send(2, &vec![0; 2 * fs]).unwrap(); // two fragments
    let mut out = [0u8; 1200];
    let mut sent = Vec::new();
    let mut p = 0;
    let mut flush = |a: &mut MessageConnection, sent: &mut Vec<_>| {
        while let Some(n) = a.poll_payload(now, &mut out) {
            sent.push(frames(&out[..n], fs));
            a.on_packet_sent(now, PacketNumber(p));
            p += 1;
        }
    };
    flush(&mut a, &mut sent);
    let n0 = sent.len() as u64;
    for lost in 0..n0 {
        a.on_packet_lost(PacketNumber(lost));
    }
    sent.clear();
    flush(&mut a, &mut sent);
    let chat = (3, 0, None);
    let count = |f: &(u8, u16, Option<u16>)| sent.iter().filter(|s| s.contains(f)).count();
    assert_eq!(count(&chat), 2, "resend and echo: {sent:?}");
    assert_eq!(
        (count(&(2, 0, Some(0))), count(&(2, 0, Some(1)))),
        (1, 1),
        "{sent:?}"
    );
    let first = sent.iter().position(|s| s.contains(&chat)).unwrap();
    assert!(!sent[first + 1..first + 2].is_empty() && sent[first + 1].contains(&chat));
    // Either copy acks it, once.
    a.on_packet_acked(now, PacketNumber(n0 + first as u64 + 1));
    a.on_packet_acked(now, PacketNumber(n0 + first as u64));
    let acked: Vec<_> = std::iter::from_fn(|| a.poll_event()).collect();
    assert_eq!(acked, vec![MessageEvent::Acked(id)]);
}
