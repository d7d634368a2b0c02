//! Helpers shared by the integration tests of the workspace (the root package's
//! `tests/` and `fastipc-cli/tests/`): unique names, cleanup guards, child processes
//! that are killed and reaped on drop and read with deadlines, bounded polling, and the
//! Python peers' interpreter; and what the Rust test peers (`src/bin/peer-*`) share
//! ([`peer`]). Not published.
//!
//! ```
//! use std::process::Command;
//! use std::time::Duration;
//! use fastipc_testkit::{ChildGuard, ShmCleanup, unique_name};
//!
//! let name = unique_name("doc");
//! let _cleanup = ShmCleanup::new().segment(&name); // removed even if the test panics
//! let mut echo = Command::new("echo");
//! echo.arg(&name);
//! // Killed and reaped if it outlives the deadline (or the test panics first).
//! let out = ChildGuard::spawn(echo).success(Duration::from_secs(30));
//! assert_eq!(out.trim(), name);
//! ```

mod child;
mod cleanup;
mod names;
pub mod peer;
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
