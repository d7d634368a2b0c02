//! [`SharedCell<T>`]: one value of a message type in a named shared-memory segment,
//! guarded by a fastipc mutex: named shared state for any number of processes.
//!
//! ```
//! use fastipc::{IpcMessage, SharedCell};
//! # use fastipc::named::registry::Registry;
//!
//! #[derive(IpcMessage, Clone, Copy, Debug, PartialEq)]
//! #[repr(C)]
//! struct Stats { orders: u64, volume: f64 }
//!
//! # let dir = std::env::temp_dir().join(format!("fastipc-doc-cell-{}", std::process::id()));
//! # let registry = Registry::at(&dir);
//! let name = format!("doc-stats-{}", std::process::id());
//! // `SharedCell::open_or_create(&name)` registers in $FASTIPC_PID_DIR; here an explicit registry.
//! let stats = SharedCell::<Stats>::open_or_create_in(&registry, &name)?; // zeroed if new
//! stats.update(|s| { s.orders += 1; s.volume += 2.5 }).unwrap();
//! {
//!     let mut guard = stats.lock().unwrap_or_else(|died| died.into_guard());
//!     guard.orders += 1; // `guard` derefs to `&mut Stats` while it holds the lock
//! }
//! assert_eq!(stats.load().unwrap(), Stats { orders: 2, volume: 2.5 });
//!
//! // Another type under the same name is refused, naming both types.
//! let err = SharedCell::<u64>::open_in(&registry, &name).unwrap_err();
//! assert!(err.to_string().contains("`Stats`") && err.to_string().contains("`u64`"));
//! # drop(stats); std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), fastipc::SharedCellError>(())
//! ```
//!
//! # Segment
//! `/dev/shm/__fastipc_cell_NAME`: a 64-byte fastipc mutex header (LAYOUT.md §2), a
//! 64-byte cell header recording the value type's fingerprint, size, alignment and name,
//! then the value at offset 128. See [`layout`] for every byte. The segment is made and
//! initialised (mutex unlocked, header written, value zeroed or set to the initial value)
//! before its name appears, so an attacher never sees a half-made cell.
//!
//! # Type check on attach
//! Opening an existing cell compares the recorded fingerprint and size with those of
//! `T`; a difference is [`SharedCellError::TypeMismatch`], whose message names both
//! types. (As with queues, the fingerprint describes the bytes, not the struct's name: a
//! struct with the same fields under another name attaches.)
//!
//! # Locking and soundness
//! [`SharedCell::lock`] returns a [`SharedCellGuard`], which holds the mutex and derefs to
//! `&T` and `&mut T` over the shared bytes. That exclusive reference is sound because
//! every fastipc user of the cell, in this process (any thread, any handle) or another,
//! reaches the value only through a guard, and a guard exists only while its holder owns
//! the mutex, whose acquire/release orderings make each holder's writes visible to the
//! next. `T` is plain data ([`IpcMessage`]: every bit pattern is a valid value), so
//! whatever bytes a previous holder left, even half-written by a process that died
//! mid-update, read back as some valid `T`.
//!
//! The safe API keeps it so: a `SharedCell` does not hand out its mapping (no
//! `segment()`, no [`MemRef`] of it), so safe code cannot re-initialise the mutex under
//! a live guard, and the calls that could break the lock are `unsafe`
//! ([`Mutex::force_unlock`], [`layout::write_header`]).
//!
//! Outside the contract, as for any shared memory: another mapping of the same segment,
//! made by [`Segment::open`](crate::Segment::open) or [`NamedSegment`] on
//! `__fastipc_cell_NAME`, in another process or in this one, is memory the language's
//! aliasing rules know nothing about, exactly as another process is: writing the value
//! or the mutex through it while a guard is alive (for instance [`Mutex::init`] on its
//! bytes, which resets the lock) races with the guard holder. So does a process that
//! writes the segment without holding the mutex (a tool writing `/dev/shm` directly, or
//! code that releases the lock by force while its holder still runs), or that shrinks
//! the file (which makes the others' next access fault with `SIGBUS`). fastipc cannot
//! prevent these. (Processes in different pid namespaces may share a cell: the
//! dead-owner check never judges a holder of another namespace, see
//! [`crate::sync::mutex`].)
//!
//! # Dead holders
//! The mutex is the one of [`NamedMutex`](super::NamedMutex): if a holder is killed while
//! it holds the lock, the next locker takes the lock over within about
//! [`OWNER_CHECK_INTERVAL`](crate::sync::OWNER_CHECK_INTERVAL) and gets
//! `Err(OwnerDied(guard))` — it holds the lock and may inspect and repair the value,
//! which the dead process may have left half-updated. [`load`](SharedCell::load),
//! [`store`](SharedCell::store) and [`update`](SharedCell::update) do not act on a value
//! in that state: they return the same `Err(OwnerDied(guard))` instead, like std's
//! `Mutex::set` on a poisoned lock. A panic while a guard is held unlocks the mutex with
//! whatever was written so far (there is no poisoning across processes).
//!
//! # Cleanup
//! Each handle registers this process in the attachment [`registry`],
//! exactly as the named sync objects do; the last live process to close the cell unlinks
//! it, and [`sweep`](super::sweep) removes a cell whose processes all died.

