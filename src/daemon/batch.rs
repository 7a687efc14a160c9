//! Many datagrams per system call: `recvmmsg` / `sendmmsg` on Linux, a loop of single calls
//! elsewhere. With a batch size of 1 every call moves one datagram, so the two can be measured
//! side by side.
//!
//! On Linux each received datagram also brings the socket's count of datagrams the kernel
//! dropped because the receive buffer was full (`SO_RXQ_OVFL`), so the daemon can count what
//! it never got to read.
//!
//! Both batches own their buffers for the daemon's whole life: `slots × slot_size` bytes in one
//! allocation, reused on every call. The kernel's scatter/gather headers point into them and
//! are rebuilt on the stack for each call, so the batches hold no raw pointers (they stay
//! `Send`) and nothing can dangle.

use mio::net::UdpSocket;
use std::io;
use std::net::SocketAddr;

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
    slots: Slots,
    len: usize,
    /// The socket's cumulative kernel drop count, as the last datagram of the call reported it.
    kernel_drops: Option<u32>,
}

/// Outcome of one receive call.
pub(crate) enum Received {
    /// This many datagrams are in the batch (at least one).
    Datagrams(usize),
    /// Nothing to read.
    WouldBlock,
}

impl RecvBatch {
    /// A batch of `slots` (1 to [`MAX_BATCH`]) buffers of `slot_size` bytes.
    pub(crate) fn new(slots: usize, slot_size: usize) -> Self {
        Self {
            slots: Slots::new(slots, slot_size),
            len: 0,
            kernel_drops: None,
        }
    }

    /// How many datagrams the kernel had dropped on this socket (receive buffer full) when
    /// the last datagram of the last call was queued: a running total that wraps at 2^32,
    /// reported only once it is non-zero (Linux; `None` elsewhere).
    pub(crate) fn kernel_drops(&self) -> Option<u32> {
        self.kernel_drops
    }

    /// Datagram `i` (below the count the last call returned): its source, if the kernel
    /// named one in a family we know, and its bytes. A datagram longer than a slot comes back
    /// cut to exactly `slot_size` bytes, so with slots one byte longer than the largest valid
    /// datagram, an oversize one is still seen to be too large.
    /// The datagram is writable: secure mode decrypts it in place.
    pub(crate) fn get_mut(&mut self, i: usize) -> (Option<SocketAddr>, &mut [u8]) {
        debug_assert!(i < self.len);
        (self.slots.addrs[i], self.slots.datagram_mut(i))
    }

    /// Whether a call that returned `count` datagrams left the socket empty, so that reading
    /// again would only return `WouldBlock`. On Linux a `recvmmsg` that fills fewer slots than
    /// it has stopped because the queue was empty, and every datagram queued after that
    /// raises a new edge for the poller; elsewhere each call reads one, so only `WouldBlock`
    /// tells.
    pub(crate) fn drained(&self, count: usize) -> bool {
        cfg!(target_os = "linux") && count < self.slots.count
    }

    /// Receives up to `slots` datagrams without blocking.
    pub(crate) fn recv(&mut self, socket: &UdpSocket) -> io::Result<Received> {
        self.len = 0;
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
                self.len = 1;
                Ok(Received::Datagrams(1))
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(Received::WouldBlock),
            Err(error) => Err(error),
        }
    }

    #[cfg(target_os = "linux")]
    fn recv_mmsg(&mut self, socket: &UdpSocket) -> io::Result<Received> {
        use std::os::fd::AsRawFd;
        let mut headers = MmsgHeaders::new();
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
            self.slots.lens[i] = headers.headers[i].msg_len as usize;
            self.slots.addrs[i] = socket_addr(&headers.names[i]);
            // Counts only grow (modulo 2^32), so the last one reported is the latest.
            if let Some(drops) = headers.kernel_drops(i) {
                self.kernel_drops = Some(drops);
            }
        }
        self.len = received;
        Ok(if received == 0 {
            Received::WouldBlock
        } else {
            Received::Datagrams(received)
        })
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
        let mut headers = MmsgHeaders::new();
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
                let most = (MAX_SEGMENTED_BYTES / len.max(1)).clamp(1, MAX_SEGMENTS);
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
            let name_len = write_sockaddr(destination, &mut headers.names[messages]);
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

