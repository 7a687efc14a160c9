//! `gudp demo`: watch congestion avoidance work on a conditioned loopback link.
//!
//! One daemon holds both the server and the client socket, and its link conditioner delays
//! every outgoing datagram, so the round trip is twice the configured latency. The schedule
//! (for the default 20 s): 50 ms round trip until 11 s, then 400 ms (over the 250 ms
//! threshold: bad mode, paced down to 30 packets/s) until 14 s, then 50 ms again: good mode
//! returns once conditions have been good for the penalty time. The penalty starts at 4 s and
//! halves for every 10 s of good mode, so after the first 11 s it is 2 s (Fiedler's rules;
//! the first drop to bad never doubles it, a relapse within 10 s of returning to good does).
//!
//! `gudp demo --messages` shows the message layer instead: a reliable-ordered stream that
//! arrives complete and in order through a lossy link, beside an unreliable one that shows
//! its losses.

use crate::chart::ChartFile;
use crate::meter;
use crate::peers::{self, EchoCounts};
use crate::stop::{self, say};
use gudp::conditioner::LinkConfig;
use gudp::message::MessageConfig;
use gudp::{CongestionMode, Daemon, DaemonConfig, LinkSetup};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    let run = peers::run_client(&conn, None, rate, 64, duration, |second| {
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

/// `gudp demo --messages`: a reliable-ordered stream and an unreliable one, side by side on
/// one message-mode connection through a lossy link (10 % loss each way, 50 ms round trip).
/// Each second a line shows what each stream delivered: the ordered stream everything, in
/// order (resent from the acks); the unreliable one its losses. Then the client closes,
/// which sends what was accepted, and the totals are checked.
pub fn run_messages(duration: Duration, rate: u32) -> Result<ExitCode, String> {
    const UNRELIABLE: u8 = 0;
    const ORDERED: u8 = 3;
    let mut link = link(25);
    link.loss_percent = 10.0;
    let mut config = DaemonConfig::default();
    config.link = Some(LinkSetup::new(link, 2016));
    config.messages = Some(MessageConfig::default());
    let daemon = Daemon::spawn(config).map_err(|e| format!("cannot start the daemon: {e}"))?;
    let listener = daemon
        .listen(([127, 0, 0, 1], 0).into())
        .map_err(|e| format!("cannot listen on loopback: {e}"))?;
    let client = daemon
        .connect(listener.local_addr())
        .map_err(|e| format!("cannot connect to the demo server: {e}"))?;
    let server = listener
        .accept()
        .map_err(|e| format!("the demo server did not accept: {e}"))?;
    say!(
        "gudp demo --messages: {rate} messages/s on a reliable-ordered channel and {rate}/s \
         on an unreliable one, through 10 % loss each way and a 50 ms round trip"
    );
    say!("    t  ordered/s  ordered total  in order  unreliable/s  unreliable total  lost");
    let interval = Duration::from_secs(1) / rate;
    let start = Instant::now();
    let (mut sent, mut refused) = (0u32, 0u64);
    let (mut ordered, mut unreliable) = (Stream::default(), Stream::default());
    let mut next_send = start;
    let mut next_report = start + Duration::from_secs(1);
    let mut inbox = Vec::with_capacity(256);
    let mut interrupted = false;
    while start.elapsed() < duration {
        if stop::requested() {
            interrupted = true;
            break;
        }
        let now = Instant::now();
        while next_send <= now {
            let number = sent.to_le_bytes();
            if client.try_send_message(ORDERED, &number).is_ok() {
                // Its unreliable twin: refused only if the daemon fell behind (then lost).
                let _ = client.try_send_message(UNRELIABLE, &number);
                sent += 1;
            } else {
                refused += 1; // the ordered channel's budget is full: this one next time
            }
            next_send += interval;
        }
        take(&server, &mut inbox, &mut ordered, &mut unreliable);
        if now >= next_report {
            say!(
                "{:>4.0}s  {:>9}  {:>13}  {:>8}  {:>12}  {:>16}  {:>4}",
                (now - start).as_secs_f64(),
                ordered.delta(),
                ordered.count,
                if ordered.in_order { "yes" } else { "NO" },
                unreliable.delta(),
                unreliable.count,
                sent.saturating_sub(unreliable.count),
            );
            next_report += Duration::from_secs(1);
        }
        std::thread::sleep(interval.min(Duration::from_millis(5)));
    }
    // Closing sends what was accepted: the ordered stream completes before the close.
    client.close();
    while let Ok(message) = server.recv_message() {
        inbox.push(message);
        take(&server, &mut inbox, &mut ordered, &mut unreliable);
    }
    let complete = ordered.count == sent && ordered.in_order;
    say!(
        "ordered: {} of {sent} delivered, in order: {}; unreliable: {} of {sent} delivered \
         ({} lost, as a lossy link does); {refused} sends refused by a full budget (retried)",
        ordered.count,
        if complete { "yes" } else { "NO" },
        unreliable.count,
        sent.saturating_sub(unreliable.count),
    );
    if interrupted {
        return Ok(ExitCode::from(stop::INTERRUPTED_EXIT));
    }
    if !complete {
        return Err("the reliable-ordered stream did not arrive complete and in order".into());
    }
    Ok(ExitCode::SUCCESS)
}

/// What one stream of numbered messages delivered.
#[derive(Default)]
struct Stream {
    count: u32,
    reported: u32,
    in_order: bool,
}

impl Stream {
    fn take(&mut self, number: u32, ordered: bool) {
        if self.count == 0 {
            self.in_order = true;
        }
        if ordered && number != self.count {
            self.in_order = false;
        }
        self.count += 1;
    }

    /// Messages since the last call.
    fn delta(&mut self) -> u32 {
        let delta = self.count - self.reported;
        self.reported = self.count;
        delta
    }
}

fn take(
    server: &gudp::Connection,
    inbox: &mut Vec<gudp::ReceivedMessage>,
    ordered: &mut Stream,
    unreliable: &mut Stream,
) {
    let _ = server.drain_messages(inbox, 256);
    for message in inbox.drain(..) {
        let number = u32::from_le_bytes(message[..4].try_into().unwrap_or_default());
        match message.channel() {
            0 => unreliable.take(number, false),
            _ => ordered.take(number, true),
        }
    }
}
