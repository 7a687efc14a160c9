//! A bounded, array-based, lock-free MPMC ring (Vyukov's per-slot stamp design).
//!
//! Every slot carries a *stamp* that says whose turn it is. A position is a `usize` that
//! encodes `(lap, index)`: the low bits are the slot index (`< capacity`), the high bits count
//! laps in units of `one_lap`, the smallest power of two above the capacity. Keeping index and
//! lap apart lets the capacity be any number without a division on the hot path.
//!
//! For the slot at index `i`, on lap `L` (position `p = L + i`):
//!
//! * stamp `== p`: empty, ready for the producer that claims position `p`;
//! * stamp `== p + 1`: full, ready for the consumer that claims position `p`;
//! * after that consumer takes the value, stamp becomes `p + one_lap`: ready for the producer
//!   of the next lap.
//!
//! A producer claims position `tail` by CAS on `tail`, writes the value, then publishes it with
//! a Release store of the stamp; a consumer claims `head` the same way and hands the slot back.
//! The CAS on the position makes each slot owned by exactly one thread between claim and
//! publish, which is why the `UnsafeCell` accesses never race.

use crate::core::sync::{fence, AtomicUsize, Backoff, CachePadded, Ordering, UnsafeCell};
use std::fmt;
use std::mem::MaybeUninit;

#[derive(Clone, Copy, PartialEq, Eq)]
enum WaitForWriter {
    /// Only `try_pop`, which only the models, stress tests and benches use.
    #[cfg(any(test, feature = "internals"))]
    Yes,
    No,
}

struct Slot<T> {
    stamp: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// A bounded lock-free multi-producer multi-consumer queue.
///
/// `try_push` hands the item back when the ring is full; `try_pop` returns `None` only when the
/// ring is truly empty: a slot a producer has claimed but not yet published is waited for (a
/// few instructions, the producer's copy of the value), never reported as empty. That matters
/// to the inbox: an empty answer may send a consumer to sleep.
pub struct Ring<T> {
    /// Next position to pop. Own cache line: consumers hammer it, producers rarely read it.
    head: CachePadded<AtomicUsize>,
    /// Next position to push. Own cache line: producers hammer it.
    tail: CachePadded<AtomicUsize>,
    slots: Box<[Slot<T>]>,
    capacity: usize,
    one_lap: usize,
}

// SAFETY: the ring moves `T` values between threads (so `T: Send` is required) and never hands
// out references to them, so `T: Sync` is not needed. Slot ownership is serialized by the
// position CASes and stamps, as the module documentation explains.
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: as above; shared access only moves values in and out under the stamp protocol.
unsafe impl<T: Send> Sync for Ring<T> {}

impl<T> Ring<T> {
    /// The largest capacity [`new`](Self::new) accepts: `2^(usize::BITS - 8)` (2^56 on 64-bit
    /// targets, 2^24 on 32-bit ones, where it equals `DaemonConfig`'s limit). A position keeps
    /// its index in the low bits and its lap in the rest; this bound leaves at least 7 lap bits,
    /// so a thread preempted between reading a position and its CAS would have to sleep
    /// through 128 laps of the whole ring before the CAS could succeed on a reused value.
    pub const MAX_CAPACITY: usize = 1 << (usize::BITS - 8);

