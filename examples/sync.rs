//! The named sync primitives between two processes: the launcher hands out jobs through a
//! `NamedSemaphore`, a worker process takes them, logs each under a `NamedMutex`, and
//! reports with a `NamedEvent`.
//!
//! ```text
//! cargo run --example sync [-- --jobs N]
//! ```
//!
//! The objects live in `/dev/shm/__pyfastipc_{sema,mutex,event}_NAME`, the layout of the
//! Python package `fastipc`, so a Python process could take the jobs instead. The last
//! process to close an object removes it.

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use fastipc::{NamedEvent, NamedMutex, NamedSemaphore};

const JOBS: &str = "fastipc-example-jobs";
const LOG_LOCK: &str = "fastipc-example-log";
const DONE: &str = "fastipc-example-done";
/// Held by the launcher for the whole run, so two runs at once take turns.
const RUN_LOCK: &str = "fastipc-example-sync";
const PATIENCE: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let jobs = args
        .windows(2)
        .find(|w| w[0] == "--jobs")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(5);
    let result = match args.first().map(String::as_str) {
        Some("worker") => worker(jobs),
        _ => launcher(jobs),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sync: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn launcher(jobs: u32) -> Result<()> {
    let run_lock = NamedMutex::open(RUN_LOCK)?;
    let _turn = match run_lock.lock_timeout(Duration::from_secs(120)) {
        Ok(guard) => guard,
        Err(e) => e.into_guard().ok_or("another sync run kept running")?,
    };
    let sem = NamedSemaphore::open(JOBS, 0)?; // 0 tokens if this call creates it
    let done = NamedEvent::open(DONE)?;
    // Leftovers of a killed run: no tokens, event clear.
    while sem.try_wait() {}
    done.clear();

    let mut worker = Command::new(std::env::current_exe()?)
        .args(["worker", "--jobs", &jobs.to_string()])
        .spawn()?;
    for job in 0..jobs {
        println!("launcher: job {job} posted");
        sem.post(1)?;
    }
    let waited = done.wait_timeout(PATIENCE);
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = worker.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = worker.kill();
            let _ = worker.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    waited.map_err(|_| "the worker did not report within 30 s")?;
    match status {
        Some(status) if status.success() => {}
        _ => return Err("the worker failed".into()),
    }
    if sem.value() != 0 {
        return Err(format!("{} jobs were not taken", sem.value()).into());
    }
    println!("launcher: the worker took all {jobs} jobs");
    Ok(())
}

fn worker(jobs: u32) -> Result<()> {
    let sem = NamedSemaphore::open(JOBS, 0)?;
    let log = NamedMutex::open(LOG_LOCK)?;
    let done = NamedEvent::open(DONE)?;
    for job in 0..jobs {
        sem.wait_timeout(PATIENCE)?; // one token per job
        // A dead previous holder is reported with `OwnerDied`, which carries the guard.
        let _guard = log.lock().unwrap_or_else(|died| died.into_guard());
        println!("worker: took job {job}");
    }
    done.set(); // wakes every waiter
    Ok(())
}
