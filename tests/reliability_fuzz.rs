//! Bad input: a seeded fuzz of segment bytes and lengths, opened through every entry
//! point (the `peer-fuzz` peer: typed queue consumer and producer, `Ring`, the named
//! objects, `SharedCell`, the CLI's `inspect`). Cases run in batches, one child process
//! per batch, several batches at once, each child with a hard timeout: a panic, a signal
//! or a hang names the seed and the case.
//!
//! - CI: 3,000 cases of seed `FASTIPC_FUZZ_SEED` (default below).
//! - `FASTIPC_LONG=1`: 100,000 cases; `FASTIPC_FUZZ_CASES=N` any number.
//!
//! A case that fails is rerun alone with `target/debug/peer-fuzz SEED CASE 1`.

use std::time::{Duration, Instant};

use fastipc_testkit::ChildGuard;

const PEER: &str = env!("CARGO_BIN_EXE_peer-fuzz");
const DEFAULT_SEED: u64 = 0x00F4_5717_C0DE;
const BATCH: u64 = 500;
/// Batches running at once: most of a batch's time is the documented 2 s waits of the
/// cases that fuzzed an "initialising" state, which overlap.
const PARALLEL: usize = 8;
/// The hard timeout of one batch (500 cases take ~15 s on the shared machine).
const BATCH_LIMIT: Duration = Duration::from_secs(180);

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

fn cases() -> u64 {
    env_u64("FASTIPC_FUZZ_CASES").unwrap_or(
        if std::env::var_os("FASTIPC_LONG").is_some_and(|v| v != "0") {
            100_000
        } else {
            3_000
        },
    )
}

/// Runs one batch to completion; `Err` names what went wrong and the last case started.
fn batch(seed: u64, first: u64, count: u64) -> Result<(), String> {
    let mut cmd = std::process::Command::new(PEER);
    cmd.args([seed.to_string(), first.to_string(), count.to_string()]);
    let out = ChildGuard::spawn(cmd).output(BATCH_LIMIT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().rev().find(|l| l.starts_with("case "));
    if out.status.success() && stdout.lines().last() == Some(&format!("done {count}")) {
        return Ok(());
    }
    Err(format!(
        "seed {seed:#x}, batch {first}..{}: {:?} (killed after {BATCH_LIMIT:?} if it hung); \
         last started: {last:?}; stderr: {}",
        first + count,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    ))
}

#[test]
fn fuzzed_segments_give_values_or_typed_errors_through_every_entry_point() {
    let seed = env_u64("FASTIPC_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let total = cases();
    let started = Instant::now();
    let firsts: Vec<u64> = (0..total).step_by(BATCH as usize).collect();
    let mut failures = Vec::new();
    for group in firsts.chunks(PARALLEL) {
        let results: Vec<Result<(), String>> = std::thread::scope(|s| {
            let handles: Vec<_> = group
                .iter()
                .map(|&first| s.spawn(move || batch(seed, first, BATCH.min(total - first))))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        failures.extend(results.into_iter().filter_map(Result::err));
    }
    eprintln!(
        "fuzz: {total} cases of seed {seed:#x} in {:.1} s, {} failing batches",
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
}