    /// Creates a ring that holds up to `capacity` items.
    ///
    /// # Panics
    /// If `capacity` is zero or above [`MAX_CAPACITY`](Self::MAX_CAPACITY), with a message
    /// naming the capacity.
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "ring capacity must be at least 1");
        assert!(
            capacity <= Self::MAX_CAPACITY,
            "ring capacity {capacity} is above Ring::MAX_CAPACITY ({})",
            Self::MAX_CAPACITY
        );
        // Cannot overflow: capacity + 1 <= 2^(BITS - 8) + 1, whose next power of two fits.
        let one_lap = (capacity + 1).next_power_of_two();
        let slots = (0..capacity)
            .map(|index| Slot {
                stamp: AtomicUsize::new(index),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect();
        Self {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            slots,
            capacity,
            one_lap,
        }
    }

    /// The maximum number of items the ring holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The position after `position`: the next index, or index 0 of the next lap.
    #[inline]
    fn advance(&self, position: usize) -> usize {
        let index = position & (self.one_lap - 1);
        if index + 1 < self.capacity {
            position + 1
        } else {
            (position & !(self.one_lap - 1)).wrapping_add(self.one_lap)
        }
    }

    #[inline]
    fn slot(&self, position: usize) -> &Slot<T> {
        let index = position & (self.one_lap - 1);
        debug_assert!(index < self.capacity);
        // SAFETY: positions are only ever built by `advance` from 0, so their index bits are
        // always below `capacity`, the length of `slots`.
        unsafe { self.slots.get_unchecked(index) }
    }

    /// Pushes `value`, or returns it if the ring is full.
    pub fn try_push(&self, value: T) -> Result<(), T> {
        let mut backoff = Backoff::new();
        let mut tail = self.tail.load(Ordering::SeqCst);
        loop {
            let slot = self.slot(tail);
            // Acquire: pairs with the Release stamp store of the consumer that emptied the
            // slot, so its read of the old value happens before our write of the new one.
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == tail {
                // The slot is free on this lap: try to claim the position. SeqCst on success
                // keeps claims in one total order with the fenced full/empty checks below.
                match self.tail.compare_exchange_weak(
                    tail,
                    self.advance(tail),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: the CAS made us the only owner of this slot until we publish
                        // it; the stamp proved the previous value was taken out.
                        slot.value.with_mut(|cell| unsafe { (*cell).write(value) });
                        // Release: publishes the value to the consumer that Acquires the stamp.
                        slot.stamp.store(tail.wrapping_add(1), Ordering::Release);
                        return Ok(());
                    }
                    Err(actual) => {
                        tail = actual;
                        backoff.spin();
                    }
                }
            } else if stamp.wrapping_add(self.one_lap) == tail.wrapping_add(1) {
                // The slot still holds last lap's value. Full, unless a consumer already
                // claimed it: look at head. The fence orders this read after our stamp read
                // in the SeqCst order, so a head we read as unmoved really was unmoved then.
                fence(Ordering::SeqCst);
                let head = self.head.load(Ordering::SeqCst);
                if head.wrapping_add(self.one_lap) == tail {
                    return Err(value);
                }
                // A consumer claimed the slot and is moving the value out: wait for it.
                backoff.snooze();
                tail = self.tail.load(Ordering::SeqCst);
            } else {
                // Another producer got ahead of us: catch up.
                backoff.spin();
                tail = self.tail.load(Ordering::SeqCst);
            }
        }
    }

    /// Pops the oldest item, or returns `None` if the ring is empty. If the oldest position has
    /// been claimed by a producer that is still writing it, waits for that producer.
    #[cfg(any(test, feature = "internals"))]
    pub fn try_pop(&self) -> Option<T> {
        self.pop(WaitForWriter::Yes)
    }

    /// Pops the oldest item if it is ready; never waits on another thread. `None` means the
    /// ring is empty *or* its oldest item is still being written by its producer.
    ///
    /// This is the pop for a consumer that will sleep on `None` and be woken by the producer
    /// once it publishes (the inbox): sleeping on an item in flight is safe there because its
    /// producer notifies only after publishing, and a frame loop is never held up by a
    /// preempted producer.
    pub fn pop_ready(&self) -> Option<T> {
        self.pop(WaitForWriter::No)
    }

    /// Whether the oldest item is published and ready to pop (a snapshot).
    ///
    /// A consumer decides to sleep on this answer, so a stale `head` must not produce a false
    /// `false`: if the slot we look at was already consumed (its stamp moved a lap ahead), our
    /// `head` is behind and we catch up rather than report "not ready". The catch-up ends:
    /// the Acquire load that saw the consumer's stamp store also makes its earlier `head` CAS
    /// visible.
    // Used by the lock-free buffers (and the models, stress tests and benches).
    #[cfg(any(not(feature = "naive-mutex"), test, feature = "internals"))]
    pub fn has_ready(&self) -> bool {
        let mut backoff = Backoff::new();
        let mut head = self.head.load(Ordering::SeqCst);
        loop {
            // Acquire, as in `pop`: a `true` answer is acted on by popping.
            let stamp = self.slot(head).stamp.load(Ordering::Acquire);
            if stamp == head.wrapping_add(1) {
                return true;
            }
            if stamp == head || stamp.wrapping_add(self.one_lap) == head.wrapping_add(1) {
                return false;
            }
            backoff.spin();
            head = self.head.load(Ordering::SeqCst);
        }
    }

