//! Proofs for `gudp::internals::ring::Ring`, the lock-free MPMC ring.
//!
//! loom runs each model under every interleaving (up to the preemption bound) and checks every
//! `UnsafeCell` access for a data race, so "no data race on any slot" is checked by every model
//! here, not asserted by hand.
#![cfg(loom)]

use gudp::internals::ring::Ring;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use loom_tests::check;

/// Pops until an item arrives, yielding to loom between tries (a retry loop that does not
/// yield would make loom explore the spin forever).
fn pop_one<T>(ring: &Ring<T>) -> T {
    loop {
        if let Some(item) = ring.try_pop() {
            return item;
        }
        thread::yield_now();
    }
}

fn push_one<T>(ring: &Ring<T>, mut item: T) {
    while let Err(back) = ring.try_push(item) {
        item = back;
        thread::yield_now();
    }
}

/// **Property:** one producer pushes 0, 1, 2 into a ring of capacity 2 while one consumer pops
/// three times: the consumer gets exactly 0, 1, 2 in that order, across a wrap (lap change).
///
/// **Why it holds:** a producer writes a slot only after its stamp says the consumer of the
/// previous lap has emptied it (Acquire on the stamp, Release by the consumer), and a consumer
/// reads only after the stamp says the value was published (Acquire on the stamp, Release by
/// the producer). Positions are handed out in order by the CAS on head and tail, so items leave
/// in the order they entered.
#[test]
fn spsc_fifo_across_a_wrap() {
    check("ring::spsc_fifo_across_a_wrap", 3, || {
        let ring = Arc::new(Ring::new(2));
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || (0..3).for_each(|i| push_one(&ring, i)))
        };
        let received: Vec<i32> = (0..3).map(|_| pop_one(&ring)).collect();
        producer.join().unwrap();
        assert_eq!(received, [0, 1, 2]);
        assert_eq!(ring.try_pop(), None);
    });
}

/// Pops whatever is left once every thread has been joined.
fn drain<T>(ring: &Ring<T>) -> Vec<T> {
    std::iter::from_fn(|| ring.try_pop()).collect()
}

/// **Property:** two producers push one item each while two consumers pop once each (a pop
/// racing the pushes may find the ring empty); whatever they did not get is drained at the
/// end. Every item comes out exactly once. One consumer uses `try_pop` (which waits for a
/// producer that has claimed but not published its slot), the other `pop_ready` (which does
/// not wait): both paths race each other and the producers. Two threads both spinning on the
/// same unpublished slot would be an unbounded model for loom, which explores every order
/// of their yields; one spinner covers the waiting path.
///
/// **Why it holds:** each position is claimed by exactly one successful CAS, and a slot's
/// stamp is advanced only by the one thread that owns it, so no item is handed out twice and
/// none is skipped. A consumer that finds a claimed but unpublished slot waits for its
/// producer instead of reporting "empty" and moving on, so it cannot overtake that item.
#[test]
fn mpmc_each_item_exactly_once() {
    check("ring::mpmc_each_item_exactly_once", 3, || {
        let ring = Arc::new(Ring::new(2));
        let producers: Vec<_> = (0..2)
            .map(|i| {
                let ring = ring.clone();
                thread::spawn(move || ring.try_push(i).unwrap())
            })
            .collect();
        let consumers = [
            {
                let ring = ring.clone();
                thread::spawn(move || ring.try_pop())
            },
            {
                let ring = ring.clone();
                thread::spawn(move || ring.pop_ready())
            },
        ];
        producers.into_iter().for_each(|p| p.join().unwrap());
        let mut all: Vec<i32> = consumers
            .into_iter()
            .filter_map(|c| c.join().unwrap())
            .collect();
        all.extend(drain(&ring));
        all.sort();
        assert_eq!(all, [0, 1]);
    });
}

/// **Property:** per-producer FIFO with two producers: the items of each producer come out in
/// the order that producer pushed them, however the two interleave with each other and with
/// a consumer.
///
/// **Why it holds:** a producer's second push claims a later position than its first (it
/// reads `tail` after its own successful CAS), and consumers take positions in order.
#[test]
fn per_producer_fifo() {
    check("ring::per_producer_fifo", 3, || {
        let ring = Arc::new(Ring::new(4));
        let other = {
            let ring = ring.clone();
            thread::spawn(move || (10..12).for_each(|i| ring.try_push(i).unwrap()))
        };
        let consumer = {
            let ring = ring.clone();
            thread::spawn(move || [ring.try_pop(), ring.try_pop()])
        };
        (0..2).for_each(|i| ring.try_push(i).unwrap());
        other.join().unwrap();
        let mut received: Vec<i32> = consumer.join().unwrap().into_iter().flatten().collect();
        received.extend(drain(&ring));
        let mine: Vec<_> = received.iter().filter(|&&i| i < 10).copied().collect();
        let theirs: Vec<_> = received.iter().filter(|&&i| i >= 10).copied().collect();
        assert_eq!(mine, [0, 1]);
        assert_eq!(theirs, [10, 11]);
    });
}

struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// **Property:** nothing leaks and nothing is dropped twice: of three items pushed (one pop
/// racing the pushes), every item is dropped exactly once — by its consumer, or by the ring's
/// own `Drop` for those still inside.
///
/// **Why it holds:** `Drop` walks exactly the positions from head to tail, which are the
/// published, unpopped ones; a popped value is moved out (`assume_init_read`) and its slot is
/// never read again until a producer overwrites it.
#[test]
fn leftovers_dropped_exactly_once() {
    check("ring::leftovers_dropped_exactly_once", 3, || {
        let drops = Arc::new(AtomicUsize::new(0));
        let ring = Arc::new(Ring::new(2));
        let consumer = {
            let ring = ring.clone();
            thread::spawn(move || drop(pop_one(&ring)))
        };
        for _ in 0..3 {
            push_one(&ring, Tracked(drops.clone()));
        }
        consumer.join().unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        drop(Arc::try_unwrap(ring).ok().expect("last handle"));
        assert_eq!(drops.load(Ordering::Relaxed), 3);
    });
}
