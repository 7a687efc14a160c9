//! A connection's life as a picture: `--chart FILE` on `demo` and `connect` writes one
//! self-contained SVG (or an HTML page holding it, for a `.html` name) of RTT, jitter,
//! loss, the congestion mode and the per-second packet counts, with the mode changes marked.
//! No script, font or stylesheet is fetched at view time.

use crate::meter::Totals;
use crate::stop::say;
use gudp::{CongestionMode, Connection};
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where a chart goes: created before the run, so that a bad path fails at once rather
/// than after the run it was to show.
pub struct ChartFile {
    path: PathBuf,
    file: File,
}

impl ChartFile {
    pub fn create(path: PathBuf) -> Result<Self, String> {
        let file = File::create(&path)
            .map_err(|error| format!("cannot write the chart to {}: {error}", path.display()))?;
        Ok(Self { path, file })
    }

    /// Writes `run`'s chart; an `.html` or `.htm` name gets a page around the SVG.
    pub fn write(mut self, run: &Recorder, title: &str, end: f64) -> Result<(), String> {
        let svg = run.svg(title, end);
        let html = self
            .path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
        let text = if html {
            format!(
                "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
                 <title>{}</title></head>\n<body style=\"margin:0;background:#fff\">\n{svg}\
                 </body></html>\n",
                escape(title)
            )
        } else {
            svg
        };
        self.file.write_all(text.as_bytes()).map_err(|error| {
            format!("cannot write the chart to {}: {error}", self.path.display())
        })?;
        say!("chart written to {}", self.path.display());
        Ok(())
    }
}

/// The estimates at one moment.
struct Estimate {
    t: f64,
    rtt_ms: f64,
    jitter_ms: f64,
    loss_percent: f64,
}

/// One second's counts, as the table prints them.
struct Second {
    t: f64,
    counts: Totals,
}

/// What a run looked like, sampled as it went.
pub struct Recorder {
    start: Instant,
    every: Duration,
    next: Instant,
    estimates: Vec<Estimate>,
    seconds: Vec<Second>,
    /// The mode at the start, then each change with its time.
    modes: Vec<(f64, CongestionMode)>,
    bad_rtt_ms: f64,
}

impl Recorder {
    /// Estimates are sampled every 100 ms: RTT steps are sharper than the per-second table.
    pub fn new(start: Instant, bad_rtt: Duration) -> Self {
        Self {
            start,
            every: Duration::from_millis(100),
            next: start,
            estimates: Vec::new(),
            seconds: Vec::new(),
            modes: Vec::new(),
            bad_rtt_ms: bad_rtt.as_secs_f64() * 1e3,
        }
    }

    /// Called from the client loop: notes a mode change at once, the estimates when due
    /// and once `heard` (before the first ack, the RTT is only the configured guess).
    pub fn observe(&mut self, now: Instant, conn: &Connection, heard: bool) {
        let t = (now - self.start).as_secs_f64();
        let mode = conn.status().congestion();
        if self.modes.last().map(|&(_, m)| m) != Some(mode) {
            self.modes.push((t, mode));
        }
        if now < self.next || !heard {
            return;
        }
        self.next += self.every;
        if let Some(stats) = conn.stats() {
            self.estimates.push(Estimate {
                t,
                rtt_ms: stats.protocol.rtt.as_secs_f64() * 1e3,
                jitter_ms: stats.protocol.rtt_variation.as_secs_f64() * 1e3,
                loss_percent: stats.protocol.packet_loss_percent,
            });
        }
    }

    /// Records one second's counts (the differences the table line printed).
    pub fn second(&mut self, now: Instant, counts: Totals) {
        let t = (now - self.start).as_secs_f64();
        self.seconds.push(Second { t, counts });
    }

    /// The congestion modes in the order they were seen.
    pub fn mode_path(&self) -> Vec<CongestionMode> {
        self.modes.iter().map(|&(_, mode)| mode).collect()
    }

