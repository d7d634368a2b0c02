//! [`SharedCursor`]: the read position a work-stealing group of consumers shares, an
//! atomic `u64` that can live in its own 8-byte named segment, exactly like the Python
//! peer's `AtomicCursor` over `SharedMemory(size=8)`.

use core::ptr::NonNull;
use core::sync::atomic::AtomicU64;
use core::sync::atomic::Ordering::{AcqRel, Acquire, Release};
use std::sync::Arc;

use super::raw::{RawRing, Run};
use super::read;
use super::{READY_TIMEOUT, open_or_create_with};
use crate::error::{OpenError, ShmError, TryRecvError};
use crate::region::Region;
use crate::sys::shm::Segment;

/// Size of a named cursor segment in bytes.
pub const CURSOR_SIZE: usize = 8;

/// A shared read position: each reservation claimed through it goes to exactly one of
/// the consumers that share it (threads, processes, Rust or Python).
///
/// Cloning gives another handle to the same cursor.
///
/// ```
/// use fastipc::queue::SharedCursor;
///
/// let cursor = SharedCursor::local(0);
/// let other = cursor.clone();
/// assert_eq!(other.compare_exchange(0, 5), Ok(0));
/// assert_eq!(cursor.load(), 5);
/// ```
#[derive(Clone, Debug)]
pub struct SharedCursor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    word: NonNull<AtomicU64>,
    name: Option<String>,
    // Owns the memory `word` points into; declared last so it drops last.
    _region: Region,
}

// SAFETY: `word` points into `_region`, which `Inner` owns, and is only used as an atomic.
unsafe impl Send for Inner {}
// SAFETY: as for Send: concurrent atomic access is sound.
unsafe impl Sync for Inner {}

impl SharedCursor {
    /// A cursor in private memory, for consumers that are threads of one process.
    pub fn local(initial: u64) -> SharedCursor {
        let cursor = SharedCursor::from_region(Region::heap(CURSOR_SIZE), None)
            .expect("a heap region of 8 bytes is 64-aligned");
        cursor.store(initial);
        cursor
    }

    /// Creates the 8-byte named segment `name` holding `initial` (visible under its name
    /// only once written). Fails with [`ShmError::AlreadyExists`] if the name is taken.
    pub fn create(name: &str, initial: u64) -> Result<SharedCursor, OpenError> {
        let segment = Segment::create(name, CURSOR_SIZE, |mem| {
            if let Ok(word) = mem.atomic_u64(0) {
                word.store(initial, Release);
            }
        })?;
        SharedCursor::from_region(Region::shared(segment), Some(name))
    }

    /// Attaches to the existing cursor segment `name` (at least 8 bytes; a peer's
    /// `AtomicCursor` at offset 0). A segment still of length zero (a POSIX-style creator
    /// between `shm_open` and `ftruncate`) is waited for up to [`READY_TIMEOUT`].
    pub fn open(name: &str) -> Result<SharedCursor, OpenError> {
        let segment = Segment::open_with_grow_wait(name, CURSOR_SIZE, READY_TIMEOUT)?;
        SharedCursor::from_region(Region::shared(segment), Some(name))
    }

    /// Attaches to `name` if it exists, else creates it holding `initial`.
    pub fn open_or_create(name: &str, initial: u64) -> Result<SharedCursor, OpenError> {
        open_or_create_with(
            name,
            || SharedCursor::open(name),
            || SharedCursor::create(name, initial),
        )
    }

    /// Removes the name of cursor segment `name`; `Ok(false)` if there was none.
    pub fn remove(name: &str) -> Result<bool, OpenError> {
        match Segment::unlink(name) {
            Ok(()) => Ok(true),
            Err(ShmError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn from_region(region: Region, name: Option<&str>) -> Result<SharedCursor, OpenError> {
        let word = NonNull::from(region.mem().atomic_u64(0).map_err(|_| {
            OpenError::Shm(ShmError::TooSmall {
                name: name.unwrap_or("<local>").to_owned(),
                size: region.len() as u64,
                required: CURSOR_SIZE as u64,
            })
        })?);
        Ok(SharedCursor {
            inner: Arc::new(Inner {
                word,
                name: name.map(str::to_owned),
                _region: region,
            }),
        })
    }

    fn word(&self) -> &AtomicU64 {
        // SAFETY: checked in bounds and aligned when made; the region it points into is
        // owned by `inner` and lives as long as `self`.
        unsafe { self.inner.word.as_ref() }
    }

    /// The segment name (`None` for a local cursor).
    pub fn name(&self) -> Option<&str> {
        self.inner.name.as_deref()
    }

    /// The position (acquire).
    pub fn load(&self) -> u64 {
        self.word().load(Acquire)
    }

    /// Sets the position (release), e.g. to a queue's `next_index()` so that a new group
    /// starts "now" rather than at 0.
    pub fn store(&self, value: u64) {
        self.word().store(value, Release)
    }

    /// Strong compare-and-swap: `Ok(previous)` when the position was `current` and is
    /// now `new`, else `Err(actual)`.
    pub fn compare_exchange(&self, current: u64, new: u64) -> Result<u64, u64> {
        self.word().compare_exchange(current, new, AcqRel, Acquire)
    }

    /// The work-stealing step every shared reader takes: locates the reservation at the
    /// cursor, copies it with `copy(run, src, k)` (as [`read::take`] says), validates the
    /// copy, and only then claims it by moving the cursor past it (a claim cannot be
    /// given back, so it never takes a copy the validation rejected). Returns the
    /// reservation claimed. A lag or a corrupt slot moves the cursor on and is reported by
    /// the reader whose move won; the others retry. Any cursor value is safe (hostile
    /// peers may write it).
    pub(crate) fn claim(
        &self,
        raw: &RawRing,
        mut copy: impl FnMut(&Run, *const u8, usize),
    ) -> Result<Run, TryRecvError> {
        loop {
            let c = self.load();
            match read::locate(raw, c, 1) {
                Err((cursor, TryRecvError::Empty)) => {
                    // Past a wrap marker (or back after a reset): move the group along,
                    // as the peers do; if another reader moved it first, look again.
                    if cursor == c || self.compare_exchange(c, cursor).is_ok() {
                        return Err(TryRecvError::Empty);
                    }
                }
                Err((cursor, error)) => {
                    if self.compare_exchange(c, cursor).is_ok() {
                        return Err(error);
                    }
                }
                Ok(run) => {
                    let (_, taken) =
                        read::take(raw, &run, run.start, u64::MAX, |src, k| copy(&run, src, k));
                    let (next, result) = match taken.lost {
                        Some((next, error)) => (next, Err(error)),
                        None => (run.end, Ok(run)),
                    };
                    if self.compare_exchange(c, next).is_ok() {
                        return result;
                    }
                }
            }
            core::hint::spin_loop();
        }
    }
}
