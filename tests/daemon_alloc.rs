//! After warm-up, a steady echo exchange over real sockets allocates nothing: not on the
//! user's send / receive path and not on either daemon thread. The global allocator counts
//! every thread of this test binary, which holds this one test only.
//!
//! To find an allocation, run with `GUDP_ALLOC_TRACE=1`: each one in the measured window
//! prints its backtrace.

mod common;

use common::alloc::{self, Counting};
use common::{pair, watchdog, Pair};
use gudp::{Connection, DaemonConfig, Packet, SendError};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// What one side has seen so far.
#[derive(Default)]
struct Tally {
    received: u64,
    acked: u64,
    lost: u64,
}

fn poll(conn: &Connection, batch: &mut Vec<Packet>, tally: &mut Tally) -> usize {
    let n = conn.drain_into(batch, batch.capacity()).expect("open");
    tally.received += n as u64;
    while let Some(delivery) = conn.poll_delivery() {
        if delivery.is_acked() {
            tally.acked += 1;
        } else {
            tally.lost += 1;
        }
    }
    n
}

/// The client sends `n` numbered packets with `try_send` (at most `window` unanswered), the
/// server drains them with `drain_into` and echoes each with `try_send`, the client drains
/// the echoes; both poll their delivery notifications. Returns once every packet and echo
/// is received and resolved (acked or lost).
fn exchange(p: &Pair, batches: &mut [Vec<Packet>; 2], first: u64, n: u64, window: u64) -> u64 {
    let (client, server) = (&p.client, &p.server);
    let [client_batch, server_batch] = batches;
    let (mut c, mut s) = (Tally::default(), Tally::default());
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while c.received < n || c.acked + c.lost < n || s.acked + s.lost < n {
        assert!(Instant::now() < deadline, "exchange stalled");
        let mut busy = false;
        if sent < n && sent - c.received < window {
            match client.try_send(&(first + sent).to_le_bytes()) {
                Ok(_) => {
                    sent += 1;
                    busy = true;
                }
                Err(SendError::OutboxFull | SendError::Paced) => {}
                Err(e) => panic!("{e}"),
            }
        }
        if poll(server, server_batch, &mut s) > 0 {
            for packet in server_batch.drain(..) {
                // The echo's outbox has the same capacity as the client's: never full here.
                server.try_send(&packet).expect("echo");
            }
            busy = true;
        }
        if poll(client, client_batch, &mut c) > 0 {
            for packet in client_batch.drain(..) {
                assert_eq!(packet.len(), 8);
            }
            busy = true;
        }
        if !busy {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    assert_eq!(c.received, n, "every echo arrived");
    c.lost + s.lost
}

/// Holds `burst` packets on each side at once, so each daemon's buffer pool ends up with at
/// least `burst` spare buffers. A pool allocates only when more buffers are out at once than
/// ever before; the exchanges alone reach a peak that depends on scheduling (a preempted
/// daemon lets packets pile up), so without this a loaded machine could see a higher peak in
/// the measured window than in the warm-up, and a first buffer allocated there.
fn fill_pools(p: &Pair, first: u64, burst: u64) {
    let (client, server) = (&p.client, &p.server);
    let send = |conn: &Connection, bytes: &[u8]| loop {
        match conn.try_send(bytes) {
            Ok(_) => return,
            Err(SendError::OutboxFull | SendError::Paced) => {
                std::thread::sleep(Duration::from_micros(100))
            }
            Err(e) => panic!("{e}"),
        }
    };
    let gather = |conn: &Connection, held: &mut Vec<Packet>| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while held.len() < burst as usize {
            assert!(Instant::now() < deadline, "warm-up burst stalled");
            let room = burst as usize - held.len();
            if conn.drain_into(held, room).expect("open") == 0 {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
    };
    for i in 0..burst {
        send(client, &(first + i).to_le_bytes());
    }
    let mut held = Vec::with_capacity(burst as usize);
    gather(server, &mut held);
    for packet in &held {
        send(server, packet);
    }
    let mut echoes = Vec::with_capacity(burst as usize);
    gather(client, &mut echoes);
    drop((held, echoes));
}

#[test]
fn steady_state_echo_allocates_nothing_on_user_threads_or_daemons() {
    let _watchdog = watchdog("allocation count", Duration::from_secs(120));
    let trace = std::env::var_os("GUDP_ALLOC_TRACE").is_some();
    // The default configuration but for the queueing-delay bound: on a machine whose cores
    // are busy, the daemon may serve a pacing slot over 100 ms late and then drops the packet
    // as stale (`daemon_promises` tests that); this test counts allocations on a lossless
    // exchange.
    let mut config = DaemonConfig::default();
    config.max_send_delay = Duration::from_secs(10);
    let p = pair(config.clone(), config);
    // Allocated once: `drain_into` moves at most a batch's capacity into it.
    let mut batches = [Vec::with_capacity(64), Vec::with_capacity(64)];
    // Warm-up: buffer pools, rings, timer heaps and ready lists reach their working sizes.
    // The burst holds twice the measured window on each side at once, so the pools hold
    // more spare buffers than the measured phase can have out (at most its window of
    // unanswered packets per side, plus the few being copied).
    exchange(&p, &mut batches, 0, 2_000, 128);
    fill_pools(&p, 2_000, 64);
    exchange(&p, &mut batches, 2_064, 1_936, 32);
    std::thread::sleep(Duration::from_millis(50));

    alloc::trace(trace);
    let (allocations, bytes) = (alloc::allocations(), alloc::bytes());
    const N: u64 = 4_000;
    let lost = exchange(&p, &mut batches, 4_000, N, 32);
    let allocations = alloc::allocations() - allocations;
    let bytes = alloc::bytes() - bytes;
    alloc::trace(false);

    eprintln!("{N} echoed packets: {allocations} allocations, {bytes} bytes; {lost} lost");
    assert_eq!(lost, 0, "a clean loopback link");
    assert_eq!(
        (allocations, bytes),
        (0, 0),
        "allocations while {N} packets were echoed (GUDP_ALLOC_TRACE=1 shows where)"
    );
    let c = p.server_daemon.counters();
    assert_eq!(c.payloads_delivered, 4_000 + N, "{c:?}");
    assert_eq!(c.unaccounted(), 0);
}
