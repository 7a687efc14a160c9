//! Unit tests of the ring, and the examples that were its rustdoc before it became internal.

use super::*;
use std::sync::atomic::AtomicUsize as StdAtomicUsize;
use std::sync::Arc;

#[test]
fn fifo_and_wraps_many_laps() {
    for capacity in [1, 2, 3, 5, 8] {
        let ring = Ring::new(capacity);
        let mut next_in = 0;
        let mut next_out = 0;
        for round in 0..100 {
            let burst = round % (capacity + 1);
            for _ in 0..burst {
                if ring.try_push(next_in).is_ok() {
                    next_in += 1;
                }
            }
            assert!(ring.len() <= capacity);
            while let Some(value) = ring.try_pop() {
                assert_eq!(value, next_out);
                next_out += 1;
            }
            assert!(ring.is_empty());
        }
        assert_eq!(next_in, next_out);
    }
}

#[test]
fn len_counts_to_full() {
    let ring = Ring::new(3);
    for expected in 0..3 {
        assert_eq!(ring.len(), expected);
        ring.try_push(expected).unwrap();
    }
    assert_eq!(ring.len(), 3);
    assert_eq!(ring.try_push(9), Err(9));
    ring.try_pop();
    ring.try_push(3).unwrap();
    assert_eq!(ring.len(), 3);
}

#[test]
fn retreat_inverts_advance_across_laps() {
    for capacity in [1, 2, 3, 5, 8] {
        let ring = Ring::<u8>::new(capacity);
        let mut position = 0;
        for _ in 0..4 * capacity {
            let next = ring.advance(position);
            assert_eq!(ring.retreat(next), position, "capacity {capacity}");
            position = next;
        }
    }
}

/// A claimed slot whose producer has not yet published it is not counted by `len`, so
/// `len() > 0` always means the next `pop_ready` finds an item (with one producer).
#[test]
fn len_skips_a_claimed_unpublished_slot() {
    for capacity in [1, 3] {
        let ring = Ring::new(capacity);
        for lap in 0..3 {
            // Each round leaves head and tail one lap further; claim as a producer does.
            let position = ring.tail.load(Ordering::SeqCst);
            ring.tail.store(ring.advance(position), Ordering::SeqCst);
            assert_eq!(ring.len(), 0, "capacity {capacity}, lap {lap}");
            assert!(ring.is_empty());
            assert_eq!(ring.pop_ready(), None);
            // Publish it, as the producer would.
            let slot = ring.slot(position);
            // SAFETY: we claimed the position above and nobody else touches this ring.
            slot.value.with_mut(|cell| unsafe { (*cell).write(lap) });
            slot.stamp.store(position + 1, Ordering::Release);
            assert_eq!(ring.len(), 1);
            assert_eq!(ring.pop_ready(), Some(lap));
            for item in 0..capacity - 1 {
                ring.try_push(item).unwrap();
                ring.try_pop().unwrap();
            }
        }
    }
}

#[test]
#[should_panic(expected = "above Ring::MAX_CAPACITY")]
fn absurd_capacity_is_rejected_with_a_message() {
    let _ = Ring::<u8>::new(usize::MAX);
}

