//! [`NamedSegment`]: a named shared-memory segment plus this process's registration in
//! the attachment registry — the building block of every named object.

use std::io;

use super::registry::{Attachment, Detached, Registry};
use crate::error::{NamedError, ShmError};
use crate::mem::MemRef;
use crate::sys::shm::{self, Segment};

/// How many times attaching retries when the segment it mapped was removed meanwhile (by
/// a Python process leaving at that moment).
const RETRIES: usize = 16;

/// A named shared-memory segment this process is registered as attached to.
///
/// Opening registers this process in the [`Registry`] *before* opening or creating the
/// segment, so a process leaving meanwhile sees it and does not remove the segment;
/// creation is race-free (the segment is initialised before its name appears, see
/// [`Segment::create`]). Dropping or [`closing`](NamedSegment::close) it ends the
/// registration; the last live process out unlinks the segment and its registry folder.
///
/// ```
/// use fastipc::named::{NamedSegment, registry::Registry};
/// # let dir = std::env::temp_dir().join(format!("fastipc-doc-namedseg-{}", std::process::id()));
/// let registry = Registry::at(&dir);
/// let name = format!("fastipc-doc-namedseg-{}", std::process::id());
/// let seg = NamedSegment::open_or_create(&registry, &name, 64, |_mem| { /* initialise */ })?;
/// assert!(seg.created());
/// let again = NamedSegment::open(&registry, &name, 64)?; // a second handle
/// drop(seg);
/// assert!(fastipc::Segment::exists(&name)); // still attached through `again`
/// assert!(again.close()?.unlinked); // last one out
/// assert!(!fastipc::Segment::exists(&name));
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), fastipc::NamedError>(())
/// ```
#[derive(Debug)]
pub struct NamedSegment {
    segment: Segment,
    attachment: Attachment,
    created: bool,
}

