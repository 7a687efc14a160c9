//! A free list of small byte buffers, so that queuing and delivering small messages does not
//! allocate once the connection is warm.

/// Buffers of at most `max_capacity` bytes are kept, at most `max_count` of them; larger
/// ones (reassembled large messages) are freed so they do not pin memory.
#[derive(Debug)]
pub(crate) struct BufferPool {
    free: Vec<Vec<u8>>,
    max_count: usize,
    max_capacity: usize,
}

impl BufferPool {
    pub(crate) fn new(max_count: usize, max_capacity: usize) -> Self {
        Self {
            free: Vec::with_capacity(max_count),
            max_count,
            max_capacity,
        }
    }

    /// A buffer holding a copy of `bytes`.
    pub(crate) fn copy_of(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut v = if bytes.len() <= self.max_capacity {
            self.free
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(self.max_capacity))
        } else {
            Vec::with_capacity(bytes.len())
        };
        v.clear();
        v.extend_from_slice(bytes);
        v
    }

    /// Returns a buffer for reuse (or frees it).
    pub(crate) fn put(&mut self, v: Vec<u8>) {
        if v.capacity() <= self.max_capacity && self.free.len() < self.max_count {
            self.free.push(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_small_buffers_only() {
        let mut pool = BufferPool::new(2, 64);
        let a = pool.copy_of(b"abc");
        let ptr = a.as_ptr();
        pool.put(a);
        let b = pool.copy_of(b"xy");
        assert_eq!((b.as_ptr(), &b[..]), (ptr, &b"xy"[..]));
        pool.put(pool_big());
        assert!(pool.free.is_empty());
    }

    fn pool_big() -> Vec<u8> {
        vec![0; 1000]
    }
}
