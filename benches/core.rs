//! Benchmarks of the concurrent core against its baselines.
//!
//! * `ring_spsc`, `ring_1p3c`: streaming through `gudp::internals::ring::Ring` and crossbeam's
//!   `ArrayQueue` (same capacity), both sides spinning on `try_push`/`try_pop` with a spin hint.
//! * `inbox_stream`: one producer streaming to three consumers blocked in `recv`.
//! * `inbox_handoff`: one item in flight, ping-pong through two inboxes (a round trip each).
//!
//! The inbox benchmarks are named after `gudp::IMPLEMENTATION`: run the file once as is
//! (lock-free) and once with `--features naive-mutex` to compare the two.
//!
//! Worker threads live across iterations (spawning per batch would dominate the numbers):
//! each `iter_custom` batch is started by a command or by the items themselves, ends with one
//! sentinel per consumer, and the workers are shut down and joined when a benchmark ends. The
//! main thread is the producer; the fixed cost of starting and ending a batch is the same at
//! every iteration count, so criterion's linear fit removes it from the per-item slope.

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use crossbeam_queue::ArrayQueue;
use gudp::internals::inbox::Inbox;
use gudp::internals::ring::Ring;
use gudp::internals::status::CloseReason;
use gudp::IMPLEMENTATION;
use std::hint::{black_box, spin_loop};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Slots in every ring, queue and inbox: a typical inbox size.
const CAPACITY: usize = 1024;
/// Ends a batch: each consumer stops at the first one it pops. Per-producer FIFO puts them
/// after every item of the batch.
const SENTINEL: u64 = u64::MAX;

/// The two bounded queues under comparison, as the spinning benchmarks use them.
trait SpinQueue: Send + Sync + 'static {
    fn new(capacity: usize) -> Self;
    fn push(&self, item: u64) -> Result<(), u64>;
    fn pop(&self) -> Option<u64>;
}

impl SpinQueue for Ring<u64> {
    fn new(capacity: usize) -> Self {
        Ring::new(capacity)
    }
    fn push(&self, item: u64) -> Result<(), u64> {
        self.try_push(item)
    }
    fn pop(&self) -> Option<u64> {
        self.try_pop()
    }
}

impl SpinQueue for ArrayQueue<u64> {
    fn new(capacity: usize) -> Self {
        ArrayQueue::new(capacity)
    }
    fn push(&self, item: u64) -> Result<(), u64> {
        ArrayQueue::push(self, item)
    }
    fn pop(&self) -> Option<u64> {
        ArrayQueue::pop(self)
    }
}

fn spin_push<Q: SpinQueue>(queue: &Q, item: u64) {
    let mut item = item;
    while let Err(back) = queue.push(item) {
        item = back;
        spin_loop();
    }
}

/// A producer (the caller) and `consumers` persistent spinning consumer threads.
struct SpinStream<Q: SpinQueue> {
    queue: Arc<Q>,
    /// One per consumer: "start a batch". Dropping them tells the consumers to exit.
    go: Vec<mpsc::Sender<()>>,
    done: mpsc::Receiver<()>,
    workers: Vec<JoinHandle<()>>,
}

impl<Q: SpinQueue> SpinStream<Q> {
    fn new(consumers: usize) -> Self {
        let queue = Arc::new(Q::new(CAPACITY));
        let (done_tx, done) = mpsc::channel();
        let (go, workers) = (0..consumers)
            .map(|_| {
                let (go_tx, go_rx) = mpsc::channel::<()>();
                let (queue, done_tx) = (queue.clone(), done_tx.clone());
                let worker = thread::spawn(move || {
                    while go_rx.recv().is_ok() {
                        loop {
                            match queue.pop() {
                                Some(SENTINEL) => break,
                                Some(item) => {
                                    black_box(item);
                                }
                                None => spin_loop(),
                            }
                        }
                        done_tx
                            .send(())
                            .expect("the benchmark waits for every consumer");
                    }
                });
                (go_tx, worker)
            })
            .unzip();
        Self {
            queue,
            go,
            done,
            workers,
        }
    }

    fn batch(&self, items: u64) -> Duration {
        let start = Instant::now();
        for go in &self.go {
            go.send(()).expect("consumer thread is alive");
        }
        for item in 0..items {
            spin_push(&*self.queue, item);
        }
        for _ in &self.go {
            spin_push(&*self.queue, SENTINEL);
        }
        for _ in &self.go {
            self.done.recv().expect("consumer thread is alive");
        }
        start.elapsed()
    }
}

impl<Q: SpinQueue> Drop for SpinStream<Q> {
    fn drop(&mut self) {
        self.go.clear();
        for worker in self.workers.drain(..) {
            worker.join().expect("consumer thread panicked");
        }
    }
}

