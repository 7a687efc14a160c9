//! The table: printed, and as CSV or Markdown for `docs/benchmarks.md`, plus a bar chart of
//! the ratios to raw UDP.

use super::rounds::Stat;
use std::fmt::Write as _;

/// Which way is better for a figure with a target.
#[derive(Clone, Copy, Debug)]
pub enum Goal {
    AtLeast(f64),
    AtMost(f64),
}

/// A target of issue 12, checked against the row's ratio (or its value when it has none).
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub goal: Goal,
    /// The target is on the ratio to raw UDP (else on the value itself).
    pub on_ratio: bool,
}

impl Target {
    pub fn ratio(goal: Goal) -> Option<Target> {
        Some(Target {
            goal,
            on_ratio: true,
        })
    }

    pub fn value(goal: Goal) -> Option<Target> {
        Some(Target {
            goal,
            on_ratio: false,
        })
    }

    fn describe(&self, unit: &str, baseline: &str) -> String {
        let (sign, bound) = match self.goal {
            Goal::AtLeast(b) => ("≥", b),
            Goal::AtMost(b) => ("≤", b),
        };
        if self.on_ratio {
            format!("{sign} {bound}× {baseline}")
        } else {
            format!("{sign} {bound} {unit}")
        }
    }

    fn met(&self, row: &Row) -> Option<bool> {
        let figure = if self.on_ratio { row.ratio } else { row.value }?.median;
        Some(match self.goal {
            Goal::AtLeast(b) => figure >= b,
            Goal::AtMost(b) => figure <= b,
        })
    }
}

/// One figure: the median over the rounds with its range, and its ratio to raw UDP's figure
/// of the same rounds.
pub struct Row {
    /// Stable identifier for scripts (`oneway-64-gudp-goodput`).
    pub key: String,
    pub measurement: String,
    /// What ran: configuration, API, threads.
    pub config: String,
    pub unit: &'static str,
    pub value: Option<Stat>,
    pub ratio: Option<Stat>,
    pub target: Option<Target>,
    pub notes: String,
}

impl Row {
    /// What the ratio is to: raw UDP, except for the sharding rows (one daemon).
    fn baseline(&self) -> &'static str {
        if self.key.starts_with("shard-") {
            "one daemon"
        } else {
            "raw"
        }
    }

    fn target_text(&self) -> String {
        match &self.target {
            None => String::new(),
            Some(t) => {
                let verdict = match t.met(self) {
                    Some(true) => "met",
                    Some(false) => "NOT met",
                    None => "n/a",
                };
                format!("{} {verdict}", t.describe(self.unit, self.baseline()))
            }
        }
    }
}

fn number(value: f64) -> String {
    if value.is_nan() {
        "n/a".into()
    } else if value.abs() >= 10_000.0 {
        let whole = value.round() as i64;
        let digits = whole.unsigned_abs().to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        if whole < 0 {
            out.insert(0, '-');
        }
        out
    } else if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// `median (min–max)`, or the one value of a single measurement.
fn spread(stat: Option<Stat>, suffix: &str) -> String {
    match stat {
        None => "n/a".into(),
        Some(s) if s.rounds == 1 => format!("{}{suffix}", number(s.median)),
        Some(s) => format!(
            "{}{suffix} ({}–{})",
            number(s.median),
            number(s.min),
            number(s.max)
        ),
    }
}

const HEADER: [&str; 6] = [
    "measurement",
    "configuration",
    "median (min–max)",
    "vs raw UDP, per-round median (min–max)",
    "target",
    "notes",
];

fn cells(row: &Row) -> [String; 6] {
    [
        row.measurement.clone(),
        row.config.clone(),
        format!("{} {}", spread(row.value, ""), row.unit),
        row.ratio.map_or(String::new(), |r| spread(Some(r), "×")),
        row.target_text(),
        row.notes.clone(),
    ]
}

/// The table for a terminal: one block per row, the figure lines aligned.
pub fn text(rows: &[Row]) -> String {
    let mut out = String::new();
    let width = rows
        .iter()
        .map(|r| r.measurement.chars().count())
        .max()
        .unwrap_or(0);
    for row in rows {
        let [measurement, config, value, ratio, target, notes] = cells(row);
        let pad = width - measurement.chars().count();
        let _ = write!(out, "{measurement}{}  {value}", " ".repeat(pad));
        if !ratio.is_empty() {
            let _ = write!(out, "  | {ratio} {}", row.baseline());
        }
        if !target.is_empty() {
            let _ = write!(out, "  | target {target}");
        }
        let _ = writeln!(out);
        let _ = write!(out, "{}  [{config}]", " ".repeat(width));
        if !notes.is_empty() {
            let _ = write!(out, " {notes}");
        }
        let _ = writeln!(out);
    }
    out
}

pub fn markdown(rows: &[Row]) -> String {
    let escape = |s: &str| s.replace('|', "\\|");
    let mut out = format!("| {} |\n", HEADER.join(" | "));
    let _ = writeln!(out, "|{}", " --- |".repeat(HEADER.len()));
    for row in rows {
        let [m, c, v, r, t, n] = cells(row);
        let bold = |s: String| if s.is_empty() { s } else { format!("**{s}**") };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            escape(&m),
            escape(&c),
            escape(&v),
            bold(escape(&r)),
            escape(&t),
            escape(&n)
        );
    }
    out
}