    fn svg(&self, title: &str, end: f64) -> String {
        let end = end.max(1.0);
        let mut s = String::new();
        let _ = write!(
            s,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" \
             viewBox=\"0 0 {W} {H}\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" \
             font-size=\"12\">\n<rect width=\"{W}\" height=\"{H}\" fill=\"#fff\"/>\n\
             <text x=\"{LEFT}\" y=\"22\" font-size=\"16\" font-weight=\"bold\">{}</text>\n",
            escape(title)
        );
        let x = |t: f64| LEFT + t.clamp(0.0, end) / end * PLOT_W;

        // The mode track, and bad mode shaded behind every panel.
        let track = (34.0, 18.0);
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">mode</text>",
            LEFT - 8.0,
            track.0 + 13.0
        );
        for (i, &(from, mode)) in self.modes.iter().enumerate() {
            let until = self.modes.get(i + 1).map_or(end, |&(t, _)| t);
            let (x0, x1) = (x(from), x(until));
            let (fill, label) = match mode {
                CongestionMode::Good => ("#2e9e4f", "good"),
                CongestionMode::Bad => ("#d9412b", "bad"),
            };
            let _ = writeln!(
                s,
                "<rect x=\"{x0:.1}\" y=\"{}\" width=\"{:.1}\" height=\"{}\" fill=\"{fill}\"/>",
                track.0,
                (x1 - x0).max(0.5),
                track.1
            );
            if x1 - x0 > 40.0 {
                let _ = writeln!(
                    s,
                    "<text x=\"{:.1}\" y=\"{}\" fill=\"#fff\" text-anchor=\"middle\">{label}</text>",
                    (x0 + x1) / 2.0,
                    track.0 + 13.0
                );
            }
            if mode == CongestionMode::Bad {
                let _ = writeln!(
                    s,
                    "<rect x=\"{x0:.1}\" y=\"{}\" width=\"{:.1}\" height=\"{}\" fill=\"#d9412b\" \
                     fill-opacity=\"0.08\"/>",
                    PANEL_TOP,
                    (x1 - x0).max(0.5),
                    H - PANEL_TOP - 40.0
                );
            }
        }
        // Each change, marked across all panels.
        for &(t, mode) in self.modes.iter().skip(1) {
            let label = match mode {
                CongestionMode::Good => "good",
                CongestionMode::Bad => "bad",
            };
            let _ = writeln!(
                s,
                "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#555\" \
                 stroke-dasharray=\"4 3\"/>\n<text x=\"{3:.1}\" y=\"{4}\" fill=\"#555\">\
                 → {label} at {t:.1} s</text>",
                x(t),
                track.0 + track.1,
                H - 40.0,
                x(t) + 4.0,
                PANEL_TOP + 12.0
            );
        }

        let e = &self.estimates;
        let c = &self.seconds;
        let rtt = Panel {
            top: PANEL_TOP,
            title: "round trip and jitter (ms; bad mode above 250 ms)",
        };
        let rtt_max = e
            .iter()
            .map(|e| e.rtt_ms.max(e.jitter_ms))
            .fold(0.0, f64::max);
        // The 250 ms line only where it is on a useful scale: on a LAN it would flatten
        // sub-millisecond round trips to the axis.
        let threshold =
            (self.bad_rtt_ms <= 3.0 * rtt_max).then_some((self.bad_rtt_ms, "bad above"));
        rtt.draw(
            &mut s,
            end,
            threshold
                .map_or(rtt_max, |(ms, _)| rtt_max.max(ms))
                .max(0.1),
            &[
                Series::new("RTT", "#1f5fbf", e.iter().map(|e| (e.t, e.rtt_ms))),
                Series::new("jitter", "#e08a00", e.iter().map(|e| (e.t, e.jitter_ms))),
            ],
            threshold,
        );
        let loss = Panel {
            top: PANEL_TOP + PANEL_H + GAP,
            title: "packet loss (%, the protocol's recent window)",
        };
        let loss_max = e.iter().map(|e| e.loss_percent).fold(1.0, f64::max);
        loss.draw(
            &mut s,
            end,
            loss_max,
            &[Series::new(
                "loss",
                "#d9412b",
                e.iter().map(|e| (e.t, e.loss_percent)),
            )],
            None,
        );
        let rates = Panel {
            top: PANEL_TOP + 2.0 * (PANEL_H + GAP),
            title: "packets per second (each second's count)",
        };
        // Steps: each count holds over the second it was counted in.
        let per_second = |f: fn(&Totals) -> u64| -> Vec<(f64, f64)> {
            let mut from = 0.0;
            let mut points = Vec::with_capacity(2 * c.len());
            for s in c {
                let v = f(&s.counts) as f64;
                points.extend([(from, v), (s.t, v)]);
                from = s.t;
            }
            points
        };
        let series = [
            Series::new("sent", "#1f5fbf", per_second(|t| t.sent)),
            Series::new("received", "#2e9e4f", per_second(|t| t.received)),
            Series::new("acked", "#8a3fbf", per_second(|t| t.acked)),
            Series::new("lost", "#d9412b", per_second(|t| t.lost)),
            Series::new("refused", "#888", per_second(|t| t.refused)),
        ];
        let rate_max = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(1.0, f64::max);
        rates.draw(&mut s, end, rate_max, &series, None);

