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
//! | tools | [`inspect`]: any fastipc or peer segment decoded into typed structs, without attaching |
//! | typed API | [`named`] objects and [`SharedCell`], [`queue`] endpoints ([`SlickQueue`], [`queue::remove`]) |
//! | algorithms | [`sync`] primitives, the queue ring ([`queue::Ring`]) |
//! | layouts, owned memory, atomic views | `sync::layout` and `queue::layout` (crate-private: their public types are re-exported by [`sync`], [`queue`] and [`inspect`]), [`named::cell::layout`] (public for its `write_header`); [`Region`] (heap or segment); [`atomic`] ([`FutexWord`], [`SharedU32`], [`SharedU64`]) |
//! | syscalls (private) | `sys`: futex, shared memory, processes, clocks; public through [`Segment`], [`Deadline`], [`Scope`] |
//! | memory views, messages | [`mem`] ([`MemRef`]), [`message`] ([`IpcMessage`](trait@IpcMessage)) |
//!
//! Errors are in [`error`], re-exported at the crate root.
#![cfg_attr(
    feature = "derive",
    doc = "\nMessages are structs with [`#[derive(IpcMessage)]`](derive@IpcMessage); its \
           page has the layout rules and the `#[ipc(...)]` keys."
)]
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
pub mod inspect;
pub mod mem;
pub mod message;
pub mod named;
pub mod queue;
mod region;
pub mod sync;
mod sys;
#[cfg(test)]
mod test_util;
pub mod waiter;

pub use atomic::{FutexWord, SharedU32, SharedU64};
pub use error::{
    Lapped, MemError, NamedError, OpenError, RecvError, RecvTimeoutError, SendError,
    SendTimeoutError, SharedCellError, ShmError, SyncError, TimedOut, TryRecvError, TrySendError,
};
pub use mem::MemRef;
pub use message::IpcMessage;
pub use named::{NamedEvent, NamedMutex, NamedSemaphore, SharedCell, SharedCellGuard};
pub use queue::SlickQueue;
pub use region::Region;
pub use sync::{Event, LockError, Mutex, MutexGuard, OwnerDied, Semaphore};
pub use sys::clock::Deadline;
pub use sys::futex::Scope;
pub use sys::shm::Segment;

/// `#[derive(IpcMessage)]`: checks a struct's layout at compile time and implements the
/// trait [`IpcMessage`](trait@IpcMessage) (and `bytemuck::Pod`) for it. Re-exported from
/// the `fastipc-derive` crate (feature `derive`, on by default); below are the rules, the
/// error each gives, and the `#[ipc(...)]` keys.
#[cfg(feature = "derive")]
pub use fastipc_derive::IpcMessage;

/// What the code of `#[derive(IpcMessage)]` reaches the runtime through. Not public API:
/// it changes with the derive. The code of `#[ipc(queue = ..)]` also names `SlickQueue`,
/// `Producer`, `Consumer`, `Mode` and `OpenError` here (with `single_producer`, also
/// `QueueOptions` and `SingleProducer`), and `#[ipc(shared = ..)]` names
/// `SharedCell` and `SharedCellError`.
#[doc(hidden)]
pub mod __private {
    pub use crate::error::SharedCellError;
    pub use crate::message::rules::{
        assert_align_at_most_16, assert_copy, assert_no_padding, assert_no_padding_after_field,
        assert_not_zero_sized, field_fingerprint,
    };
    pub use crate::message::{IpcMessage, fingerprint};
    pub use crate::named::SharedCell;
    pub use crate::queue::{
        Consumer, Mode, OpenError, Producer, QueueOptions, SingleProducer, SlickQueue,
    };
    pub use ::bytemuck;
    pub use ::core::mem::{align_of, offset_of, size_of};
    pub use ::core::result::Result;
}
