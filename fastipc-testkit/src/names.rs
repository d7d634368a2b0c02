//! Names: unique ones for objects a test makes, and taking turns on fixed ones.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A name no other test (in this or a concurrent run) uses: tag, process id, counter and
/// a clock reading. Short enough for every prefix the named objects add.
pub fn unique_name(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "fipct-{tag}-{}-{}-{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `f` holding the named mutex `lock`, waiting at most `wait` for it. For tests whose
/// objects have names fixed at compile time (`#[ipc(queue = ..)]`): two runs of the suite
/// at once (two checkouts) take turns instead of using, or removing, each other's
/// objects. A holder that died is taken over (its run is over).
pub fn exclusive<R>(lock: &str, wait: Duration, f: impl FnOnce() -> R) -> R {
    let mutex = fastipc::NamedMutex::open(lock)
        .unwrap_or_else(|e| panic!("cannot open the run lock {lock:?}: {e}"));
    let _guard = match mutex.lock_timeout(wait) {
        Ok(guard) => guard,
        Err(e) => e
            .into_guard()
            .unwrap_or_else(|| panic!("another run kept the run lock {lock:?} for {wait:?}")),
    };
    f()
}
