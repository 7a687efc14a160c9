//! The concurrent core: everything user threads share with the daemon, and nothing else.
//!
//! Sockets, mio and protocol state stay on the daemon; what crosses threads lives here, built
//! only from the [`sync`] facade, so that with `--cfg loom` every atomic, lock and wait in it
//! is loom's and the whole of it is model-checked (`loom-tests/`, bounds and counts in
//! `docs/proofs.md`, invariants in `docs/concurrency.md`):
//!
//! - [`ring`]: the lock-free MPMC ring; [`status`]: the status word; [`parker`]: the event
//!   count that lets a thread sleep on either;
//! - [`inbox`]: a connection's read buffer; [`outbox`]: its write buffer;
//! - [`pool`]: the recycled payload buffers; [`delivery`]: what a sender is told per packet;
//! - [`conn`]: the per-connection state and its protocols (enqueue against finish, the
//!   `scheduled` ready flag, delivery notifications);
//! - [`messages`]: a message-mode connection's budgets, outbox, inbox and events, and their
//!   protocols (reserve against release, push against finish, starved against take);
//! - [`ready`]: the daemon's ready list behind its [`wake_gate`].
//!
//! Not public: the crate root re-exports the few types users see (`CloseReason`, `Status`,
//! `PacketId`, `Delivery`, `Packet`, the receive errors). The `internals` cargo feature
//! re-exports this module as `gudp::internals` for `loom-tests/` and the benches alone; it is
//! not part of the API.

pub mod conn;
pub mod delivery;
pub mod inbox;
pub mod messages;
pub mod outbox;
pub mod parker;
pub mod pool;
pub mod ready;
pub mod ring;
pub mod status;
pub mod sync;
pub mod wake_gate;