impl NamedSegment {
    /// Opens segment `name` (at least `len` bytes) or creates it with `len` bytes,
    /// running `init` on the new memory before anyone can see it. `init` may run more
    /// than once if a segment this call created is removed before it is registered
    /// (only possible with a Python peer leaving at that moment).
    pub fn open_or_create(
        registry: &Registry,
        name: &str,
        len: usize,
        init: impl FnMut(MemRef<'_>),
    ) -> Result<NamedSegment, NamedError> {
        NamedSegment::attach(registry, name, len, Some(init))
    }

    /// Opens the existing segment `name`, which must hold at least `min_len` bytes.
    pub fn open(
        registry: &Registry,
        name: &str,
        min_len: usize,
    ) -> Result<NamedSegment, NamedError> {
        NamedSegment::attach(registry, name, min_len, None::<fn(MemRef<'_>)>)
    }

    fn attach(
        registry: &Registry,
        name: &str,
        len: usize,
        mut init: Option<impl FnMut(MemRef<'_>)>,
    ) -> Result<NamedSegment, NamedError> {
        validate_segment_name(name, "segment")?;
        let mode = registry.share_mode().unwrap_or(0o600);
        let mut lock = registry.lock_dir(name)?;
        registry.register(&mut lock)?;
        let mut attachment = Attachment::registered(registry, name);
        let mapped = (|| {
            for _ in 0..RETRIES {
                let (segment, created) = match init.as_mut() {
                    Some(f) => Segment::open_or_create_with_mode(name, len, mode, f)?,
                    None => (Segment::open(name, len)?, false),
                };
                if segment.is_linked() {
                    return Ok((segment, created));
                }
            }
            Err(NamedError::Shm(ShmError::Os {
                name: name.to_owned(),
                op: "attach",
                source: io::Error::other("the segment kept being removed while attaching"),
            }))
        })();
        drop(lock);
        match mapped {
            Ok((segment, created)) => Ok(NamedSegment {
                segment,
                attachment,
                created,
            }),
            Err(e) => {
                // Unregister, but never remove a segment we could not use.
                let _ = attachment.abandon();
                Err(e)
            }
        }
    }

    /// Whether this handle created the segment (and ran `init`).
    pub fn created(&self) -> bool {
        self.created
    }

    /// The segment's name.
    pub fn name(&self) -> &str {
        self.segment.name()
    }

    /// The mapped segment.
    pub fn segment(&self) -> &Segment {
        &self.segment
    }

    /// The segment's memory.
    pub fn mem(&self) -> MemRef<'_> {
        self.segment.mem()
    }

    /// The registry this handle is registered in.
    pub fn registry(&self) -> &Registry {
        self.attachment.registry()
    }

    /// Ends the registration and unmaps; when no other live process is registered,
    /// unlinks the segment (if the name still refers to it) and its registry folder.
    pub fn close(mut self) -> Result<Detached, NamedError> {
        let segment = &self.segment;
        self.attachment.detach_with(|| segment.is_linked())
    }

    /// Ends the registration without ever unlinking the segment (for a segment found to
    /// hold something else).
    pub(crate) fn abandon(mut self) {
        let _ = self.attachment.abandon();
    }

    /// The segment's memory with a lifetime chosen by the caller, so that a named object
    /// can keep a view of its own segment.
    ///
    /// # Safety
    /// The returned `MemRef` (and everything made from it) must not be used after this
    /// `NamedSegment` is dropped: the mapping goes with it.
    pub(crate) unsafe fn mem_unbounded<'x>(&self) -> MemRef<'x> {
        let mem = self.segment.mem();
        // SAFETY: the mapping stays valid for reads and writes of `len` bytes until
        // `self` (its owner) drops, which the caller promises to outlive every use; the
        // MemRef contract on access is the one the mapping already satisfies.
        unsafe { MemRef::from_raw_parts(mem.as_ptr(), mem.len()) }
    }
}

impl Drop for NamedSegment {
    fn drop(&mut self) {
        let segment = &self.segment;
        let _ = self.attachment.detach_with(|| segment.is_linked());
    }
}

/// Checks that `name` can name a segment *and* its registry folder
/// (`<name>.pids`, within a file name's 255 bytes).
pub(crate) fn validate_segment_name(name: &str, kind: &'static str) -> Result<(), NamedError> {
    shm::validate_name(name)?;
    let max = shm::MAX_NAME_LEN - super::registry::PIDS_SUFFIX.len();
    if name.len() > max {
        return Err(NamedError::InvalidName {
            kind,
            name: name.to_owned(),
            reason: format!(
                "the segment name is {} bytes; its registry folder `<name>.pids` allows at most {max}",
                name.len()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::named::test_util::{registry, unique};
    use std::sync::atomic::Ordering;

    #[test]
    fn create_attach_and_last_one_out() {
        let name = unique("seg-life");
        let (reg, _clean) = registry("seg-life", &[&name]);
        let mut inits = 0;
        let a = NamedSegment::open_or_create(&reg, &name, 64, |mem| {
            inits += 1;
            mem.atomic_u32(0).unwrap().store(9, Ordering::Release);
        })
        .unwrap();
        let b =
            NamedSegment::open_or_create(&reg, &name, 64, |_| panic!("not the creator")).unwrap();
        assert_eq!(inits, 1);
        assert!(a.created() && !b.created());
        assert_eq!(b.mem().atomic_u32(0).unwrap().load(Ordering::Acquire), 9);
        assert_eq!(b.name(), name);
        assert_eq!(
            reg.attached(&name).unwrap().len(),
            1,
            "one process, one file"
        );
        assert_eq!(a.close().unwrap(), Detached { unlinked: false });
        assert!(Segment::exists(&name));
        assert_eq!(b.close().unwrap(), Detached { unlinked: true });
        assert!(!Segment::exists(&name));
        assert!(!reg.pids_dir(&name).exists());
    }

    #[test]
    fn failures_leave_no_registration_and_remove_nothing() {
        let name = unique("seg-fail");
        let (reg, _clean) = registry("seg-fail", &[&name]);
        assert!(matches!(
            NamedSegment::open(&reg, &name, 64),
            Err(NamedError::Shm(ShmError::NotFound { .. }))
        ));
        assert!(reg.attached(&name).unwrap().is_empty());
        // A segment someone else made, too small for us: refused, and left in place.
        let _other = Segment::create(&name, 16, |_| {}).unwrap();
        assert!(matches!(
            NamedSegment::open_or_create(&reg, &name, 64, |_| {}),
            Err(NamedError::Shm(ShmError::TooSmall { size: 16, .. }))
        ));
        assert!(Segment::exists(&name));
        assert!(reg.attached(&name).unwrap().is_empty());
    }

    #[test]
    fn a_segment_removed_under_us_is_not_unlinked_by_our_close() {
        let name = unique("seg-gone");
        let (reg, _clean) = registry("seg-gone", &[&name]);
        let a = NamedSegment::open_or_create(&reg, &name, 8, |_| {}).unwrap();
        Segment::unlink(&name).unwrap();
        let newer = Segment::create(&name, 8, |_| {}).unwrap();
        assert!(
            !a.close().unwrap().unlinked,
            "the name is someone else's now"
        );
        assert!(newer.is_linked());
    }

    #[test]
    fn names_must_leave_room_for_the_registry_folder() {
        let (reg, _clean) = registry("seg-name", &[]);
        let long = "x".repeat(251);
        assert!(matches!(
            NamedSegment::open_or_create(&reg, &long, 8, |_| {}),
            Err(NamedError::InvalidName { .. })
        ));
        assert!(matches!(
            NamedSegment::open(&reg, "a/b", 8),
            Err(NamedError::Shm(ShmError::InvalidName { .. }))
        ));
    }
}
