//! `xbench`: fastipc side by side with its floors and comparators, in threads and in
//! processes, printing a Markdown table of ratios measured in one run.
//!
//! ```text
//! cargo run --release -p fastipc-bench --bin xbench -- [--smoke] [--reps N] [--only TEXT]... [--out FILE]
//! ```
//!
//! - `--smoke`: tiny counts and one repetition; checks that every case runs (CI).
//! - `--reps N`: repetitions per variant (default 7); variants are interleaved.
//! - `--only TEXT`: run only the cases whose title contains TEXT (case-insensitive).
//! - `--out FILE`: also write the Markdown to FILE.
//!
//! Children are this same binary (`xbench child ROLE ...`) or Python peers. Every
//! measured thread is pinned; see `BENCHMARKS.md` for what each case and ratio means.

mod cases;
mod child;
mod proc;
mod queue_rows;
mod report;

use std::time::Instant;

/// Counts for one run of every case.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Counts {
    pub(crate) reps: usize,
    pub(crate) lock_ops: u64,
    pub(crate) contended_ops: u64,
    pub(crate) queue_items: u64,
    pub(crate) spin_rounds: usize,
    pub(crate) futex_rounds_cross: usize,
    pub(crate) futex_rounds_same: usize,
    pub(crate) python_items: u64,
    pub(crate) warmup: usize,
    pub(crate) idle_span_ms: u64,
}

impl Counts {
    fn full() -> Counts {
        Counts {
            reps: 7,
            lock_ops: 20_000_000,
            contended_ops: 2_000_000,
            queue_items: 4_000_000,
            spin_rounds: 200_000,
            futex_rounds_cross: 5_000,
            futex_rounds_same: 20_000,
            python_items: 100_000,
            warmup: 1_000,
            idle_span_ms: 10_000,
        }
    }

    fn smoke() -> Counts {
        Counts {
            reps: 1,
            lock_ops: 10_000,
            contended_ops: 2_000,
            queue_items: 5_000,
            spin_rounds: 500,
            futex_rounds_cross: 50,
            futex_rounds_same: 50,
            python_items: 2_000,
            warmup: 10,
            idle_span_ms: 300,
        }
    }
}

fn usage() -> ! {
    eprintln!("usage: xbench [--smoke] [--reps N] [--only TEXT]... [--out FILE]");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("child") {
        if let Err(e) = child::main(&args[1..]) {
            eprintln!(
                "xbench child {}: {e}",
                args.get(1).map_or("", String::as_str)
            );
            std::process::exit(1);
        }
        return;
    }
    let mut counts = Counts::full();
    let mut reps = None;
    let mut only = Vec::new();
    let mut out = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--smoke" => counts = Counts::smoke(),
            "--reps" => {
                reps = Some(
                    it.next()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or_else(|| usage()),
                )
            }
            "--only" => only.push(it.next().unwrap_or_else(|| usage()).to_lowercase()),
            "--out" => out = Some(it.next().unwrap_or_else(|| usage())),
            _ => usage(),
        }
    }
    if let Some(r) = reps {
        counts.reps = r;
    }
    let start = Instant::now();
    match cases::run_all(counts, &only) {
        Ok(book) => {
            if let Some(path) = out
                && let Err(e) = std::fs::write(&path, &book.markdown)
            {
                eprintln!("xbench: writing {path}: {e}");
                std::process::exit(1);
            }
            eprintln!("xbench: done in {:.1} s", start.elapsed().as_secs_f64());
        }
        Err(e) => {
            eprintln!("xbench: {e}");
            std::process::exit(1);
        }
    }
}
