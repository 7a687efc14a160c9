//! Linux's side of the batches: the scatter/gather headers of `recvmmsg` / `sendmmsg`, their
//! control messages (`SO_RXQ_OVFL`, `UDP_SEGMENT`, `UDP_GRO`) and socket addresses in C form.

use super::MAX_BATCH;
use mio::net::UdpSocket;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

/// `UDP_SEGMENT` (`linux/udp.h`; not in the libc crate for glibc targets): the segment size of
/// a segmentation-offload send, as a `SOL_UDP` control message carrying a `u16`.
const UDP_SEGMENT: libc::c_int = 103;

/// `UDP_GRO` (`linux/udp.h`; likewise missing): as a `SOL_UDP` socket option, lets the kernel
/// hand a run of datagrams of one flow to one receive as a single buffer; as a control message
/// on such a receive, the size of the datagrams it holds (an `int`; the last may be shorter).
const UDP_GRO: libc::c_int = 104;

/// The kernel's limits on one segmented send: 64 segments (`UDP_MAX_SEGMENTS` before Linux
/// 6.9), and one IPv4 UDP payload in all.
pub(super) const MAX_SEGMENTS: usize = 64;
pub(super) const MAX_SEGMENTED_BYTES: usize = 65_000;

/// The kernel's scatter/gather headers for one `recvmmsg` / `sendmmsg` call, built on the
/// stack just before it.
pub(super) struct MmsgHeaders {
    pub(super) names: [libc::sockaddr_storage; MAX_BATCH],
    pub(super) iovecs: [libc::iovec; MAX_BATCH],
    pub(super) headers: [libc::mmsghdr; MAX_BATCH],
    /// Room per message for the control messages a receive brings (`SO_RXQ_OVFL` and
    /// `UDP_GRO`) or a send carries (`UDP_SEGMENT`), aligned as `cmsghdr` needs.
    controls: [[u64; CONTROL_WORDS]; MAX_BATCH],
}

/// `u64` words per message's control buffer: enough for two control messages carrying a
/// `u32` each (48 bytes on 64-bit Linux), checked at compile time below.
const CONTROL_WORDS: usize = 6;

// SAFETY: `CMSG_SPACE` only computes a size.
const _: () = assert!(
    2 * unsafe { libc::CMSG_SPACE(std::mem::size_of::<u32>() as libc::c_uint) } as usize
        <= CONTROL_WORDS * 8
);

impl MmsgHeaders {
    pub(super) fn new() -> Self {
        // SAFETY: all-zero bytes are a valid value for these plain C structs (null pointers,
        // zero lengths, family AF_UNSPEC).
        unsafe { std::mem::zeroed() }
    }

    /// Points header `i` at `buffer` and at `names[i]`, of which `name_len` bytes count.
    /// The pointers stay valid while `self` is not moved and `buffer` is alive: the caller
    /// makes the system call right after, in the same scope.
    pub(super) fn point(&mut self, i: usize, buffer: &mut [u8], name_len: libc::socklen_t) {
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
    pub(super) fn point_run(
        &mut self,
        message: usize,
        first: usize,
        count: usize,
        name_len: libc::socklen_t,
    ) {
        let header = &mut self.headers[message].msg_hdr;
        header.msg_name = (&mut self.names[message] as *mut libc::sockaddr_storage).cast();
        header.msg_namelen = name_len;
        header.msg_iov = &mut self.iovecs[first];
        header.msg_iovlen = count;
    }

    /// Asks the kernel to cut header `message`'s payload into datagrams of `size` bytes
    /// (`UDP_SEGMENT`), through its control buffer.
    pub(super) fn segment(&mut self, message: usize, size: u16) {
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
    pub(super) fn expect_control(&mut self, i: usize) {
        let header = &mut self.headers[i].msg_hdr;
        header.msg_control = self.controls[i].as_mut_ptr().cast();
        header.msg_controllen = CONTROL_WORDS * 8;
    }

    /// What the kernel attached to received message `i`: the socket's `SO_RXQ_OVFL` drop
    /// count, and the `UDP_GRO` size of the datagrams the message holds, each if present.
    pub(super) fn received_controls(&self, i: usize) -> (Option<u32>, Option<usize>) {
        let header = &self.headers[i].msg_hdr;
        let (mut drops, mut segment) = (None, None);
        // SAFETY: the kernel set `msg_controllen` to the bytes it wrote into our control
        // buffer (still alive, in `self`); the CMSG macros walk only within that length.
        unsafe {
            let mut message = libc::CMSG_FIRSTHDR(header);
            while !message.is_null() {
                // Both carry 32 bits, possibly not aligned for them.
                let data = || libc::CMSG_DATA(message).cast::<u32>().read_unaligned();
                match ((*message).cmsg_level, (*message).cmsg_type) {
                    (libc::SOL_SOCKET, libc::SO_RXQ_OVFL) => drops = Some(data()),
                    (libc::SOL_UDP, UDP_GRO) => segment = Some(data() as usize),
                    _ => {}
                }
                message = libc::CMSG_NXTHDR(header, message);
            }
        }
        (drops, segment)
    }
}

/// Sets an `int` socket option to 1.
fn switch_on(socket: &UdpSocket, level: libc::c_int, option: libc::c_int) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid socket and a pointer to a `c_int` of the length given.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            option,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `SO_RXQ_OVFL`: the socket's drop count on every received datagram.
pub(super) fn report_kernel_drops(socket: &UdpSocket) -> io::Result<()> {
    switch_on(socket, libc::SOL_SOCKET, libc::SO_RXQ_OVFL)
}

/// `UDP_GRO`: coalesced receives (Linux 5.0 and later; an error on older kernels).
pub(super) fn coalesce_receives(socket: &UdpSocket) -> io::Result<()> {
    switch_on(socket, libc::SOL_UDP, UDP_GRO)
}

/// Reads a socket address the kernel wrote.
pub(super) fn socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
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
pub(in crate::daemon) fn write_sockaddr(
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
