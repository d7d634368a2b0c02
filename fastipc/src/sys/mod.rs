//! The syscall layer: the only place that talks to the kernel.
//!
//! Everything here is a thin, documented wrapper over [`rustix`]: futex wait and wake
//! (and `futex_waitv`, for the async [`waiter`](crate::waiter)),
//! POSIX shared-memory segments, process ids and liveness, and the monotonic clock used
//! for deadlines.
//!
//! Private to the crate: what users need of it is public through [`Segment`](crate::Segment),
//! [`Deadline`](crate::Deadline), [`Scope`](crate::Scope) and
//! [`FutexWord`](crate::FutexWord); tools read segments through [`crate::inspect`].

pub(crate) mod clock;
pub(crate) mod futex;
pub(crate) mod process;
pub(crate) mod shm;
pub(crate) mod waitv;
