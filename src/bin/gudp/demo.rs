//! `gudp demo`: watch congestion avoidance work on a conditioned loopback link.
//!
//! One daemon holds both the server and the client socket, and its link conditioner delays
//! every outgoing datagram, so the round trip is twice the configured latency. The schedule
//! (for the default 20 s): 50 ms round trip until 11 s, then 400 ms (over the 250 ms
//! threshold: bad mode, paced down to 30 packets/s) until 14 s, then 50 ms again: good mode
//! returns once conditions have been good for the penalty time. The penalty starts at 4 s and
//! halves for every 10 s of good mode, so after the first 11 s it is 2 s (Fiedler's rules;
//! the first drop to bad never doubles it, a relapse within 10 s of returning to good does).

use crate::meter;
use crate::peers::{self, EchoCounts};
use gudp::conditioner::LinkConfig;
use gudp::{CongestionMode, Daemon, DaemonConfig, LinkSetup};
use std::sync::Arc;
use std::time::Duration;

fn link(one_way_ms: u64) -> LinkConfig {
    {
        let mut link = LinkConfig::default();
        link.latency = Duration::from_millis(one_way_ms);
        link.jitter = Duration::from_millis(one_way_ms / 10);
        link.loss_percent = 1.0;
        link.duplicate_percent = 0.5;
        link
    }
}

pub fn run(duration: Duration, rate: u32) -> Result<(), String> {
    let mut config = DaemonConfig::default();
    config.link = Some(LinkSetup::new(link(25), 2008));
    let daemon = Daemon::spawn(config).map_err(|e| format!("cannot start the daemon: {e}"))?;
    let listener = daemon
        .listen(([127, 0, 0, 1], 0).into())
        .map_err(|e| format!("cannot listen on loopback: {e}"))?;
    peers::spawn_echo_server(listener.clone(), Arc::new(EchoCounts::default()));
    let conn = daemon
        .connect(listener.local_addr())
        .map_err(|e| format!("cannot connect to the demo server: {e}"))?;

    let seconds = duration.as_secs();
    let (slow_from, slow_until) = (seconds * 11 / 20, seconds * 14 / 20);
    println!(
        "gudp demo: client {} -> server {} through a link conditioner",
        conn.local_addr(),
        conn.peer_addr()
    );
    println!(
        "round trip 50 ms, then 400 ms from {slow_from} s (over the 250 ms threshold: bad \
         mode), then 50 ms from {slow_until} s; 1 % loss; {rate} packets/s of 64 bytes"
    );
    let mut modes_seen = Vec::new();
    let totals = peers::run_client(&conn, rate, 64, duration, |second| {
        let mode = conn.status().congestion();
        if modes_seen.last() != Some(&mode) {
            modes_seen.push(mode);
        }
        if second == slow_from {
            daemon.set_link(link(200));
        } else if second == slow_until {
            daemon.set_link(link(25));
        }
    })?;
    println!("{}", meter::summary(&totals, duration));
    let path: Vec<&str> = modes_seen
        .iter()
        .map(|mode| match mode {
            CongestionMode::Good => "good",
            CongestionMode::Bad => "bad",
        })
        .collect();
    println!("congestion modes seen: {}", path.join(" -> "));
    let counters = daemon.counters();
    println!(
        "daemon: {} datagrams in, {} out; every datagram accounted for: {}",
        counters.datagrams_received,
        counters.datagrams_sent,
        counters.unaccounted() == 0
    );
    Ok(())
}
