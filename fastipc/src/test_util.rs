//! Helpers for the unit tests of every module.

use std::sync::atomic::{AtomicU64, Ordering};

/// A name no other test (of this or a concurrent run) uses: `fastipc-unit-TAG-PID-N`.
pub(crate) fn unique(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "fastipc-unit-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