pub mod layout;

use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;
use std::time::Duration;

use self::layout::{CELL_MAGIC, CELL_PREFIX, CELL_VERSION, CellInfo, HEADER_SIZE, VALUE_OFFSET};
use super::registry::{self, Detached, Registry};
use super::segment::NamedSegment;
use crate::error::{NamedError, SharedCellError, ShmError};
use crate::mem::MemRef;
use crate::message::IpcMessage;
use crate::sync::{LockError, Mutex, MutexGuard, OwnerDied};
use crate::sys::clock::Deadline;

/// The longest cell name: a file name's 255 bytes minus the prefix and the registry's
/// `.pids` suffix.
pub const MAX_NAME_LEN: usize =
    crate::sys::shm::MAX_NAME_LEN - CELL_PREFIX.len() - registry::PIDS_SUFFIX.len();

/// The segment name of the cell `name`, after checking `name`: not empty, not `.` or
/// `..`, no `/`, no NUL, at most [`MAX_NAME_LEN`] bytes.
///
/// ```
/// use fastipc::named::cell::segment_name;
/// assert_eq!(segment_name("stats")?, "__fastipc_cell_stats");
/// assert!(segment_name("a/b").is_err());
/// # Ok::<(), fastipc::NamedError>(())
/// ```
pub fn segment_name(name: &str) -> Result<String, NamedError> {
    match super::check_object_name(name, MAX_NAME_LEN, CELL_PREFIX) {
        Ok(()) => Ok(format!("{CELL_PREFIX}{name}")),
        Err(reason) => Err(NamedError::InvalidName {
            kind: "shared cell",
            name: name.to_owned(),
            reason,
        }),
    }
}

/// The cell name in a segment name, if it has the cell prefix.
///
/// ```
/// use fastipc::named::cell::parse_segment_name;
/// assert_eq!(parse_segment_name("__fastipc_cell_stats"), Some("stats"));
/// assert_eq!(parse_segment_name("__pyfastipc_mutex_stats"), None);
/// ```
pub fn parse_segment_name(segment: &str) -> Option<&str> {
    segment.strip_prefix(CELL_PREFIX).filter(|n| !n.is_empty())
}

/// A value of message type `T` in the named segment `__fastipc_cell_NAME`, shared by
/// every process that opens the name, and guarded by a mutex. See the
/// [module docs](self) for the layout, the locking rules and dead holders.
pub struct SharedCell<T: IpcMessage> {
    /// The mutex at offset 0 of `segment`'s mapping; handed out only with the lifetime of
    /// a borrow of `self`, so never used after `segment` drops.
    mutex: Mutex<'static>,
    /// The value at [`VALUE_OFFSET`] of the mapping: in bounds and aligned for `T`
    /// (checked when attaching), valid as long as `segment`.
    value: NonNull<T>,
    /// Never handed out: its memory holds the mutex that makes the guards' `&mut T`
    /// exclusive (see "Locking and soundness" in the module docs).
    segment: NamedSegment,
    name: String,
    _value: PhantomData<T>,
}

