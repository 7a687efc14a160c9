//! Many datagrams per system call: `recvmmsg` / `sendmmsg` on Linux, a loop of single calls
//! elsewhere. With a batch size of 1 every call moves one datagram, so the two can be measured
//! side by side.
//!
//! On Linux each received datagram also brings the socket's count of datagrams the kernel
//! dropped because the receive buffer was full (`SO_RXQ_OVFL`), so the daemon can count what
//! it never got to read. There too the batches offload per-datagram work to the kernel: a send
//! hands over a run of equal datagrams to one destination as one message (`UDP_SEGMENT`, GSO),
//! and a receive may take a run of datagrams of one flow as one message (`UDP_GRO`), which the
//! receive batch cuts back into datagrams, so the rest of the daemon sees only datagrams.
//!
//! Both batches own their buffers for the daemon's whole life: `slots × slot_size` bytes in one
//! allocation, reused on every call. The kernel's scatter/gather headers point into them and
//! are rebuilt on the stack for each call, so the batches hold no raw pointers (they stay
//! `Send`) and nothing can dangle.

use mio::net::UdpSocket;
use std::io;
use std::net::SocketAddr;

#[cfg(target_os = "linux")]
mod sys;
#[cfg(target_os = "linux")]
pub(super) use sys::write_sockaddr;

/// The most datagrams one call moves.
pub(crate) const MAX_BATCH: usize = 64;

/// `count` buffers of `size` bytes in one allocation, each with a length and an address: the
/// storage of both batches.
struct Slots {
    buffers: Box<[u8]>,
    size: usize,
    count: usize,
    lens: [usize; MAX_BATCH],
    addrs: [Option<SocketAddr>; MAX_BATCH],
}

impl Slots {
    fn new(count: usize, size: usize) -> Self {
        let count = count.clamp(1, MAX_BATCH);
        Self {
            buffers: vec![0; count * size].into_boxed_slice(),
            size,
            count,
            lens: [0; MAX_BATCH],
            addrs: [None; MAX_BATCH],
        }
    }

    /// The whole of buffer `i`.
    fn buffer_mut(&mut self, i: usize) -> &mut [u8] {
        &mut self.buffers[i * self.size..(i + 1) * self.size]
    }

    /// The datagram held in buffer `i`.
    fn datagram(&self, i: usize) -> &[u8] {
        let start = i * self.size;
        &self.buffers[start..start + self.lens[i].min(self.size)]
    }

    fn datagram_mut(&mut self, i: usize) -> &mut [u8] {
        let start = i * self.size;
        &mut self.buffers[start..start + self.lens[i].min(self.size)]
    }
}

/// Datagrams received by one call.
pub(crate) struct RecvBatch {
    /// One buffer per message a call can take: one datagram, or with coalescing a run of
    /// datagrams of one flow that the kernel hands over as one (`UDP_GRO`).
    slots: Slots,
    /// Per message of the last call: how many datagrams it holds, and their size (the last
    /// may be shorter; 0 for a message that is one datagram).
    counts: [usize; MAX_BATCH],
    sizes: [usize; MAX_BATCH],
    /// Messages the last call filled.
    messages: usize,
    /// Datagrams in them.
    len: usize,
    /// The message of the datagram `get_mut` found last, and the index of its first
    /// datagram: the daemon walks a batch in order, so each lookup takes a step or none.
    cursor: (usize, usize),
    /// The socket's cumulative kernel drop count, as the last datagram of the call reported it.
    kernel_drops: Option<u32>,
    /// Whether sockets are asked to coalesce (and the buffers are large enough to take it).
    coalescing: bool,
}

/// Outcome of one receive call.
pub(crate) enum Received {
    /// This many datagrams are in the batch (at least one).
    Datagrams(usize),
    /// Nothing to read.
    WouldBlock,
}

/// A buffer for one coalesced receive: the largest UDP payload (65,527 bytes over IPv6) fits,
/// so the kernel never cuts one. One cache line over 64 KiB, so that the buffers' starts,
/// where every message begins, do not all fall into the same cache set.
const COALESCED_BUFFER: usize = (1 << 16) + 64;

