//! Synchronisation primitives over caller memory: [`Mutex`], [`Semaphore`], [`Event`].
//!
//! Each primitive is a small header (LAYOUT.md §2; the layouts are in the crate-private `layout`, decoded for tools by
//! [`crate::inspect`]) in memory the caller
//! provides as a [`MemRef`](crate::MemRef): a local buffer for threads of one process, or
//! a shared mapping for several processes. The bytes are those of the Python package
//! `fastipc` 0.1.5, so Rust and Python processes can share one object. The types here
//! are cheap copyable views; the state lives in the memory. [`crate::named`] wraps them
//! in named shared-memory segments.
//!
//! | primitive | size | uncontended path | waits on |
//! |---|---|---|---|
//! | [`Mutex`] | 64 B | CAS 0→1, unlock swap 0 (no syscall) | the state word |
//! | [`Semaphore`] | 64 B | CAS count−1 (no syscall) | the count word |
//! | [`Event`] | 4 B | one load | the event word |
//!
//! Every wait spins briefly (bounded, with [`core::hint::spin_loop`]) before sleeping on a
//! futex, and every timeout is total: one absolute deadline covers all retries.
//!
//! Every wait returns only after an acquire operation that read the releasing side's
//! store (the unlock's release swap, a post's CAS, `set`'s swap), on every path: the
//! first attempt, each spin poll, each check after a sleep, a dead owner's takeover. So
//! "write data; unlock / post / set — lock / wait; read data" is free of data races. The
//! Miri run and the loom models that check this, and what they leave out, are in
//! `docs/CHECKING.md`.
//!
//! Where the Python peer has defects (listed in LAYOUT.md), fastipc keeps the layout and
//! fixes the behaviour on its side: two threads may share a mutex; the owner id is
//! cleared before the lock is released; a semaphore waiter always takes an available
//! token and no wake-up is lost between fastipc waiters; an event wait returns at once
//! when the event is set; a holder that dies is detected and its lock recovered.

pub mod event;
pub(crate) mod layout;
pub mod mutex;
pub mod semaphore;
mod wait_async;

pub use event::Event;
pub use layout::{EventInfo, MutexInfo, OwnerIdentity, SemaphoreInfo};
pub use mutex::{LockError, Mutex, MutexGuard, OWNER_CHECK_INTERVAL, OwnerDied};
pub use semaphore::{SEMAPHORE_RECHECK_INTERVAL, Semaphore};
pub use wait_async::{EventWait, SemaphoreWait};

/// How many `spin_loop` rounds a waiter spends re-checking before it sleeps. Waking a
/// sleeper on the other core costs tens of microseconds; this spins a few.
pub(crate) const SPIN_LIMIT: u32 = 100;
