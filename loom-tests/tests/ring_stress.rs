//! Stress test for the bare ring: 2 producers and 2 consumers on real threads, every item
//! received exactly once and, per producer, in order. loom proves this on tiny models; this
//! checks it at scale and across many laps, for several capacities (including ones that are
//! not a power of two, where a lap is longer than the ring).

#![cfg(not(loom))]

use loom_tests::assert_each_seen_once;

use gudp::internals::ring::Ring;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

const PRODUCERS: usize = 2;
const CONSUMERS: usize = 2;
/// Far above what a run needs in debug mode on a loaded 2-core machine.
const WATCHDOG: Duration = Duration::from_secs(60);

/// An item: which producer pushed it, and its sequence number for that producer.
fn encode(producer: usize, seq: usize) -> u64 {
    ((producer as u64) << 32) | seq as u64
}

fn decode(item: u64) -> (usize, usize) {
    ((item >> 32) as usize, (item & 0xffff_ffff) as usize)
}

/// Runs 2 producers / 2 consumers through a ring of `capacity`; returns what each consumer
/// received, in order. Consumer 0 uses `try_pop` (waits for a claimed slot), consumer 1
/// `pop_ready` (never waits): both must deliver everything.
fn run(capacity: usize, per_producer: usize, progress: &AtomicUsize) -> Vec<Vec<u64>> {
    let ring = Ring::new(capacity);
    let producers_done = AtomicUsize::new(0);
    thread::scope(|scope| {
        for producer in 0..PRODUCERS {
            let (ring, producers_done) = (&ring, &producers_done);
            scope.spawn(move || {
                for seq in 0..per_producer {
                    let mut item = encode(producer, seq);
                    while let Err(back) = ring.try_push(item) {
                        item = back;
                        std::hint::spin_loop();
                        thread::yield_now();
                    }
                }
                producers_done.fetch_add(1, Ordering::Release);
            });
        }
        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|consumer| {
                let (ring, producers_done) = (&ring, &producers_done);
                scope.spawn(move || {
                    let pop = || {
                        if consumer == 0 {
                            ring.try_pop()
                        } else {
                            ring.pop_ready()
                        }
                    };
                    let mut got = Vec::new();
                    loop {
                        // Read "all producers done" before the pop that finds nothing: an
                        // empty ring after that means nothing more will come.
                        let done = producers_done.load(Ordering::Acquire) == PRODUCERS;
                        match pop() {
                            Some(item) => {
                                got.push(item);
                                progress.fetch_add(1, Ordering::Relaxed);
                            }
                            None if done && ring.is_empty() => return got,
                            None => thread::yield_now(),
                        }
                    }
                })
            })
            .collect();
        consumers
            .into_iter()
            .map(|consumer| consumer.join().expect("consumer panicked"))
            .collect()
    })
}

fn check(received: &[Vec<u64>], per_producer: usize) {
    let mut seen = vec![0u8; PRODUCERS * per_producer];
    for (consumer, items) in received.iter().enumerate() {
        // Per-producer FIFO: a producer's pushes take increasing positions and a consumer's
        // pops take increasing positions, so each consumer sees each producer's items in order.
        let mut last = [None; PRODUCERS];
        for &item in items {
            let (producer, seq) = decode(item);
            assert!(
                producer < PRODUCERS && seq < per_producer,
                "corrupt item {item:#x}"
            );
            if let Some(previous) = last[producer] {
                assert!(
                    seq > previous,
                    "consumer {consumer} got producer {producer}'s item {seq} after {previous}"
                );
            }
            last[producer] = Some(seq);
            seen[producer * per_producer + seq] += 1;
        }
    }
    assert_each_seen_once(&seen);
}

#[test]
fn mpmc_two_producers_two_consumers_exactly_once_per_producer_fifo() {
    // (capacity, items per producer): capacity 1 forces a hand-off per item; 7 and 1000 are
    // not powers of two; 1024 is.
    const RUNS: [(usize, usize); 4] = [(1, 20_000), (7, 200_000), (1000, 200_000), (1024, 100_000)];
    let progress = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = mpsc::channel();
    let runner = {
        let progress = progress.clone();
        thread::spawn(move || {
            for (capacity, per_producer) in RUNS {
                let received = run(capacity, per_producer, &progress);
                check(&received, per_producer);
            }
            // The receiver is gone only if the watchdog already fired.
            let _ = done_tx.send(());
        })
    };
    match done_rx.recv_timeout(WATCHDOG) {
        Ok(()) => runner.join().expect("ring stress panicked after finishing"),
        Err(mpsc::RecvTimeoutError::Timeout) => panic!(
            "ring stress: no end after {WATCHDOG:?}, {} items received: livelock or lost item",
            progress.load(Ordering::Relaxed)
        ),
        Err(mpsc::RecvTimeoutError::Disconnected) => match runner.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the stress run ended without reporting"),
        },
    }
}