pub fn csv(rows: &[Row]) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let field =
        |s: Option<Stat>, f: fn(&Stat) -> f64| s.map_or(String::new(), |s| f(&s).to_string());
    let mut out = String::from(
        "key,measurement,configuration,unit,median,min,max,rounds,ratio_median,ratio_min,ratio_max,target,notes\n",
    );
    for row in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            row.key,
            quote(&row.measurement),
            quote(&row.config),
            quote(row.unit),
            field(row.value, |s| s.median),
            field(row.value, |s| s.min),
            field(row.value, |s| s.max),
            row.value.map_or(0, |s| s.rounds),
            field(row.ratio, |s| s.median),
            field(row.ratio, |s| s.min),
            field(row.ratio, |s| s.max),
            quote(&row.target_text()),
            quote(&row.notes)
        );
    }
    out
}

/// A horizontal bar per rate row with a ratio to raw UDP, its range as a whisker, 1.0 marked.
pub fn svg(rows: &[Row]) -> String {
    let bars: Vec<(&str, Stat)> = rows
        .iter()
        .filter(|row| row.unit.ends_with("/s"))
        .filter_map(|row| row.ratio.map(|r| (row.measurement.as_str(), r)))
        .collect();
    let (left, width, bar) = (380.0, 400.0, 22.0);
    let max = bars.iter().map(|b| b.1.max).fold(1.2f64, f64::max);
    let x = |ratio: f64| left + width * ratio / max;
    let height = 60.0 + bars.len() as f64 * (bar + 8.0);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <text x=\"10\" y=\"22\" font-size=\"15\">rate / raw UDP's in the same rounds \
         (median, min–max): higher is better</text>\n",
        left + width + 90.0
    );
    for (i, (name, r)) in bars.iter().enumerate() {
        let y = 40.0 + i as f64 * (bar + 8.0);
        let mid = y + bar / 2.0;
        let _ = writeln!(
            out,
            "<text x=\"10\" y=\"{:.1}\">{name}</text>\n\
             <rect x=\"{left}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{bar}\" fill=\"#3b7dd8\"/>\n\
             <line x1=\"{:.1}\" y1=\"{mid:.1}\" x2=\"{:.1}\" y2=\"{mid:.1}\" stroke=\"#222\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\">{:.2}×</text>",
            y + 15.0,
            x(r.median) - left,
            x(r.min),
            x(r.max),
            x(r.max) + 6.0,
            y + 15.0,
            r.median
        );
    }
    let one = x(1.0);
    let _ = writeln!(
        out,
        "<line x1=\"{one:.1}\" y1=\"32\" x2=\"{one:.1}\" y2=\"{:.1}\" stroke=\"#c00\" \
         stroke-dasharray=\"4\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#c00\">raw UDP = 1.0</text>\n</svg>",
        height - 14.0,
        one + 4.0,
        height - 2.0
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_group_thousands_and_keep_small_digits() {
        assert_eq!(number(1_234_567.4), "1,234,567");
        assert_eq!(number(12_345.0), "12,345");
        assert_eq!(number(512.3), "512");
        assert_eq!(number(1.234), "1.23");
    }

    #[test]
    fn markdown_has_one_line_per_row_and_a_verdict() {
        let row = Row {
            key: "k".into(),
            measurement: "a | b".into(),
            config: "c".into(),
            unit: "packets/s",
            value: Stat::of([1.0, 2.0, 3.0]),
            ratio: Stat::of([0.5, 0.9, 1.1]),
            target: Target::ratio(Goal::AtLeast(0.8)),
            notes: String::new(),
        };
        let md = markdown(&[row]);
        assert_eq!(md.lines().count(), 3);
        assert!(md.contains("a \\| b"), "{md}");
        assert!(md.contains("**0.90× (0.50–1.10)**"), "{md}");
        assert!(md.contains("≥ 0.8× raw met"), "{md}");
    }
}