impl RecvBatch {
    /// A batch of `slots` (1 to [`MAX_BATCH`]) buffers of `slot_size` bytes, or with
    /// `coalescing` (Linux, and more than one slot: a batch of one moves one datagram per
    /// call; ignored otherwise) of 64 KiB each, to take `UDP_GRO` receives.
    pub(crate) fn new(slots: usize, slot_size: usize, coalescing: bool) -> Self {
        let coalescing = coalescing && slots > 1 && cfg!(target_os = "linux");
        let size = if coalescing {
            COALESCED_BUFFER.max(slot_size)
        } else {
            slot_size
        };
        Self {
            slots: Slots::new(slots, size),
            counts: [0; MAX_BATCH],
            sizes: [0; MAX_BATCH],
            messages: 0,
            len: 0,
            cursor: (0, 0),
            kernel_drops: None,
            coalescing,
        }
    }

    /// If the batch coalesces, asks the kernel for coalesced receives on a new socket. Best
    /// effort: a kernel without `UDP_GRO` refuses it, and the socket then hands over one
    /// datagram per message, which the batch takes all the same.
    pub(crate) fn offer_coalescing(&self, socket: &UdpSocket) {
        #[cfg(target_os = "linux")]
        if self.coalescing {
            let _ = sys::coalesce_receives(socket);
        }
        #[cfg(not(target_os = "linux"))]
        let _ = socket;
    }

    /// How many datagrams the kernel had dropped on this socket (receive buffer full) when
    /// the last datagram of the last call was queued: a running total that wraps at 2^32,
    /// reported only once it is non-zero (Linux; `None` elsewhere).
    pub(crate) fn kernel_drops(&self) -> Option<u32> {
        self.kernel_drops
    }

    /// Datagram `i` (below the count the last call returned), in the order the socket
    /// received them: its source, if the kernel named one in a family we know, and its bytes.
    /// A datagram longer than a buffer comes back cut to exactly its size, so with buffers
    /// longer than the largest valid datagram, an oversize one is still seen to be too large.
    /// The datagram is writable: secure mode decrypts it in place.
    pub(crate) fn get_mut(&mut self, i: usize) -> (Option<SocketAddr>, &mut [u8]) {
        debug_assert!(i < self.len);
        let (mut message, mut first) = self.cursor;
        if i < first {
            (message, first) = (0, 0);
        }
        while i >= first + self.counts[message] {
            first += self.counts[message];
            message += 1;
        }
        self.cursor = (message, first);
        let source = self.slots.addrs[message];
        let whole = self.slots.datagram_mut(message);
        let bytes = match self.sizes[message] {
            0 => whole,
            size => {
                let start = (i - first) * size;
                let end = (start + size).min(whole.len());
                &mut whole[start..end]
            }
        };
        (source, bytes)
    }

    /// Whether the last call left the socket empty, so that reading again would only return
    /// `WouldBlock`. On Linux a `recvmmsg` that fills fewer buffers than it has stopped
    /// because the queue was empty, and every datagram queued after that raises a new edge
    /// for the poller; elsewhere each call reads one, so only `WouldBlock` tells.
    pub(crate) fn drained(&self) -> bool {
        cfg!(target_os = "linux") && self.messages < self.slots.count
    }

    /// Receives up to `slots` messages without blocking.
    pub(crate) fn recv(&mut self, socket: &UdpSocket) -> io::Result<Received> {
        self.messages = 0;
        self.len = 0;
        self.cursor = (0, 0);
        self.kernel_drops = None;
        #[cfg(target_os = "linux")]
        return self.recv_mmsg(socket);
        #[cfg(not(target_os = "linux"))]
        return self.recv_single(socket);
    }

