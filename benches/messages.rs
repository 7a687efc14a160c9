//! GUDP's message layer against renet's reliable-ordered channel. Both are sans-IO, so both
//! run in memory through the same seeded `LinkConditioner`, in simulated time; this prints a
//! markdown table (`docs/benchmarks.md`, "Message layer against renet").
//!
//! ```sh
//! cargo bench --bench messages              # SEEDS=9 REPS=5 MESSAGES=100000 by default
//! SEEDS=3 REPS=3 cargo bench --bench messages
//! ```
//!
//! Both stacks run the same 60 Hz frame loop: the application queues its messages at the
//! start of a frame, then the stack flushes (GUDP: `poll_payload` → `Endpoint::send`; renet:
//! `update` + `get_packets_to_send`, which is also when renet sends its acks and resends).
//! Datagrams are handled the moment they arrive, and received messages are read at once.
//! GUDP's own timers (delayed acks, resend timeouts) fire at their deadlines, as its daemon
//! would fire them; renet has no deadlines, so its acks and resends wait for the next frame.
//! Renet gets its documented defaults: 300 ms resend time, 60,000 bytes per tick, 5 MiB per
//! channel. GUDP runs the default message config with one reliable-ordered channel and a
//! packet layer paced at 100,000 packets/s (no throttling). The link is 50 ms each way, with
//! no jitter and again with ±10 ms. `benches/message_cpu.rs` is the criterion CPU figure.
//!
//! Only the CPU figure reads a clock; every other figure is fixed by the seed. Allocations
//! are counted by this binary's global allocator, outside the link conditioner.

mod msg_common;

use std::time::Duration;

use gudp::conditioner::LinkConfig;
use msg_common::{
    frame_end, link, read_message, throughput, write_message, Gudp, Renet, Stack, Throughput,
    FRAME, ONE_WAY_MS, SMALL,
};

const RTT_MS: f64 = 2.0 * ONE_WAY_MS as f64;
const BIG: usize = 1 << 20;
/// The jittery variant: uniform and independent per datagram, so a burst arrives reordered.
const JITTER_MS: u64 = 10;

/// Simulated time to deliver one 1 MiB reliable message, and bytes on the wire per byte.
fn big_message<S: Stack>(link: LinkConfig, seed: u64) -> (Duration, f64) {
    let mut s = S::new(link, seed);
    let epoch = s.epoch();
    let mut msg = vec![0u8; BIG];
    write_message(&mut msg, 0, Duration::ZERO);
    assert!(s.send(&msg));
    let mut done = None;
    for f in 0.. {
        s.flush();
        s.run_until(frame_end(epoch, f), &mut |at, m| {
            assert_eq!((m.len(), read_message(m).0), (BIG, 0));
            done = Some(at - epoch);
        });
        if let Some(d) = done {
            return (d, s.link().bytes as f64 / BIG as f64);
        }
        assert!(f < 60 * 120, "1 MiB not delivered in 2 minutes");
    }
    unreachable!()
}

