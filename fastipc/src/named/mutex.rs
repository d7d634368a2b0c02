//! [`NamedMutex`]: a [`Mutex`] in the segment `__pyfastipc_mutex_NAME`.

use std::time::Duration;

use super::handle::{Handle, handle_methods};
use super::registry::Registry;
use crate::error::NamedError;
use crate::sync::layout::MutexInfo;
use crate::sync::{LockError, Mutex, MutexGuard, OwnerDied};
use crate::sys::clock::Deadline;

/// A mutex any process can open by name, shared with the Python package's `NamedMutex`.
///
/// Dead owners are handled: if a fastipc holder of this pid namespace is killed, the next
/// locker gets the lock with [`OwnerDied`] within about
/// [`OWNER_CHECK_INTERVAL`](crate::sync::OWNER_CHECK_INTERVAL). A holder of another pid
/// namespace, or a Python holder (it records no namespace), is never judged dead (see
/// [`crate::sync::mutex`]).
///
/// ```
/// use fastipc::named::{NamedMutex, registry::Registry};
/// # let dir = std::env::temp_dir().join(format!("fastipc-doc-nmutex-{}", std::process::id()));
/// # let registry = Registry::at(&dir);
/// let name = format!("doc-lock-{}", std::process::id());
/// let a = NamedMutex::open_in(&registry, &name)?; // creates it
/// let b = NamedMutex::open_in(&registry, &name)?; // attaches (could be another process)
/// let guard = a.lock().unwrap_or_else(|died| died.into_guard());
/// assert!(b.try_lock().is_none());
/// drop(guard);
/// assert!(b.try_lock().is_some());
/// # drop((a, b)); std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), fastipc::NamedError>(())
/// ```
#[derive(Debug)]
pub struct NamedMutex(Handle<Mutex<'static>>);

impl NamedMutex {
    /// Opens the mutex `name`, creating it (unlocked) if it does not exist, registered in
    /// the registry of `$FASTIPC_PID_DIR`.
    pub fn open(name: &str) -> Result<NamedMutex, NamedError> {
        NamedMutex::open_in(&Registry::from_env(), name)
    }

    /// [`NamedMutex::open`] with an explicit registry.
    pub fn open_in(registry: &Registry, name: &str) -> Result<NamedMutex, NamedError> {
        Handle::open_or_create(registry, name, |mem| {
            // The segment is MUTEX_SIZE bytes and page-aligned: init cannot fail.
            let _ = Mutex::init(mem);
        })
        .map(NamedMutex)
    }

    /// Opens the mutex `name` only if it exists.
    pub fn open_existing(name: &str) -> Result<NamedMutex, NamedError> {
        NamedMutex::open_existing_in(&Registry::from_env(), name)
    }

    /// [`NamedMutex::open_existing`] with an explicit registry.
    pub fn open_existing_in(registry: &Registry, name: &str) -> Result<NamedMutex, NamedError> {
        Handle::open_existing(registry, name).map(NamedMutex)
    }

    /// The buffer-backed mutex inside.
    pub fn mutex(&self) -> Mutex<'_> {
        // SAFETY: the view is returned with the lifetime of this borrow of the handle.
        unsafe { self.0.view() }
    }

    /// Locks, waiting as long as it takes; `Err(OwnerDied)` (carrying the guard) when
    /// the previous holder died holding the lock. See [`Mutex::lock`].
    pub fn lock(&self) -> Result<MutexGuard<'_>, OwnerDied<MutexGuard<'_>>> {
        self.mutex().lock()
    }

    /// Takes the lock if it is free right now. See [`Mutex::try_lock`].
    pub fn try_lock(&self) -> Option<MutexGuard<'_>> {
        self.mutex().try_lock()
    }

    /// Locks, waiting at most `timeout` in total. See [`Mutex::lock_timeout`].
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<MutexGuard<'_>, LockError<MutexGuard<'_>>> {
        self.mutex().lock_timeout(timeout)
    }

    /// Locks, waiting until `deadline` at the latest (a [`Deadline`] or an
    /// [`Instant`](std::time::Instant)).
    pub fn lock_deadline(
        &self,
        deadline: impl Into<Deadline>,
    ) -> Result<MutexGuard<'_>, LockError<MutexGuard<'_>>> {
        self.mutex().lock_deadline(deadline)
    }

    /// Whether the lock is held by anyone at this moment.
    pub fn is_locked(&self) -> bool {
        self.mutex().is_locked()
    }

    /// The recorded holder's process id, if any. Informative only: it can read `None`
    /// while the lock is held, even by the holder inside its own critical section, when
    /// Python processes share the lock (the Python package clears it after releasing the
    /// lock, so a late clear can erase the next holder's pid); see
    /// [`Mutex::owner_pid`](crate::sync::Mutex::owner_pid).
    pub fn owner_pid(&self) -> Option<u32> {
        self.mutex().owner_pid()
    }

    /// The header, decoded.
    pub fn info(&self) -> MutexInfo {
        self.mutex().info()
    }

    /// Releases the lock whoever holds it. See [`Mutex::force_unlock`].
    ///
    /// # Safety
    /// As for [`Mutex::force_unlock`]: the holder, if any, must never touch the protected
    /// data again.
    pub unsafe fn force_unlock(&self) {
        // SAFETY: the caller upholds force_unlock's contract.
        unsafe { self.mutex().force_unlock() }
    }

    handle_methods!("mutex");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ShmError, SyncError};
    use crate::named::MUTEX_PREFIX;
    use crate::named::test_util::{registry, unique};
    use crate::sync::layout::{MUTEX_MAGIC, SEMAPHORE_MAGIC};
    use crate::sys::shm::Segment;
    use std::sync::atomic::Ordering;

    #[test]
    fn handles_share_one_lock() {
        let name = unique("nm");
        let seg = format!("{MUTEX_PREFIX}{name}");
        let (reg, _clean) = registry("nm", &[&seg]);
        let a = NamedMutex::open_in(&reg, &name).unwrap();
        let b = NamedMutex::open_existing_in(&reg, &name).unwrap();
        assert!(a.created() && !b.created());
        assert_eq!(a.info().magic, MUTEX_MAGIC);
        let g = b.lock().unwrap();
        assert_eq!(a.owner_pid(), Some(std::process::id()));
        assert!(a.is_locked());
        assert!(
            a.lock_timeout(Duration::from_millis(10))
                .unwrap_err()
                .is_timeout()
        );
        drop(g);
        drop(a.try_lock().unwrap());
        assert_eq!(a.name(), name);
        assert_eq!(a.segment().name(), seg);
        drop(a);
        assert!(b.close().unwrap().unlinked);
        assert!(!Segment::exists(&seg));
    }

    #[test]
    fn bad_names_missing_and_foreign_segments_are_typed_errors() {
        let name = unique("nm-bad");
        let seg = format!("{MUTEX_PREFIX}{name}");
        let (reg, _clean) = registry("nm-bad", &[&seg]);
        assert!(matches!(
            NamedMutex::open_in(&reg, "a/b"),
            Err(NamedError::InvalidName { kind: "mutex", .. })
        ));
        assert!(matches!(
            NamedMutex::open_in(&reg, ""),
            Err(NamedError::InvalidName { .. })
        ));
        assert!(matches!(
            NamedMutex::open_existing_in(&reg, &name),
            Err(NamedError::Shm(ShmError::NotFound { .. }))
        ));
        // A segment of the right name holding a semaphore: refused, not removed.
        let _sem = Segment::create(&seg, 64, |mem| {
            mem.atomic_u32(0)
                .unwrap()
                .store(SEMAPHORE_MAGIC, Ordering::Release);
        })
        .unwrap();
        assert!(matches!(
            NamedMutex::open_in(&reg, &name),
            Err(NamedError::Sync {
                source: SyncError::ForeignHeader { .. },
                ..
            })
        ));
        assert!(Segment::exists(&seg));
        Segment::unlink(&seg).unwrap();
        // A segment of the wrong size: refused.
        let _small = Segment::create(&seg, 32, |_| {}).unwrap();
        assert!(matches!(
            NamedMutex::open_in(&reg, &name),
            Err(NamedError::Shm(ShmError::TooSmall { size: 32, .. }))
        ));
    }

    #[test]
    fn a_python_made_header_with_zero_magic_is_accepted() {
        let name = unique("nm-zero");
        let seg = format!("{MUTEX_PREFIX}{name}");
        let (reg, _clean) = registry("nm-zero", &[&seg]);
        let _made = Segment::create(&seg, 64, |_| {}).unwrap();
        let m = NamedMutex::open_in(&reg, &name).unwrap();
        assert!(!m.created());
        assert_eq!(m.info().magic, 0, "attaching does not rewrite the header");
        drop(m.lock().unwrap());
    }
}
