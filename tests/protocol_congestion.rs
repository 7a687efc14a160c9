//! Congestion avoidance timeline under simulated time: RTT steps 100 → 300 → 100 ms.

mod protocol_sim;

use std::time::{Duration, Instant};

use gudp::protocol::{Config, CongestionMode, Event, TransmitError};
use protocol_sim::{link, secs, Sim, MS};

/// Mode changes seen by `node`, as (time since start, mode).
fn changes(sim: &Sim, node: usize, since: Instant) -> Vec<(Duration, CongestionMode)> {
    sim.nodes[node]
        .events
        .iter()
        .filter(|(t, _)| *t >= since)
        .filter_map(|(t, e)| match e {
            Event::CongestionChanged { mode, .. } => Some((*t - sim.t0, *mode)),
            _ => None,
        })
        .collect()
}

#[test]
fn good_bad_timeline_follows_fiedler() {
    let mut sim = Sim::new(
        link(50, 0, 0.0, 0.0),
        21,
        vec![Config::default(), Config::default()],
    );
    let (c, s) = sim.connect(0, 1, secs(1)).unwrap();
    let pairs = [(0, c), (1, s)];
    let rtt = |sim: &mut Sim, ms: u64| sim.link.set_config(link(ms / 2, 0, 0.0, 0.0));
    // Runs the exchange (20 packets/s each way) until `t` seconds after the start.
    let until = |sim: &mut Sim, t: u64| {
        let d = (sim.t0 + secs(t)).saturating_duration_since(sim.now);
        sim.exchange(&pairs, 50 * MS, d, 100)
    };
    let at = |t: u64| Duration::from_secs(t);
    let expect = |sim: &Sim, since: u64, want: &[(CongestionMode, Duration, Duration)]| {
        for node in 0..2 {
            let got = changes(sim, node, sim.t0 + secs(since));
            assert_eq!(got.len(), want.len(), "node {node} from {since} s: {got:?}");
            for (&(t, mode), &(m, lo, hi)) in got.iter().zip(want) {
                assert_eq!(mode, m, "node {node}: {got:?}");
                assert!(
                    t >= lo && t <= hi,
                    "node {node}: {mode:?} at {t:?}, want {lo:?}..={hi:?}"
                );
            }
        }
    };
    let penalty = |sim: &Sim| sim.nodes[0].ep.connection_stats(c).unwrap().penalty;

    // 15 s of good conditions: one halving, 4 s → 2 s.
    assert_eq!(until(&mut sim, 15), 0);
    assert!(changes(&sim, 0, sim.t0).is_empty());
    // RTT 300 ms: bad at once, as soon as the smoothed RTT crosses 250 ms (with the EWMA
    // factor 0.1 and 20 samples/s that takes 13 samples, about 0.65 s after the first).
    rtt(&mut sim, 300);
    until(&mut sim, 20);
    // The good period lasted over 10 s: no doubling.
    assert_eq!(penalty(&sim), secs(2));
    // Back to 100 ms: good after the 2 s penalty of good conditions.
    rtt(&mut sim, 100);
    until(&mut sim, 25);
    expect(
        &sim,
        15,
        &[
            (CongestionMode::Bad, at(15), at(15) + 1000 * MS),
            (CongestionMode::Good, at(22), at(22) + 1000 * MS),
        ],
    );
    // Relapse after only 3 s of good: penalty doubles to 4 s.
    rtt(&mut sim, 300);
    until(&mut sim, 30);
    assert_eq!(penalty(&sim), secs(4));
    rtt(&mut sim, 100);
    until(&mut sim, 36);
    expect(
        &sim,
        25,
        &[
            (CongestionMode::Bad, at(25), at(25) + 1000 * MS),
            (CongestionMode::Good, at(34), at(34) + 1000 * MS),
        ],
    );
    // Another relapse within 10 s: 8 s.
    rtt(&mut sim, 300);
    until(&mut sim, 40);
    assert_eq!(penalty(&sim), secs(8));
    rtt(&mut sim, 100);
    // A long good period: 48 s → 75 s is over 20 s in good, so 8 s halves twice to 2 s.
    until(&mut sim, 75);
    expect(
        &sim,
        36,
        &[
            (CongestionMode::Bad, at(36), at(36) + 1000 * MS),
            (CongestionMode::Good, at(48), at(48) + 1000 * MS),
        ],
    );
    rtt(&mut sim, 300);
    until(&mut sim, 80);
    assert_eq!(penalty(&sim), secs(2));
    rtt(&mut sim, 100);
    until(&mut sim, 85);
    expect(
        &sim,
        75,
        &[
            (CongestionMode::Bad, at(75), at(75) + 1000 * MS),
            (CongestionMode::Good, at(82), at(82) + 1000 * MS),
        ],
    );
    assert!(sim.nodes[0].disconnects().is_empty());
}