/// Delivery latencies, sorted, of 100-byte messages sent one per frame for `seconds`.
fn latencies<S: Stack>(link: LinkConfig, seed: u64, seconds: u64) -> Vec<Duration> {
    let mut s = S::new(link, seed);
    let epoch = s.epoch();
    let n = seconds * 60;
    let mut buf = [0u8; SMALL];
    let mut out = Vec::with_capacity(n as usize);
    for f in 0.. {
        if f < n {
            write_message(&mut buf, f, FRAME * f as u32);
            assert!(s.send(&buf));
        }
        s.flush();
        s.run_until(frame_end(epoch, f), &mut |at, m| {
            let (seq, sent) = read_message(m);
            assert_eq!(seq, out.len() as u64, "order");
            out.push(at - (epoch + sent));
        });
        if out.len() as u64 == n {
            break;
        }
        assert!(
            f < n + 60 * 60,
            "not all delivered a minute after the last send"
        );
    }
    out.sort();
    out
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Median, min and max.
fn summary(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Whether a larger figure is better (it decides which way GUDP's lead is computed).
#[derive(Clone, Copy)]
enum Better {
    Lower,
    Higher,
}

/// One table row: "median (min–max)" for both stacks, and GUDP's lead: how many times
/// better GUDP's median is than renet's (above 1: GUDP ahead).
fn row(name: &str, unit: &str, digits: usize, better: Better, g: Vec<f64>, r: Vec<f64>) {
    let ((gm, g0, g1), (rm, r0, r1)) = (summary(g), summary(r));
    let fmt = |m: f64, lo: f64, hi: f64| {
        if lo == hi {
            format!("{m:.digits$} {unit}")
        } else {
            format!("{m:.digits$} {unit} ({lo:.digits$}–{hi:.digits$})")
        }
    };
    let (num, den) = match better {
        Better::Lower => (rm, gm),
        Better::Higher => (gm, rm),
    };
    let lead = match (num == 0.0, den == 0.0) {
        (true, true) => "equal".to_string(),
        (_, true) => "∞".to_string(),
        _ => format!("{:.2}×", num / den),
    };
    println!(
        "| {name} | {} | {} | {lead} |",
        fmt(gm, g0, g1),
        fmt(rm, r0, r1)
    );
}

fn main() {
    use Better::{Higher, Lower};
    let seeds = env("SEEDS", 9);
    let reps = env("REPS", 5);
    let n = env("MESSAGES", 100_000);
    let seconds = 60;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let pick = |v: &[Throughput], f: fn(&Throughput) -> f64| v.iter().map(f).collect::<Vec<_>>();

    // 100 a frame is 6,000 messages/s: within both stacks' windows at 100 ms RTT.
    let (mut gt, mut rt) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        gt.push(throughput::<Gudp>(n, 100, 0));
        rt.push(throughput::<Renet>(n, 100, 0));
    }
    println!("{seeds} seeds, {reps} CPU runs of {n} messages; median (min–max)\n");
    println!("| figure | GUDP | renet | GUDP's lead |");
    println!("| --- | --- | --- | --- |");
    row(
        "CPU per 100 B message, lossless, 6,000 msg/s, both ends",
        "µs",
        2,
        Lower,
        pick(&gt, |t| t.stack_ns_per_msg / 1e3),
        pick(&rt, |t| t.stack_ns_per_msg / 1e3),
    );
    row(
        "messages per second of CPU, both ends",
        "k",
        0,
        Higher,
        pick(&gt, |t| 1e6 / t.stack_ns_per_msg),
        pick(&rt, |t| 1e6 / t.stack_ns_per_msg),
    );
    row(
        "the same CPU figure with the conditioner's time included",
        "µs",
        2,
        Lower,
        pick(&gt, |t| t.ns_per_msg / 1e3),
        pick(&rt, |t| t.ns_per_msg / 1e3),
    );
    row(
        "datagrams per message (both ways)",
        "",
        3,
        Lower,
        pick(&gt, |t| t.datagrams_per_msg),
        pick(&rt, |t| t.datagrams_per_msg),
    );
    row(
        "bytes on the wire per message (both ways)",
        "B",
        1,
        Lower,
        pick(&gt, |t| t.bytes_per_msg),
        pick(&rt, |t| t.bytes_per_msg),
    );
    row(
        "allocations per message (steady state)",
        "",
        2,
        Lower,
        pick(&gt, |t| t.allocs_per_msg),
        pick(&rt, |t| t.allocs_per_msg),
    );
    // 300 a frame (18,000/s) is more than GUDP's 1,024-message window carries per RTT.
    for jitter in [0, JITTER_MS] {
        let (g, r) = (
            throughput::<Gudp>(n, 300, jitter),
            throughput::<Renet>(n, 300, jitter),
        );
        let tag = if jitter == 0 {
            String::new()
        } else {
            format!(", ±{jitter} ms jitter")
        };
        row(
            &format!("delivered msg/s with 18,000/s offered (simulated){tag}"),
            "",
            0,
            Higher,
            vec![g.sim_rate],
            vec![r.sim_rate],
        );
        row(
            &format!("bytes on the wire per message at 18,000/s{tag}"),
            "B",
            1,
            Lower,
            vec![g.bytes_per_msg],
            vec![r.bytes_per_msg],
        );
    }

    for jitter in [0, JITTER_MS] {
        let tag = if jitter == 0 {
            String::new()
        } else {
            format!(", ±{jitter} ms jitter")
        };
        for loss in [1.0, 5.0] {
            let (mut g, mut r, mut gw, mut rw) = (vec![], vec![], vec![], vec![]);
            for seed in 1..=seeds {
                let (t, w) = big_message::<Gudp>(link(jitter, loss), seed);
                g.push(ms(t));
                gw.push(w);
                let (t, w) = big_message::<Renet>(link(jitter, loss), seed);
                r.push(ms(t));
                rw.push(w);
            }
            row(
                &format!("1 MiB reliable, 100 ms RTT, {loss} % loss{tag}: time"),
                "ms",
                0,
                Lower,
                g,
                r,
            );
            row(
                &format!("1 MiB, {loss} % loss{tag}: wire bytes / message bytes"),
                "",
                3,
                Lower,
                gw,
                rw,
            );
        }
    }

    for jitter in [0, JITTER_MS] {
        let tag = if jitter == 0 {
            String::new()
        } else {
            format!(", ±{jitter} ms jitter")
        };
        // [loss][stack]: p99 per seed.
        let mut p99 = [[vec![], vec![]], [vec![], vec![]]];
        for (k, loss) in [0.0, 5.0].into_iter().enumerate() {
            let (mut g50, mut r50) = (vec![], vec![]);
            for seed in 1..=seeds {
                let g = latencies::<Gudp>(link(jitter, loss), seed, seconds);
                let r = latencies::<Renet>(link(jitter, loss), seed, seconds);
                g50.push(ms(percentile(&g, 50.0)));
                r50.push(ms(percentile(&r, 50.0)));
                p99[k][0].push(ms(percentile(&g, 99.0)));
                p99[k][1].push(ms(percentile(&r, 99.0)));
            }
            row(
                &format!("p50 latency, 60 msg/s of 100 B, {loss} % loss{tag}"),
                "ms",
                1,
                Lower,
                g50,
                r50,
            );
            row(
                &format!("p99 latency, 60 msg/s of 100 B, {loss} % loss{tag}"),
                "ms",
                1,
                Lower,
                p99[k][0].clone(),
                p99[k][1].clone(),
            );
        }
        let excess = |stack: usize| {
            p99[1][stack]
                .iter()
                .zip(&p99[0][stack])
                .map(|(a, b)| (a - b) / RTT_MS)
                .collect()
        };
        row(
            &format!("p99 at 5 % minus p99 at 0 %{tag}, in RTTs (target ≤ 2)"),
            "RTT",
            2,
            Lower,
            excess(0),
            excess(1),
        );
    }
}
