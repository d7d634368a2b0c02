//! How late short timeouts return: a 1 ms `recv_timeout` (empty queue), `lock_timeout`
//! (a mutex another thread holds), semaphore and event `wait_timeout`, next to
//! `thread::sleep(1 ms)`, idle and with two CPU hogs running. Prints the median and p99
//! overshoot (elapsed − timeout) per case, and the median's ratio to `thread::sleep`'s in
//! the same run. A measurement, not a test: run it on a quiet machine.
//!
//! ```text
//! cargo run --release -p fastipc-bench --bin overshoot [-- --samples 300 --timeout-us 1000]
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fastipc::named::registry::Registry;
use fastipc::{NamedEvent, NamedMutex, NamedSemaphore, SlickQueue};
use fastipc_bench::stats::percentile;

/// One case: waits once with `timeout` (it must time out) and returns how long it took.
type Case = Box<dyn FnMut(Duration) -> Duration>;

struct Args {
    samples: usize,
    timeout: Duration,
}

fn args() -> Args {
    let mut out = Args {
        samples: 300,
        timeout: Duration::from_millis(1),
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        let value = || -> u64 {
            it.clone()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{a} needs a number"))
        };
        match a.as_str() {
            "--samples" => out.samples = value() as usize,
            "--timeout-us" => out.timeout = Duration::from_micros(value()),
            other => panic!("unknown argument {other:?} (--samples N, --timeout-us N)"),
        }
        it.next();
    }
    out
}

/// Two threads spinning on a core each until dropped.
struct Hogs {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Hogs {
    fn start(n: usize) -> Hogs {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                })
            })
            .collect();
        Hogs { stop, threads }
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// The cases, each with what it keeps alive (a registry in a temporary folder, the
/// named objects, the thread holding the mutex).
fn cases(dir: &std::path::Path) -> Vec<(&'static str, Case)> {
    let registry = Registry::at(dir);
    let tag = std::process::id();
    let q = SlickQueue::<u64>::local(64).expect("local queue");
    let mut rx = q.consumer().expect("consumer");
    let recv: Case = Box::new(move |t| {
        timed(|| {
            assert!(rx.recv_timeout(t).is_err(), "the queue is empty");
        })
    });
    let mutex = NamedMutex::open_in(&registry, &format!("overshoot-mx-{tag}")).expect("mutex");
    let held = Arc::new(AtomicBool::new(false));
    let release = Arc::new(AtomicBool::new(false));
    let holder = {
        let mutex = NamedMutex::open_in(&registry, &format!("overshoot-mx-{tag}")).expect("mutex");
        let (held, release) = (Arc::clone(&held), Arc::clone(&release));
        std::thread::spawn(move || {
            let _guard = mutex.lock().unwrap_or_else(|d| d.into_guard());
            held.store(true, Ordering::Release);
            while !release.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    while !held.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut holder = Some(holder);
    let lock: Case = Box::new(move |t| {
        let d = timed(|| {
            assert!(mutex.lock_timeout(t).is_err(), "the mutex is held");
        });
        if t.is_zero() {
            // The last call: let the holder go.
            release.store(true, Ordering::Release);
            if let Some(h) = holder.take() {
                let _ = h.join();
            }
        }
        d
    });
    let sem = NamedSemaphore::open_in(&registry, &format!("overshoot-sem-{tag}"), 0).expect("sem");
    let sema: Case = Box::new(move |t| {
        timed(|| {
            assert!(sem.wait_timeout(t).is_err(), "no token");
        })
    });
    let ev = NamedEvent::open_in(&registry, &format!("overshoot-ev-{tag}")).expect("event");
    let event: Case = Box::new(move |t| {
        timed(|| {
            assert!(ev.wait_timeout(t).is_err(), "not set");
        })
    });
    let sleep: Case = Box::new(|t| timed(|| std::thread::sleep(t)));
    vec![
        ("thread::sleep", sleep),
        ("Consumer::recv_timeout", recv),
        ("NamedMutex::lock_timeout", lock),
        ("NamedSemaphore::wait_timeout", sema),
        ("NamedEvent::wait_timeout", event),
    ]
}

fn main() {
    let args = args();
    let dir = std::env::temp_dir().join(format!("fastipc-overshoot-{}", std::process::id()));
    let mut cases = cases(&dir);
    println!(
        "overshoot of {:?} timeouts, {} samples per case (µs: elapsed − timeout)\n",
        args.timeout, args.samples
    );
    println!("| case | load | median | p99 | median / thread::sleep's |");
    println!("|---|---|---:|---:|---:|");
    for (load, hogs) in [("idle", 0), ("2 CPU hogs", 2)] {
        let _hogs = Hogs::start(hogs);
        std::thread::sleep(Duration::from_millis(50));
        let mut sleep_median = f64::NAN;
        for (name, case) in cases.iter_mut() {
            let over: Vec<f64> = (0..args.samples)
                .map(|_| {
                    let took = case(args.timeout);
                    took.saturating_sub(args.timeout).as_secs_f64() * 1e6
                })
                .collect();
            let (p50, p99) = (percentile(&over, 50.0), percentile(&over, 99.0));
            if *name == "thread::sleep" {
                sleep_median = p50;
            }
            println!(
                "| {name} | {load} | {p50:.0} | {p99:.0} | {:.1}× |",
                p50 / sleep_median.max(1.0)
            );
        }
    }
    // Lets the mutex holder go (a zero timeout marks the last call), then cleans up.
    for (name, case) in cases.iter_mut() {
        if *name == "NamedMutex::lock_timeout" {
            case(Duration::ZERO);
        }
    }
    drop(cases);
    let _ = std::fs::remove_dir_all(&dir);
}
