//! Stress tests for the inbox, run against whichever implementation the build selects
//! (`cargo test` for the lock-free one, `cargo test --features naive-mutex` for the mutex one).
//!
//! loom proves the core on tiny models; these runs check the same claims at scale on real
//! threads: every item received exactly once, nobody left asleep next to an item, `finish`
//! wakes everyone after the drain, timeouts keep time. A hang is turned into a failure by a
//! watchdog, so a lost wakeup fails CI instead of stalling it.

#![cfg(not(loom))]

use loom_tests::assert_each_seen_once;

use gudp::internals::inbox::{Inbox, RecvTimeoutError, TryRecvError};
use gudp::internals::status::CloseReason;
use gudp::IMPLEMENTATION;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// Far above what any scenario needs in debug mode on a loaded 2-core machine; only a
/// consumer asleep next to an item (or a deadlock) gets near it.
const WATCHDOG: Duration = Duration::from_secs(60);

/// Runs `scenario` on its own thread and fails the test if it does not end within `limit`.
/// `progress` is read for the failure message: how far the scenario got before it stalled.
fn with_watchdog<F>(name: &str, limit: Duration, progress: Arc<AtomicUsize>, scenario: F)
where
    F: FnOnce() + Send + 'static,
{
    let (done_tx, done_rx) = mpsc::channel();
    let runner = thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            scenario();
            // The receiver is gone only if the watchdog already fired; nothing to report then.
            let _ = done_tx.send(());
        })
        .expect("spawn the scenario thread");
    match done_rx.recv_timeout(limit) {
        Ok(()) => runner
            .join()
            .expect("scenario thread panicked after finishing"),
        Err(mpsc::RecvTimeoutError::Timeout) => panic!(
            "{name} ({IMPLEMENTATION}): no end after {limit:?} with progress {}: \
             deadlock or lost wakeup",
            progress.load(Ordering::Relaxed)
        ),
        // The sender was dropped without sending: the scenario panicked. Report its panic.
        Err(mpsc::RecvTimeoutError::Disconnected) => match runner.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the scenario ended without reporting"),
        },
    }
}

/// Pushes with retry: these tests check delivery, not the drop-on-full policy.
fn push_all(inbox: &Inbox<u32>, item: u32) {
    let mut item = item;
    while let Err(back) = inbox.push(item) {
        item = back;
        thread::yield_now();
    }
}

/// Checks that `received` (per consumer, in the order each got them) holds every item in
/// `0..total` exactly once, and that each consumer saw increasing items: one producer and a
/// FIFO inbox mean a consumer can never get an item older than one it already has.
fn assert_exactly_once(received: &[Vec<u32>], total: usize) {
    let mut seen = vec![0u8; total];
    for (consumer, items) in received.iter().enumerate() {
        for pair in items.windows(2) {
            assert!(
                pair[0] < pair[1],
                "consumer {consumer} got {} after {}: not FIFO",
                pair[1],
                pair[0]
            );
        }
        for &item in items {
            let slot = seen
                .get_mut(item as usize)
                .unwrap_or_else(|| panic!("item {item} was never pushed"));
            *slot += 1;
        }
    }
    assert_each_seen_once(&seen);
}

/// A consumer blocked in `recv` until the close: what it got, in order, and the reason.
fn recv_until_closed(inbox: &Inbox<u32>, counter: &AtomicUsize) -> (Vec<u32>, CloseReason) {
    let mut got = Vec::new();
    loop {
        match inbox.recv() {
            Ok(item) => {
                got.push(item);
                counter.fetch_add(1, Ordering::Relaxed);
            }
            Err(reason) => return (got, reason),
        }
    }
}

/// A small deterministic generator for jitter, so a failing run can be replayed by its seed.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

