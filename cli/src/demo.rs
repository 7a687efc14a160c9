//! `gudp demo`: watch congestion avoidance work on a conditioned loopback link.
//!
//! One daemon holds both the server and the client socket, and its link conditioner delays
//! every outgoing datagram, so the round trip is twice the configured latency. The schedule
//! (for the default 20 s): 50 ms round trip until 11 s, then 400 ms (over the 250 ms
//! threshold: bad mode, paced down to 30 packets/s) until 14 s, then 50 ms again: good mode
//! returns once conditions have been good for the penalty time. The penalty starts at 4 s and
//! halves for every 10 s of good mode, so after the first 11 s it is 2 s (Fiedler's rules;
//! the first drop to bad never doubles it, a relapse within 10 s of returning to good does).

use crate::chart::ChartFile;
use crate::meter;
use crate::peers::{self, EchoCounts};
use crate::stop::{self, say};
use gudp::conditioner::LinkConfig;
use gudp::{CongestionMode, Daemon, DaemonConfig, LinkSetup};
use std::path::PathBuf;
use std::process::ExitCode;
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

pub fn run(duration: Duration, rate: u32, chart: Option<PathBuf>) -> Result<ExitCode, String> {
    let mut config = DaemonConfig::default();
    config.link = Some(LinkSetup::new(link(25), 2008));
    let chart = chart.map(ChartFile::create).transpose()?;
    let daemon = Daemon::spawn(config).map_err(|e| format!("cannot start the daemon: {e}"))?;
    let listener = daemon
        .listen(([127, 0, 0, 1], 0).into())
        .map_err(|e| format!("cannot listen on loopback: {e}"))?;
    peers::spawn_echo_server(listener.clone(), Arc::new(EchoCounts::default()), false);
    let conn = daemon
        .connect(listener.local_addr())
        .map_err(|e| format!("cannot connect to the demo server: {e}"))?;

    let seconds = duration.as_secs();
    let (slow_from, slow_until) = (seconds * 11 / 20, seconds * 14 / 20);
    say!(
        "gudp demo: client {} -> server {} through a link conditioner",
        peers::visible_local(&conn),
        conn.peer_addr()
    );
    say!(
        "round trip 50 ms, then 400 ms from {slow_from} s (over the 250 ms threshold: bad \
         mode), then 50 ms from {slow_until} s; 1 % loss; {rate} packets/s of 64 bytes"
    );
    let mut one_way_ms = 25;
    let run = peers::run_client(&conn, rate, 64, duration, |second| {
        // By range, not by exact second: a loop starved of CPU may skip a line.
        let wanted = if (slow_from..slow_until).contains(&second) {
            200
        } else {
            25
        };
        if wanted != one_way_ms {
            one_way_ms = wanted;
            daemon.set_link(link(one_way_ms));
        }
    })?;
    say!("{}", meter::summary(&run.totals, run.elapsed));
    let path: Vec<&str> = run
        .chart
        .mode_path()
        .iter()
        .map(|mode| match mode {
            CongestionMode::Good => "good",
            CongestionMode::Bad => "bad",
        })
        .collect();
    say!("congestion modes seen: {}", path.join(" -> "));
    let counters = daemon.counters();
    say!(
        "daemon: {} datagrams in, {} out; every datagram accounted for: {}",
        counters.datagrams_received,
        counters.datagrams_sent,
        counters.unaccounted() == 0
    );
    if let Some(chart) = chart {
        let title = format!(
            "gudp demo: round trip 50 ms, 400 ms from {slow_from} s, 50 ms from {slow_until} s; \
             {rate} packets/s"
        );
        chart.write(&run.chart, &title, run.elapsed.as_secs_f64())?;
    }
    Ok(match run.end {
        peers::End::Interrupted => ExitCode::from(stop::INTERRUPTED_EXIT),
        _ => ExitCode::SUCCESS,
    })
}