fn bench_spin<Q: SpinQueue>(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: &str,
    consumers: usize,
) {
    let stream = SpinStream::<Q>::new(consumers);
    group.bench_function(id, |b| b.iter_custom(|items| stream.batch(items)));
}

fn ring_streaming(c: &mut Criterion) {
    for (name, consumers) in [("ring_spsc", 1), ("ring_1p3c", 3)] {
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(1));
        bench_spin::<Ring<u64>>(&mut group, "gudp_ring", consumers);
        bench_spin::<ArrayQueue<u64>>(&mut group, "array_queue", consumers);
        group.finish();
    }
}

/// The producer (the caller) and three persistent consumers blocked in `recv`. A batch is
/// started by its first item; consumers acknowledge its sentinel and go back to `recv`.
struct InboxStream {
    inbox: Inbox<u64>,
    done: mpsc::Receiver<()>,
    workers: Vec<JoinHandle<()>>,
}

impl InboxStream {
    const CONSUMERS: usize = 3;

    fn new() -> Self {
        let inbox = Inbox::new(CAPACITY);
        let (done_tx, done) = mpsc::channel();
        let workers = (0..Self::CONSUMERS)
            .map(|_| {
                let (inbox, done_tx) = (inbox.clone(), done_tx.clone());
                thread::spawn(move || {
                    // `recv` fails only once the benchmark finishes the inbox.
                    while let Ok(item) = inbox.recv() {
                        if item == SENTINEL {
                            done_tx
                                .send(())
                                .expect("the benchmark waits for every consumer");
                        } else {
                            black_box(item);
                        }
                    }
                })
            })
            .collect();
        Self {
            inbox,
            done,
            workers,
        }
    }

    /// Pushes with retry: on a full inbox the producer gives its core to the consumers (only
    /// two cores for four threads) instead of spinning against them.
    fn push(&self, item: u64) {
        let mut item = item;
        while let Err(back) = self.inbox.push(item) {
            item = back;
            thread::yield_now();
        }
    }

    fn batch(&self, items: u64) -> Duration {
        let start = Instant::now();
        for item in 0..items {
            self.push(item);
        }
        for _ in 0..Self::CONSUMERS {
            self.push(SENTINEL);
        }
        for _ in 0..Self::CONSUMERS {
            self.done.recv().expect("consumer thread is alive");
        }
        start.elapsed()
    }
}

impl Drop for InboxStream {
    fn drop(&mut self) {
        self.inbox.finish(CloseReason::Closed);
        for worker in self.workers.drain(..) {
            worker.join().expect("consumer thread panicked");
        }
    }
}

/// Ping-pong with one item in flight: the caller pushes into `ping` and blocks on `pong`; an
/// echo thread blocks on `ping` and pushes into `pong`. Each round trip is two hand-offs to a
/// sleeping consumer.
struct HandOff {
    ping: Inbox<u64>,
    pong: Inbox<u64>,
    echo: Option<JoinHandle<()>>,
}

impl HandOff {
    fn new() -> Self {
        let (ping, pong) = (Inbox::new(CAPACITY), Inbox::new(CAPACITY));
        let echo = {
            let (ping, pong) = (ping.clone(), pong.clone());
            thread::spawn(move || {
                while let Ok(item) = ping.recv() {
                    pong.push(item).expect("one item in flight always fits");
                }
            })
        };
        Self {
            ping,
            pong,
            echo: Some(echo),
        }
    }

    fn batch(&self, round_trips: u64) -> Duration {
        let start = Instant::now();
        for item in 0..round_trips {
            self.ping
                .push(item)
                .expect("one item in flight always fits");
            let back = self.pong.recv().expect("the echo thread is alive");
            assert_eq!(back, item, "the echo thread returned another item");
        }
        start.elapsed()
    }
}

impl Drop for HandOff {
    fn drop(&mut self) {
        self.ping.finish(CloseReason::Closed);
        if let Some(echo) = self.echo.take() {
            echo.join().expect("echo thread panicked");
        }
    }
}

fn inbox(c: &mut Criterion) {
    let mut group = c.benchmark_group("inbox_stream");
    group.throughput(Throughput::Elements(1));
    let stream = InboxStream::new();
    group.bench_function(IMPLEMENTATION, |b| {
        b.iter_custom(|items| stream.batch(items))
    });
    drop(stream);
    group.finish();

    let mut group = c.benchmark_group("inbox_handoff");
    group.throughput(Throughput::Elements(1));
    let hand_off = HandOff::new();
    group.bench_function(IMPLEMENTATION, |b| {
        b.iter_custom(|round_trips| hand_off.batch(round_trips))
    });
    drop(hand_off);
    group.finish();
}

criterion_group! {
    name = benches;
    // Modest, so the whole file runs in a few minutes; pass criterion flags to change them.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(20);
    targets = ring_streaming, inbox
}
criterion_main!(benches);
