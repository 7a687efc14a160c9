//! Fixed-size sequence buffers indexed by `sequence % capacity`.
//!
//! Each slot stores the full extended (64-bit) sequence it holds as a tag, so a lookup only
//! finds an entry whose sequence matches exactly. When an insert moves the window forward, the
//! slots of every skipped sequence are cleared (Fiedler's rule): an entry older than the window
//! can never be mistaken for a newer sequence, however much is lost.

const EMPTY: u64 = u64::MAX;

/// A sliding window of `capacity` entries keyed by extended sequence number.
#[derive(Debug)]
pub(crate) struct SequenceBuffer<T> {
    tags: Box<[u64]>,
    values: Box<[T]>,
    /// One past the most recent sequence inserted: the window is `next - capacity .. next`.
    next: u64,
}

/// An insert of a sequence that lies below the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stale;

impl<T: Copy + Default> SequenceBuffer<T> {
    /// A buffer of `capacity` slots (at least 1), all empty.
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            tags: vec![EMPTY; capacity].into_boxed_slice(),
            values: vec![T::default(); capacity].into_boxed_slice(),
            next: 0,
        }
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.tags.len() as u64
    }

    fn index(&self, seq: u64) -> usize {
        (seq % self.capacity()) as usize
    }

    /// One past the most recent sequence inserted (0 when empty).
    pub(crate) fn next(&self) -> u64 {
        self.next
    }

    /// `true` when `seq` is below the window and can no longer be stored.
    pub(crate) fn is_stale(&self, seq: u64) -> bool {
        seq < self.next.saturating_sub(self.capacity())
    }

    /// Stores `value` at `seq`.
    ///
    /// Advancing the window clears the slots of every skipped sequence; an entry still present
    /// in a cleared or overwritten slot is handed to `evicted` first. Returns [`Stale`] for a
    /// sequence below the window.
    pub(crate) fn insert(
        &mut self,
        seq: u64,
        value: T,
        mut evicted: impl FnMut(u64, T),
    ) -> Result<(), Stale> {
        if seq == EMPTY || self.is_stale(seq) {
            return Err(Stale);
        }
        if seq >= self.next {
            // Clear every slot from the old top up to and including `seq`, at most one lap.
            let start = self.next.max(seq.saturating_sub(self.capacity() - 1));
            for s in start..=seq {
                let i = self.index(s);
                if self.tags[i] != EMPTY {
                    evicted(self.tags[i], self.values[i]);
                    self.tags[i] = EMPTY;
                }
            }
            self.next = seq + 1;
        }
        let i = self.index(seq);
        self.tags[i] = seq;
        self.values[i] = value;
        Ok(())
    }

    /// The entry stored for exactly `seq`.
    pub(crate) fn get(&self, seq: u64) -> Option<&T> {
        let i = self.index(seq);
        (self.tags[i] == seq).then(|| &self.values[i])
    }

    /// The entry stored for exactly `seq`, mutably.
    pub(crate) fn get_mut(&mut self, seq: u64) -> Option<&mut T> {
        let i = self.index(seq);
        if self.tags[i] == seq {
            Some(&mut self.values[i])
        } else {
            None
        }
    }

    /// Removes and returns the entry for exactly `seq`.
    pub(crate) fn remove(&mut self, seq: u64) -> Option<T> {
        let i = self.index(seq);
        if self.tags[i] == seq {
            self.tags[i] = EMPTY;
            Some(self.values[i])
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_slots_are_cleared_so_nothing_aliases() {
        let mut b = SequenceBuffer::<u8>::new(8);
        let mut gone = Vec::new();
        for s in 0..8 {
            b.insert(s, s as u8, |s, v| gone.push((s, v))).unwrap();
        }
        assert!(gone.is_empty());
        // Jump forward by 5: slots for 8..=12 are cleared, evicting 0..=4.
        b.insert(12, 12, |s, v| gone.push((s, v))).unwrap();
        assert_eq!(gone, vec![(0, 0), (1, 1), (2, 2), (3, 3), (4, 4)]);
        assert!(b.get(4).is_none());
        assert_eq!(b.get(5), Some(&5));
        assert!(b.get(8).is_none());
        assert_eq!(b.get(12), Some(&12));
        assert_eq!(b.next(), 13);
    }

    #[test]
    fn stale_and_far_jumps() {
        let mut b = SequenceBuffer::<u8>::new(4);
        b.insert(10, 1, |_, _| {}).unwrap();
        assert_eq!(b.insert(6, 1, |_, _| {}), Err(Stale));
        assert!(b.insert(7, 2, |_, _| {}).is_ok());
        let mut n = 0;
        b.insert(1_000_000, 3, |_, _| n += 1).unwrap();
        assert_eq!(n, 2);
        assert!(b.get(7).is_none() && b.get(10).is_none());
        assert_eq!(b.remove(1_000_000), Some(3));
        assert_eq!(b.remove(1_000_000), None);
        assert_eq!(b.insert(u64::MAX, 0, |_, _| {}), Err(Stale));
    }
}
