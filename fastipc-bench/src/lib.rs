//! Benchmarks of fastipc side by side with what a user would pick instead.
//!
//! This crate is a workspace member that `cargo test` never builds (it is not a default
//! member and `scripts/test.sh` excludes it), because its comparison crates (iceoryx2
//! above all) take minutes to compile. It has two front ends:
//!
//! - `cargo bench -p fastipc-bench` runs the in-process criterion set (`benches/inproc.rs`).
//! - `cargo run --release -p fastipc-bench --bin xbench` runs the whole comparison, in
//!   threads and in processes it spawns itself, and prints a table of ratios to each
//!   comparator measured in the same run (see `BENCHMARKS.md` at the top level).
//!
//! The measuring code lives here so that both front ends run exactly the same loops:
//!
//! | module | holds |
//! |---|---|
//! | [`affinity`] | pinning the calling thread to one CPU |
//! | [`clock`] | a cheap cycle counter calibrated to nanoseconds |
//! | [`stats`] | medians and percentiles |
//! | [`fastq`] | the fastipc queue behind the same traits, and its ping-pong |
//! | [`floors`] | the bare mechanisms: a CAS spin lock, a shared cache line, a raw futex, a Unix socket |
//! | [`iox`] | the iceoryx2 publish/subscribe ping-pong |
//! | [`layout_floor`] | the shared queue layout's own algorithm, bare (the peers' floor) |
//! | [`locks`] | lock+unlock loops over any mutex, uncontended and contended |
//! | [`queues`] | throughput loops over any queue, with a credit window for the lossy ones, or raw with the losses counted |
//! | [`shared`] | a small control block in shared memory for the cross-process runs |

pub mod affinity;
pub mod asyncq;
pub mod clock;
pub mod fastq;
pub mod floors;
pub mod iox;
pub mod layout_floor;
pub mod locks;
pub mod queues;
pub mod shared;
pub mod stats;
