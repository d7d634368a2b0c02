//! A lossless stream between a producer and a consumer thread that share one CPU, next to
//! the same stream across two CPUs: `send()` waiting for room, `recv()` waiting for
//! messages, both with their default waits. On one CPU each side makes progress only
//! while the other has given the CPU away, so this measures how soon each wait does.
//! Prints the median rate (and the range) over the runs. A measurement, not a test: run
//! it on a quiet machine.
//!
//! ```text
//! cargo run --release -p fastipc-bench --bin same_cpu [-- --runs 7 --items 2000000]
//! ```

use std::time::Instant;

use fastipc::queue::{Mode, SlickQueue};
use fastipc_bench::affinity::{allowed_cpus, pin_to};

/// One run: `items` u64s from a producer thread on CPU `p` to a consumer thread on CPU
/// `c` through a lossless local queue of `capacity`; messages per second at the consumer.
fn run(p: usize, c: usize, capacity: usize, items: u64) -> f64 {
    let q = SlickQueue::<u64>::local_with(capacity, Mode::Lossless).expect("a local queue");
    let tx = q.producer().expect("a producer");
    let mut rx = q.consumer().expect("a consumer");
    let consumer = std::thread::spawn(move || {
        pin_to(c).expect("pinning the consumer");
        let start = Instant::now();
        for i in 0..items {
            assert_eq!(rx.recv(), Ok(i), "every message, in order");
        }
        items as f64 / start.elapsed().as_secs_f64()
    });
    let producer = std::thread::spawn(move || {
        pin_to(p).expect("pinning the producer");
        for i in 0..items {
            tx.send(&i).expect("a lossless send");
        }
    });
    producer.join().expect("producer");
    consumer.join().expect("consumer")
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let number = |flag: &str, default: u64| -> u64 {
        argv.iter()
            .position(|a| a == flag)
            .and_then(|i| argv.get(i + 1))
            .map_or(default, |v| v.parse().expect("a number"))
    };
    let (runs, items) = (number("--runs", 7) as usize, number("--items", 2_000_000));
    let cpus = allowed_cpus();
    let mut placements = vec![("one CPU", cpus[0], cpus[0])];
    if let Some(&other) = cpus.get(1) {
        placements.push(("two CPUs", cpus[0], other));
    }
    println!("lossless u64 stream, capacity 1024, {items} items, {runs} runs (M msg/s)");
    for (label, p, c) in placements {
        let mut rates: Vec<f64> = (0..runs).map(|_| run(p, c, 1024, items) / 1e6).collect();
        rates.sort_by(f64::total_cmp);
        println!(
            "{label:>8}: median {:.2}, range {:.2}–{:.2}",
            rates[rates.len() / 2],
            rates[0],
            rates[rates.len() - 1]
        );
    }
}