// SAFETY: a SharedCell owns its mapping (through `segment`, which is Send + Sync) and
// reaches the value only through guards, which exist only while the process-shared mutex
// is held, whichever thread holds it; `T: IpcMessage` is Send + Sync.
unsafe impl<T: IpcMessage> Send for SharedCell<T> {}
// SAFETY: as for Send: `&SharedCell` gives access to the value only under the mutex.
unsafe impl<T: IpcMessage> Sync for SharedCell<T> {}

/// How [`SharedCell::attach`] treats a missing cell.
enum Missing<'v, T> {
    /// Fail with `NotFound`.
    Fail,
    /// Create it, zeroed or holding this value.
    Create(Option<&'v T>),
}

impl<T: IpcMessage> SharedCell<T> {
    /// Opens the cell `name`, creating it with a zeroed value if it does not exist,
    /// registered in the registry of `$FASTIPC_PID_DIR`. This is what
    /// `#[ipc(shared = "NAME")]`'s `T::shared()` calls.
    pub fn open_or_create(name: &str) -> Result<SharedCell<T>, SharedCellError> {
        SharedCell::open_or_create_in(&Registry::from_env(), name)
    }

    /// [`SharedCell::open_or_create`] with an explicit registry.
    pub fn open_or_create_in(
        registry: &Registry,
        name: &str,
    ) -> Result<SharedCell<T>, SharedCellError> {
        SharedCell::attach(registry, name, Missing::Create(None))
    }

    /// Opens the cell `name`, creating it holding `initial` if it does not exist. An
    /// existing cell keeps its value.
    pub fn open_or_create_with(name: &str, initial: &T) -> Result<SharedCell<T>, SharedCellError> {
        SharedCell::open_or_create_with_in(&Registry::from_env(), name, initial)
    }

    /// [`SharedCell::open_or_create_with`] with an explicit registry.
    pub fn open_or_create_with_in(
        registry: &Registry,
        name: &str,
        initial: &T,
    ) -> Result<SharedCell<T>, SharedCellError> {
        SharedCell::attach(registry, name, Missing::Create(Some(initial)))
    }

    /// Opens the cell `name` only if it exists.
    pub fn open(name: &str) -> Result<SharedCell<T>, SharedCellError> {
        SharedCell::open_in(&Registry::from_env(), name)
    }

    /// [`SharedCell::open`] with an explicit registry.
    pub fn open_in(registry: &Registry, name: &str) -> Result<SharedCell<T>, SharedCellError> {
        SharedCell::attach(registry, name, Missing::Fail)
    }

    fn attach(
        registry: &Registry,
        name: &str,
        missing: Missing<'_, T>,
    ) -> Result<SharedCell<T>, SharedCellError> {
        if !layout::fits::<T>() {
            return Err(SharedCellError::Unsupported {
                type_name: T::NAME,
                reason: "a cell holds values of at most 4 GiB, aligned to at most 16 bytes",
            });
        }
        let seg = segment_name(name)?;
        let len = layout::segment_len(size_of::<T>());
        let opened = match missing {
            Missing::Fail => NamedSegment::open(registry, &seg, HEADER_SIZE),
            Missing::Create(initial) => {
                NamedSegment::open_or_create(registry, &seg, len, |mem| init(mem, initial))
            }
        };
        let segment = match opened {
            Ok(segment) => segment,
            // Too small for a `T`, but maybe a cell of a smaller type: open it as it is,
            // so the checks below say what it holds.
            Err(NamedError::Shm(ShmError::TooSmall { size, .. })) if size >= HEADER_SIZE as u64 => {
                NamedSegment::open(registry, &seg, HEADER_SIZE)?
            }
            Err(e) => return Err(e.into()),
        };
        SharedCell::from_segment(segment, name)
    }

