//! The one-way and ping-pong workloads in alternating rounds, and their rows.

use super::gudp::{self, Setup};
use super::report::{Goal, Row, Target};
use super::rounds::{self, Sample, Series};
use super::{raw, Group, Plan};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    OneWay,
    PingPong,
}

/// Who runs a workload in a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Contestant {
    Raw,
    /// Spawned daemons.
    Gudp(Setup),
    /// Manual-mode daemons (ping-pong only).
    Manual,
    Laminar,
    Renet,
}

impl Contestant {
    fn run(self, kind: Kind, size: usize, span: Duration) -> Result<Sample, String> {
        match (self, kind) {
            (Contestant::Raw, Kind::OneWay) => raw::one_way(size, span),
            (Contestant::Raw, Kind::PingPong) => raw::ping_pong(size, span),
            (Contestant::Gudp(setup), Kind::OneWay) => gudp::one_way(setup, size, span),
            (Contestant::Gudp(setup), Kind::PingPong) => gudp::ping_pong(setup, size, span),
            (Contestant::Manual, _) => gudp::ping_pong_manual(Setup::Default, size, span),
            (Contestant::Laminar, kind) => laminar(kind, size, span),
            (Contestant::Renet, kind) => renet(kind, size, span),
        }
    }

    fn key(self) -> &'static str {
        match self {
            Contestant::Raw => "raw",
            Contestant::Gudp(Setup::Default) => "gudp",
            Contestant::Gudp(Setup::Unpaced) => "gudp-unpaced",
            Contestant::Gudp(Setup::NoGro) => "gudp-nogro",
            Contestant::Gudp(Setup::NoGso) => "gudp-nogso",
            Contestant::Manual => "gudp-manual",
            Contestant::Laminar => "laminar",
            Contestant::Renet => "renet",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Contestant::Raw => "raw UDP",
            Contestant::Gudp(Setup::Default) => "GUDP",
            Contestant::Gudp(Setup::Unpaced) => "GUDP unpaced (extra)",
            Contestant::Gudp(Setup::NoGro) => "GUDP without GRO (extra)",
            Contestant::Gudp(Setup::NoGso) => "GUDP without GSO (extra)",
            Contestant::Manual => "GUDP manual mode",
            Contestant::Laminar => "laminar 0.5",
            Contestant::Renet => "renet 2 + netcode",
        }
    }

    fn config(self, kind: Kind) -> String {
        match (self, kind) {
            (Contestant::Raw, _) => "std UdpSocket, one send/recv call per packet".into(),
            (Contestant::Gudp(setup), Kind::OneWay) => format!(
                "{}; two spawned daemons; Connection::send (waits on backpressure) / recv",
                setup.describe()
            ),
            (Contestant::Gudp(setup), Kind::PingPong) => format!(
                "{}; two spawned daemons; echo thread blocked in recv",
                setup.describe()
            ),
            (Contestant::Manual, _) => format!(
                "{}; Daemon::manual, each side's thread polls its own daemon",
                Setup::Default.describe()
            ),
            (Contestant::Laminar, _) => "Config::default(), Packet::unreliable; both threads \
                loop on Socket::manual_poll (no 1 ms sleep; yield after an empty turn)"
                .into(),
            (Contestant::Renet, _) => "ConnectionConfig::default(), DefaultChannel::Unreliable, \
                renet_netcode UDP transport (Unsecure); both loops run without sleep \
                (update, transport update, send_packets; yield after an empty turn); counts messages"
                .into(),
        }
    }
}

#[cfg(feature = "peers")]
fn laminar(kind: Kind, size: usize, span: Duration) -> Result<Sample, String> {
    match kind {
        Kind::OneWay => super::laminar::one_way(size, span),
        Kind::PingPong => super::laminar::ping_pong(size, span),
    }
}

#[cfg(feature = "peers")]
fn renet(kind: Kind, size: usize, span: Duration) -> Result<Sample, String> {
    match kind {
        Kind::OneWay => super::renet::one_way(size, span),
        Kind::PingPong => super::renet::ping_pong(size, span),
    }
}

#[cfg(not(feature = "peers"))]
fn laminar(_: Kind, _: usize, _: Duration) -> Result<Sample, String> {
    Err("this build has no `peers` feature".into())
}

#[cfg(not(feature = "peers"))]
fn renet(_: Kind, _: usize, _: Duration) -> Result<Sample, String> {
    Err("this build has no `peers` feature".into())
}

struct Workload {
    kind: Kind,
    size: usize,
    contestants: Vec<Contestant>,
    /// One series per contestant, in the same order.
    series: Vec<Series>,
}

fn workloads(plan: &Plan) -> Vec<Workload> {
    let mut out = Vec::new();
    for &size in &plan.sizes {
        for kind in [Kind::OneWay, Kind::PingPong] {
            let mut contestants = vec![Contestant::Raw];
            let spawned = match kind {
                Kind::OneWay => plan.has(Group::Oneway),
                Kind::PingPong => plan.has(Group::Pingpong),
            };
            if spawned {
                contestants.push(Contestant::Gudp(Setup::Default));
            }
            if spawned && kind == Kind::OneWay {
                contestants.push(Contestant::Gudp(Setup::NoGro));
                contestants.push(Contestant::Gudp(Setup::NoGso));
            }
            if kind == Kind::PingPong && plan.has(Group::Manual) {
                contestants.push(Contestant::Manual);
            }
            if spawned {
                contestants.push(Contestant::Gudp(Setup::Unpaced));
                if plan.laminar {
                    contestants.push(Contestant::Laminar);
                }
                if plan.renet {
                    contestants.push(Contestant::Renet);
                }
            }
            if contestants.len() > 1 {
                let series = vec![Vec::new(); contestants.len()];
                out.push(Workload {
                    kind,
                    size,
                    contestants,
                    series,
                });
            }
        }
    }
    out
}