/// `UDP_SEGMENT` (`linux/udp.h`; not in the libc crate for glibc targets): the segment size of
/// a segmentation-offload send, as a `SOL_UDP` control message carrying a `u16`.
#[cfg(target_os = "linux")]
const UDP_SEGMENT: libc::c_int = 103;

/// The kernel's limits on one segmented send: 64 segments (`UDP_MAX_SEGMENTS` before Linux
/// 6.9), and one IPv4 UDP payload in all.
#[cfg(target_os = "linux")]
const MAX_SEGMENTS: usize = 64;
#[cfg(target_os = "linux")]
const MAX_SEGMENTED_BYTES: usize = 65_000;

/// The kernel's scatter/gather headers for one `recvmmsg` / `sendmmsg` call, built on the
/// stack just before it.
#[cfg(target_os = "linux")]
struct MmsgHeaders {
    names: [libc::sockaddr_storage; MAX_BATCH],
    iovecs: [libc::iovec; MAX_BATCH],
    headers: [libc::mmsghdr; MAX_BATCH],
    /// Room for one `SO_RXQ_OVFL` control message per datagram, aligned as `cmsghdr` needs.
    controls: [[u64; CONTROL_WORDS]; MAX_BATCH],
}

/// `u64` words per datagram's control buffer: enough for one control message carrying a
/// `u32` (24 bytes on 64-bit Linux), checked at compile time below.
#[cfg(target_os = "linux")]
const CONTROL_WORDS: usize = 4;

// SAFETY: `CMSG_SPACE` only computes a size.
#[cfg(target_os = "linux")]
const _: () = assert!(
    unsafe { libc::CMSG_SPACE(std::mem::size_of::<u32>() as libc::c_uint) } as usize
        <= CONTROL_WORDS * 8
);

#[cfg(target_os = "linux")]
impl MmsgHeaders {
    fn new() -> Self {
        // SAFETY: all-zero bytes are a valid value for these plain C structs (null pointers,
        // zero lengths, family AF_UNSPEC).
        unsafe { std::mem::zeroed() }
    }

