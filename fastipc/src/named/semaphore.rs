//! [`NamedSemaphore`]: a [`Semaphore`] in the segment `__pyfastipc_sema_NAME`.

use std::time::Duration;

use super::handle::{Handle, handle_methods};
use super::registry::Registry;
use crate::error::{NamedError, SyncError, TimedOut};
use crate::sync::Semaphore;
use crate::sync::layout::SemaphoreInfo;
use crate::sys::clock::Deadline;

/// How long attaching gives a Python creator to write the magic number: it creates and
/// sizes the segment (zero-filled), maps it, registers, and only then writes the header.
/// Also how young a segment must be for its creator to be possibly still at work.
const CREATOR_GRACE: Duration = Duration::from_secs(2);

/// How long attaching waits, once the magic is there, for a Python creator's count. The
/// creator stores the magic first and the count a few instructions later; a post that
/// landed in between would be overwritten. Unit tests wait much longer, so that their
/// check of this wait does not depend on scheduling.
const COUNT_GRACE: Duration = if cfg!(test) {
    Duration::from_secs(30)
} else {
    Duration::from_millis(50)
};

/// A counting semaphore any process can open by name, shared with the Python package's
/// `NamedSemaphore`.
///
/// ```
/// use std::time::Duration;
/// use fastipc::named::{NamedSemaphore, registry::Registry};
/// # let dir = std::env::temp_dir().join(format!("fastipc-doc-nsem-{}", std::process::id()));
/// # let registry = Registry::at(&dir);
/// let name = format!("doc-slots-{}", std::process::id());
/// let sem = NamedSemaphore::open_in(&registry, &name, 2)?; // 2 tokens if created here
/// assert!(sem.try_wait());
/// sem.wait_timeout(Duration::from_secs(1))?;
/// assert!(!sem.try_wait());
/// sem.post(1)?;
/// assert_eq!(sem.value(), 1);
/// # drop(sem); std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct NamedSemaphore(Handle<Semaphore<'static>>);

impl NamedSemaphore {
    /// Opens the semaphore `name`; if it does not exist, creates it holding `initial`
    /// tokens (an existing semaphore keeps its count, as with the Python peer). Registered
    /// in the registry of `$FASTIPC_PID_DIR`.
    pub fn open(name: &str, initial: u32) -> Result<NamedSemaphore, NamedError> {
        NamedSemaphore::open_in(&Registry::from_env(), name, initial)
    }

    /// [`NamedSemaphore::open`] with an explicit registry.
    pub fn open_in(
        registry: &Registry,
        name: &str,
        initial: u32,
    ) -> Result<NamedSemaphore, NamedError> {
        let handle = Handle::open_or_create(registry, name, |mem| {
            // The segment is SEMAPHORE_SIZE bytes and page-aligned: init cannot fail.
            let _ = Semaphore::init(mem, initial);
        })?;
        Ok(NamedSemaphore::settled(handle))
    }

    /// Opens the semaphore `name` only if it exists.
    pub fn open_existing(name: &str) -> Result<NamedSemaphore, NamedError> {
        NamedSemaphore::open_existing_in(&Registry::from_env(), name)
    }

    /// [`NamedSemaphore::open_existing`] with an explicit registry.
    pub fn open_existing_in(registry: &Registry, name: &str) -> Result<NamedSemaphore, NamedError> {
        Handle::open_existing(registry, name).map(NamedSemaphore::settled)
    }

    /// Wraps a handle once a Python creator that may still be writing the header is done
    /// (see [`wait_for_python_creator`]).
    fn settled(handle: Handle<Semaphore<'static>>) -> NamedSemaphore {
        // SAFETY: used only within this function, while `handle` lives.
        let semaphore = unsafe { handle.view() };
        let info = semaphore.info();
        if !info.made_by_fastipc {
            let young = segment_age(handle.segment().name()).is_none_or(|age| age < CREATOR_GRACE);
            if info.magic == 0 || (info.count == 0 && young) {
                wait_for_python_creator(semaphore);
            }
        }
        NamedSemaphore(handle)
    }