/// Runs every round and returns the rows.
pub fn run(plan: &Plan) -> Result<Vec<Row>, String> {
    let mut workloads = workloads(plan);
    for round in 1..=plan.rounds {
        if workloads.is_empty() {
            break;
        }
        println!("round {round} of {} ...", plan.rounds);
        for w in &mut workloads {
            for (i, contestant) in w.contestants.iter().enumerate() {
                let sample = contestant.run(w.kind, w.size, plan.span).map_err(|e| {
                    format!(
                        "{} {:?} {} B, round {round}: {e}",
                        contestant.name(),
                        w.kind,
                        w.size
                    )
                })?;
                w.series[i].push(sample);
            }
        }
    }
    Ok(workloads.iter().flat_map(rows).collect())
}

fn rows(w: &Workload) -> Vec<Row> {
    let raw = &w.series[0];
    let mut out = Vec::new();
    for (contestant, series) in w.contestants.iter().zip(&w.series) {
        match w.kind {
            Kind::OneWay => out.extend(one_way_rows(w.size, *contestant, series, raw)),
            Kind::PingPong => out.push(ping_pong_row(w.size, *contestant, series, raw)),
        }
    }
    out
}

fn spread_text(series: &Series, figure: impl Fn(&Sample) -> f64, unit: &str) -> String {
    match rounds::stat(series, figure) {
        Some(s) => format!("{:.1}{unit} ({:.1}–{:.1})", s.median, s.min, s.max),
        None => "n/a".into(),
    }
}

fn one_way_rows(size: usize, c: Contestant, series: &Series, raw: &Series) -> Vec<Row> {
    let is_raw = c == Contestant::Raw;
    let is_default = c == Contestant::Gudp(Setup::Default);
    let key = |what: &str| format!("oneway-{size}-{}-{what}", c.key());
    let offered = rounds::stat(series, Sample::offered_rate).map_or(f64::NAN, |s| s.median);
    let loss = spread_text(series, Sample::loss_percent, " %");
    let mut rows = vec![Row {
        key: key("goodput"),
        measurement: if is_raw {
            format!("one-way {size} B: raw UDP delivered (the baseline)")
        } else {
            format!("one-way {size} B: {} goodput", c.name())
        },
        config: c.config(Kind::OneWay),
        unit: "packets/s",
        value: rounds::stat(series, Sample::rate),
        ratio: (!is_raw)
            .then(|| rounds::ratio(series, raw, Sample::rate))
            .flatten(),
        target: if is_default {
            Target::ratio(Goal::AtLeast(1.0))
        } else {
            None
        },
        notes: match rounds::drops_text(series) {
            Some(drops) => format!("offered {offered:.0}/s; lost {loss}; {drops}"),
            None => format!("offered {offered:.0}/s; lost {loss}"),
        },
    }];
    if is_default {
        rows.push(Row {
            key: key("loss"),
            measurement: format!("one-way {size} B: GUDP loss"),
            config: c.config(Kind::OneWay),
            unit: "%",
            value: rounds::stat(series, Sample::loss_percent),
            ratio: None,
            target: Target::value(Goal::AtMost(1.0)),
            notes: format!(
                "of everything sent; raw UDP lost {}",
                spread_text(raw, Sample::loss_percent, " %")
            ),
        });
    }
    rows.push(Row {
        key: key("cpu"),
        measurement: format!("one-way {size} B: {} CPU per delivered packet", c.name()),
        config: c.config(Kind::OneWay),
        unit: "µs",
        value: rounds::stat(series, Sample::cpu_per_packet_us),
        ratio: (!is_raw)
            .then(|| rounds::ratio(series, raw, Sample::cpu_per_packet_us))
            .flatten(),
        target: if is_default {
            Target::ratio(Goal::AtMost(1.2))
        } else {
            None
        },
        notes: "process CPU (user + system, all threads) over the span / packets delivered; \
                ratio: lower is better"
            .into(),
    });
    rows
}

fn ping_pong_row(size: usize, c: Contestant, series: &Series, raw: &Series) -> Row {
    let is_raw = c == Contestant::Raw;
    let mean_us = rounds::stat(series, |s| 1e6 / s.rate()).map_or(f64::NAN, |s| s.median);
    let cpu = rounds::stat(series, Sample::cpu_per_packet_us).map_or(f64::NAN, |s| s.median);
    Row {
        key: format!("pingpong-{size}-{}", c.key()),
        measurement: format!("ping-pong {size} B, one in flight: {}", c.name()),
        config: c.config(Kind::PingPong),
        unit: "round trips/s",
        value: rounds::stat(series, Sample::rate),
        ratio: (!is_raw)
            .then(|| rounds::ratio(series, raw, Sample::rate))
            .flatten(),
        target: if c == Contestant::Gudp(Setup::Default) {
            Target::ratio(Goal::AtLeast(0.8))
        } else {
            None
        },
        notes: format!(
            "mean round trip {mean_us:.1} µs; CPU {cpu:.1} µs per round trip; lost {}",
            spread_text(series, Sample::loss_percent, " %")
        ),
    }
}
