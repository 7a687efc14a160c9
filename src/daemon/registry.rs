//! The daemon's sockets: slots keyed by generation, and what the daemon keeps per socket and
//! per connection.
//!
//! A slot is reused after its socket closes, and each new socket's endpoint numbers its
//! connections from zero again; so every key that crosses from a handle to the daemon names
//! the slot *and* its generation ([`SocketKey`]), and a stale key matches nothing.

use super::messages::MessageState;
use crate::connection::{ConnKey, ConnShared, Connection};
use crate::core::conn::OutPacket;
use crate::core::delivery::{Delivery, PacketId};
use crate::core::inbox::Inbox;
use crate::core::status::CloseReason;
use crate::listener::{ListenerEvents, ServerEvent};
use crate::protocol::{self, ConnectionId, Endpoint, EndpointCounters};
use mio::net::UdpSocket;
use mio::{Interest, Token};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Names a socket slot of the daemon at one generation: a slot is reused after its socket
/// closes, and the old key then matches nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct SocketKey {
    pub(crate) slot: usize,
    pub(crate) generation: u32,
}

/// What `connect` waits on: the connection, or why it failed.
pub(crate) type ConnectReply = Inbox<Result<Connection, CloseReason>>;

/// What the daemon keeps for one connection that has a handle.
pub(super) struct ConnState {
    pub(super) shared: Arc<ConnShared>,
    /// A packet taken from the outbox that pacing did not let go: it is the next to send.
    pub(super) held: Option<OutPacket>,
    /// The instant of this connection's live pacing entry in the timer heap, if any: one
    /// is enough, and an entry that does not match it is stale.
    pub(super) pacing_at: Option<Instant>,
    /// Since when pacing has held this connection's outbox back without a break (it was
    /// not empty at any flush since): a packet's wait for its pacing slot starts at the
    /// later of this and its own `queued_at`. Time the daemon merely had no CPU is not
    /// pacing, and never expires a packet.
    pub(super) paced_since: Option<Instant>,
    /// Set when the application closed the connection (or the daemon is stopping): its
    /// inbox is finished, and its outbox drains until every packet is sent and resolved, or
    /// until this instant, whichever comes first; then the disconnect goes out.
    pub(super) closing_until: Option<Instant>,
    /// Reported to a listener as `Connected`: its end is reported as `Disconnected`.
    pub(super) announced: bool,
    /// In message mode: the connection's message layer (`pacing_at` then also covers its
    /// timers: one live entry at the earlier of the pacing slot and the layer's deadline).
    pub(super) messages: Option<Box<MessageState>>,
}

impl ConnState {
    /// Whether nothing waits to be sent: the outbox is empty and no packet is held.
    pub(super) fn is_drained(&self) -> bool {
        self.held.is_none()
            && self.shared.core.outbox.is_empty()
            && self.shared.messages.outbox_is_empty()
            && self.messages.as_ref().is_none_or(|m| m.is_flushed())
    }

    /// The connection ended: its handles learn `reason`, and whatever waits to be sent is
    /// reported lost.
    pub(super) fn finish(self, reason: CloseReason, events: Option<&ListenerEvents>) {
        if let Some(events) = events.filter(|_| self.announced) {
            events.push(ServerEvent::Disconnected {
                id: self.shared.id,
                peer: self.shared.peer,
                reason,
            });
        }
        if let Some(packet) = self.held {
            self.shared
                .core
                .notify_delivery(Delivery::Lost(PacketId(packet.id)));
            self.shared.daemon.pool.give(packet.bytes);
        }
        self.shared.finish(reason);
    }

    pub(super) fn new(shared: Arc<ConnShared>) -> Self {
        let messages = shared
            .daemon
            .config
            .messages
            .as_ref()
            .map(MessageState::new);
        Self {
            messages,
            shared,
            held: None,
            pacing_at: None,
            paced_since: None,
            announced: false,
            closing_until: None,
        }
    }
}

