//! Named shared state: two worker processes update one `SharedCell<Counters>` under its
//! lock, and the launcher checks that no update was lost.
//!
//! ```text
//! cargo run --release --example shared_cell [-- --updates N]
//! ```
//!
//! `#[ipc(shared = "NAME")]` generates `Counters::shared()`, which opens the cell
//! `/dev/shm/__fastipc_cell_NAME` (creating it zeroed). Each worker makes `N` updates
//! (default 100 000), half through a lock guard and half through `update`; each update
//! is a read-modify-write that only the lock keeps exact. The last process to close the
//! cell removes it.

use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant};

use fastipc::{IpcMessage, NamedMutex};

/// The shared state. `SharedCell<T>` holds any `IpcMessage`.
#[derive(IpcMessage, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
#[ipc(shared = "fastipc-example-counters")]
struct Counters {
    total: u64,
    by_worker: [u64; 2],
    /// The process that made the last update.
    last_pid: u32,
    _pad: u32,
}

const ZERO: Counters = Counters {
    total: 0,
    by_worker: [0; 2],
    last_pid: 0,
    _pad: 0,
};

/// Held by the launcher for the whole run, so two runs at once take turns.
const RUN_LOCK: &str = "fastipc-example-shared-cell";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("worker") => worker(&args[1..]),
        _ => launcher(updates(&args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shared_cell: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// `--updates N` from the arguments, default 100 000.
fn updates(args: &[String]) -> u64 {
    args.windows(2)
        .find(|w| w[0] == "--updates")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(100_000)
}

fn launcher(updates: u64) -> Result<()> {
    let run_lock = NamedMutex::open(RUN_LOCK)?;
    let _turn = match run_lock.lock_timeout(Duration::from_secs(120)) {
        Ok(guard) => guard,
        Err(e) => e
            .into_guard()
            .ok_or("another shared_cell run kept running")?,
    };
    let cell = Counters::shared()?; // = SharedCell::<Counters>::open_or_create("fastipc-example-counters")
    // Start from zero. If a process died holding the lock, the lock is ours anyway
    // (`OwnerDied` carries the guard): the value is reset all the same.
    match cell.store(&ZERO) {
        Ok(()) => {}
        Err(died) => {
            println!(
                "shared_cell: process {} died holding the lock",
                died.dead_pid()
            );
            *died.into_guard() = ZERO;
        }
    }

    let me = std::env::current_exe()?;
    let start = Instant::now();
    let workers: Vec<Child> = (0..2)
        .map(|i| {
            Command::new(&me)
                .args(["worker", &i.to_string(), &updates.to_string()])
                .spawn()
        })
        .collect::<std::io::Result<_>>()?;
    let mut ok = true;
    for (i, child) in workers.into_iter().enumerate() {
        ok &= wait(child, i, Duration::from_secs(120));
    }
    let secs = start.elapsed().as_secs_f64();
    let counters = cell.load().unwrap_or_else(|died| *died.into_guard());
    println!(
        "shared_cell: {} updates by two processes in {secs:.2} s: {counters:?}",
        counters.total
    );
    if !ok {
        return Err("a worker failed".into());
    }
    if counters.total != 2 * updates || counters.by_worker != [updates; 2] {
        return Err(format!("expected {updates} updates per worker, found {counters:?}").into());
    }
    println!("shared_cell: no update lost");
    Ok(())
}

/// Waits for worker `i` at most `limit`, killing it after that; whether it succeeded.
fn wait(mut child: Child, i: usize, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                eprintln!("shared_cell: worker {i} did not finish within {limit:?}; killing it");
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

fn worker(args: &[String]) -> Result<()> {
    let index: usize = args.first().ok_or("worker index missing")?.parse()?;
    let updates: u64 = args.get(1).ok_or("update count missing")?.parse()?;
    if index >= 2 {
        return Err("worker index must be 0 or 1".into());
    }
    let cell = Counters::shared()?;
    let pid = std::process::id();
    for i in 0..updates {
        if i % 2 == 0 {
            // A guard: derefs to `&mut Counters` while it holds the lock.
            let mut c = cell.lock().unwrap_or_else(|died| died.into_guard());
            c.total += 1;
            c.by_worker[index] += 1;
            c.last_pid = pid;
        } else {
            // `update` locks, runs the closure, unlocks.
            let bump = |c: &mut Counters| {
                c.total += 1;
                c.by_worker[index] += 1;
                c.last_pid = pid;
            };
            if let Err(died) = cell.update(bump) {
                bump(&mut died.into_guard());
            }
        }
    }
    println!("worker {index} (process {pid}): {updates} updates");
    Ok(())
}
