//! Pinning threads to CPUs with `sched_setaffinity`.
//!
//! Cross-core and same-core numbers differ by an order of magnitude when a futex wake is
//! involved (a sleeping vCPU has to be woken by the host), so every measured thread is
//! pinned to a known CPU.

use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};

/// The CPUs this process may run on, in increasing order.
pub fn allowed_cpus() -> Vec<usize> {
    match sched_getaffinity(None) {
        Ok(set) => (0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect(),
        Err(_) => vec![0],
    }
}

/// Two distinct CPUs for a cross-core run (the first two allowed ones), or `None` on a
/// one-CPU machine.
pub fn two_cpus() -> Option<(usize, usize)> {
    let cpus = allowed_cpus();
    (cpus.len() >= 2).then(|| (cpus[0], cpus[1]))
}

/// Pins the calling thread to `cpu`. Errors (a CPU outside the allowed set) are returned,
/// not ignored: an unpinned run would measure something else.
pub fn pin_to(cpu: usize) -> std::io::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu);
    sched_setaffinity(None, &set).map_err(std::io::Error::from)
}

/// Runs `f` on a new thread pinned to `cpu` and returns its result. Measurements run on
/// such threads so that the caller's own affinity never changes.
pub fn on_cpu<R: Send + 'static>(cpu: usize, f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::spawn(move || {
        pin_to(cpu).expect("pinning a thread");
        f()
    })
    .join()
    .expect("a measuring thread panicked")
}