    #[cfg(not(target_os = "linux"))]
    fn recv_single(&mut self, socket: &UdpSocket) -> io::Result<Received> {
        match socket.recv_from(self.slots.buffer_mut(0)) {
            Ok((len, source)) => {
                self.slots.lens[0] = len;
                self.slots.addrs[0] = Some(source);
                (self.counts[0], self.sizes[0]) = (1, 0);
                (self.messages, self.len) = (1, 1);
                Ok(Received::Datagrams(1))
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(Received::WouldBlock),
            Err(error) => Err(error),
        }
    }

    #[cfg(target_os = "linux")]
    fn recv_mmsg(&mut self, socket: &UdpSocket) -> io::Result<Received> {
        use std::os::fd::AsRawFd;
        let mut headers = sys::MmsgHeaders::new();
        for i in 0..self.slots.count {
            let name_len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            headers.point(i, self.slots.buffer_mut(i), name_len);
            headers.expect_control(i);
        }
        // SAFETY: headers `0..count` point at live iovecs over distinct buffers of
        // `self.slots`, at live `sockaddr_storage`s and at live control buffers, all outliving
        // the call (see `MmsgHeaders::point`). MSG_DONTWAIT: never block (the socket is
        // non-blocking anyway).
        let received = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                headers.headers.as_mut_ptr(),
                self.slots.count as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if received < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::WouldBlock {
                return Ok(Received::WouldBlock);
            }
            return Err(error);
        }
        let received = received as usize;
        for i in 0..received {
            // Without MSG_TRUNC in the call's flags, `msg_len` is the length kept in the slot.
            let len = headers.headers[i].msg_len as usize;
            self.slots.lens[i] = len;
            self.slots.addrs[i] = sys::socket_addr(&headers.names[i]);
            let (drops, segment) = headers.received_controls(i);
            // Counts only grow (modulo 2^32), so the last one reported is the latest.
            if drops.is_some() {
                self.kernel_drops = drops;
            }
            (self.counts[i], self.sizes[i]) = split(len.min(self.slots.size), segment);
            self.len += self.counts[i];
        }
        self.messages = received;
        Ok(if received == 0 {
            Received::WouldBlock
        } else {
            Received::Datagrams(self.len)
        })
    }
}

/// How a received message of `len` bytes splits into datagrams, given the `UDP_GRO` segment
/// size the kernel reported with it: (how many, the size of each but the last, which may be
/// shorter; 0 when the message is one datagram). A message of no more than one segment, or
/// without a size, is one datagram (an empty datagram included).
fn split(len: usize, segment: Option<usize>) -> (usize, usize) {
    match segment {
        Some(size) if size > 0 && len > size => (len.div_ceil(size), size),
        _ => (1, 0),
    }
}

/// What one flush of a send batch did.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Flushed {
    pub(crate) sent: u64,
    pub(crate) would_block: u64,
    pub(crate) errors: u64,
}

impl Flushed {
    /// Counts the outcome of one datagram's send.
    pub(crate) fn record(&mut self, result: io::Result<()>) {
        match result {
            Ok(()) => self.sent += 1,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => self.would_block += 1,
            Err(_) => self.errors += 1,
        }
    }
}

/// Datagrams queued for one send call.
pub(crate) struct SendBatch {
    slots: Slots,
    len: usize,
    /// Whether runs of equal datagrams to one destination go out as one segmentation-offload
    /// message (Linux `UDP_SEGMENT`): asked for by the configuration, and cleared for good the
    /// first time the kernel refuses one (the portable path then sends what it refused).
    segmentation: bool,
}

impl SendBatch {
    /// A batch of `slots` (1 to [`MAX_BATCH`]) buffers of `slot_size` bytes; `segmentation`
    /// asks for `UDP_SEGMENT` where the kernel offers it.
    pub(crate) fn new(slots: usize, slot_size: usize, segmentation: bool) -> Self {
        Self {
            slots: Slots::new(slots, slot_size),
            len: 0,
            segmentation: segmentation && cfg!(target_os = "linux"),
        }
    }

    fn is_full(&self) -> bool {
        self.len == self.slots.count
    }

    /// The next free slot, to encode a datagram into. Never full: `commit` sends a batch as
    /// soon as it fills.
    pub(crate) fn slot(&mut self) -> &mut [u8] {
        debug_assert!(!self.is_full());
        self.slots.buffer_mut(self.len)
    }

