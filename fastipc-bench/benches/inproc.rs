//! The in-process criterion set: `cargo bench -p fastipc-bench`.
//!
//! Uncontended lock+unlock of the fastipc Mutex against the spin-lock floor, parking_lot
//! and std; contended mutexes in 2 and 4 threads; the fastipc queue's throughput in local
//! mode (threads) against crossbeam's ArrayQueue and rtrb. The cross-process set and the
//! ratio table are `xbench`'s (`cargo run --release -p fastipc-bench --bin xbench`).
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fastipc_bench::affinity;
use fastipc_bench::fastq;
use fastipc_bench::floors::SpinLock;
use fastipc_bench::locks::{self, BenchLock, FastMutex};
use fastipc_bench::queues::{self, Item, Placement};

fn lock_unlock<L: BenchLock>(lock: &L) {
    lock.with(|c| *c = black_box(*c + 1));
}

fn uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("uncontended lock+unlock");
    let spin = SpinLock::new(0u64);
    g.bench_function("spin floor", |b| b.iter(|| lock_unlock(&spin)));
    let pl = parking_lot::Mutex::new(0u64);
    g.bench_function("parking_lot", |b| b.iter(|| lock_unlock(&pl)));
    let std = std::sync::Mutex::new(0u64);
    g.bench_function("std", |b| b.iter(|| lock_unlock(&std)));
    let fast = FastMutex::leaked();
    g.bench_function("fastipc Mutex", |b| b.iter(|| lock_unlock(&fast)));
    g.finish();
}

fn contended(c: &mut Criterion) {
    let cpus = affinity::allowed_cpus();
    let mut g = c.benchmark_group("contended increments");
    g.sample_size(10);
    for threads in [2usize, 4] {
        g.throughput(Throughput::Elements(threads as u64 * 10_000));
        g.bench_function(format!("parking_lot {threads} threads"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let ops = locks::contended(
                        Arc::new(parking_lot::Mutex::new(0u64)),
                        threads,
                        &cpus,
                        10_000,
                    );
                    total += Duration::from_secs_f64(threads as f64 * 10_000.0 / ops);
                }
                total
            })
        });
        g.bench_function(format!("fastipc Mutex {threads} threads"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let ops =
                        locks::contended(Arc::new(FastMutex::leaked()), threads, &cpus, 10_000);
                    total += Duration::from_secs_f64(threads as f64 * 10_000.0 / ops);
                }
                total
            })
        });
        g.bench_function(format!("std {threads} threads"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let ops = locks::contended(
                        Arc::new(std::sync::Mutex::new(0u64)),
                        threads,
                        &cpus,
                        10_000,
                    );
                    total += Duration::from_secs_f64(threads as f64 * 10_000.0 / ops);
                }
                total
            })
        });
    }
    g.finish();
}

/// Turns a measured rate into the time criterion expects for `iters` runs of `n` items.
fn timed(iters: u64, n: u64, mut run: impl FnMut() -> f64) -> Duration {
    (0..iters)
        .map(|_| Duration::from_secs_f64(n as f64 / run()))
        .sum()
}

fn queue_group<T: Item + fastipc::IpcMessage>(c: &mut Criterion, label: &str) {
    let cpus = affinity::allowed_cpus();
    let (a, b) = (cpus[0], *cpus.last().unwrap());
    let spsc = Placement {
        consumer: a,
        producers: vec![b],
    };
    let mpsc = Placement {
        consumer: a,
        producers: vec![b, b],
    };
    const N: u64 = 200_000;
    let mut g = c.benchmark_group(format!("queue throughput {label}"));
    g.sample_size(10);
    g.throughput(Throughput::Elements(N));
    for cap in [1024usize, 65536] {
        g.bench_function(format!("ArrayQueue SPSC cap {cap}"), |bch| {
            bch.iter_custom(|iters| {
                timed(iters, N, || {
                    queues::array_queue::<T>(cap, N, &spsc).unwrap()
                })
            })
        });
        g.bench_function(format!("rtrb SPSC cap {cap}"), |bch| {
            bch.iter_custom(|iters| timed(iters, N, || queues::rtrb::<T>(cap, N, &spsc).unwrap()))
        });
        g.bench_function(format!("fastipc local SPSC cap {cap}"), |bch| {
            bch.iter_custom(|iters| {
                timed(iters, N, || {
                    fastq::local_throughput::<T>(cap, N, &spsc).unwrap()
                })
            })
        });
        g.bench_function(format!("fastipc local 2P1C cap {cap}"), |bch| {
            bch.iter_custom(|iters| {
                timed(iters, N, || {
                    fastq::local_throughput::<T>(cap, N / 2, &mpsc).unwrap()
                })
            })
        });
        g.bench_function(format!("ArrayQueue 2P1C cap {cap}"), |bch| {
            bch.iter_custom(|iters| {
                timed(iters, N, || {
                    queues::array_queue::<T>(cap, N / 2, &mpsc).unwrap()
                })
            })
        });
    }
    g.finish();
}

fn queues_8(c: &mut Criterion) {
    queue_group::<[u64; 1]>(c, "8 B");
}

fn queues_64(c: &mut Criterion) {
    queue_group::<[u64; 8]>(c, "64 B");
}

criterion_group!(benches, uncontended, contended, queues_8, queues_64);
criterion_main!(benches);
