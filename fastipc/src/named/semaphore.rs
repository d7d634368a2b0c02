//! [`NamedSemaphore`]: a [`Semaphore`] in the segment `__pyfastipc_sema_NAME`.

use std::time::Duration;

use super::registry::{Detached, Registry};
use super::segment::NamedSegment;
use super::{Kind, segment_name};
use crate::error::{NamedError, SyncError, TimedOut};
use crate::sync::Semaphore;
use crate::sync::layout::{SEMAPHORE_SIZE, SemaphoreInfo};
use crate::sys::clock::Deadline;

/// How long attaching waits for a Python creator to write the magic number (it creates
/// the segment, then writes the header).
const CREATOR_GRACE: Duration = Duration::from_millis(100);

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
pub struct NamedSemaphore {
    /// A view into `segment`'s mapping; handed out only with the lifetime of a borrow of
    /// `self`, so never used after `segment` drops.
    semaphore: Semaphore<'static>,
    segment: NamedSegment,
    name: String,
}

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
        let seg = segment_name(Kind::Semaphore, name)?;
        let segment = NamedSegment::open_or_create(registry, &seg, SEMAPHORE_SIZE, |mem| {
            // The segment is SEMAPHORE_SIZE bytes and page-aligned: init cannot fail.
            let _ = Semaphore::init(mem, initial);
        })?;
        NamedSemaphore::from_segment(segment, name)
    }

    /// Opens the semaphore `name` only if it exists.
    pub fn open_existing(name: &str) -> Result<NamedSemaphore, NamedError> {
        NamedSemaphore::open_existing_in(&Registry::from_env(), name)
    }

    /// [`NamedSemaphore::open_existing`] with an explicit registry.
    pub fn open_existing_in(registry: &Registry, name: &str) -> Result<NamedSemaphore, NamedError> {
        let seg = segment_name(Kind::Semaphore, name)?;
        let segment = NamedSegment::open(registry, &seg, SEMAPHORE_SIZE)?;
        NamedSemaphore::from_segment(segment, name)
    }

    fn from_segment(segment: NamedSegment, name: &str) -> Result<NamedSemaphore, NamedError> {
        // SAFETY: the view is stored next to `segment` and only handed out through
        // `semaphore()`, whose result borrows `self`; never used after `segment` drops.
        let mem = unsafe { segment.mem_unbounded() };
        match Semaphore::attach(mem) {
            Ok(semaphore) => {
                if semaphore.info().magic == 0 {
                    // A Python creator between creating the segment and writing the
                    // header: give it a moment (its initial count would overwrite ours).
                    let deadline = Deadline::after(CREATOR_GRACE);
                    while semaphore.info().magic == 0 && !deadline.has_passed() {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                Ok(NamedSemaphore {
                    semaphore,
                    segment,
                    name: name.to_owned(),
                })
            }
            Err(source) => {
                segment.abandon();
                Err(NamedError::Sync {
                    kind: "semaphore",
                    name: name.to_owned(),
                    source,
                })
            }
        }
    }

    /// The buffer-backed semaphore inside.
    pub fn semaphore(&self) -> Semaphore<'_> {
        self.semaphore
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

    /// Takes a token, waiting until `deadline` at the latest.
    pub fn wait_deadline(&self, deadline: Deadline) -> Result<(), TimedOut> {
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

    /// The name (without prefix).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The backing segment and its registration.
    pub fn segment(&self) -> &NamedSegment {
        &self.segment
    }

    /// Whether this handle created the semaphore.
    pub fn created(&self) -> bool {
        self.segment.created()
    }

    /// Closes this handle; the last live process out unlinks the segment. Dropping the
    /// handle does the same, ignoring errors.
    pub fn close(self) -> Result<Detached, NamedError> {
        self.segment.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::named::SEMAPHORE_PREFIX;
    use crate::named::test_util::{registry, unique};
    use crate::sync::layout::SEMAPHORE_MAGIC;

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
