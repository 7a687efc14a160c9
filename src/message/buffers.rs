//! A free list of small byte buffers in power-of-two size classes, so that queuing and
//! delivering small messages does not allocate once the connection is warm, and no buffer is
//! more than twice the size of what it holds (budgets count message bytes; the heap holds at
//! most about twice that).

/// Smallest class: 16 bytes.
const MIN_CLASS_SHIFT: u32 = 4;

/// Buffers up to `max_capacity` bytes (rounded up to a power of two) are kept, at most
/// `max_count` in all; larger ones (reassembled large messages) are freed so they do not pin
/// memory.
#[derive(Debug)]
pub(crate) struct BufferPool {
    classes: Vec<Vec<Vec<u8>>>,
    count: usize,
    max_count: usize,
    max_capacity: usize,
}

impl BufferPool {
    pub(crate) fn new(max_count: usize, max_capacity: usize) -> Self {
        let max_capacity = max_capacity.next_power_of_two().max(1 << MIN_CLASS_SHIFT);
        let n = (max_capacity.trailing_zeros() - MIN_CLASS_SHIFT + 1) as usize;
        Self {
            classes: (0..n).map(|_| Vec::new()).collect(),
            count: 0,
            max_count,
            max_capacity,
        }
    }

    /// The class of a buffer able to hold `len` bytes, if pooled.
    fn class(&self, len: usize) -> Option<usize> {
        let size = len.max(1 << MIN_CLASS_SHIFT).next_power_of_two();
        (size <= self.max_capacity).then(|| (size.trailing_zeros() - MIN_CLASS_SHIFT) as usize)
    }

    /// A buffer holding a copy of `bytes`.
    pub(crate) fn copy_of(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut v = match self.class(bytes.len()) {
            Some(c) => match self.classes[c].pop() {
                Some(v) => {
                    self.count -= 1;
                    v
                }
                None => Vec::with_capacity(1 << (c as u32 + MIN_CLASS_SHIFT)),
            },
            None => Vec::with_capacity(bytes.len()),
        };
        v.clear();
        v.extend_from_slice(bytes);
        v
    }

    /// Returns a buffer for reuse (or frees it).
    pub(crate) fn put(&mut self, v: Vec<u8>) {
        if self.count >= self.max_count || !v.capacity().is_power_of_two() {
            return;
        }
        if let Some(c) = self.class(v.capacity()) {
            // A buffer of exactly a class's size belongs to that class.
            if 1 << (c as u32 + MIN_CLASS_SHIFT) == v.capacity() {
                self.classes[c].push(v);
                self.count += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_buffers_by_size_class_only() {
        let mut pool = BufferPool::new(2, 1200);
        let a = pool.copy_of(b"abc");
        assert_eq!(a.capacity(), 16);
        let ptr = a.as_ptr();
        pool.put(a);
        let b = pool.copy_of(b"xy");
        assert_eq!((b.as_ptr(), &b[..]), (ptr, &b"xy"[..]));
        let c = pool.copy_of(&[0; 1000]);
        assert_eq!(c.capacity(), 1024); // at most twice the message
        pool.put(c);
        pool.put(vec![0; 5000]); // too large to keep
        pool.put(b);
        pool.put(vec![0; 16]); // the pool is full
        assert_eq!(pool.count, 2);
    }
}