#[test]
fn one_producer_four_blocking_consumers_million_items() {
    const ITEMS: usize = 1_000_000;
    const CONSUMERS: usize = 4;
    let progress = Arc::new(AtomicUsize::new(0));
    let counter = progress.clone();
    with_watchdog("1p4c_million", WATCHDOG, progress, move || {
        let inbox = Inbox::new(1024);
        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|_| {
                let (inbox, counter) = (inbox.clone(), counter.clone());
                thread::spawn(move || recv_until_closed(&inbox, &counter))
            })
            .collect();
        for item in 0..ITEMS as u32 {
            push_all(&inbox, item);
        }
        assert!(inbox.finish(CloseReason::ClosedByPeer));
        let received: Vec<Vec<u32>> = consumers
            .into_iter()
            .map(|consumer| {
                let (got, reason) = consumer.join().expect("consumer panicked");
                assert_eq!(reason, CloseReason::ClosedByPeer);
                got
            })
            .collect();
        assert_exactly_once(&received, ITEMS);
        assert_eq!(
            inbox.try_recv(),
            Err(TryRecvError::Closed(CloseReason::ClosedByPeer))
        );
    });
}

/// How long a consumer of an empty inbox looks before it parks: `recv_timeout(ZERO)` runs
/// the whole path (the look before the first sleep, announcing itself, the re-check, the park)
/// and times out at once. The median of many tries, so one preemption does not skew it.
fn time_to_park(inbox: &Inbox<u32>) -> Duration {
    let mut samples: Vec<Duration> = (0..201)
        .map(|_| {
            let start = Instant::now();
            assert_eq!(
                inbox.recv_timeout(Duration::ZERO),
                Err(RecvTimeoutError::Timeout)
            );
            start.elapsed()
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

/// One item in flight: the producer pushes the next item just as the consumer that received
/// the previous one goes back to sleep. A consumer first looks for a while before it parks, so
/// an immediate push would be caught awake; instead each push waits a delay swept around the
/// measured time to park (`time_to_park`), landing pushes all around the moment the consumer
/// announces itself. In a stream a lost wakeup is healed by the next push (or by `finish`);
/// here nothing follows it, so a lost wakeup stalls the hand-off and fails the test.
#[test]
fn hand_off_one_item_in_flight_loses_no_wakeup() {
    const ITEMS: usize = 20_000;
    /// A hand-off takes microseconds; a consumer asleep next to the item never ends it.
    const ITEM_LIMIT: Duration = Duration::from_secs(10);
    /// Per round of consumers: on a loaded machine the time to park (its yields) grows, and
    /// a round stops early rather than run into the watchdog.
    const ROUND_BUDGET: Duration = Duration::from_secs(8);
    let progress = Arc::new(AtomicUsize::new(0));
    let received_count = progress.clone();
    with_watchdog("hand_off", WATCHDOG, progress, move || {
        let mut rng = XorShift(0xbb67_ae85_84ca_a73b);
        for consumers in [1, 2, 4] {
            let inbox = Inbox::new(4);
            let park = time_to_park(&inbox);
            let received_count = received_count.clone();
            received_count.store(0, Ordering::Relaxed);
            let handles: Vec<_> = (0..consumers)
                .map(|_| {
                    let (inbox, count) = (inbox.clone(), received_count.clone());
                    thread::spawn(move || recv_until_closed(&inbox, &count).0)
                })
                .collect();
            let round_start = Instant::now();
            let mut pushed = 0;
            for item in 0..ITEMS as u32 {
                if round_start.elapsed() > ROUND_BUDGET {
                    break;
                }
                pushed += 1;
                // Uniform in [park / 2, 3 park / 2): the consumer counts the previous item a
                // little before it starts looking, and its time to park varies.
                let delay = park.mul_f64(0.5 + rng.below(1000) as f64 / 1000.0);
                let landed = Instant::now();
                while landed.elapsed() < delay {
                    std::hint::spin_loop();
                }
                inbox.push(item).expect("one item in flight fits");
                let start = Instant::now();
                while received_count.load(Ordering::Acquire) <= item as usize {
                    assert!(
                        start.elapsed() < ITEM_LIMIT,
                        "{consumers} consumer(s): item {item} not received after \
                         {ITEM_LIMIT:?}, {} in the inbox: lost wakeup",
                        inbox.len()
                    );
                    std::hint::spin_loop();
                }
            }
            inbox.finish(CloseReason::Closed);
            let received: Vec<Vec<u32>> = handles
                .into_iter()
                .map(|consumer| consumer.join().expect("consumer panicked"))
                .collect();
            assert_exactly_once(&received, pushed);
            eprintln!(
                "hand-off ({IMPLEMENTATION}), {consumers} consumer(s): {pushed} items, \
                 time to park {park:?}"
            );
        }
    });
}

/// The producer finishes at a different point of a busy stream each round: early, mid-burst
/// with a full inbox, and after a pause in which every consumer went to sleep. Every consumer
/// must wake and report the reason, and everything pushed before `finish` must be received.
#[test]
fn finish_during_heavy_traffic_wakes_all_and_drains() {
    const ROUNDS: usize = 40;
    const CONSUMERS: usize = 4;
    let progress = Arc::new(AtomicUsize::new(0));
    let rounds_done = progress.clone();
    with_watchdog("finish_under_load", WATCHDOG, progress, move || {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for round in 0..ROUNDS {
            let reason = CloseReason::ALL[round % CloseReason::ALL.len()];
            let inbox = Inbox::new(1 + rng.below(256) as usize);
            let consumers: Vec<_> = (0..CONSUMERS)
                .map(|index| {
                    let inbox = inbox.clone();
                    thread::spawn(move || {
                        let mut got = Vec::new();
                        // One consumer polls with timeouts: it must report the reason too.
                        let result = loop {
                            let next = if index == 0 {
                                match inbox.recv_timeout(Duration::from_millis(1)) {
                                    Err(RecvTimeoutError::Closed(reason)) => Err(reason),
                                    Err(_) => continue, // timed out
                                    Ok(item) => Ok(item),
                                }
                            } else {
                                inbox.recv()
                            };
                            match next {
                                Ok(item) => got.push(item),
                                Err(reason) => break reason,
                            }
                        };
                        (got, result)
                    })
                })
                .collect();
            let pushed = match round % 3 {
                // Early: finish while consumers are still arriving.
                0 => rng.below(8) as u32,
                // Mid-burst: the inbox is typically full when `finish` lands.
                1 => 5_000 + rng.below(20_000) as u32,
                // After a pause: consumers are all parked when `finish` lands.
                _ => 1_000,
            };
            for item in 0..pushed {
                push_all(&inbox, item);
            }
            if round % 3 == 2 {
                while !inbox.is_empty() {
                    thread::yield_now();
                }
                thread::sleep(Duration::from_millis(5));
            }
            assert!(inbox.finish(reason));
            let received: Vec<Vec<u32>> = consumers
                .into_iter()
                .map(|consumer| {
                    let (got, result) = consumer.join().expect("consumer panicked");
                    assert_eq!(result, reason, "round {round}: wrong close reason");
                    got
                })
                .collect();
            let total: usize = received.iter().map(Vec::len).sum();
            assert_eq!(
                total, pushed as usize,
                "round {round}: pushed before finish"
            );
            assert_exactly_once(&received, pushed as usize);
            rounds_done.fetch_add(1, Ordering::Relaxed);
        }
    });
}

/// The drain rule at its narrowest: consumers poll (`try_recv`, `drain_into`) while the
/// producer pushes one item and finishes at once, so the close often lands between a poll that
/// found nothing and the status check after it. The item must still be received.
#[test]
fn drain_rule_item_pushed_just_before_finish() {
    const ROUNDS: usize = 3_000;
    let progress = Arc::new(AtomicUsize::new(0));
    let rounds_done = progress.clone();
    with_watchdog("drain_rule", WATCHDOG, progress, move || {
        let mut rng = XorShift(0xd1b5_4a32_d192_ed03);
        for round in 0..ROUNDS {
            let inbox = Inbox::new(2);
            // Push only once both pollers are polling, so the close lands among their polls.
            let polling = Arc::new(Barrier::new(3));
            let pollers: Vec<_> = (0..2)
                .map(|index| {
                    let (inbox, polling) = (inbox.clone(), polling.clone());
                    thread::spawn(move || {
                        let mut got = Vec::new();
                        polling.wait();
                        loop {
                            let closed = if index == 0 {
                                match inbox.try_recv() {
                                    Ok(item) => {
                                        got.push(item);
                                        None
                                    }
                                    Err(TryRecvError::Closed(reason)) => Some(reason),
                                    Err(_) => None, // empty
                                }
                            } else {
                                inbox.drain_into(&mut got, 4).err()
                            };
                            if let Some(reason) = closed {
                                return (got, reason);
                            }
                            std::hint::spin_loop();
                        }
                    })
                })
                .collect();
            polling.wait();
            for _ in 0..rng.below(200) {
                std::hint::spin_loop();
            }
            inbox.push(round as u32).expect("the inbox has room");
            inbox.finish(CloseReason::Closed);
            let mut total = 0;
            for poller in pollers {
                let (got, reason) = poller.join().expect("poller panicked");
                assert_eq!(reason, CloseReason::Closed);
                assert!(got.iter().all(|&item| item == round as u32));
                total += got.len();
            }
            assert_eq!(total, 1, "round {round}: the item pushed before finish");
            rounds_done.fetch_add(1, Ordering::Relaxed);
        }
    });
}

#[test]
fn recv_timeout_keeps_time() {
    const TIMEOUT: Duration = Duration::from_millis(50);
    // Loose: a loaded CI machine may oversleep, but not by seconds.
    const LATE: Duration = Duration::from_secs(2);
    let progress = Arc::new(AtomicUsize::new(0));
    let steps = progress.clone();
    with_watchdog("recv_timeout", WATCHDOG, progress, move || {
        let inbox = Inbox::<u32>::new(4);

        // Nothing comes: Timeout, not before the deadline and not absurdly after it.
        for _ in 0..3 {
            let start = Instant::now();
            assert_eq!(inbox.recv_timeout(TIMEOUT), Err(RecvTimeoutError::Timeout));
            let waited = start.elapsed();
            assert!(waited >= TIMEOUT, "timed out early, after {waited:?}");
            assert!(waited < LATE, "timed out late, after {waited:?}");
            let deadline = Instant::now() + TIMEOUT;
            assert_eq!(
                inbox.recv_deadline(deadline),
                Err(RecvTimeoutError::Timeout)
            );
            let now = Instant::now();
            assert!(
                now >= deadline,
                "recv_deadline returned before its deadline"
            );
            assert!(now - deadline < LATE, "recv_deadline returned late");
            steps.fetch_add(1, Ordering::Relaxed);
        }

        // Several consumers time out together.
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let inbox = inbox.clone();
                thread::spawn(move || {
                    let start = Instant::now();
                    (inbox.recv_timeout(TIMEOUT), start.elapsed())
                })
            })
            .collect();
        for waiter in waiters {
            let (result, waited) = waiter.join().expect("waiter panicked");
            assert_eq!(result, Err(RecvTimeoutError::Timeout));
            assert!(waited >= TIMEOUT && waited < LATE, "waited {waited:?}");
        }

        // An item pushed during a long wait is returned promptly, not at the deadline.
        for item in 0..3 {
            let (pushed_tx, pushed_rx) = mpsc::channel();
            let producer = {
                let inbox = inbox.clone();
                thread::spawn(move || {
                    thread::sleep(TIMEOUT);
                    let at = Instant::now();
                    inbox.push(item).expect("the inbox has room");
                    pushed_tx.send(at).expect("the test waits for this");
                })
            };
            let result = inbox.recv_timeout(Duration::from_secs(30));
            let returned = Instant::now();
            assert_eq!(result, Ok(item));
            let pushed_at = pushed_rx.recv().expect("the producer reports its push");
            let latency = returned.saturating_duration_since(pushed_at);
            assert!(latency < LATE, "took {latency:?} to return a pushed item");
            producer.join().expect("producer panicked");
            steps.fetch_add(1, Ordering::Relaxed);
        }

        // A finished inbox answers at once, without waiting for the timeout.
        inbox.finish(CloseReason::Closed);
        let start = Instant::now();
        assert_eq!(
            inbox.recv_timeout(Duration::from_secs(30)),
            Err(RecvTimeoutError::Closed(CloseReason::Closed))
        );
        assert!(start.elapsed() < LATE);
    });
}

/// How a short-lived consumer takes its items.
#[derive(Clone, Copy)]
enum Take {
    Recv,
    RecvTimeout(Duration),
    TryRecv,
}

/// A short-lived consumer: takes up to `count` items `how`, and leaves at the first miss (a
/// timeout, an empty inbox, or the close).
fn take_and_leave(inbox: &Inbox<u32>, received: &AtomicUsize, how: Take, count: usize) -> Vec<u32> {
    let mut got = Vec::new();
    for _ in 0..count {
        let next = match how {
            Take::Recv => inbox.recv().ok(),
            Take::RecvTimeout(wait) => inbox.recv_timeout(wait).ok(),
            Take::TryRecv => inbox.try_recv().ok(),
        };
        let Some(item) = next else { break };
        got.push(item);
        received.fetch_add(1, Ordering::Relaxed);
    }
    got
}

/// Thousands of consumers that each take a few items (by `recv`, `recv_timeout` or
/// `try_recv`) and leave, next to two long-lived `recv` consumers. Each round the producer
/// pushes a small burst at about the moment the round's short timeouts expire, then waits for
/// the burst to be received: if a consumer that left on a timeout had swallowed the wake the
/// long-lived consumers needed, they would sleep next to the item and the round would stall.
#[test]
fn many_short_lived_consumers_lose_no_item_and_no_wake() {
    const ROUNDS: usize = 700;
    const SHORT_PER_ROUND: usize = 4;
    /// A stalled round means a sleeper next to an item; a healthy one takes microseconds.
    const ROUND_LIMIT: Duration = Duration::from_secs(10);
    let progress = Arc::new(AtomicUsize::new(0));
    let received_count = progress.clone();
    with_watchdog("short_lived", WATCHDOG, progress, move || {
        let inbox = Inbox::new(16);
        let long_lived: Vec<_> = (0..2)
            .map(|_| {
                let (inbox, count) = (inbox.clone(), received_count.clone());
                thread::spawn(move || recv_until_closed(&inbox, &count).0)
            })
            .collect();

        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let mut short_lived = Vec::new();
        let mut received = Vec::new();
        let mut pushed = 0u32;
        for round in 0..ROUNDS {
            for _ in 0..SHORT_PER_ROUND {
                let how = match rng.below(3) {
                    0 => Take::Recv,
                    1 => Take::RecvTimeout(Duration::from_micros(rng.below(400))),
                    _ => Take::TryRecv,
                };
                let count = 1 + rng.below(3) as usize;
                let (inbox, received_count) = (inbox.clone(), received_count.clone());
                short_lived.push(thread::spawn(move || {
                    take_and_leave(&inbox, &received_count, how, count)
                }));
            }
            thread::sleep(Duration::from_micros(rng.below(400)));
            for _ in 0..1 + rng.below(4) {
                push_all(&inbox, pushed);
                pushed += 1;
            }
            let start = Instant::now();
            while received_count.load(Ordering::Relaxed) < pushed as usize {
                assert!(
                    start.elapsed() < ROUND_LIMIT,
                    "round {round}: {} of {pushed} items received, {} waiting in the inbox: \
                     consumers asleep next to an item (lost wakeup)",
                    received_count.load(Ordering::Relaxed),
                    inbox.len()
                );
                thread::yield_now();
            }
            // Collect the consumers that have left; blocking ones may still be waiting.
            let (done, waiting): (Vec<_>, Vec<_>) =
                short_lived.into_iter().partition(|c| c.is_finished());
            short_lived = waiting;
            for consumer in done {
                received.push(consumer.join().expect("short-lived consumer panicked"));
            }
        }
        inbox.finish(CloseReason::Closed);
        for consumer in short_lived.into_iter().chain(long_lived) {
            received.push(consumer.join().expect("consumer panicked"));
        }
        assert_exactly_once(&received, pushed as usize);
    });
}

/// A game loop drains in batches once per frame while two blocking consumers share the inbox.
#[test]
fn drain_into_frame_loop_mixed_with_blocking_consumers() {
    const ITEMS: usize = 200_000;
    const BATCH: usize = 64;
    let progress = Arc::new(AtomicUsize::new(0));
    let counter = progress.clone();
    with_watchdog("drain_into_mixed", WATCHDOG, progress, move || {
        let inbox = Inbox::new(512);
        let frame_loop = {
            let (inbox, counter) = (inbox.clone(), counter.clone());
            thread::spawn(move || {
                let mut got = Vec::new();
                let mut frame = Vec::with_capacity(BATCH);
                let mut batches = 0usize;
                let reason = loop {
                    frame.clear();
                    match inbox.drain_into(&mut frame, BATCH) {
                        Ok(taken) => {
                            assert_eq!(taken, frame.len(), "drain_into miscounted");
                            assert!(taken <= BATCH, "drain_into took {taken} > {BATCH}");
                            counter.fetch_add(taken, Ordering::Relaxed);
                            got.extend_from_slice(&frame);
                            batches += usize::from(taken > 0);
                            // The rest of the frame.
                            thread::sleep(Duration::from_micros(50));
                        }
                        Err(reason) => break reason,
                    }
                };
                (got, reason, batches)
            })
        };
        let blocking: Vec<_> = (0..2)
            .map(|_| {
                let (inbox, counter) = (inbox.clone(), counter.clone());
                thread::spawn(move || recv_until_closed(&inbox, &counter))
            })
            .collect();
        for item in 0..ITEMS as u32 {
            push_all(&inbox, item);
        }
        inbox.finish(CloseReason::DaemonStopped);
        let (frame_got, frame_reason, batches) = frame_loop.join().expect("frame loop panicked");
        assert_eq!(frame_reason, CloseReason::DaemonStopped);
        let mut received = vec![frame_got];
        for consumer in blocking {
            let (got, reason) = consumer.join().expect("blocking consumer panicked");
            assert_eq!(reason, CloseReason::DaemonStopped);
            received.push(got);
        }
        eprintln!(
            "drain_into ({IMPLEMENTATION}): frame loop took {} items in {batches} batches, \
             blocking consumers {} and {}",
            received[0].len(),
            received[1].len(),
            received[2].len()
        );
        assert_exactly_once(&received, ITEMS);
    });
}

/// One producer, capacity 1, a consumer that trusts `len` and `is_empty`: whenever it sees an
/// item counted, its own next `try_recv` must return one. (It used to answer `Empty` in about
/// one check in ten: `len` counted a slot the producer had claimed but not yet published.)
#[test]
#[allow(clippy::len_zero)] // `len() > 0` is one of the two checks under test
fn len_and_is_empty_agree_with_try_recv_with_one_producer() {
    const ITEMS: u32 = 200_000;
    /// Enough for thousands of checks on a loaded machine, well inside the watchdog.
    const BUDGET: Duration = Duration::from_secs(10);
    let progress = Arc::new(AtomicUsize::new(0));
    let received = progress.clone();
    with_watchdog("len_agrees", WATCHDOG, progress, move || {
        let inbox = Inbox::new(1);
        let producer = {
            let inbox = inbox.clone();
            thread::spawn(move || {
                let start = Instant::now();
                for item in 0..ITEMS {
                    if start.elapsed() > BUDGET {
                        return item;
                    }
                    push_all(&inbox, item);
                }
                ITEMS
            })
        };
        let (mut next, mut disagreements) = (0, 0u32);
        while next < ITEMS && !(producer.is_finished() && inbox.is_empty()) {
            let counted = if next % 2 == 0 {
                !inbox.is_empty()
            } else {
                inbox.len() > 0
            };
            if !counted {
                // Look as often as we can: the window is the producer's few instructions
                // between claim and publish.
                std::hint::spin_loop();
                continue;
            }
            match inbox.try_recv() {
                Ok(item) => {
                    assert_eq!(item, next, "FIFO");
                    next += 1;
                    received.store(next as usize, Ordering::Relaxed);
                }
                Err(_) => disagreements += 1,
            }
        }
        let pushed = producer.join().expect("producer panicked");
        assert_eq!(next, pushed, "every item pushed was received");
        assert_eq!(
            disagreements, 0,
            "{disagreements} times in {pushed} items, len() > 0 or !is_empty() was followed \
             by an empty try_recv"
        );
    });
}

/// A caller's `Extend` that records items and, for each, what the inbox said its length was
/// (a call back into the inbox, if it has the inbox); it panics when given `panic_at`.
struct Nosy<'a> {
    inbox: Option<&'a Inbox<u32>>,
    got: Vec<(u32, usize)>,
    panic_at: Option<u32>,
}

