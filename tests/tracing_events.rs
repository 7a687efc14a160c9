//! With the `tracing` feature, the daemon reports lifecycle points and drop reasons as
//! `tracing` events under the target `gudp` (`cargo test --features tracing --test
//! tracing_events`; CI runs it). Without the feature this file is empty.
#![cfg(feature = "tracing")]

mod common;

use common::{loopback, wait_for, watchdog};
use gudp::{CloseReason, Daemon, DaemonConfig};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Keeps the message of every `gudp` event.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

struct Message<'a>(&'a mut String);

impl Visit for Message<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            *self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() == "gudp"
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut message = String::new();
        event.record(&mut Message(&mut message));
        self.0.lock().unwrap().push(message);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Recorder {
    fn count(&self, message: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|m| *m == message)
            .count()
    }
}

#[test]
fn lifecycle_and_drops_are_traced() {
    let _watchdog = watchdog("tracing events", Duration::from_secs(30));
    let recorder = Recorder::default();
    tracing::subscriber::set_global_default(recorder.clone()).unwrap();
    let daemon = Daemon::spawn(DaemonConfig::default()).unwrap();
    let listener = daemon.listen(loopback()).unwrap();
    let (client, server) = common::connect(&daemon, &listener);
    // A stranger's garbage is dropped by the protocol, with its reason.
    let stranger = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    stranger
        .send_to(b"not gudp", listener.local_addr())
        .unwrap();
    wait_for(Duration::from_secs(5), "the drop event", || {
        recorder.count("datagram dropped by the protocol") == 1
    });
    client.close();
    assert_eq!(server.recv(), Err(CloseReason::ClosedByPeer));
    wait_for(Duration::from_secs(5), "both ends' events", || {
        recorder.count("connection ended") == 2
    });
    assert_eq!(recorder.count("connection established"), 2);
    assert_eq!(recorder.count("closing: sending what was accepted"), 1);
    drop(daemon);
    assert_eq!(recorder.count("daemon stopped"), 1);
}