    /// The buffer-backed semaphore inside.
    pub fn semaphore(&self) -> Semaphore<'_> {
        // SAFETY: the view is returned with the lifetime of this borrow of the handle.
        unsafe { self.0.view() }
    }

    /// Adds `n` tokens and wakes waiters. See [`Semaphore::post`].
    pub fn post(&self, n: u32) -> Result<(), SyncError> {
        self.semaphore().post(n)
    }

    /// Takes a token if one is available; never waits.
    pub fn try_wait(&self) -> bool {
        self.semaphore().try_wait()
    }

    /// Takes a token, waiting as long as it takes.
    pub fn wait(&self) {
        self.semaphore().wait()
    }

    /// Takes a token, waiting at most `timeout` in total.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), TimedOut> {
        self.semaphore().wait_timeout(timeout)
    }

    /// Takes a token, waiting until `deadline` at the latest (a [`Deadline`] or an
    /// [`Instant`](std::time::Instant)).
    pub fn wait_deadline(&self, deadline: impl Into<Deadline>) -> Result<(), TimedOut> {
        self.semaphore().wait_deadline(deadline)
    }

    /// Tokens available at this moment.
    pub fn value(&self) -> u32 {
        self.semaphore().value()
    }

    /// The header, decoded.
    pub fn info(&self) -> SemaphoreInfo {
        self.semaphore().info()
    }

    handle_methods!("semaphore");
}

/// How long ago the segment `name` was last resized or written with `write(2)` — for a
/// segment created the POSIX way, when its creator sized it (writes through a mapping
/// leave the time alone). `None` if that cannot be told.
fn segment_age(name: &str) -> Option<Duration> {
    let path = std::path::Path::new(crate::sys::shm::SHM_DIR).join(name);
    let modified = std::fs::symlink_metadata(path).ok()?.modified().ok()?;
    std::time::SystemTime::now().duration_since(modified).ok()
}

