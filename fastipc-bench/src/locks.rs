//! Lock+unlock loops over any mutex: each operation locks, adds one to the protected
//! counter and unlocks.

use std::sync::{Arc, Barrier};
use std::time::Instant;

use crate::affinity;
use crate::floors::SpinLock;

/// A mutex protecting a `u64` counter, as the loops need it.
pub trait BenchLock: Send + Sync {
    /// Locks, runs `f` on the counter, unlocks.
    fn with(&self, f: impl FnOnce(&mut u64));
    /// Reads the counter (under the lock).
    fn get(&self) -> u64 {
        let mut v = 0;
        self.with(|c| v = *c);
        v
    }
}

impl BenchLock for SpinLock<u64> {
    #[inline]
    fn with(&self, f: impl FnOnce(&mut u64)) {
        f(&mut self.lock())
    }
}

impl BenchLock for parking_lot::Mutex<u64> {
    #[inline]
    fn with(&self, f: impl FnOnce(&mut u64)) {
        f(&mut self.lock())
    }
}

impl BenchLock for std::sync::Mutex<u64> {
    #[inline]
    fn with(&self, f: impl FnOnce(&mut u64)) {
        f(&mut self.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Uncontended: `n` lock+add+unlock operations on the calling thread; nanoseconds per
/// operation.
#[inline(never)]
pub fn uncontended<L: BenchLock>(lock: &L, n: u64) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        lock.with(|c| *c += 1);
    }
    let ns = start.elapsed().as_nanos() as f64;
    std::hint::black_box(lock.get());
    ns / n as f64
}

/// One side of the two-process contended run: waits for `go` to become non-zero, then
/// does `n` operations. Returns the time from seeing `go` to the last unlock.
pub fn contend_once<L: BenchLock>(
    lock: &L,
    go: &std::sync::atomic::AtomicU64,
    n: u64,
) -> std::io::Result<std::time::Duration> {
    let mut dog = crate::floors::Watchdog::new();
    while go.load(std::sync::atomic::Ordering::Acquire) == 0 {
        dog.spin("waiting for go")?;
    }
    let start = Instant::now();
    for _ in 0..n {
        lock.with(|c| *c += 1);
    }
    Ok(start.elapsed())
}

/// Contended: `threads` threads, pinned round-robin over `cpus`, each doing `per_thread`
/// operations on the one lock; total operations per second (checked: the counter must
/// end at exactly `threads * per_thread` more than it started).
pub fn contended<L: BenchLock + 'static>(
    lock: Arc<L>,
    threads: usize,
    cpus: &[usize],
    per_thread: u64,
) -> f64 {
    let before = lock.get();
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (lock, barrier, cpu) = (
                Arc::clone(&lock),
                Arc::clone(&barrier),
                cpus[t % cpus.len()],
            );
            std::thread::spawn(move || {
                affinity::pin_to(cpu).expect("pinning a thread");
                barrier.wait();
                for _ in 0..per_thread {
                    lock.with(|c| *c += 1);
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        h.join().expect("a locking thread panicked");
    }
    let secs = start.elapsed().as_secs_f64();
    let total = threads as u64 * per_thread;
    assert_eq!(lock.get() - before, total, "the lock let two holders in");
    total as f64 / secs
}

/// A fastipc [`Mutex`](fastipc::Mutex) over a 64-byte header, with the counter it protects
/// on the next cache line of the same memory (heap for threads, a shared segment for
/// processes). The default scope ([`fastipc::Scope::Shared`]) is used, as a user would.
#[derive(Debug, Clone, Copy)]
pub struct FastMutex<'a> {
    mutex: fastipc::Mutex<'a>,
    counter: &'a std::sync::atomic::AtomicU64,
}

/// Bytes a [`FastMutex`] needs: the header line and the counter's line.
pub const FAST_MUTEX_LEN: usize = 128;

impl<'a> FastMutex<'a> {
    /// Initialises a fresh mutex (and a zero counter) at the start of `mem`.
    pub fn init(mem: fastipc::MemRef<'a>) -> FastMutex<'a> {
        let mutex = fastipc::Mutex::init(mem).expect("128 aligned bytes hold a mutex");
        let counter = mem.atomic_u64(64).expect("the counter is in bounds");
        counter.store(0, std::sync::atomic::Ordering::Relaxed);
        FastMutex { mutex, counter }
    }

    /// Attaches to a mutex another process initialised with [`FastMutex::init`].
    pub fn attach(mem: fastipc::MemRef<'a>) -> FastMutex<'a> {
        FastMutex {
            mutex: fastipc::Mutex::attach(mem).expect("128 aligned bytes hold a mutex"),
            counter: mem.atomic_u64(64).expect("the counter is in bounds"),
        }
    }

    /// A mutex on a leaked heap block (benchmark runs make a handful of them).
    pub fn leaked() -> FastMutex<'static> {
        let region: &'static fastipc::Region =
            Box::leak(Box::new(fastipc::Region::heap(FAST_MUTEX_LEN)));
        FastMutex::init(region.mem())
    }
}

impl BenchLock for FastMutex<'_> {
    #[inline]
    fn with(&self, f: impl FnOnce(&mut u64)) {
        let guard = self.mutex.lock().unwrap_or_else(|died| died.into_guard());
        let mut v = self.counter.load(std::sync::atomic::Ordering::Relaxed);
        f(&mut v);
        self.counter.store(v, std::sync::atomic::Ordering::Relaxed);
        drop(guard);
    }
}