    /// Queues the datagram just written into `slot()`, and sends the batch through `socket`
    /// if that filled it (what that flush did is returned; nothing, if it did not fill).
    pub(crate) fn commit(
        &mut self,
        destination: SocketAddr,
        len: usize,
        socket: &UdpSocket,
    ) -> Flushed {
        self.slots.lens[self.len] = len;
        self.slots.addrs[self.len] = Some(destination);
        self.len += 1;
        if self.is_full() {
            self.flush(socket)
        } else {
            Flushed::default()
        }
    }

    /// Sends every queued datagram and empties the batch.
    pub(crate) fn flush(&mut self, socket: &UdpSocket) -> Flushed {
        let mut flushed = Flushed::default();
        #[cfg(target_os = "linux")]
        if self.len > 1 {
            self.flush_mmsg(socket, &mut flushed);
            self.len = 0;
            return flushed;
        }
        for i in 0..self.len {
            let destination = self.slots.addrs[i].expect("committed slots have a destination");
            let result = socket.send_to(self.slots.datagram(i), destination);
            flushed.record(result.map(|_| ()));
        }
        self.len = 0;
        flushed
    }

    #[cfg(target_os = "linux")]
    fn flush_mmsg(&mut self, socket: &UdpSocket, flushed: &mut Flushed) {
        let mut from = 0;
        while from < self.len {
            from = self.send_messages(socket, from, flushed);
        }
    }

    /// Sends datagrams `from..len` in one `sendmmsg` call per kernel limit: one message per
    /// datagram, or, with segmentation, one per run of equal-length datagrams to the same
    /// destination (`UDP_SEGMENT`: the kernel moves the run through its stack as one packet
    /// and cuts it into datagrams at the end). Returns where to go on: `len` when done, or
    /// the first datagram of a run the kernel refused to segment (segmentation is then off).
    #[cfg(target_os = "linux")]
    fn send_messages(&mut self, socket: &UdpSocket, from: usize, flushed: &mut Flushed) -> usize {
        use std::os::fd::AsRawFd;
        let mut headers = sys::MmsgHeaders::new();
        // Message `m` carries datagrams `runs[m]..runs[m + 1]`.
        let mut runs = [0usize; MAX_BATCH + 1];
        let mut messages = 0;
        let mut i = from;
        runs[0] = from;
        while i < self.len {
            let destination = self.slots.addrs[i].expect("committed slots have a destination");
            let len = self.slots.lens[i].min(self.slots.size);
            let mut end = i + 1;
            if self.segmentation {
                let most = (sys::MAX_SEGMENTED_BYTES / len.max(1)).clamp(1, sys::MAX_SEGMENTS);
                while end < self.len
                    && end - i < most
                    && self.slots.addrs[end] == Some(destination)
                    && self.slots.lens[end].min(self.slots.size) == len
                {
                    end += 1;
                }
            }
            for k in i..end {
                headers.iovecs[k].iov_base = self.slots.buffer_mut(k).as_mut_ptr().cast();
                headers.iovecs[k].iov_len = len;
            }
            let name_len = sys::write_sockaddr(destination, &mut headers.names[messages]);
            headers.point_run(messages, i, end - i, name_len);
            if end - i > 1 {
                headers.segment(messages, len as u16);
            }
            messages += 1;
            runs[messages] = end;
            i = end;
        }
        let mut next = 0;
        while next < messages {
            // SAFETY: headers `next..messages` point at live iovecs over committed buffers of
            // `self.slots`, at initialised socket addresses and at initialised control
            // messages, all outliving the call.
            let sent = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    headers.headers[next..].as_mut_ptr(),
                    (messages - next) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if sent > 0 {
                let done = next + sent as usize;
                flushed.sent += (runs[done] - runs[next]) as u64;
                next = done;
                continue;
            }
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            let run = runs[next + 1] - runs[next];
            let refused = matches!(
                error.raw_os_error(),
                Some(libc::EIO | libc::EINVAL | libc::EOPNOTSUPP | libc::ENOPROTOOPT)
            );
            if run > 1 && refused {
                // The kernel (or the route's device) does not segment: the portable path
                // sends this run and everything after it, now and from now on.
                self.segmentation = false;
                return runs[next];
            }
            // The message at `next` failed: count its datagrams and carry on with the rest,
            // as a loop of single sends would.
            for _ in 0..run {
                flushed.record(Err(io::Error::from_raw_os_error(
                    error.raw_os_error().unwrap_or(libc::EIO),
                )));
            }
            next += 1;
        }
        self.len
    }
}