    /// Checks the header and the size, then builds the handle; on any problem, ends the
    /// registration without removing the segment (it is someone else's).
    fn from_segment(segment: NamedSegment, name: &str) -> Result<SharedCell<T>, SharedCellError> {
        // SAFETY: the view is kept next to `segment` in the SharedCell and only used
        // through borrows of it (the mutex, the value pointer), never after `segment`
        // drops; on error it is dropped before `segment` is given up.
        let mem = unsafe { segment.mem_unbounded() };
        match SharedCell::<T>::check(mem, segment.name(), name) {
            Ok((mutex, value)) => Ok(SharedCell {
                mutex,
                value,
                segment,
                name: name.to_owned(),
                _value: PhantomData,
            }),
            Err(e) => {
                segment.abandon();
                Err(e)
            }
        }
    }

    /// The mutex and the value's address in a segment's memory, if it holds a cell of
    /// `T`.
    fn check<'m>(
        mem: MemRef<'m>,
        segment: &str,
        name: &str,
    ) -> Result<(Mutex<'m>, NonNull<T>), SharedCellError> {
        let not_a_cell = |reason: String| SharedCellError::NotACell {
            segment: segment.to_owned(),
            reason,
        };
        let info = CellInfo::read(mem).map_err(|e| not_a_cell(e.to_string()))?;
        if info.magic != CELL_MAGIC {
            return Err(not_a_cell(format!(
                "magic {:#010x} at offset 64, expected {CELL_MAGIC:#010x} (\"CELL\")",
                info.magic
            )));
        }
        if info.version != CELL_VERSION || info.value_offset as usize != VALUE_OFFSET {
            return Err(not_a_cell(format!(
                "layout version {} with the value at offset {}; this fastipc reads version \
                 {CELL_VERSION} with the value at {VALUE_OFFSET}",
                info.version, info.value_offset
            )));
        }
        let found = &info.value_type;
        if found.fingerprint != T::FINGERPRINT || found.size as usize != size_of::<T>() {
            return Err(SharedCellError::TypeMismatch {
                name: name.to_owned(),
                expected: T::NAME,
                expected_fingerprint: T::FINGERPRINT,
                expected_size: size_of::<T>(),
                found: found.name.clone(),
                found_fingerprint: found.fingerprint,
                found_size: found.size,
            });
        }
        let mutex = Mutex::attach(mem).map_err(|e| not_a_cell(e.to_string()))?;
        let value = mem
            .ptr_at(VALUE_OFFSET, size_of::<T>(), align_of::<T>())
            .map_err(|e| not_a_cell(format!("no room for a `{}`: {e}", T::NAME)))?;
        let value = NonNull::new(value.cast::<T>())
            .ok_or_else(|| not_a_cell("the mapping is at address 0".to_owned()))?;
        Ok((mutex, value))
    }

    fn guard<'a>(&'a self, guard: MutexGuard<'a>) -> SharedCellGuard<'a, T> {
        SharedCellGuard {
            value: self.value,
            guard,
            _value: PhantomData,
        }
    }

    /// Locks, waiting as long as it takes, and gives access to the value.
    ///
    /// `Err(OwnerDied)` carries the guard: the previous holder died holding the lock, the
    /// caller holds it now, and the value may be half-updated (see the module docs).
    /// Locking twice from one thread without unlocking deadlocks.
    pub fn lock(&self) -> Result<SharedCellGuard<'_, T>, OwnerDied<SharedCellGuard<'_, T>>> {
        match self.mutex().lock() {
            Ok(guard) => Ok(self.guard(guard)),
            Err(died) => Err(died.map(|guard| self.guard(guard))),
        }
    }

    /// Takes the lock if it is free right now.
    pub fn try_lock(&self) -> Option<SharedCellGuard<'_, T>> {
        self.mutex().try_lock().map(|guard| self.guard(guard))
    }

    /// Locks, waiting at most `timeout` in total.
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<SharedCellGuard<'_, T>, LockError<SharedCellGuard<'_, T>>> {
        self.lock_deadline(Deadline::after(timeout))
    }

    /// Locks, waiting until `deadline` at the latest (a [`Deadline`] or an
    /// [`Instant`](std::time::Instant)).
    pub fn lock_deadline(
        &self,
        deadline: impl Into<Deadline>,
    ) -> Result<SharedCellGuard<'_, T>, LockError<SharedCellGuard<'_, T>>> {
        match self.mutex().lock_deadline(deadline) {
            Ok(guard) => Ok(self.guard(guard)),
            Err(e) => Err(e.map(|guard| self.guard(guard))),
        }
    }

    /// A copy of the value, read under the lock.
    ///
    /// If the previous holder died holding the lock, nothing is read: the guard comes
    /// back in `Err(OwnerDied)`, so the caller holds the lock and decides (e.g.
    /// `cell.load().unwrap_or_else(|died| *died.into_guard())` to read it anyway).
    pub fn load(&self) -> Result<T, OwnerDied<SharedCellGuard<'_, T>>> {
        Ok(*self.lock()?)
    }

    /// Replaces the value under the lock.
    ///
    /// If the previous holder died holding the lock, nothing is written: the guard comes
    /// back in `Err(OwnerDied)` (e.g. `cell.store(&v).unwrap_or_else(|died| *died.into_guard()
    /// = v)` to write anyway).
    pub fn store(&self, value: &T) -> Result<(), OwnerDied<SharedCellGuard<'_, T>>> {
        *self.lock()? = *value;
        Ok(())
    }

    /// Runs `f` on the value under the lock and returns its result.
    ///
    /// If the previous holder died holding the lock, `f` is not run: the guard comes back
    /// in `Err(OwnerDied)`, so the caller can repair the value first.
    pub fn update<R>(
        &self,
        f: impl FnOnce(&mut T) -> R,
    ) -> Result<R, OwnerDied<SharedCellGuard<'_, T>>> {
        let mut guard = self.lock()?;
        Ok(f(&mut guard))
    }

    /// The mutex guarding the value (to see who holds it, or for
    /// [`Mutex::force_unlock`]).
    pub fn mutex(&self) -> Mutex<'_> {
        self.mutex
    }

    /// Whether anyone holds the lock at this moment.
    pub fn is_locked(&self) -> bool {
        self.mutex().is_locked()
    }

    /// The header, decoded (mutex state, recorded value type).
    pub fn info(&self) -> CellInfo {
        // The header is in bounds and aligned (checked when attaching), so reading it
        // cannot fail; should it anyway, report what the mutex says alone.
        CellInfo::read(self.segment.mem()).unwrap_or_else(|_| CellInfo {
            mutex: self.mutex().info(),
            magic: 0,
            version: 0,
            value_offset: 0,
            value_type: layout::ValueType {
                fingerprint: 0,
                size: 0,
                align: 0,
                name: String::new(),
            },
        })
    }

    /// The cell's name (without prefix).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this handle created the cell.
    pub fn created(&self) -> bool {
        self.segment.created()
    }

    /// Closes this handle; the last live process out unlinks the segment. Dropping the
    /// handle does the same, ignoring errors.
    pub fn close(self) -> Result<Detached, NamedError> {
        self.segment.close()
    }
}