struct Counted(Arc<StdAtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn leftover_items_are_dropped_exactly_once() {
    let drops = Arc::new(StdAtomicUsize::new(0));
    let ring = Ring::new(4);
    for _ in 0..6 {
        let _ = ring.try_push(Counted(drops.clone()));
    }
    // Two were refused and dropped by the caller.
    assert_eq!(drops.load(std::sync::atomic::Ordering::Relaxed), 2);
    drop(ring.try_pop());
    assert_eq!(drops.load(std::sync::atomic::Ordering::Relaxed), 3);
    drop(ring);
    assert_eq!(drops.load(std::sync::atomic::Ordering::Relaxed), 6);
}

#[test]
fn concurrent_mpmc_delivers_each_item_once() {
    const PER_PRODUCER: usize = 20_000;
    let ring = Arc::new(Ring::new(7));
    let received = Arc::new(StdAtomicUsize::new(0));
    let sum = Arc::new(StdAtomicUsize::new(0));
    std::thread::scope(|scope| {
        for producer in 0..2 {
            let ring = &ring;
            scope.spawn(move || {
                for i in 0..PER_PRODUCER {
                    let mut item = producer * PER_PRODUCER + i;
                    while let Err(back) = ring.try_push(item) {
                        item = back;
                        std::thread::yield_now();
                    }
                }
            });
        }
        for _ in 0..2 {
            let (ring, received, sum) = (&ring, &received, &sum);
            scope.spawn(move || {
                use std::sync::atomic::Ordering::Relaxed;
                while received.load(Relaxed) < 2 * PER_PRODUCER {
                    match ring.try_pop() {
                        Some(item) => {
                            sum.fetch_add(item, Relaxed);
                            received.fetch_add(1, Relaxed);
                        }
                        None => std::thread::yield_now(),
                    }
                }
            });
        }
    });
    let n = 2 * PER_PRODUCER;
    assert_eq!(
        sum.load(std::sync::atomic::Ordering::Relaxed),
        n * (n - 1) / 2
    );
}

#[test]
fn example_module() {
    use crate::core::ring::Ring;
    use std::sync::Arc;
    let ring = Arc::new(Ring::new(64));
    let producers: Vec<_> = (0..4)
        .map(|p| {
            let ring = ring.clone();
            std::thread::spawn(move || (0..10).for_each(|i| ring.try_push(p * 10 + i).unwrap()))
        })
        .collect();
    producers.into_iter().for_each(|p| p.join().unwrap());
    let mut all: Vec<i32> = std::iter::from_fn(|| ring.try_pop()).collect();
    all.sort();
    assert_eq!(all, (0..40).collect::<Vec<_>>());
}

#[test]
fn example_ring() {
    use crate::core::ring::Ring;
    let ring = Ring::new(2);
    assert_eq!(ring.try_push("a"), Ok(()));
    assert_eq!(ring.try_push("b"), Ok(()));
    assert_eq!(ring.try_push("c"), Err("c")); // full: the item comes back
    assert_eq!(ring.try_pop(), Some("a"));
    assert_eq!(ring.len(), 1);
}

#[test]
fn example_max_capacity() {
    use crate::core::ring::Ring;
    const { assert!(Ring::<u8>::MAX_CAPACITY >= 1 << 24) }; // every capacity DaemonConfig allows
}

#[test]
fn example_new() {
    let ring: crate::core::ring::Ring<u32> = crate::core::ring::Ring::new(1000);
    assert_eq!(ring.capacity(), 1000);
}

#[test]
#[should_panic]
fn example_new_2() {
    // Rejected before anything is computed from it: `capacity + 1` would overflow.
    let _ = crate::core::ring::Ring::<u8>::new(usize::MAX);
}

#[test]
fn example_capacity() {
    let ring: crate::core::ring::Ring<u8> = crate::core::ring::Ring::new(3); // any size, not only powers of two
    assert_eq!(ring.capacity(), 3);
}

#[test]
fn example_try_push() {
    let ring = crate::core::ring::Ring::new(1);
    assert_eq!(ring.try_push(1), Ok(()));
    assert_eq!(ring.try_push(2), Err(2)); // full: handed back, not dropped
}

#[test]
fn example_try_pop() {
    let ring = crate::core::ring::Ring::new(4);
    ring.try_push('a').unwrap();
    ring.try_push('b').unwrap();
    assert_eq!(ring.try_pop(), Some('a')); // first in, first out
    assert_eq!(ring.try_pop(), Some('b'));
    assert_eq!(ring.try_pop(), None);
}

#[test]
fn example_pop_ready() {
    let ring = crate::core::ring::Ring::new(4);
    assert_eq!(ring.pop_ready(), None);
    ring.try_push(1).unwrap();
    assert_eq!(ring.pop_ready(), Some(1));
}

#[test]
fn example_has_ready() {
    let ring = crate::core::ring::Ring::new(4);
    assert!(!ring.has_ready());
    ring.try_push(1).unwrap();
    assert!(ring.has_ready());
    ring.pop_ready().unwrap();
    assert!(!ring.has_ready());
}

#[test]
fn example_len() {
    let ring = crate::core::ring::Ring::new(4);
    for i in 0..3 {
        ring.try_push(i).unwrap();
    }
    assert_eq!(ring.len(), 3);
    ring.try_pop();
    assert_eq!(ring.len(), 2);
}

#[test]
fn example_is_empty() {
    let ring = crate::core::ring::Ring::new(2);
    assert!(ring.is_empty());
    ring.try_push(()).unwrap();
    assert!(!ring.is_empty());
}
