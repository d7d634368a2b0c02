//! The syscall layer: the only place that talks to the kernel.
//!
//! Everything here is a thin, documented wrapper over [`rustix`]: futex wait and wake,
//! POSIX shared-memory segments, process ids and liveness, and the monotonic clock used
//! for deadlines.

pub mod clock;
pub mod futex;
pub mod process;
pub mod shm;
pub mod waitv;