impl Extend<u32> for Nosy<'_> {
    fn extend<I: IntoIterator<Item = u32>>(&mut self, items: I) {
        for item in items {
            assert_ne!(Some(item), self.panic_at, "the caller's Extend panics");
            self.got
                .push((item, self.inbox.map_or(0, |inbox| inbox.len())));
        }
    }
}

/// `drain_into` hands items to the caller's `Extend` with no lock held, so the `Extend` may
/// call back into the inbox (in the naive mode it deadlocked on the inbox lock).
#[test]
fn drain_into_extend_may_call_back_into_the_inbox() {
    let progress = Arc::new(AtomicUsize::new(0));
    with_watchdog(
        "drain_into_callback",
        Duration::from_secs(10),
        progress,
        move || {
            let inbox = Inbox::new(64);
            for item in 0..40 {
                inbox.push(item).unwrap();
            }
            let mut nosy = Nosy {
                inbox: Some(&inbox),
                got: Vec::new(),
                panic_at: None,
            };
            assert_eq!(inbox.drain_into(&mut nosy, 30), Ok(30));
            let items: Vec<u32> = nosy.got.iter().map(|&(item, _)| item).collect();
            assert_eq!(items, (0..30).collect::<Vec<_>>());
            // Each length was read after its item left: at most the items behind it.
            assert!(nosy
                .got
                .iter()
                .all(|&(item, len)| len <= (40 - 1 - item) as usize));
        },
    );
}