impl<T: IpcMessage> fmt::Debug for SharedCell<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedCell")
            .field("name", &self.name)
            .field("type", &T::NAME)
            .field("segment", &self.segment.name())
            .field("mutex", &self.mutex)
            .finish_non_exhaustive()
    }
}

/// Initialises a new cell segment: the header for `T`, then the value (the memory is
/// zero-filled already, which is a valid zeroed `T`).
fn init<T: IpcMessage>(mem: MemRef<'_>, initial: Option<&T>) {
    // A new segment is page-aligned and `segment_len(size_of::<T>())` bytes long, so
    // neither step can fail; if one did, the header stays incomplete and every attacher
    // (this process included) refuses the segment with `NotACell`.
    // SAFETY: `mem` is a segment being created: it is not linked under its name yet, so
    // no cell, guard or other mapping uses it.
    if unsafe { layout::write_header::<T>(mem) }.is_err() {
        return;
    }
    let (Some(initial), Ok(dst)) = (
        initial,
        mem.ptr_at(VALUE_OFFSET, size_of::<T>(), align_of::<T>()),
    ) else {
        return;
    };
    // SAFETY: `dst` is in bounds and aligned for `T` (checked by `ptr_at`); the segment
    // is not linked under its name yet, so no other thread or process can access it, and
    // `initial` is a separate value, so the ranges do not overlap.
    unsafe { core::ptr::copy_nonoverlapping(initial, dst.cast::<T>(), 1) };
}