    fn pop(&self, wait: WaitForWriter) -> Option<T> {
        let mut backoff = Backoff::new();
        let mut head = self.head.load(Ordering::SeqCst);
        loop {
            let slot = self.slot(head);
            // Acquire: pairs with the producer's Release stamp store: the value is visible.
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == head.wrapping_add(1) {
                match self.head.compare_exchange_weak(
                    head,
                    self.advance(head),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: the stamp says a producer published a value here and the CAS
                        // made us its only consumer; we move it out exactly once.
                        let value = slot
                            .value
                            .with_mut(|cell| unsafe { (*cell).assume_init_read() });
                        // Release: our read of the value happens before the next lap's write.
                        slot.stamp
                            .store(head.wrapping_add(self.one_lap), Ordering::Release);
                        return Some(value);
                    }
                    Err(actual) => {
                        head = actual;
                        backoff.spin();
                    }
                }
            } else if stamp == head || stamp.wrapping_add(self.one_lap) == head.wrapping_add(1) {
                // Not ready for us: nothing published here on this lap yet, or last lap's
                // consumer is still moving its value out.
                if wait == WaitForWriter::No {
                    return None;
                }
                // Empty, unless a producer has claimed position `head` and is still writing:
                // look at tail. The fence orders this read after our stamp read in the SeqCst
                // order, as in `try_push`.
                fence(Ordering::SeqCst);
                let tail = self.tail.load(Ordering::SeqCst);
                if tail == head {
                    return None;
                }
                // Claimed but not yet published: not empty. Wait for its owner.
                backoff.snooze();
                head = self.head.load(Ordering::SeqCst);
            } else {
                // Another consumer got ahead of us: catch up.
                backoff.spin();
                head = self.head.load(Ordering::SeqCst);
            }
        }
    }

    /// The number of published items in the ring (a snapshot: it may change at once).
    ///
    /// It linearizes with [`pop_ready`](Self::pop_ready): a position a producer has claimed
    /// but not yet published is not counted while it is the newest claim. With one producer
    /// that is the only position that can be unpublished (it publishes before it claims the
    /// next), so the count is exact, and a consumer that reads `len() > 0` gets an item from
    /// its next `pop_ready` unless another consumer takes it first.
    ///
    /// With several producers pushing at once, older claims can be unpublished too: `len`
    /// counts them (at most one per producer still writing, besides the newest), and
    /// `pop_ready` answers `None` while the *oldest* claim is unpublished, even if newer
    /// items, this thread's own among them, are ready behind it: items leave in claim order.
    /// [`try_pop`](Self::try_pop) waits for such a producer instead.
    pub fn len(&self) -> usize {
        loop {
            // SeqCst loads: a consistent pair, re-read until tail did not move in between.
            let tail = self.tail.load(Ordering::SeqCst);
            let head = self.head.load(Ordering::SeqCst);
            if self.tail.load(Ordering::SeqCst) != tail {
                continue;
            }
            let claimed = self.distance(head, tail);
            if claimed == 0 {
                return 0;
            }
            // Acquire: our tail load synchronized with the CAS that claimed `newest`, after
            // its producer read the stamp `newest`; so we read that stamp or a later one, and
            // `newest` means claimed and not yet published. Acquire also makes a published
            // value visible to this thread's next pop, so "counted" implies "poppable".
            let newest = self.retreat(tail);
            let unpublished = self.slot(newest).stamp.load(Ordering::Acquire) == newest;
            return claimed - usize::from(unpublished);
        }
    }

    /// Whether [`len`](Self::len) is 0 (a snapshot, with the same meaning).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The position before `position`: the previous index, or the last index of the previous
    /// lap (the inverse of `advance`).
    #[inline]
    fn retreat(&self, position: usize) -> usize {
        let index = position & (self.one_lap - 1);
        if index > 0 {
            position - 1
        } else {
            (position & !(self.one_lap - 1))
                .wrapping_sub(self.one_lap)
                .wrapping_add(self.capacity - 1)
        }
    }

    fn distance(&self, head: usize, tail: usize) -> usize {
        let mask = self.one_lap - 1;
        let (head_index, tail_index) = (head & mask, tail & mask);
        if head_index < tail_index {
            tail_index - head_index
        } else if head_index > tail_index {
            self.capacity - head_index + tail_index
        } else if tail == head {
            0
        } else {
            self.capacity
        }
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // `&mut self`: no other thread can touch the ring; every position in head..tail holds
        // a published value that was never popped.
        let mut position = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        while position != tail {
            let slot = self.slot(position);
            // SAFETY: positions between head and tail hold initialized values; each is
            // dropped exactly once because we walk each position once.
            slot.value
                .with_mut(|cell| unsafe { (*cell).assume_init_drop() });
            position = self.advance(position);
        }
    }
}

impl<T> fmt::Debug for Ring<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