/// One UDP socket, its protocol endpoint and its connections.
pub(super) struct SocketState {
    pub(super) key: SocketKey,
    pub(super) socket: UdpSocket,
    pub(super) local: SocketAddr,
    pub(super) endpoint: Endpoint,
    /// Indexed by `ConnectionId::index`.
    pub(super) conns: Vec<Option<ConnState>>,
    pub(super) listener: Option<Inbox<Connection>>,
    /// The listener's event ring (it outlives the listener's handles: events of
    /// connections accepted before are still reported).
    pub(super) events: Option<Arc<ListenerEvents>>,
    pub(super) connecting: Option<(ConnectionId, ConnectReply)>,
    /// The instant of this socket's earliest live entry in the timer heap.
    pub(super) deadline: Option<Instant>,
    /// The kernel's running count of datagrams it dropped on this socket, as last reported.
    pub(super) kernel_drops: u32,
}

impl SocketState {
    pub(super) fn conn(&self, id: ConnectionId) -> Option<&ConnState> {
        let state = self.conns.get(id.index() as usize)?.as_ref()?;
        (state.shared.key.conn == id).then_some(state)
    }

    pub(super) fn conn_mut(&mut self, id: ConnectionId) -> Option<&mut ConnState> {
        let state = self.conns.get_mut(id.index() as usize)?.as_mut()?;
        (state.shared.key.conn == id).then_some(state)
    }

    /// Stores the state of a connection the protocol just established.
    pub(super) fn insert(&mut self, id: ConnectionId, state: ConnState) {
        let index = id.index() as usize;
        if self.conns.len() <= index {
            self.conns.resize_with(index + 1, || None);
        }
        self.conns[index] = Some(state);
    }

    /// Removes connection `id`'s state, if it is the one stored.
    pub(super) fn remove(&mut self, id: ConnectionId) -> Option<ConnState> {
        let entry = self.conns.get_mut(id.index() as usize)?;
        if entry.as_ref()?.shared.key.conn == id {
            entry.take()
        } else {
            None
        }
    }

    /// A client socket whose connection is gone and whose endpoint has nothing left to send
    /// (disconnect copies) can be closed.
    pub(super) fn is_idle_client(&self) -> bool {
        self.listener.is_none()
            && self.connecting.is_none()
            && self.endpoint.connection_count() == 0
            && self.endpoint.next_deadline().is_none()
    }

    /// Every connection on it ends with `reason`, and so do a pending connect and the
    /// listener: nothing will be sent or received on this socket any more.
    pub(super) fn finish_all(&mut self, reason: CloseReason) {
        for state in self.conns.iter_mut().filter_map(Option::take) {
            state.finish(reason, self.events.as_deref());
        }
        if let Some((_, reply)) = self.connecting.take() {
            let _ = reply.push(Err(reason));
        }
        if let Some(accept) = self.listener.take() {
            accept.finish(reason);
            while accept.try_recv().is_ok() {}
        }
    }
}

/// Every socket of the daemon, by slot.
pub(super) struct Sockets {
    mio: mio::Registry,
    slots: Vec<Option<SocketState>>,
    /// The generation each slot's next socket gets (bumped when a socket is released).
    generations: Vec<u32>,
    free: Vec<usize>,
    /// Counters of endpoints whose sockets were closed, so totals never go backwards.
    retired: EndpointCounters,
    /// The keepalive grid every endpoint of the daemon shares
    /// ([`Endpoint::align_keepalives`]): one turn sends the keepalives of many connections.
    keepalive_anchor: Instant,
}

impl Sockets {
    pub(super) fn new(mio: mio::Registry) -> Self {
        Self {
            mio,
            slots: Vec::new(),
            generations: Vec::new(),
            free: Vec::new(),
            retired: EndpointCounters::default(),
            keepalive_anchor: Instant::now(),
        }
    }