/// Waits for a Python creator that may still be writing the header of a semaphore it
/// just created, so that its stores do not overwrite what this process does next.
///
/// The Python creator zero-fills the segment (`ftruncate`), then stores the magic, then
/// the initial count. fastipc's own creator initialises the header before anyone can see
/// it and marks it ([`made_by_fastipc`](crate::sync::SemaphoreInfo)), so only an
/// unmarked header is waited for, and only while it may be under construction: its magic
/// is still 0 (then up to [`CREATOR_GRACE`]), or its count is 0 in a segment younger than
/// `CREATOR_GRACE` (then up to [`COUNT_GRACE`] for the count to change; a creator whose
/// initial count is 0, or none, leaves it at 0 and costs this wait).
///
/// What remains: a Python creator stalled for longer than these bounds between its stores
/// (descheduled for more than 50 ms between two adjacent stores, or for 2 s before them)
/// can still overwrite a post made meanwhile. The layout gives no way to tell a finished
/// header from one whose count is yet to come.
fn wait_for_python_creator(semaphore: Semaphore<'_>) {
    let pause = Duration::from_micros(200);
    let magic_deadline = Deadline::after(CREATOR_GRACE);
    while semaphore.info().magic == 0 {
        if magic_deadline.has_passed() {
            // Not being initialised after all (or its creator died): nothing to wait for.
            return;
        }
        std::thread::sleep(pause);
    }
    let count_deadline = Deadline::after(COUNT_GRACE);
    while semaphore.value() == 0 && !count_deadline.has_passed() {
        std::thread::sleep(pause);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::named::SEMAPHORE_PREFIX;
    use crate::named::test_util::{registry, unique};
    use crate::sync::layout::SEMAPHORE_MAGIC;
    use crate::sys::shm::Segment;
    use std::time::Instant;

    /// The stores of the Python package's creator (`NamedSemaphore(name, initial)`), in
    /// its order, with a pause where a scheduler could put one: magic, then count.
    fn python_creator_stores(mem: crate::mem::MemRef<'_>, initial: u32, pause: Duration) {
        use crate::sync::layout::{OFF_MAGIC, OFF_SEM_COUNT};
        use std::sync::atomic::Ordering::Release;
        let word = |off| mem.atomic_u32(off).unwrap();
        word(OFF_MAGIC).store(SEMAPHORE_MAGIC, Release);
        std::thread::sleep(pause);
        word(OFF_SEM_COUNT).store(initial, Release);
    }

    #[test]
    fn a_post_made_between_a_python_creators_magic_and_count_is_not_overwritten() {
        // A fresh Python-made segment: zero-filled, then (once this process has attached)
        // the magic, and the initial count 30 ms later.
        let name = unique("ns-py");
        let seg = format!("{SEMAPHORE_PREFIX}{name}");
        let (reg, _clean) = registry("ns-py", &[&seg]);
        let made = Segment::create(&seg, 64, |_| {}).unwrap();
        std::thread::scope(|s| {
            let attacher = s.spawn(|| {
                let sem = NamedSemaphore::open_in(&reg, &name, 0).unwrap();
                assert!(!sem.created());
                sem.post(1).unwrap();
                sem
            });
            // The attacher registers before it opens the segment.
            let deadline = Instant::now() + Duration::from_secs(20);
            while reg.attached(&seg).unwrap().is_empty() {
                assert!(Instant::now() < deadline, "the attacher never registered");
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(20));
            python_creator_stores(made.mem(), 5, Duration::from_millis(30));
            let sem = attacher.join().unwrap();
            assert_eq!(
                sem.value(),
                6,
                "the post was overwritten by the creator's count"
            );
        });
        // The magic already there and the count still to come: the same.
        let name = unique("ns-py2");
        let seg = format!("{SEMAPHORE_PREFIX}{name}");
        let (reg, _clean) = registry("ns-py2", &[&seg]);
        let made = Segment::create(&seg, 64, |mem| {
            mem.atomic_u32(0)
                .unwrap()
                .store(SEMAPHORE_MAGIC, std::sync::atomic::Ordering::Release);
        })
        .unwrap();
        std::thread::scope(|s| {
            let attacher = s.spawn(|| {
                let sem = NamedSemaphore::open_in(&reg, &name, 0).unwrap();
                sem.post(1).unwrap();
                sem
            });
            std::thread::sleep(Duration::from_millis(30));
            python_creator_stores(made.mem(), 5, Duration::ZERO);
            assert_eq!(attacher.join().unwrap().value(), 6);
        });
    }

    #[test]
    fn a_semaphore_fastipc_made_is_marked_and_attached_without_waiting_for_a_count() {
        let name = unique("ns-mark");
        let seg = format!("{SEMAPHORE_PREFIX}{name}");
        let (reg, _clean) = registry("ns-mark", &[&seg]);
        let a = NamedSemaphore::open_in(&reg, &name, 0).unwrap();
        assert!(a.info().made_by_fastipc);
        // With the 30 s count grace of the unit tests, any wait here would show.
        let start = Instant::now();
        let b = NamedSemaphore::open_in(&reg, &name, 0).unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "waited for a count"
        );
        assert_eq!(b.value(), 0);
    }

    #[test]
    fn only_the_creator_sets_the_initial_count() {
        let name = unique("ns");
        let seg = format!("{SEMAPHORE_PREFIX}{name}");
        let (reg, _clean) = registry("ns", &[&seg]);
        let a = NamedSemaphore::open_in(&reg, &name, 3).unwrap();
        let b = NamedSemaphore::open_in(&reg, &name, 100).unwrap();
        assert!(a.created() && !b.created());
        assert_eq!(b.value(), 3);
        assert_eq!(b.info().magic, SEMAPHORE_MAGIC);
        assert!(b.try_wait());
        b.wait();
        a.wait_timeout(Duration::ZERO).unwrap();
        assert!(a.wait_timeout(Duration::from_millis(5)).is_err());
        a.post(2).unwrap();
        assert!(matches!(
            b.post(u32::MAX),
            Err(SyncError::Overflow { count: 2, .. })
        ));
        assert_eq!(b.value(), 2);
        assert!(matches!(
            NamedSemaphore::open_in(&reg, "x/y", 0),
            Err(NamedError::InvalidName {
                kind: "semaphore",
                ..
            })
        ));
    }
}