#[test]
fn bad_mode_paces_at_the_bad_rate() {
    let mut sim = Sim::new(
        link(150, 0, 0.0, 0.0),
        22,
        vec![Config::default(), Config::default()],
    );
    let (c, _) = sim.connect(0, 1, secs(2)).unwrap();
    // Establish the 300 ms RTT.
    sim.exchange(&[(0, c)], 50 * MS, secs(3), 20);
    let stats = sim.nodes[0].ep.connection_stats(c).unwrap();
    assert_eq!(stats.congestion_mode, CongestionMode::Bad);
    assert_eq!(stats.send_rate, Config::default().bad_rate);
    // Try to send 1000 packets/s for 10 s: only about 30 per second get through.
    let start = sim.nodes[0].app_sent.len();
    let mut retry = None;
    for _ in 0..10_000 {
        match sim.send(0, c, 20) {
            Ok(_) => {}
            Err(TransmitError::Paced { retry_at }) => retry = Some(retry_at),
            Err(e) => panic!("{e:?}"),
        }
        sim.run_for(MS);
    }
    let sent = sim.nodes[0].app_sent.len() - start;
    assert!((300..=310).contains(&sent), "{sent}");
    assert!(retry.is_some());
    assert!(sim.nodes[0].ep.counters().connections.paced > 9_000);
}

/// §6.4: the connection starts in good mode, and its first drop to bad mode is not a
/// relapse, so the first bad episode lasts the initial penalty (4 s), not double it.
#[test]
fn first_bad_episode_lasts_the_initial_penalty() {
    let mut sim = Sim::new(
        link(150, 0, 0.0, 0.0),
        23,
        vec![Config::default(), Config::default()],
    );
    let (c, s) = sim.connect(0, 1, secs(2)).unwrap();
    let pairs = [(0, c), (1, s)];
    // 300 ms from the start: bad at the first RTT sample.
    sim.exchange(&pairs, 50 * MS, secs(2), 100);
    for (node, conn) in pairs {
        let stats = sim.nodes[node].ep.connection_stats(conn).unwrap();
        assert_eq!(stats.congestion_mode, CongestionMode::Bad, "node {node}");
        assert_eq!(
            stats.penalty,
            Config::default().initial_penalty,
            "node {node}"
        );
    }
    // 100 ms from 2 s: good conditions within a few samples, good again 4 s later.
    sim.link.set_config(link(50, 0, 0.0, 0.0));
    let good_from = sim.now;
    sim.exchange(&pairs, 50 * MS, secs(8), 100);
    for node in 0..2 {
        let got = changes(&sim, node, sim.t0);
        assert_eq!(got.len(), 2, "node {node}: {got:?}");
        assert_eq!(got[0].1, CongestionMode::Bad);
        assert!(got[0].0 < secs(1), "node {node}: {got:?}");
        assert_eq!(got[1].1, CongestionMode::Good);
        let episode = got[1].0 - (good_from - sim.t0);
        assert!(
            episode >= secs(4) && episode <= secs(4) + 500 * MS,
            "node {node}: good again {episode:?} after the RTT fell: {got:?}"
        );
    }
}