    /// Asks the kernel for a receive buffer of `bytes` on the socket (0: leave it). Best
    /// effort: a refusal leaves the system's default, which only costs drops under load.
    pub(super) fn set_receive_buffer(&self, key: SocketKey, bytes: usize) {
        #[cfg(target_os = "linux")]
        if let (Some(state), true) = (self.get(key), bytes > 0) {
            use std::os::fd::AsRawFd;
            let size = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
            // SAFETY: a valid socket and a pointer to a `c_int` of the length given.
            let _ = unsafe {
                libc::setsockopt(
                    state.socket.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUF,
                    (&size as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (key, bytes);
    }

    /// Binds a socket at `addr`, registers it with the poller, and gives it an endpoint. A
    /// shard of a listening port (`shard`: the group's clock anchor) binds with
    /// `SO_REUSEPORT`, and its endpoint counts token time and keepalive ticks from the
    /// anchor, so that every shard of the group reads the others' challenge tokens.
    pub(super) fn bind(
        &mut self,
        addr: SocketAddr,
        config: &protocol::Config,
        secret: [u8; 16],
        shard: Option<Instant>,
    ) -> io::Result<SocketKey> {
        let mut socket = match shard {
            Some(_) => super::shard::bind_reuse_port(addr)?,
            None => UdpSocket::bind(addr)?,
        };
        super::batch::report_kernel_drops(&socket)?;
        let local = socket.local_addr()?;
        let slot = self.free.pop().unwrap_or(self.slots.len());
        if let Err(error) = self
            .mio
            .register(&mut socket, token(slot), Interest::READABLE)
        {
            if slot < self.slots.len() {
                self.free.push(slot);
            }
            return Err(error);
        }
        if slot == self.generations.len() {
            self.generations.push(0);
        }
        let key = SocketKey {
            slot,
            generation: self.generations[slot],
        };
        let mut endpoint = Endpoint::new(config.clone(), secret);
        endpoint.align_keepalives(shard.unwrap_or(self.keepalive_anchor));
        if let Some(anchor) = shard {
            endpoint.set_token_epoch(anchor);
        }
        let state = SocketState {
            key,
            socket,
            local,
            endpoint,
            conns: Vec::new(),
            listener: None,
            events: None,
            connecting: None,
            deadline: None,
            kernel_drops: 0,
        };
        if slot == self.slots.len() {
            self.slots.push(Some(state));
        } else {
            self.slots[slot] = Some(state);
        }
        Ok(key)
    }

    pub(super) fn get(&self, key: SocketKey) -> Option<&SocketState> {
        let socket = self.slots.get(key.slot)?.as_ref()?;
        (socket.key == key).then_some(socket)
    }

    pub(super) fn get_mut(&mut self, key: SocketKey) -> Option<&mut SocketState> {
        let socket = self.slots.get_mut(key.slot)?.as_mut()?;
        (socket.key == key).then_some(socket)
    }

    /// Whatever socket is in `slot` now (poller events name slots, not generations).
    pub(super) fn at(&self, slot: usize) -> Option<&SocketState> {
        self.slots.get(slot)?.as_ref()
    }

    pub(super) fn at_mut(&mut self, slot: usize) -> Option<&mut SocketState> {
        self.slots.get_mut(slot)?.as_mut()
    }

    pub(super) fn slots(&self) -> usize {
        self.slots.len()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &SocketState> {
        self.slots.iter().flatten()
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut SocketState> {
        self.slots.iter_mut().flatten()
    }

    /// Counters of every endpoint, open or closed.
    pub(super) fn endpoint_counters(&self) -> EndpointCounters {
        let mut total = self.retired;
        for socket in self.iter() {
            total += socket.endpoint.counters();
        }
        total
    }

    /// Closes the socket in `slot`: every key naming it now matches nothing. Returns it.
    pub(super) fn release(&mut self, slot: usize) -> Option<SocketState> {
        let mut socket = self.slots.get_mut(slot)?.take()?;
        let _ = self.mio.deregister(&mut socket.socket);
        self.retired += socket.endpoint.counters();
        self.generations[slot] = self.generations[slot].wrapping_add(1);
        self.free.push(slot);
        Some(socket)
    }
}

/// The poller token of socket slot `slot` (token 0 is the waker's).
pub(super) fn token(slot: usize) -> Token {
    Token(slot + 1)
}

/// The key under which the daemon keeps connection `conn` of `socket`.
pub(super) fn conn_key(socket: &SocketState, conn: ConnectionId) -> ConnKey {
    ConnKey {
        socket: socket.key,
        conn,
    }
}