        // The time axis, under the last panel.
        let axis_y = rates.top + PANEL_H;
        let step = nice_step(end);
        // Ticks by index: adding a fractional step up would drift.
        for i in 0..=(end / step + 1e-6).floor() as u32 {
            let t = f64::from(i) * step;
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x(t),
                axis_y + 16.0,
                number(t)
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">seconds</text>\n</svg>",
            LEFT + PLOT_W / 2.0,
            axis_y + 32.0
        );
        s
    }
}

const W: f64 = 1000.0;
const H: f64 = 720.0;
const LEFT: f64 = 70.0;
const PLOT_W: f64 = 760.0;
const PANEL_TOP: f64 = 84.0;
const PANEL_H: f64 = 170.0;
const GAP: f64 = 36.0;

struct Series {
    name: &'static str,
    color: &'static str,
    points: Vec<(f64, f64)>,
}

impl Series {
    fn new(
        name: &'static str,
        color: &'static str,
        points: impl IntoIterator<Item = (f64, f64)>,
    ) -> Self {
        Self {
            name,
            color,
            points: points.into_iter().collect(),
        }
    }
}

struct Panel {
    top: f64,
    title: &'static str,
}

impl Panel {
    fn draw(
        &self,
        s: &mut String,
        end: f64,
        max: f64,
        series: &[Series],
        threshold: Option<(f64, &str)>,
    ) {
        let step = nice_step(max * 1.05);
        let top_value = (max * 1.05 / step).ceil() * step;
        let y = |v: f64| self.top + PANEL_H - v.clamp(0.0, top_value) / top_value * PANEL_H;
        let x = |t: f64| LEFT + t.clamp(0.0, end) / end * PLOT_W;
        let _ = writeln!(
            s,
            "<text x=\"{LEFT}\" y=\"{:.1}\" font-weight=\"bold\">{}</text>\n\
             <rect x=\"{LEFT}\" y=\"{:.1}\" width=\"{PLOT_W}\" height=\"{PANEL_H}\" fill=\"none\" \
             stroke=\"#999\"/>",
            self.top - 6.0,
            self.title,
            self.top
        );
        for i in 0..=(top_value / step).round() as u32 {
            let v = f64::from(i) * step;
            let (right, yv, label) = (LEFT + PLOT_W, y(v), number(v));
            let _ = writeln!(
                s,
                "<line x1=\"{LEFT}\" x2=\"{right:.1}\" y1=\"{yv:.1}\" y2=\"{yv:.1}\" \
                 stroke=\"#eee\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>",
                LEFT - 6.0,
                yv + 4.0,
            );
        }
        if let Some((value, label)) = threshold {
            let (right, yv, shown) = (LEFT + PLOT_W, y(value), number(value));
            let _ = writeln!(
                s,
                "<line x1=\"{LEFT}\" x2=\"{right:.1}\" y1=\"{yv:.1}\" y2=\"{yv:.1}\" \
                 stroke=\"#d9412b\" stroke-dasharray=\"6 4\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" \
                 fill=\"#d9412b\" text-anchor=\"end\">{label} {shown}</text>",
                right - 4.0,
                yv - 4.0,
            );
        }
        for (i, line) in series.iter().enumerate() {
            let points: Vec<String> = line
                .points
                .iter()
                .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v)))
                .collect();
            let (color, name) = (line.color, line.name);
            // Earlier series drawn wider, so that equal counts (sent = acked) stay visible.
            let width = 1.5 + 0.7 * (series.len() - 1 - i) as f64;
            let key_y = self.top + 12.0 + 18.0 * i as f64;
            let _ = writeln!(
                s,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"{width:.1}\" points=\"{}\"/>\n\
                 <line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{key_y:.1}\" y2=\"{key_y:.1}\" \
                 stroke=\"{color}\" stroke-width=\"3\"/>\n<text x=\"{:.1}\" y=\"{:.1}\">{name}</text>",
                points.join(" "),
                LEFT + PLOT_W + 14.0,
                LEFT + PLOT_W + 34.0,
                LEFT + PLOT_W + 40.0,
                key_y + 4.0,
            );
        }
    }
}

/// A round step (1, 2 or 5 × 10ⁿ) that splits `range` into at most 6 parts.
fn nice_step(range: f64) -> f64 {
    let rough = (range / 5.0).max(1e-9);
    let magnitude = 10f64.powf(rough.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&step| range / step <= 6.0)
        .unwrap_or(10.0 * magnitude)
}

/// A tick label: as many decimals as the value needs, up to 3.
fn number(v: f64) -> String {
    let text = format!("{v:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
