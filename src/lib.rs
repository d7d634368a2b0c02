//! The fastipc workspace's root package: it holds the top-level examples, the integration
//! tests and the test peers (`src/bin/`). It has no API of its own.

/// The code snippets of the top-level `README.md`, compiled by `cargo test --doc` (and
/// run, except those marked `no_run`, which open fixed names in `/dev/shm`).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
