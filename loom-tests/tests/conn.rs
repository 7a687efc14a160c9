//! Proofs for a connection's shared state (`gudp::internals::conn::ConnCore`): the
//! enqueue / finish handshake and the delivery notifications. Both modes: the outbox under
//! them differs (`--features gudp/naive-mutex`).
#![cfg(loom)]

use gudp::internals::conn::{ConnCore, Payload, Sizes, Wait};
use gudp::internals::delivery::{Delivery, PacketId};
use gudp::internals::pool::BufferPool;
use gudp::internals::status::CloseReason;
use gudp::SendError;
use loom::sync::Arc;
use loom::thread;
use loom_tests::check;

fn conn(outbox: usize, deliveries: usize) -> Arc<ConnCore> {
    let sizes = Sizes {
        inbox: 1,
        outbox,
        deliveries,
        max_payload: 8,
    };
    Arc::new(ConnCore::new(sizes, BufferPool::new(4, 8)))
}

/// **Property:** a send racing the daemon's `finish` never strands its packet: if the send
/// returned an id, that id gets exactly one notification (`Lost`: the connection ended
/// before the packet could go out), and the outbox ends empty; if the send was refused, it
/// was told the close reason.
///
/// **Why it holds:** the Dekker handshake in `ConnCore`. `finish` sets `outbox_closed`,
/// fences (`SeqCst`), then drains; `enqueue` pushes, fences, then reads `outbox_closed` and
/// drains if it is set. The fences are totally ordered: if `finish`'s comes first, the
/// sender reads `true` and drains its own packet; if the sender's comes first, `finish`'s
/// drain sees the push. Both may drain, but each pop takes a different packet, so nothing
/// is reported twice.
#[test]
fn enqueue_racing_finish() {
    check("conn::enqueue_racing_finish", 3, || {
        let conn = conn(1, 2);
        let sender = {
            let conn = conn.clone();
            thread::spawn(move || conn.enqueue(Payload::Borrowed(b"p"), Wait::Never, || {}))
        };
        conn.finish(CloseReason::ClosedByPeer);
        let sent = sender.join().unwrap();
        let notified: Vec<Delivery> = std::iter::from_fn(|| conn.poll_delivery()).collect();
        match sent {
            Ok(id) => assert_eq!(notified, [Delivery::Lost(id)], "stranded or reported twice"),
            Err(error) => {
                assert_eq!(error, SendError::Closed(CloseReason::ClosedByPeer));
                assert_eq!(notified, []);
            }
        }
        assert_eq!(conn.outbox.len(), 0, "a packet stranded in the outbox");
    });
}

/// **Property:** each notification is delivered exactly once: two producers (the daemon
/// reporting an ack, a sender's drain reporting a loss) and a polling user thread, on a ring
/// of one slot; every notification is polled once, or, if the ring was full, counted as
/// dropped (`ConnectionStats::dropped_deliveries`), never both and never twice.
///
/// **Why it holds:** the delivery ring's slot protocol (invariant 1 in `docs/concurrency.md`)
/// gives each pushed value to exactly one pop; `notify_delivery` counts a push only if the
/// ring handed the value back (full), and a value handed back was not stored.
#[test]
fn each_delivery_notified_once() {
    check("conn::each_delivery_notified_once", 3, || {
        let conn = conn(1, 1);
        let producers: Vec<_> = [Delivery::Acked(PacketId(0)), Delivery::Lost(PacketId(1))]
            .into_iter()
            .map(|delivery| {
                let conn = conn.clone();
                thread::spawn(move || conn.notify_delivery(delivery))
            })
            .collect();
        let poller = {
            let conn = conn.clone();
            thread::spawn(move || conn.poll_delivery())
        };
        for producer in producers {
            producer.join().unwrap();
        }
        let mut polled: Vec<PacketId> =
            poller.join().unwrap().map(|d| d.id()).into_iter().collect();
        polled.extend(std::iter::from_fn(|| conn.poll_delivery()).map(|d| d.id()));
        let mut unique = polled.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            polled.len(),
            "a notification polled twice: {polled:?}"
        );
        assert_eq!(
            polled.len() as u64 + conn.dropped_deliveries(),
            2,
            "polled {polled:?}, dropped {}",
            conn.dropped_deliveries()
        );
    });
}