/// Access to a [`SharedCell`]'s value while holding its lock; dropping it unlocks.
///
/// Derefs to `&T` and `&mut T` over the shared bytes (see the module docs for why that is
/// sound).
#[must_use = "dropping the guard unlocks the cell at once"]
pub struct SharedCellGuard<'a, T: IpcMessage> {
    value: NonNull<T>,
    guard: MutexGuard<'a>,
    _value: PhantomData<&'a mut T>,
}

// SAFETY: the guard is the ownership of the lock, which any thread of the process may
// release (MutexGuard is Send); the value it points to is plain data (`T: Send`).
unsafe impl<T: IpcMessage> Send for SharedCellGuard<'_, T> {}
// SAFETY: `&SharedCellGuard` only gives `&T`, and `T: Sync`.
unsafe impl<T: IpcMessage> Sync for SharedCellGuard<'_, T> {}

impl<'a, T: IpcMessage> SharedCellGuard<'a, T> {
    /// The mutex this guard holds.
    pub fn mutex(&self) -> Mutex<'a> {
        self.guard.mutex()
    }

    /// Unlocks (the same as dropping the guard).
    pub fn unlock(self) {
        drop(self)
    }
}

impl<T: IpcMessage> Deref for SharedCellGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: `value` is in bounds and aligned for `T` inside a mapping that outlives
        // 'a (checked when the cell attached; the guard borrows the cell). The lock is
        // held for the guard's whole life, so no other fastipc user reads or writes the
        // bytes meanwhile, and `&self` rules out a `&mut T` from this guard. Any bytes are
        // a valid `T` (Pod).
        unsafe { self.value.as_ref() }
    }
}

impl<T: IpcMessage> DerefMut for SharedCellGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only reference derived
        // from the guard, which is the only guard while the lock is held.
        unsafe { self.value.as_mut() }
    }
}

