//! Cases, interleaved repetitions, summaries and the Markdown tables.

use std::fmt::Write as _;

use fastipc_bench::stats::{Latency, median, percentile};

/// What a case measures, and so how its figures read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Nanoseconds per operation (lower is better).
    NsPerOp,
    /// Items or operations per second (higher is better), shown in millions.
    Rate,
    /// One-way latency percentiles in nanoseconds (lower is better).
    Latency,
}

/// One run's figure.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Figure {
    /// ns/op or items/s.
    Scalar(f64),
    /// p50/p99 of one run's samples.
    Lat(Latency),
    /// A raw lossy run: items/s delivered to the consumer, the fraction of the items it
    /// lost, and items/s the producer sent (its own clock, go to last send).
    Lossy { rate: f64, loss: f64, sent: f64 },
}

type Runner<'a> = Box<dyn FnMut() -> std::io::Result<Figure> + 'a>;

/// A group of variants measured side by side, A B C A B C ... in one run.
pub(crate) struct Case<'a> {
    pub(crate) title: String,
    pub(crate) kind: Kind,
    pub(crate) note: String,
    variants: Vec<(String, Runner<'a>)>,
}

impl<'a> Case<'a> {
    pub(crate) fn new(title: impl Into<String>, kind: Kind, note: impl Into<String>) -> Case<'a> {
        Case {
            title: title.into(),
            kind,
            note: note.into(),
            variants: Vec::new(),
        }
    }

    /// Adds a variant; the first one added is the base of the table's ratio column.
    pub(crate) fn variant(
        mut self,
        name: impl Into<String>,
        run: impl FnMut() -> std::io::Result<Figure> + 'a,
    ) -> Self {
        self.variants.push((name.into(), Box::new(run)));
        self
    }
}

/// A variant's figures over the repetitions: medians of the per-run figures, and the
/// per-run figures themselves (for ratios paired by repetition).
#[derive(Clone, Debug)]
pub(crate) struct Summary {
    /// Median of the scalars, or of the per-run p50s.
    pub(crate) median: f64,
    /// Median of the per-run p99s (latency cases), or of the sent rates (lossy rows).
    pub(crate) p99: f64,
    /// The smallest and largest per-run figure (p50 for latencies).
    pub(crate) min: f64,
    pub(crate) max: f64,
    /// Median of the per-run loss fractions (lossy rows only).
    pub(crate) loss: Option<f64>,
    /// Per repetition: the scalar or p50, and the p99 (or a lossy row's sent rate).
    runs: Vec<(f64, f64)>,
}

impl Summary {
    /// `self / base`, as the median of the ratios of the runs of one repetition (which
    /// ran back to back), so that a change of the host's speed between repetitions
    /// cancels out.
    pub(crate) fn ratio(&self, base: &Summary, p99: bool) -> f64 {
        let ratios: Vec<f64> = self
            .runs
            .iter()
            .zip(&base.runs)
            .map(|(a, b)| if p99 { a.1 / b.1 } else { a.0 / b.0 })
            .collect();
        median(&ratios)
    }
}

/// Everything measured so far, and the Markdown written for it.
#[derive(Default)]
pub(crate) struct Book {
    rows: Vec<(String, String, Summary)>,
    pub(crate) markdown: String,
}

impl Book {
    /// Runs `case` `reps` times, rotating the order of the variants every repetition
    /// (A B C, B C A, C A B, ...), then records and prints its table.
    pub(crate) fn run(&mut self, mut case: Case<'_>, reps: usize) -> std::io::Result<()> {
        eprintln!("== {}", case.title);
        let k = case.variants.len();
        let mut figs: Vec<Vec<Figure>> = vec![Vec::new(); k];
        for rep in 0..reps {
            for j in 0..k {
                let i = (rep + j) % k;
                let (name, run) = &mut case.variants[i];
                let fig = run()
                    .map_err(|e| std::io::Error::other(format!("{} / {name}: {e}", case.title)))?;
                eprintln!("   rep {rep} {name}: {}", show(case.kind, &fig));
                figs[i].push(fig);
            }
        }
        let mut summaries = Vec::new();
        for ((name, _), f) in case.variants.iter().zip(&figs) {
            let firsts: Vec<f64> = f
                .iter()
                .map(|x| match x {
                    Figure::Scalar(v) | Figure::Lossy { rate: v, .. } => *v,
                    Figure::Lat(l) => l.p50,
                })
                .collect();
            let losses: Vec<f64> = f
                .iter()
                .filter_map(|x| match x {
                    Figure::Lossy { loss, .. } => Some(*loss),
                    _ => None,
                })
                .collect();
            let p99s: Vec<f64> = f
                .iter()
                .map(|x| match x {
                    Figure::Scalar(_) => f64::NAN,
                    Figure::Lossy { sent, .. } => *sent,
                    Figure::Lat(l) => l.p99,
                })
                .collect();
            let s = Summary {
                median: median(&firsts),
                p99: median(&p99s),
                min: percentile(&firsts, 0.0),
                max: percentile(&firsts, 100.0),
                loss: (!losses.is_empty()).then(|| median(&losses)),
                runs: firsts.iter().copied().zip(p99s.iter().copied()).collect(),
            };
            summaries.push((name.clone(), s));
        }
        self.table(&case, &summaries, reps);
        for (name, s) in summaries {
            self.rows.push((case.title.clone(), name, s));
        }
        Ok(())
    }