/// Asks the kernel to attach to each received datagram the socket's count of datagrams it
/// dropped for lack of buffer space (`SO_RXQ_OVFL`). Linux only; elsewhere nothing to do.
pub(crate) fn report_kernel_drops(socket: &UdpSocket) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    return sys::report_kernel_drops(socket);
    #[cfg(not(target_os = "linux"))]
    {
        let _ = socket;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (UdpSocket, UdpSocket) {
        let a = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let b = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        (a, b)
    }

    fn round_trip(slots: usize, segmentation: bool) {
        let (a, b) = pair();
        let to = b.local_addr().unwrap();
        let mut send = SendBatch::new(slots, 128, segmentation);
        let mut expected = Vec::new();
        for n in 0..slots as u8 {
            let slot = send.slot();
            slot[..3].copy_from_slice(&[n, n, n]);
            let flushed = send.commit(to, 3, &a);
            expected.push(vec![n; 3]);
            // The commit that fills the batch sends all of it; the others send nothing.
            let filled = usize::from(n) + 1 == slots;
            assert_eq!(flushed.sent, if filled { slots as u64 } else { 0 });
        }
        assert_eq!(send.flush(&a), Flushed::default(), "nothing left to send");
        let mut recv = RecvBatch::new(slots, 128, false);
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while got.len() < slots && std::time::Instant::now() < deadline {
            if let Received::Datagrams(n) = recv.recv(&b).unwrap() {
                for i in 0..n {
                    let (from, bytes) = recv.get_mut(i);
                    assert_eq!(from, Some(a.local_addr().unwrap()));
                    got.push(bytes.to_vec());
                }
            }
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn batched_and_single_calls_carry_every_datagram() {
        round_trip(1, false);
        round_trip(MAX_BATCH, false);
        round_trip(MAX_BATCH, true);
    }

    /// Runs broken by a length or a destination change go out as several messages, each
    /// datagram still whole and in order.
    #[test]
    fn segmented_runs_keep_every_datagram_whole_and_in_order() {
        let (a, b) = pair();
        let c = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut send = SendBatch::new(MAX_BATCH, 128, true);
        let (mut to_b, mut to_c) = (Vec::new(), Vec::new());
        for n in 0..40u8 {
            let len = if n % 10 < 7 { 5 } else { 9 }; // runs of 7 and of 3
            let to = if n < 30 { &b } else { &c };
            send.slot()[..len].fill(n);
            send.commit(to.local_addr().unwrap(), len, &a);
            if n < 30 { &mut to_b } else { &mut to_c }.push(vec![n; len]);
        }
        assert_eq!(send.flush(&a).sent, 40);
        assert!(send.segmentation, "loopback on Linux takes UDP_SEGMENT");
        for (socket, expected) in [(&b, to_b), (&c, to_c)] {
            let mut recv = RecvBatch::new(MAX_BATCH, 128, false);
            let mut got = Vec::new();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while got.len() < expected.len() && std::time::Instant::now() < deadline {
                if let Received::Datagrams(n) = recv.recv(socket).unwrap() {
                    got.extend((0..n).map(|i| recv.get_mut(i).1.to_vec()));
                }
            }
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn oversize_datagram_fills_its_slot() {
        let (a, b) = pair();
        for slots in [1, 8] {
            a.send_to(&[7u8; 300], b.local_addr().unwrap()).unwrap();
            let mut recv = RecvBatch::new(slots, 100, false);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            loop {
                if let Received::Datagrams(_) = recv.recv(&b).unwrap() {
                    let (_, bytes) = recv.get_mut(0);
                    assert_eq!(bytes, &[7u8; 100][..]);
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "datagram never arrived"
                );
            }
        }
    }

    /// Reads from `socket` until `expected` datagrams came or 5 s passed; returns them and
    /// how many messages carried them.
    fn read_all(
        recv: &mut RecvBatch,
        socket: &UdpSocket,
        expected: usize,
    ) -> (Vec<Vec<u8>>, usize) {
        let (mut got, mut messages) = (Vec::new(), 0);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while got.len() < expected && std::time::Instant::now() < deadline {
            if let Received::Datagrams(n) = recv.recv(socket).unwrap() {
                got.extend((0..n).map(|i| recv.get_mut(i).1.to_vec()));
                messages += recv.messages;
            }
        }
        (got, messages)
    }

    #[test]
    fn a_message_splits_into_whole_segments_and_a_shorter_tail() {
        assert_eq!(split(0, Some(100)), (1, 0), "an empty datagram is one");
        assert_eq!(split(100, Some(100)), (1, 0));
        assert_eq!(split(101, Some(100)), (2, 100));
        assert_eq!(split(537, Some(100)), (6, 100));
        assert_eq!(split(537, None), (1, 0));
        assert_eq!(split(537, Some(0)), (1, 0));
    }

    /// Segmented sends reach a coalescing socket on loopback still coalesced: the batch must
    /// hand back exactly the datagrams sent, none lost, merged or cut, in order, and count
    /// each once — and out-of-order lookups still find the right one.
    #[cfg(target_os = "linux")]
    #[test]
    fn coalesced_receives_come_back_as_the_datagrams_sent() {
        let (a, b) = pair();
        let to = b.local_addr().unwrap();
        let mut recv = RecvBatch::new(MAX_BATCH, 128, true);
        recv.offer_coalescing(&b);
        let mut send = SendBatch::new(MAX_BATCH, 128, true);
        let mut expected = Vec::new();
        for n in 0..3 * MAX_BATCH as u16 {
            // Runs of 24 at 100 bytes, 5 at 37, 3 at 1: each datagram tells its number.
            let len = [100, 37, 1][usize::from(n % 32 / 24) + usize::from(n % 32 >= 29)];
            let mut datagram = vec![(n % 251) as u8; len];
            datagram[0] = n as u8;
            send.slot()[..len].copy_from_slice(&datagram);
            send.commit(to, len, &a);
            expected.push(datagram);
        }
        send.flush(&a);
        let (got, messages) = read_all(&mut recv, &b, expected.len());
        assert_eq!(got.len(), expected.len(), "no datagram lost or merged");
        assert_eq!(got, expected);
        assert!(
            messages < expected.len() / 4,
            "the kernel coalesced: {messages} messages for {} datagrams",
            expected.len()
        );
        // A lookup behind the cursor starts over.
        let in_last_call = recv.len;
        let tail = recv.get_mut(in_last_call - 1).1.to_vec();
        assert_eq!(recv.get_mut(0).1, &got[got.len() - in_last_call][..]);
        assert_eq!(tail, got[got.len() - 1]);
    }

    /// A segmented send whose last datagram is shorter arrives as one message with a short
    /// tail; the batch cuts it into the datagrams sent.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_coalesced_receive_with_a_short_tail_splits_at_the_segment_size() {
        use std::os::fd::AsRawFd;
        let (a, b) = pair();
        let mut recv = RecvBatch::new(4, 128, true);
        recv.offer_coalescing(&b);
        let mut payload: Vec<u8> = (0..537).map(|i| (i / 100) as u8).collect();
        let mut headers = sys::MmsgHeaders::new();
        let name_len = sys::write_sockaddr(b.local_addr().unwrap(), &mut headers.names[0]);
        headers.point(0, &mut payload, name_len);
        headers.segment(0, 100);
        // SAFETY: header 0 points at `payload`, at an initialised address and at an
        // initialised control message, all alive across the call.
        let sent = unsafe {
            libc::sendmmsg(
                a.as_raw_fd(),
                headers.headers.as_mut_ptr(),
                1,
                libc::MSG_DONTWAIT,
            )
        };
        assert_eq!(sent, 1, "{}", io::Error::last_os_error());
        let (got, messages) = read_all(&mut recv, &b, 6);
        let expected: Vec<Vec<u8>> = payload.chunks(100).map(<[u8]>::to_vec).collect();
        assert_eq!(got, expected);
        assert_eq!(messages, 1, "one coalesced message");
    }
}