    /// Points header `i` at `buffer` and at `names[i]`, of which `name_len` bytes count.
    /// The pointers stay valid while `self` is not moved and `buffer` is alive: the caller
    /// makes the system call right after, in the same scope.
    fn point(&mut self, i: usize, buffer: &mut [u8], name_len: libc::socklen_t) {
        self.iovecs[i].iov_base = buffer.as_mut_ptr().cast();
        self.iovecs[i].iov_len = buffer.len();
        let header = &mut self.headers[i].msg_hdr;
        header.msg_name = (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
        header.msg_namelen = name_len;
        header.msg_iov = &mut self.iovecs[i];
        header.msg_iovlen = 1;
    }

    /// Points header `message` at `count` iovecs from `first` (already set) and at
    /// `names[message]`, of which `name_len` bytes count. Valid as long as `point`'s are.
    fn point_run(&mut self, message: usize, first: usize, count: usize, name_len: libc::socklen_t) {
        let header = &mut self.headers[message].msg_hdr;
        header.msg_name = (&mut self.names[message] as *mut libc::sockaddr_storage).cast();
        header.msg_namelen = name_len;
        header.msg_iov = &mut self.iovecs[first];
        header.msg_iovlen = count;
    }

    /// Asks the kernel to cut header `message`'s payload into datagrams of `size` bytes
    /// (`UDP_SEGMENT`), through its control buffer.
    fn segment(&mut self, message: usize, size: u16) {
        let header = &mut self.headers[message].msg_hdr;
        header.msg_control = self.controls[message].as_mut_ptr().cast();
        // SAFETY: `CMSG_SPACE` only computes a size; the control buffer holds it (checked at
        // compile time for a `u32`, larger than our `u16`).
        header.msg_controllen = unsafe { libc::CMSG_SPACE(2) } as usize;
        // SAFETY: the header's control buffer is ours, zeroed and large enough for one
        // control message with two bytes of data; the CMSG macros stay within it.
        unsafe {
            let message = libc::CMSG_FIRSTHDR(header);
            (*message).cmsg_level = libc::SOL_UDP;
            (*message).cmsg_type = UDP_SEGMENT;
            (*message).cmsg_len = libc::CMSG_LEN(2) as usize;
            libc::CMSG_DATA(message).cast::<u16>().write_unaligned(size);
        }
    }

    /// Gives header `i` its control buffer, for the kernel's drop count. Valid as long as
    /// `point`'s pointers are.
    fn expect_control(&mut self, i: usize) {
        let header = &mut self.headers[i].msg_hdr;
        header.msg_control = self.controls[i].as_mut_ptr().cast();
        header.msg_controllen = CONTROL_WORDS * 8;
    }

    /// The `SO_RXQ_OVFL` drop count the kernel attached to datagram `i`, if any.
    fn kernel_drops(&self, i: usize) -> Option<u32> {
        let header = &self.headers[i].msg_hdr;
        // SAFETY: the kernel set `msg_controllen` to the bytes it wrote into our control
        // buffer (still alive, in `self`); the CMSG macros walk only within that length.
        unsafe {
            let mut message = libc::CMSG_FIRSTHDR(header);
            while !message.is_null() {
                if (*message).cmsg_level == libc::SOL_SOCKET
                    && (*message).cmsg_type == libc::SO_RXQ_OVFL
                {
                    // The data is a `u32`, possibly not aligned for one.
                    return Some(libc::CMSG_DATA(message).cast::<u32>().read_unaligned());
                }
                message = libc::CMSG_NXTHDR(header, message);
            }
        }
        None
    }
}

/// Asks the kernel to attach to each received datagram the socket's count of datagrams it
/// dropped for lack of buffer space (`SO_RXQ_OVFL`). Linux only; elsewhere nothing to do.
pub(crate) fn report_kernel_drops(socket: &UdpSocket) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let on: libc::c_int = 1;
        // SAFETY: a valid socket and a pointer to a `c_int` of the length given.
        let result = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RXQ_OVFL,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if result != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = socket;
    Ok(())
}

/// Reads a socket address the kernel wrote.
#[cfg(target_os = "linux")]
fn socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a `sockaddr_in`, which it can contain
            // and is aligned for.
            let v4 =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(v4.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for `sockaddr_in6`.
            let v6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            let ip = std::net::Ipv6Addr::from(v6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(v6.sin6_port),
                v6.sin6_flowinfo,
                v6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Writes `addr` for the kernel; returns its length.
#[cfg(target_os = "linux")]
pub(super) fn write_sockaddr(
    addr: SocketAddr,
    storage: &mut libc::sockaddr_storage,
) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(v4) => {
            // SAFETY: `sockaddr_storage` is large and aligned enough for any address type.
            let out = unsafe {
                &mut *(storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            out.sin_family = libc::AF_INET as libc::sa_family_t;
            out.sin_port = v4.port().to_be();
            out.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(v6) => {
            // SAFETY: as above.
            let out = unsafe {
                &mut *(storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            out.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            out.sin6_port = v6.port().to_be();
            out.sin6_addr.s6_addr = v6.ip().octets();
            out.sin6_flowinfo = v6.flowinfo();
            out.sin6_scope_id = v6.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
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
        let mut recv = RecvBatch::new(slots, 128);
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
            let mut recv = RecvBatch::new(MAX_BATCH, 128);
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
            let mut recv = RecvBatch::new(slots, 100);
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
}