/// A panicking `Extend` loses only the item it was being given: the rest stay in the inbox,
/// in order (in the naive mode the whole batch taken under the lock was lost).
#[test]
fn drain_into_panicking_extend_loses_only_its_item() {
    let inbox = Inbox::new(64);
    for item in 0..10 {
        inbox.push(item).unwrap();
    }
    // Panics on its 4th item: 0..3 were handed over, 3 was being handed over.
    let mut panicky = Nosy {
        inbox: None,
        got: Vec::new(),
        panic_at: Some(3),
    };
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        inbox.drain_into(&mut panicky, 10)
    }));
    assert!(caught.is_err(), "the Extend panicked");
    let handed: Vec<u32> = panicky.got.iter().map(|&(item, _)| item).collect();
    assert_eq!(handed, [0, 1, 2]);
    let mut rest = Vec::new();
    assert_eq!(
        inbox.drain_into(&mut rest, 64),
        Ok(6),
        "items not handed over were lost"
    );
    assert_eq!(rest, (4..10).collect::<Vec<_>>());
    inbox.push(99).unwrap();
    assert_eq!(inbox.try_recv(), Ok(99));
}

/// `drain_into(out, 0)` takes nothing, and on a finished inbox reports the close reason once
/// nothing is left, like any other `max`.
#[test]
fn drain_into_zero_reports_the_close_once_drained() {
    let inbox = Inbox::new(4);
    let mut out = Vec::new();
    assert_eq!(inbox.drain_into(&mut out, 0), Ok(0));
    inbox.push(1).unwrap();
    inbox.finish(CloseReason::TimedOut);
    assert_eq!(
        inbox.drain_into(&mut out, 0),
        Ok(0),
        "an item is still there"
    );
    assert_eq!(inbox.len(), 1, "max 0 takes nothing");
    assert_eq!(inbox.drain_into(&mut out, 0), Ok(0));
    assert_eq!(inbox.drain_into(&mut out, 8), Ok(1));
    assert_eq!(inbox.drain_into(&mut out, 0), Err(CloseReason::TimedOut));
    assert_eq!(inbox.drain_into(&mut out, 8), Err(CloseReason::TimedOut));
    assert_eq!(out, [1]);
}

