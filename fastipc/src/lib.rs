//! Typed, zero-copy messaging and synchronisation between processes on one Linux machine.
//!
//! fastipc speaks the same bytes as the C++ `slick::SlickQueue<T>`, the Python package
//! `slick-queue-py` and the Python package `fastipc`, so Rust, C++ and Python processes can
//! share one queue, one mutex or one event.
//!
//! The crate is layered; each layer only calls the ones below it:
//!
//! | layer | modules |
//! |---|---|
//! | typed API | `named` objects (with their issue), [`queue`] endpoints ([`SlickQueue`]) |
//! | algorithms | `sync` primitives, the queue ring |
//! | layouts and memory views | [`mem`], [`atomic`], [`message`] |
//! | syscalls | [`sys`] (futex, shared memory, processes, clocks) |
#![cfg_attr(
    not(target_os = "linux"),
    doc = "fastipc only supports Linux (futex and /dev/shm)."
)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

#[cfg(not(target_os = "linux"))]
compile_error!("fastipc needs Linux: it is built on futex(2) and /dev/shm");

pub mod atomic;
pub mod error;
pub mod mem;
pub mod message;
pub mod queue;
pub mod sys;

pub use atomic::{AtomicU32, AtomicU64, FutexWord};
pub use error::{MemError, QueueError, RecvError, ShmError};
pub use mem::{MemRef, Region};
pub use message::IpcMessage;
pub use queue::SlickQueue;
pub use sys::clock::Deadline;
pub use sys::futex::Scope;
pub use sys::shm::Segment;
