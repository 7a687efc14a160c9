//! Recycled packet buffers, so the steady-state send and receive paths allocate nothing.
//!
//! A [`Packet`] owns a `Vec<u8>` taken from its daemon's pool; dropping it gives the buffer
//! back. The pool is a lock-free [`Ring`] of spare buffers: taking and returning one is a CAS,
//! not an allocation. The pool is bounded: a buffer returned to a full pool is freed, and an
//! empty pool allocates a new one, so memory stays within `capacity × max_payload` spare bytes
//! and warm-up is the only time buffers are allocated.

use crate::core::ring::Ring;
use crate::core::sync::Arc;
use std::fmt;
use std::ops::Deref;

/// A pool of byte buffers of one size class.
#[derive(Debug)]
pub struct BufferPool {
    spare: Ring<Vec<u8>>,
    buffer_size: usize,
}

impl BufferPool {
    /// A pool that keeps up to `capacity` spare buffers of `buffer_size` bytes.
    pub fn new(capacity: usize, buffer_size: usize) -> Arc<Self> {
        Arc::new(Self {
            spare: Ring::new(capacity.max(1)),
            buffer_size,
        })
    }

    /// An empty buffer with room for `buffer_size` bytes.
    pub fn take(&self) -> Vec<u8> {
        match self.spare.pop_ready() {
            Some(buffer) => buffer,
            None => Vec::with_capacity(self.buffer_size),
        }
    }

    /// A buffer holding a copy of `bytes`.
    pub fn copy_of(&self, bytes: &[u8]) -> Vec<u8> {
        let mut buffer = self.take();
        buffer.extend_from_slice(bytes);
        buffer
    }

    /// Gives a buffer back; it is freed if the pool is full or it grew past the size class.
    pub fn give(&self, mut buffer: Vec<u8>) {
        if buffer.capacity() > self.buffer_size.max(64) * 2 {
            return; // an oversized buffer would pin memory: let it go
        }
        if buffer.capacity() == 0 {
            return; // nothing to reuse (a packet whose buffer moved on)
        }
        buffer.clear();
        let _ = self.spare.try_push(buffer);
    }
}

/// A received payload. Dereferences to its bytes; dropping it recycles the buffer.
///
/// ```
/// # use gudp::{Daemon, DaemonConfig};
/// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
/// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
/// # let client = daemon.connect(listener.local_addr()).unwrap();
/// # let server = listener.accept().unwrap();
/// client.send(b"ping").unwrap();
/// let packet: gudp::Packet = server.recv().unwrap();
/// assert_eq!(&packet[..], b"ping");
/// ```
pub struct Packet {
    bytes: Vec<u8>,
    pool: Arc<BufferPool>,
}

impl Packet {
    #[cfg(not(loom))]
    pub(crate) fn new(bytes: Vec<u8>, pool: Arc<BufferPool>) -> Self {
        Self { bytes, pool }
    }

    /// The payload bytes.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// # let server = listener.accept().unwrap();
    /// // `client` and `server` are the two ends of one connection over loopback.
    /// client.send(b"ping").unwrap();
    /// let packet = server.recv().unwrap();
    /// assert_eq!(packet.as_bytes(), b"ping");
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Takes the buffer out (to send it on without a copy); the packet gives nothing back to
    /// the pool when it is dropped.
    pub(crate) fn into_bytes(mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }

    /// Copies the payload into a new `Vec` (allocates). The packet keeps its own buffer, which
    /// goes back to the pool when the packet is dropped.
    ///
    /// ```
    /// # use gudp::{Daemon, DaemonConfig};
    /// # let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    /// # let listener = daemon.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    /// # let client = daemon.connect(listener.local_addr()).unwrap();
    /// # let server = listener.accept().unwrap();
    /// // `client` and `server` are the two ends of one connection over loopback.
    /// client.send(b"ping").unwrap();
    /// let packet = server.recv().unwrap();
    /// let owned: Vec<u8> = packet.to_vec();
    /// drop(packet); // its buffer goes back to the pool; the copy lives on
    /// assert_eq!(owned, b"ping");
    /// ```
    pub fn to_vec(&self) -> Vec<u8> {
        self.bytes.clone()
    }
}

impl Deref for Packet {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl AsRef<[u8]> for Packet {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl PartialEq for Packet {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for Packet {}

impl fmt::Debug for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Packet")
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl Drop for Packet {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.bytes));
    }
}
