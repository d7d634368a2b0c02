//! The errors of a lock: the holder died ([`OwnerDied`]), or the deadline passed
//! ([`LockError`]).

use core::fmt;

/// The previous holder of a mutex died while holding it; the caller now holds the lock.
///
/// Like `std::sync::PoisonError` (and `EOWNERDEAD`): the guard inside is valid and the
/// mutex works normally from here on, but the data the lock protects may have been left
/// half-updated. It is reported once, to the one locker that took the lock over.
///
/// ```no_run
/// # fn demo(mutex: fastipc::sync::Mutex<'_>) {
/// let guard = match mutex.lock() {
///     Ok(guard) => guard,
///     Err(died) => {
///         eprintln!("process {} died holding the lock; repairing", died.dead_pid());
///         died.into_guard()
///     }
/// };
/// # drop(guard); }
/// ```
pub struct OwnerDied<G> {
    guard: G,
    pid: u32,
}

impl<G> OwnerDied<G> {
    /// Wraps a guard taken over from dead process `pid` (for types built on a mutex that
    /// report the takeover with their own guard; see [`OwnerDied::map`]).
    pub fn new(guard: G, pid: u32) -> OwnerDied<G> {
        OwnerDied { guard, pid }
    }

    /// The guard: the caller holds the lock.
    pub fn into_guard(self) -> G {
        self.guard
    }

    /// A reference to the guard.
    pub fn guard(&self) -> &G {
        &self.guard
    }

    /// A mutable reference to the guard.
    pub fn guard_mut(&mut self) -> &mut G {
        &mut self.guard
    }

    /// The process id of the holder that died.
    pub fn dead_pid(&self) -> u32 {
        self.pid
    }

    /// Converts the guard (e.g. into a guard of a type that wraps the mutex).
    pub fn map<H>(self, f: impl FnOnce(G) -> H) -> OwnerDied<H> {
        OwnerDied {
            guard: f(self.guard),
            pid: self.pid,
        }
    }
}

impl<G> fmt::Debug for OwnerDied<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnerDied")
            .field("dead_pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl<G> fmt::Display for OwnerDied<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the previous holder of the mutex (process {}) died while holding it; the lock \
             is now held by the caller and the data it protects may be inconsistent",
            self.pid
        )
    }
}

impl<G> std::error::Error for OwnerDied<G> {}

/// Why a timed lock did not return a plain guard.
#[non_exhaustive]
pub enum LockError<G> {
    /// The previous holder died holding the lock; the caller holds it now (see
    /// [`OwnerDied`]).
    OwnerDied(OwnerDied<G>),
    /// The deadline passed while the lock stayed held by a live holder.
    TimedOut,
}

impl<G> LockError<G> {
    /// The guard, when the caller holds the lock (after [`LockError::OwnerDied`]).
    pub fn into_guard(self) -> Option<G> {
        match self {
            LockError::OwnerDied(died) => Some(died.into_guard()),
            LockError::TimedOut => None,
        }
    }

    /// Whether this is [`LockError::TimedOut`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, LockError::TimedOut)
    }

    /// Converts the guard inside, if any.
    pub fn map<H>(self, f: impl FnOnce(G) -> H) -> LockError<H> {
        match self {
            LockError::OwnerDied(died) => LockError::OwnerDied(died.map(f)),
            LockError::TimedOut => LockError::TimedOut,
        }
    }
}

impl<G> From<OwnerDied<G>> for LockError<G> {
    fn from(died: OwnerDied<G>) -> Self {
        LockError::OwnerDied(died)
    }
}

impl<G> fmt::Debug for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(died) => f.debug_tuple("OwnerDied").field(died).finish(),
            LockError::TimedOut => f.write_str("TimedOut"),
        }
    }
}

impl<G> fmt::Display for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(died) => died.fmt(f),
            LockError::TimedOut => f.write_str("timed out waiting for the mutex"),
        }
    }
}

impl<G> std::error::Error for LockError<G> {}
