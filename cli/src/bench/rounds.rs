//! Rounds: every figure is the median of several short spans in which GUDP, raw UDP and the
//! peers take turns, so drift on a shared machine hits all of them; the spread goes with it.

use std::time::Duration;

/// What one span of a workload did, and what it cost the process.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Packets delivered to the receiving application (or round trips completed) in the span.
    pub delivered: u64,
    /// Packets the sender handed over in the span (equals `delivered` for ping-pong).
    pub offered: u64,
    /// Of everything sent, including the tail after the span, the share never delivered.
    pub lost_share: f64,
    pub elapsed: Duration,
    /// CPU time of the whole process over the span.
    pub cpu: Duration,
    /// GUDP only: where the lost packets went, from the daemons' counters.
    pub drops: Option<Drops>,
}

/// GUDP's count of the packets it lost in a span (warm-up and drain included), by reason.
#[derive(Clone, Copy, Debug, Default)]
pub struct Drops {
    /// Waited longer than `max_send_delay` for a pacing slot (`sends_expired`).
    pub expired: u64,
    /// Refused by a full inbox (`dropped_inbox_full`) or by the protocol (`dropped_by_protocol`).
    pub in_process: u64,
    /// Dropped by the kernel at a full socket receive buffer (`dropped_by_kernel`).
    pub kernel: u64,
}

impl Drops {
    pub fn of(sender: &gudp::DaemonCounters, receiver: &gudp::DaemonCounters) -> Drops {
        Drops {
            expired: sender.sends_expired,
            in_process: receiver.dropped_inbox_full + receiver.dropped_by_protocol,
            kernel: receiver.dropped_by_kernel,
        }
    }
}

/// The medians of the drops over the rounds, as a note.
pub fn drops_text(series: &Series) -> Option<String> {
    let drops: Vec<Drops> = series.iter().filter_map(|s| s.drops).collect();
    if drops.is_empty() {
        return None;
    }
    let median = |f: fn(&Drops) -> u64| {
        Stat::of(drops.iter().map(|d| f(d) as f64)).map_or(0.0, |s| s.median)
    };
    Some(format!(
        "GUDP's counters, median per round: {:.0} expired unsent, {:.0} dropped in-process, {:.0} by the kernel",
        median(|d| d.expired),
        median(|d| d.in_process),
        median(|d| d.kernel)
    ))
}

impl Sample {
    pub fn rate(&self) -> f64 {
        self.delivered as f64 / self.elapsed.as_secs_f64()
    }

    pub fn offered_rate(&self) -> f64 {
        self.offered as f64 / self.elapsed.as_secs_f64()
    }

    pub fn loss_percent(&self) -> f64 {
        100.0 * self.lost_share
    }

    /// Microseconds of process CPU per delivered packet (or round trip).
    pub fn cpu_per_packet_us(&self) -> f64 {
        if self.delivered == 0 {
            f64::NAN
        } else {
            self.cpu.as_secs_f64() * 1e6 / self.delivered as f64
        }
    }
}

/// Median and range of one figure over the rounds.
#[derive(Clone, Copy, Debug)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub rounds: usize,
}

impl Stat {
    /// `None` when no value is a number.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Stat> {
        let mut values: Vec<f64> = values.into_iter().filter(|v| !v.is_nan()).collect();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Some(Stat {
            median,
            min: values[0],
            max: values[n - 1],
            rounds: n,
        })
    }

    /// A single measurement.
    pub fn one(value: f64) -> Option<Stat> {
        Stat::of([value])
    }
}

/// The samples of one contestant over the rounds, in round order.
pub type Series = Vec<Sample>;

/// The median and spread of `figure` over the rounds.
pub fn stat(series: &Series, figure: impl Fn(&Sample) -> f64) -> Option<Stat> {
    Stat::of(series.iter().map(figure))
}

/// The median and spread of the per-round ratio of `figure`, contestant over baseline.
pub fn ratio(series: &Series, baseline: &Series, figure: impl Fn(&Sample) -> f64) -> Option<Stat> {
    Stat::of(
        series
            .iter()
            .zip(baseline)
            .map(|(s, b)| figure(s) / figure(b))
            .filter(|r| r.is_finite()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts_and_range() {
        let s = Stat::of([5.0, 1.0, 3.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.rounds), (3.0, 1.0, 5.0, 3));
        let s = Stat::of([4.0, 1.0, 3.0, 2.0, f64::NAN]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.rounds), (2.5, 1.0, 4.0, 4));
        assert!(Stat::of([f64::NAN]).is_none());
    }

    #[test]
    fn ratio_is_the_median_of_per_round_ratios() {
        let sample = |delivered| Sample {
            delivered,
            offered: delivered,
            lost_share: 0.0,
            elapsed: Duration::from_secs(1),
            cpu: Duration::ZERO,
            drops: None,
        };
        let gudp = vec![sample(10), sample(30), sample(100)];
        let raw = vec![sample(20), sample(30), sample(50)];
        // Per round 0.5, 1.0, 2.0: median 1.0, not 140 / 100 (the ratio of sums).
        let r = ratio(&gudp, &raw, Sample::rate).unwrap();
        assert_eq!((r.median, r.min, r.max), (1.0, 0.5, 2.0));
    }
}