    fn table(&mut self, case: &Case<'_>, rows: &[(String, Summary)], reps: usize) {
        let md = &mut self.markdown;
        let base = &rows[0].1;
        let _ = writeln!(md, "\n### {}\n", case.title);
        if !case.note.is_empty() {
            let _ = writeln!(md, "{}\n", case.note);
        }
        match case.kind {
            Kind::Latency => {
                let _ = writeln!(
                    md,
                    "| variant | one-way p50 | one-way p99 | p50 × {0} | p99 × {0} |",
                    rows[0].0
                );
                let _ = writeln!(md, "|---|---:|---:|---:|---:|");
                for (name, s) in rows {
                    let _ = writeln!(
                        md,
                        "| {name} | {} | {} | {:.2} | {:.2} |",
                        ns(s.median),
                        ns(s.p99),
                        s.ratio(base, false),
                        s.ratio(base, true)
                    );
                }
            }
            Kind::NsPerOp | Kind::Rate => {
                let unit = if case.kind == Kind::Rate {
                    "M/s"
                } else {
                    "ns/op"
                };
                // Lossy rows show what they lost (the rate is what they delivered).
                let lossy = rows.iter().any(|(_, s)| s.loss.is_some());
                let (head, rule) = if lossy {
                    (" lost (median) | producer sent, median M/s |", "---:|---:|")
                } else {
                    ("", "")
                };
                let _ = writeln!(
                    md,
                    "| variant | median {unit} | range over runs | × {} |{head}",
                    rows[0].0
                );
                let _ = writeln!(md, "|---|---:|---:|---:|{rule}");
                for (name, s) in rows {
                    let (m, lo, hi) = if case.kind == Kind::Rate {
                        (s.median / 1e6, s.min / 1e6, s.max / 1e6)
                    } else {
                        (s.median, s.min, s.max)
                    };
                    let lost = match (lossy, s.loss) {
                        (false, _) => String::new(),
                        (true, Some(l)) => {
                            format!(" {:.2} % | {:.2} |", 100.0 * l, s.p99 / 1e6)
                        }
                        (true, None) => " 0 | |".to_owned(),
                    };
                    let _ = writeln!(
                        md,
                        "| {name} | {m:.2} | {lo:.2}–{hi:.2} | {:.2} |{lost}",
                        s.ratio(base, false)
                    );
                }
            }
        }
        let _ = writeln!(
            md,
            "\n({reps} interleaved runs per variant; figures are medians over the runs, ratios the medians of the ratios within each round)"
        );
        print!("{}", &md[md.rfind("\n### ").unwrap_or(0)..]);
    }

    /// Appends (and prints) a section written by the caller.
    pub(crate) fn section(&mut self, md: &str) {
        self.markdown.push_str(md);
        print!("{md}");
    }

    /// Records a figure measured outside [`Book::run`] (so that targets can use it).
    pub(crate) fn record(&mut self, title: &str, variant: &str, value: f64) {
        let s = Summary {
            median: value,
            p99: f64::NAN,
            min: value,
            max: value,
            loss: None,
            runs: vec![(value, f64::NAN)],
        };
        self.rows.push((title.to_owned(), variant.to_owned(), s));
    }

    /// The summary of `variant` in case `title`.
    pub(crate) fn get(&self, title: &str, variant: &str) -> Option<&Summary> {
        self.rows
            .iter()
            .find(|(t, v, _)| t == title && v == variant)
            .map(|r| &r.2)
    }
}

/// A duration in ns, or µs above 10 µs.
pub(crate) fn ns(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1} µs", v / 1000.0)
    } else {
        format!("{v:.0} ns")
    }
}

fn show(kind: Kind, f: &Figure) -> String {
    match (kind, f) {
        (Kind::Rate, Figure::Scalar(v)) => format!("{:.2} M/s", v / 1e6),
        (_, Figure::Lossy { rate, loss, sent }) => format!(
            "{:.2} M/s delivered, {:.2} % lost, {:.2} M/s sent",
            rate / 1e6,
            100.0 * loss,
            sent / 1e6
        ),
        (_, Figure::Scalar(v)) => format!("{v:.2} ns/op"),
        (_, Figure::Lat(l)) => format!("p50 {} p99 {}", ns(l.p50), ns(l.p99)),
    }
}

/// A target: a ratio of two figures of one run against a limit.
pub(crate) struct Target {
    pub(crate) what: String,
    pub(crate) ratio: Option<f64>,
    pub(crate) limit: f64,
    /// True when the ratio must be at most the limit, false when at least.
    pub(crate) at_most: bool,
}

impl Target {
    pub(crate) fn met(&self) -> Option<bool> {
        self.ratio.map(|r| {
            if self.at_most {
                r <= self.limit
            } else {
                r >= self.limit
            }
        })
    }
}

/// Appends (and prints) a targets table headed `title`.
pub(crate) fn targets(book: &mut Book, title: &str, targets: &[Target]) {
    let md = &mut book.markdown;
    let start = md.len();
    let _ = writeln!(
        md,
        "\n### {title}\n\nRatios of two variants of one table, each the median of the ratios within each round of that table.\n\n| target | ratio in this run | limit | met |\n|---|---:|---:|:---:|"
    );
    for t in targets {
        let ratio = t.ratio.map_or("n/a".to_owned(), |r| format!("{r:.2}"));
        let limit = format!("{} {:.2}", if t.at_most { "≤" } else { "≥" }, t.limit);
        let met = match t.met() {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "not measured",
        };
        let _ = writeln!(md, "| {} | {ratio} | {limit} | {met} |", t.what);
    }
    print!("{}", &md[start..]);
}
