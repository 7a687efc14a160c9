//! Receiving by leading: a consumer about to block in `recv` on a spawned daemon waits for
//! its connection's socket itself, so the kernel wakes it when the datagram arrives (as it
//! wakes a thread blocked in a raw UDP `recv`), and it reads the socket for the event loop
//! instead of waiting for the daemon thread to read it and then wake it: one thread hand-off
//! per received packet instead of two.
//!
//! The daemon thread stays the socket's owner. The consumer waits with `ppoll`, which takes
//! nothing from the loop's epoll set: epoll re-checks a socket's readiness when it collects
//! an edge, so the loop reports the arrival unless the socket was drained first. Hence:
//! - a consumer that cannot take the driver lock just parks on the inbox: the socket is
//!   still readable, so the loop (or the lock holder's turn) reads it and the push wakes the
//!   parked consumer;
//! - a consumer that read the socket leaves the loop asleep, so it wakes the loop if its
//!   read armed a timer earlier than the loop's sleep ends (`DaemonShared::lead_read`);
//! - what the consumer must be told while it waits outside the parker (an item the loop
//!   delivered first, a finish) comes through the connection's eventfd, under the lead
//!   slot's protocol (`core::inbox::LeadSlot`, model-checked in `loom-tests/tests/lead.rs`).
//!
//! One consumer per connection leads at a time; the others park on the inbox. A manual
//! daemon keeps the old path: nobody else would read what a waiting consumer waits for. So
//! does every connection of a socket that carries two or more (a listener's): there every
//! datagram would wake every consumer waiting on the socket, in the kernel even when another
//! drained it first (a thundering herd), where the daemon thread wakes exactly the one
//! consumer it fed. The daemon stops them when the second connection arrives
//! (`Driver::connected`), and signals any that waits, so it leaves the socket at once.

use super::ConnShared;
use crate::core::inbox::{RecvTimeoutError, TryRecvError};
use crate::core::pool::Packet;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Instant;

/// What a leading consumer waits on: its connection's socket and its eventfd.
pub(crate) struct LeadWait {
    socket: RawFd,
    signal: OwnedFd,
}

impl LeadWait {
    pub(super) fn new(socket: RawFd) -> io::Result<Self> {
        // SAFETY: eventfd has no memory arguments; a non-negative result is a new fd we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nobody else.
        let signal = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { socket, signal })
    }

    /// Daemon side: ends the wait (a signal sent before it begins ends it at once).
    pub(crate) fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an eventfd this struct owns. A full
        // counter (EAGAIN) means it is signalled already.
        let _ = unsafe {
            libc::write(
                self.signal.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
    }

    /// Clears a signal, so the next wait sleeps (a signal after this is kept for it).
    fn drain(&self) {
        let mut count: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64 from an eventfd this struct owns.
        let _ = unsafe {
            libc::read(
                self.signal.as_raw_fd(),
                (&mut count as *mut u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
    }

    /// Sleeps until the socket is readable, a signal, or `deadline`.
    fn wait(&self, deadline: Option<Instant>) -> Woke {
        let mut fds = [
            libc::pollfd {
                fd: self.socket,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.signal.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let timeout = match deadline {
            None => None,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Woke::TimedOut;
                }
                Some(libc::timespec {
                    tv_sec: libc::time_t::try_from(left.as_secs()).unwrap_or(libc::time_t::MAX),
                    tv_nsec: left.subsec_nanos() as libc::c_long,
                })
            }
        };
        let timeout_ptr = timeout
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `fds` is a live array of two pollfds; the timeout, if any, outlives the call.
        let ready = unsafe { libc::ppoll(fds.as_mut_ptr(), 2, timeout_ptr, std::ptr::null()) };
        if ready < 0 {
            return Woke::Signalled; // EINTR: look again
        }
        if ready == 0 {
            return Woke::TimedOut;
        }
        if fds[0].revents & libc::POLLNVAL != 0 {
            return Woke::SocketGone;
        }
        if fds[0].revents != 0 {
            return Woke::Readable;
        }
        Woke::Signalled
    }
}

enum Woke {
    Readable,
    Signalled,
    TimedOut,
    /// The socket's fd was closed: wait on the inbox instead.
    SocketGone,
}

/// `recv` by leading: `None` if this consumer cannot lead (a manual daemon, another consumer
/// leading, the driver busy), and then the caller parks on the inbox as before.
pub(super) fn recv(
    shared: &Arc<ConnShared>,
    deadline: Option<Instant>,
) -> Option<Result<Packet, RecvTimeoutError>> {
    let inbox = &shared.core.inbox;
    let lead = shared.lead_wait()?;
    loop {
        if shared.is_lead_off() {
            return None; // the socket became shared while we waited (`ConnShared::stop_leading`)
        }
        match inbox.try_recv() {
            Ok(packet) => return Some(Ok(packet)),
            Err(TryRecvError::Closed(reason)) => {
                return Some(Err(RecvTimeoutError::Closed(reason)))
            }
            Err(TryRecvError::Empty) => {}
        }
        if !shared.lead.claim() {
            return None; // another consumer leads: park on the inbox, its pushes wake us
        }
        // The re-check after claiming (Dekker with `ConnShared::signal_leader`, which also
        // follows `stop_leading`'s store: a stop that came after the look above is seen
        // here, or it signals the wait below).
        if !inbox.is_empty() || inbox.status().is_finished() || shared.is_lead_off() {
            shared.lead.release();
            continue;
        }
        let woke = lead.wait(deadline);
        shared.lead.release();
        lead.drain();
        match woke {
            Woke::Signalled => {}
            Woke::Readable => {
                if !shared.daemon.lead_read(shared.key.socket) {
                    return None; // the loop holds the driver: it reads, and its push wakes us
                }
            }
            Woke::SocketGone => return None,
            Woke::TimedOut => {
                // The last look, as the parker's timeout takes.
                return Some(match inbox.try_recv() {
                    Ok(packet) => Ok(packet),
                    Err(TryRecvError::Closed(reason)) => Err(RecvTimeoutError::Closed(reason)),
                    Err(TryRecvError::Empty) => Err(RecvTimeoutError::Timeout),
                });
            }
        }
    }
}