impl<T: IpcMessage + fmt::Debug> fmt::Debug for SharedCellGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedCellGuard")
            .field("value", &**self)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::named::test_util::{registry, unique};
    use crate::sys::shm::Segment;
    use core::sync::atomic::Ordering;

    fn seg(name: &str) -> String {
        segment_name(name).unwrap()
    }

    #[test]
    fn created_zeroed_shared_between_handles_and_removed_by_the_last() {
        let name = unique("cell");
        let (reg, _clean) = registry("cell", &[&seg(&name)]);
        let a = SharedCell::<[u64; 3]>::open_or_create_in(&reg, &name).unwrap();
        let b = SharedCell::<[u64; 3]>::open_or_create_in(&reg, &name).unwrap();
        assert!(a.created() && !b.created());
        assert_eq!(a.load().unwrap(), [0; 3]);
        a.store(&[1, 2, 3]).unwrap();
        assert_eq!(b.load().unwrap(), [1, 2, 3]);
        assert_eq!(b.update(|v| v.iter().sum::<u64>()).unwrap(), 6);
        {
            let mut g = b.lock().unwrap();
            g[0] = 10;
            assert!(a.try_lock().is_none(), "one lock for both handles");
            assert!(a.is_locked());
            assert_eq!(a.mutex().owner_pid(), Some(std::process::id()));
            assert!(
                a.lock_timeout(Duration::from_millis(10))
                    .unwrap_err()
                    .is_timeout()
            );
        }
        assert_eq!(*a.try_lock().unwrap(), [10, 2, 3]);
        assert_eq!(a.name(), name);
        assert_eq!(a.segment.name(), seg(&name));
        let info = a.info();
        assert!(info.is_valid());
        assert_eq!(info.value_type.fingerprint, <[u64; 3]>::FINGERPRINT);
        assert_eq!(info.value_type.size, 24);
        drop(a);
        assert!(Segment::exists(&seg(&name)));
        assert!(b.close().unwrap().unlinked);
        assert!(!Segment::exists(&seg(&name)));
        assert!(!reg.pids_dir(&seg(&name)).exists());
    }

    #[test]
    fn an_initial_value_is_used_only_by_the_creator() {
        let name = unique("cell-init");
        let (reg, _clean) = registry("cell-init", &[&seg(&name)]);
        let a = SharedCell::open_or_create_with_in(&reg, &name, &7u32).unwrap();
        let b = SharedCell::open_or_create_with_in(&reg, &name, &9u32).unwrap();
        assert_eq!(b.load().unwrap(), 7);
        assert_eq!(a.load().unwrap(), 7);
    }

    #[test]
    fn another_type_is_refused_naming_both_and_nothing_is_removed() {
        let name = unique("cell-type");
        let (reg, _clean) = registry("cell-type", &[&seg(&name)]);
        let a = SharedCell::<u64>::open_or_create_with_in(&reg, &name, &5).unwrap();
        // Same size, other type.
        let err = SharedCell::<i64>::open_or_create_in(&reg, &name).unwrap_err();
        let SharedCellError::TypeMismatch {
            expected,
            found,
            found_fingerprint,
            ..
        } = &err
        else {
            panic!("expected TypeMismatch, got {err:?}")
        };
        assert_eq!((*expected, found.as_str()), ("i64", "u64"));
        assert_eq!(*found_fingerprint, u64::FINGERPRINT);
        let msg = err.to_string();
        assert!(msg.contains("`u64`") && msg.contains("`i64`"), "{msg}");
        // Larger type: the segment is too small for it, still a type error.
        let err = SharedCell::<[u64; 64]>::open_or_create_in(&reg, &name).unwrap_err();
        assert!(
            matches!(&err, SharedCellError::TypeMismatch { found, .. } if found == "u64"),
            "{err:?}"
        );
        // Smaller type, opening an existing one.
        let err = SharedCell::<u8>::open_in(&reg, &name).unwrap_err();
        assert!(
            matches!(&err, SharedCellError::TypeMismatch { expected: "u8", .. }),
            "{err:?}"
        );
        // The refused attachments removed nothing and left no handle counted: closing the
        // one real handle is the last one out.
        assert_eq!(reg.attached(&seg(&name)).unwrap().len(), 1);
        assert_eq!(a.load().unwrap(), 5);
        assert!(a.close().unwrap().unlinked);
    }

    #[test]
    fn missing_foreign_and_badly_named_cells_are_typed_errors() {
        let name = unique("cell-bad");
        let (reg, _clean) = registry("cell-bad", &[&seg(&name)]);
        assert!(matches!(
            SharedCell::<u32>::open_in(&reg, &name),
            Err(SharedCellError::Named(NamedError::Shm(
                ShmError::NotFound { .. }
            )))
        ));
        for bad in ["", ".", "..", "a/b", "nul\0", &"n".repeat(MAX_NAME_LEN + 1)] {
            assert!(
                matches!(
                    SharedCell::<u32>::open_or_create_in(&reg, bad),
                    Err(SharedCellError::Named(NamedError::InvalidName {
                        kind: "shared cell",
                        ..
                    }))
                ),
                "{bad:?}"
            );
        }
        // A zero-filled segment of the right name: not a cell, and left in place.
        let _other = Segment::create(&seg(&name), 256, |_| {}).unwrap();
        let err = SharedCell::<u32>::open_or_create_in(&reg, &name).unwrap_err();
        assert!(
            matches!(&err, SharedCellError::NotACell { reason, .. } if reason.contains("magic")),
            "{err:?}"
        );
        assert!(Segment::exists(&seg(&name)));
        assert!(reg.attached(&seg(&name)).unwrap().is_empty());
        Segment::unlink(&seg(&name)).unwrap();
        // Smaller than the header: refused by size.
        let _tiny = Segment::create(&seg(&name), 16, |_| {}).unwrap();
        assert!(matches!(
            SharedCell::<u32>::open_in(&reg, &name),
            Err(SharedCellError::Named(NamedError::Shm(
                ShmError::TooSmall { .. }
            )))
        ));
    }

    #[test]
    fn another_layout_version_is_refused() {
        let name = unique("cell-ver");
        let (reg, _clean) = registry("cell-ver", &[&seg(&name)]);
        let _made = Segment::create(&seg(&name), layout::segment_len(4), |mem| {
            // SAFETY: the segment is not linked under its name yet: nobody else uses it.
            unsafe { layout::write_header::<u32>(mem) }.unwrap();
            mem.atomic_u32(layout::OFF_VERSION)
                .unwrap()
                .store(2, Ordering::Relaxed);
        })
        .unwrap();
        let err = SharedCell::<u32>::open_in(&reg, &name).unwrap_err();
        assert!(
            matches!(&err, SharedCellError::NotACell { reason, .. } if reason.contains("version 2")),
            "{err:?}"
        );
    }

    #[test]
    fn a_dead_holder_is_reported_to_the_next_locker_with_the_cell_guard() {
        crate::sync::mutex::test_knob::short_owner_checks();
        let name = unique("cell-dead");
        let (reg, _clean) = registry("cell-dead", &[&seg(&name)]);
        let cell = SharedCell::open_or_create_with_in(&reg, &name, &[1u32, 1]).unwrap();
        // A fastipc holder that exited (a zombie: its id is not reused while we test),
        // stopped mid-update.
        let dead = crate::sys::process::test_util::Zombie::new();
        let dead_id = crate::sys::process::ProcessId::of(dead.pid()).unwrap();
        {
            let mut g = cell.lock().unwrap();
            g[0] = 2;
            core::mem::forget(g);
        }
        crate::sync::mutex::test_util::fake_holder(
            &cell.mutex(),
            dead.pid(),
            crate::sync::layout::OwnerIdentity {
                pid: dead.pid(),
                start_time_low: dead_id.start_time as u32,
            },
            dead_id.pid_namespace,
        );
        assert_eq!(
            cell.mutex().info().owner_pid_namespace,
            dead_id.pid_namespace
        );

        // `store` does not write over the half-updated value; it hands back the guard.
        let died = cell.store(&[9, 9]).unwrap_err();
        assert_eq!(died.dead_pid(), dead.pid());
        let mut guard = died.into_guard();
        assert_eq!(*guard, [2, 1], "the half-updated value, untouched");
        guard[1] = 2; // repair
        drop(guard);
        assert_eq!(cell.load().unwrap(), [2, 2]);
        cell.update(|v| v[0] += 1).unwrap();
        assert_eq!(cell.load().unwrap(), [3, 2]);
    }

    #[test]
    fn guards_move_between_threads_and_exclude_them() {
        let name = unique("cell-threads");
        let (reg, _clean) = registry("cell-threads", &[&seg(&name)]);
        let cell = SharedCell::<[u64; 2]>::open_or_create_in(&reg, &name).unwrap();
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for _ in 0..2000 {
                        cell.update(|v| {
                            // Not atomic: only the lock keeps these exact.
                            v[0] += 1;
                            v[1] = v[0] * 2;
                        })
                        .unwrap();
                    }
                });
            }
            let guard = cell.lock().unwrap();
            s.spawn(move || drop(guard)).join().unwrap();
        });
        assert_eq!(cell.load().unwrap(), [6000, 12000]);
    }

    #[test]
    fn names_are_checked_and_parsed() {
        let max = "n".repeat(MAX_NAME_LEN);
        let s = segment_name(&max).unwrap();
        assert_eq!(s.len() + registry::PIDS_SUFFIX.len(), 255);
        assert_eq!(parse_segment_name(&s), Some(max.as_str()));
        assert_eq!(parse_segment_name(CELL_PREFIX), None);
    }
}