/// The producer pushes, finishes, and keeps trying to push (as a daemon that finished a
/// connection on its own thread might): every push after `finish` is refused, and consumers
/// that were told the close reason never find an item after it.
#[test]
fn nothing_follows_the_close_reason_when_the_producer_finishes() {
    const ROUNDS: usize = 500;
    let progress = Arc::new(AtomicUsize::new(0));
    let rounds_done = progress.clone();
    with_watchdog("nothing_after_close", WATCHDOG, progress, move || {
        let mut rng = XorShift(0x6a09_e667_f3bc_c909);
        for round in 0..ROUNDS {
            let inbox = Inbox::new(1 + rng.below(8) as usize);
            let pushed = rng.below(64) as u32;
            let consumers: Vec<_> = (0..2)
                .map(|index| {
                    let inbox = inbox.clone();
                    thread::spawn(move || {
                        let mut got = Vec::new();
                        let reason = loop {
                            let next = if index == 0 {
                                inbox.recv().map_err(Some)
                            } else {
                                inbox.try_recv().map_err(|error| match error {
                                    TryRecvError::Closed(reason) => Some(reason),
                                    _ => None, // empty
                                })
                            };
                            match next {
                                Ok(item) => got.push(item),
                                Err(Some(reason)) => break reason,
                                Err(None) => std::hint::spin_loop(),
                            }
                        };
                        // Told the reason: from now on nothing may be received.
                        for _ in 0..200 {
                            if let Ok(item) = inbox.try_recv() {
                                panic!("item {item} received after the close ({reason})");
                            }
                            std::hint::spin_loop();
                        }
                        got
                    })
                })
                .collect();
            for item in 0..pushed {
                push_all(&inbox, item);
            }
            inbox.finish(CloseReason::ClosedByPeer);
            for item in pushed..pushed + 50 {
                assert_eq!(
                    inbox.push(item),
                    Err(item),
                    "round {round}: a push after finish"
                );
                assert!(inbox.status().is_finished());
            }
            let received: Vec<Vec<u32>> = consumers
                .into_iter()
                .map(|c| c.join().expect("consumer panicked"))
                .collect();
            assert_exactly_once(&received, pushed as usize);
            rounds_done.fetch_add(1, Ordering::Relaxed);
        }
    });
}
