//! An endpoint's connections: slots with generations, found by id or by peer address.
//!
//! A slot is reused after its connection ends, with its generation bumped, so the id of an
//! ended connection never finds the one that took its slot.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::connection::Connection;
use super::ConnectionId;

#[derive(Debug)]
struct Slot {
    generation: u32,
    conn: Option<Connection>,
}

#[derive(Debug, Default)]
pub(crate) struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
    by_addr: HashMap<SocketAddr, ConnectionId>,
}

impl Table {
    /// Live connections (connecting or connected).
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    pub(crate) fn by_addr(&self, peer: SocketAddr) -> Option<ConnectionId> {
        self.by_addr.get(&peer).copied()
    }

    pub(crate) fn get(&self, id: ConnectionId) -> Option<&Connection> {
        let slot = self.slots.get(id.index as usize)?;
        (slot.generation == id.generation)
            .then_some(slot.conn.as_ref())
            .flatten()
    }

    pub(crate) fn get_mut(&mut self, id: ConnectionId) -> Option<&mut Connection> {
        let slot = self.slots.get_mut(id.index as usize)?;
        (slot.generation == id.generation)
            .then_some(slot.conn.as_mut())
            .flatten()
    }

    /// Whether the timer entry `(index, generation, token)` is its connection's live one.
    pub(crate) fn is_timer_live(&self, index: u32, generation: u32, token: u32) -> bool {
        self.get(ConnectionId { index, generation })
            .is_some_and(|conn| conn.is_timer_live(token))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Connection> {
        self.slots.iter().filter_map(|slot| slot.conn.as_ref())
    }

    pub(crate) fn insert(&mut self, conn: Connection) -> ConnectionId {
        let peer = conn.peer;
        let id = match self.free.pop() {
            Some(index) => {
                let slot = &mut self.slots[index as usize];
                slot.conn = Some(conn);
                ConnectionId {
                    index,
                    generation: slot.generation,
                }
            }
            None => {
                let index = u32::try_from(self.slots.len()).expect("under max_connections");
                self.slots.push(Slot {
                    generation: 0,
                    conn: Some(conn),
                });
                ConnectionId {
                    index,
                    generation: 0,
                }
            }
        };
        self.by_addr.insert(peer, id);
        self.live += 1;
        id
    }

    /// Removes connection `id`: its slot's generation moves on, so `id` finds nothing.
    pub(crate) fn remove(&mut self, id: ConnectionId) -> Option<Connection> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let conn = slot.conn.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        self.by_addr.remove(&conn.peer);
        self.live -= 1;
        Some(conn)
    }
}
