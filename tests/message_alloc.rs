//! The message layer's steady state allocates nothing for small messages (counted by a
//! global allocator): send, poll_payload, handle_payload, poll_message, acks, losses and
//! resend timeouts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gudp::message::{MessageConfig, MessageConnection};
use gudp::protocol::PacketNumber;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call unchanged to the system allocator, which upholds the
// GlobalAlloc contract; the counter has no effect on the memory returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `System` with `layout`; forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

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
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for i in 5_000..10_000 {
        step(i, &mut received);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(allocations, 0, "{allocations} allocations in steady state");
    assert!(received > 30_000, "{received}");
}
