//! The steady-state send and receive paths allocate nothing (counted by a global allocator).

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gudp::protocol::{Config, Endpoint, Incoming};

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
fn steady_state_send_and_receive_do_not_allocate() {
    let t0 = Instant::now();
    let (ca, sa): (SocketAddr, SocketAddr) =
        ("10.0.0.1:1".parse().unwrap(), "10.0.0.2:2".parse().unwrap());
    let mut client = Endpoint::new(Config::default(), [1; 16]);
    let mut server = Endpoint::new(Config::default(), [2; 16]);
    let conn = client.connect(t0, sa).unwrap();
    let mut buf = vec![0u8; 1500];
    let mut now = t0;
    let mut delivered = 0u64;
    // Every 1 ms: the client sends a payload, the server answers with one; both process
    // timers, transmits and events. 1 in 10 client payloads is "lost".
    let mut step = |i: u64, now: Instant, delivered: &mut u64| {
        if let Ok(t) = client.send(now, conn, &i.to_be_bytes(), &mut buf) {
            if i % 10 != 0 {
                let incoming = server.handle_datagram(now, ca, &buf[..t.len]);
                if let Incoming::Payload { receipt, .. } = incoming {
                    assert!(server.deliver(now, receipt));
                    *delivered += 1;
                }
            }
        }
        if let Some(sconn) = server.connection_by_addr(ca) {
            if let Ok(t) = server.send(now, sconn, &i.to_be_bytes(), &mut buf) {
                if let Incoming::Payload { receipt, .. } =
                    client.handle_datagram(now, sa, &buf[..t.len])
                {
                    assert!(client.deliver(now, receipt));
                }
            }
        }
        client.handle_timeout(now);
        server.handle_timeout(now);
        while let Some(t) = client.poll_transmit(now, &mut buf) {
            server.handle_datagram(now, ca, &buf[..t.len]);
        }
        while let Some(t) = server.poll_transmit(now, &mut buf) {
            client.handle_datagram(now, sa, &buf[..t.len]);
        }
        while client.poll_event().is_some() {}
        while server.poll_event().is_some() {}
    };
    for i in 0..5_000 {
        now += Duration::from_millis(1);
        step(i, now, &mut delivered);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for i in 5_000..25_000 {
        now += Duration::from_millis(1);
        step(i, now, &mut delivered);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert!(delivered > 20_000, "{delivered}");
    assert_eq!(allocations, 0, "allocations in 20,000 steady-state steps");
    let c = client.counters();
    assert!(c.acked > 15_000 && c.lost > 1_500, "{c:?}");
}
