//! Helpers shared by the integration tests of the workspace (the root package's
//! `tests/` and `fastipc-cli/tests/`): unique names, cleanup guards, child processes
//! that are killed and reaped on drop and read with deadlines, bounded polling, and the
//! Python peers' interpreter. Not published.

mod child;
mod cleanup;
mod names;
mod python;

use std::time::{Duration, Instant};

pub use child::{ChildGuard, Lines};
pub use cleanup::ShmCleanup;
pub use names::{exclusive, unique_name};
pub use python::{PEERS, check_peers, in_ci, judge_peers, python, python_command};

/// Polls `cond` every millisecond until it holds or `timeout` passes; whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
