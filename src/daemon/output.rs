//! Where the daemon's datagrams go: the send batch (or the link conditioner in front of it),
//! the timer heap, and the counters of what was sent.
//!
//! One value owns all four, so the driver lends out one `&mut Output` beside the socket it
//! works on instead of splitting its own borrows.

use super::batch::{Flushed, SendBatch};
use super::registry::{SocketState, Sockets};
use super::timers::{Timer, Timers};
use super::DaemonCounters;
use crate::conditioner::{LinkConditioner, LinkConfig};
use crate::protocol::Transmit;
use crate::trace::event;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

/// The link conditioner in front of every socket's outgoing datagrams.
pub(super) struct Link {
    conditioner: LinkConditioner,
    /// Which socket sends a datagram leaving the conditioner, by its local address.
    sockets: HashMap<SocketAddr, usize>,
}

pub(super) struct Output {
    /// Datagrams encoded for the socket being worked on, sent by one system call when full
    /// and when that socket's work ends ([`Output::flush`]).
    pub(super) send_batch: SendBatch,
    pub(super) link: Option<Link>,
    pub(super) timers: Timers,
    pub(super) counters: DaemonCounters,
}

impl Output {
    pub(super) fn new(send_batch: SendBatch, link: Option<(LinkConfig, u64)>) -> Self {
        Self {
            send_batch,
            link: link.map(|(config, seed)| Link {
                conditioner: LinkConditioner::new(config, seed),
                sockets: HashMap::new(),
            }),
            timers: Timers::default(),
            counters: DaemonCounters::default(),
        }
    }

    /// The buffer the next datagram is encoded into.
    pub(super) fn slot(&mut self) -> &mut [u8] {
        self.send_batch.slot()
    }

    /// Sends the datagram just encoded into [`Output::slot`] from `socket`: into the link
    /// conditioner if there is one, else into the batch, which goes out whenever it fills.
    pub(super) fn transmit(&mut self, socket: &SocketState, now: Instant, transmit: Transmit) {
        match &mut self.link {
            Some(link) => {
                let bytes = &self.send_batch.slot()[..transmit.len];
                link.conditioner
                    .send(now, socket.local, transmit.destination, bytes);
                if let Some(at) = link.conditioner.next_delivery() {
                    self.timers.arm_link(at);
                }
            }
            None => {
                let flushed =
                    self.send_batch
                        .commit(transmit.destination, transmit.len, &socket.socket);
                self.counters.add_flushed(flushed);
            }
        }
    }

    /// Encodes every datagram `socket`'s endpoint has queued.
    pub(super) fn drain_endpoint(&mut self, socket: &mut SocketState, now: Instant) {
        while let Some(transmit) = socket.endpoint.poll_transmit(now, self.send_batch.slot()) {
            self.transmit(socket, now, transmit);
        }
    }

    /// Sends what the batch holds for `socket`.
    pub(super) fn flush(&mut self, socket: &SocketState) {
        let flushed = self.send_batch.flush(&socket.socket);
        self.counters.add_flushed(flushed);
    }

    /// Straight to the socket, past any link conditioner (at shutdown: nothing will deliver
    /// later).
    pub(super) fn drain_endpoint_now(&mut self, socket: &mut SocketState, now: Instant) {
        while let Some(transmit) = socket.endpoint.poll_transmit(now, self.send_batch.slot()) {
            let flushed =
                self.send_batch
                    .commit(transmit.destination, transmit.len, &socket.socket);
            self.counters.add_flushed(flushed);
        }
        self.flush(socket);
    }

    /// A new socket: the conditioner must know which socket sends from `local`.
    pub(super) fn add_socket(&mut self, local: SocketAddr, slot: usize) {
        if let Some(link) = &mut self.link {
            link.sockets.insert(local, slot);
        }
    }

    pub(super) fn remove_socket(&mut self, local: SocketAddr) {
        if let Some(link) = &mut self.link {
            link.sockets.remove(&local);
        }
    }

    /// Changes the conditioner's settings; `false` if there is none.
    pub(super) fn set_link(&mut self, config: LinkConfig) -> bool {
        match &mut self.link {
            Some(link) => {
                link.conditioner.set_config(config);
                true
            }
            None => false,
        }
    }

    /// Sends the datagrams the link conditioner releases by `now`.
    pub(super) fn deliver_link(&mut self, sockets: &Sockets, now: Instant) {
        let Some(link) = &mut self.link else {
            return;
        };
        while let Some(delivery) = link.conditioner.poll_deliver(now) {
            let Some(socket) = link
                .sockets
                .get(&delivery.from)
                .and_then(|&slot| sockets.at(slot))
            else {
                self.counters.link_orphans += 1; // its socket closed while it was in flight
                event!(debug, from = %delivery.from, "conditioned datagram dropped: its socket closed");
                continue;
            };
            let result = socket
                .socket
                .send_to(&delivery.data, delivery.to)
                .map(|_| ());
            let mut flushed = Flushed::default();
            flushed.record(result);
            self.counters.add_flushed(flushed);
        }
        if let Some(at) = link.conditioner.next_delivery() {
            self.timers.arm_link(at);
        }
    }

    /// Link entries in the timer heap, and datagrams in the conditioner.
    #[cfg(test)]
    pub(super) fn link_load(&self) -> (usize, usize) {
        let in_flight = self.link.as_ref().map(|l| l.conditioner.in_flight());
        (self.timers.link_entries(), in_flight.unwrap_or(0))
    }

    /// Pushes a timer entry (not for the link: see [`Timers::arm_link`]).
    pub(super) fn push_timer(&mut self, at: Instant, timer: Timer) {
        self.timers.push(at, timer);
    }
}
