//! What every named sync object is made of: a view of a primitive inside its own named
//! segment, plus the segment's registration. [`NamedMutex`](super::NamedMutex),
//! [`NamedSemaphore`](super::NamedSemaphore) and [`NamedEvent`](super::NamedEvent) wrap
//! a [`Handle`], take the methods every handle has from [`handle_methods!`], and add
//! their primitive's operations.

use core::fmt;

use super::registry::{Detached, Registry};
use super::segment::NamedSegment;
use super::{Kind, segment_name};
use crate::error::{NamedError, SyncError};
use crate::mem::MemRef;
use crate::sync::{Event, Mutex, Semaphore};

/// A primitive that lives alone in a named segment.
pub(crate) trait Primitive: Copy {
    /// Which named object it makes (segment prefix and size).
    const KIND: Kind;

    /// Views the primitive at the start of `mem` without changing it.
    fn attach(mem: MemRef<'static>) -> Result<Self, SyncError>;
}

impl Primitive for Mutex<'static> {
    const KIND: Kind = Kind::Mutex;

    fn attach(mem: MemRef<'static>) -> Result<Self, SyncError> {
        Mutex::attach(mem)
    }
}

impl Primitive for Semaphore<'static> {
    const KIND: Kind = Kind::Semaphore;

    fn attach(mem: MemRef<'static>) -> Result<Self, SyncError> {
        Semaphore::attach(mem)
    }
}

impl Primitive for Event<'static> {
    const KIND: Kind = Kind::Event;

    fn attach(mem: MemRef<'static>) -> Result<Self, SyncError> {
        Event::attach(mem)
    }
}

/// A named primitive: the view, the segment (and registration) it lives in, its name.
pub(crate) struct Handle<P> {
    /// A view into `segment`'s mapping. It is handed out only through [`Handle::view`],
    /// whose callers shorten its lifetime to a borrow of the handle, so it is never used
    /// after `segment` drops.
    view: P,
    segment: NamedSegment,
    name: String,
}

impl<P: Primitive> Handle<P> {
    /// Opens the object `name` in `registry`, creating it with `init` if it does not exist.
    pub(crate) fn open_or_create(
        registry: &Registry,
        name: &str,
        init: impl FnMut(MemRef<'_>),
    ) -> Result<Handle<P>, NamedError> {
        let seg = segment_name(P::KIND, name)?;
        let segment = NamedSegment::open_or_create(registry, &seg, P::KIND.size(), init)?;
        Handle::from_segment(segment, name)
    }

    /// Opens the object `name` in `registry` only if it exists.
    pub(crate) fn open_existing(registry: &Registry, name: &str) -> Result<Handle<P>, NamedError> {
        let seg = segment_name(P::KIND, name)?;
        let segment = NamedSegment::open(registry, &seg, P::KIND.size())?;
        Handle::from_segment(segment, name)
    }

    /// Views the primitive in `segment`; a segment holding something else is refused,
    /// and left in place.
    fn from_segment(segment: NamedSegment, name: &str) -> Result<Handle<P>, NamedError> {
        // SAFETY: the view is stored next to `segment` and only handed out through
        // `view()`, whose callers tie it to a borrow of this handle (module docs of the
        // field); it is never used after `segment` drops.
        let mem = unsafe { segment.mem_unbounded() };
        match P::attach(mem) {
            Ok(view) => Ok(Handle {
                view,
                segment,
                name: name.to_owned(),
            }),
            Err(source) => {
                segment.abandon();
                Err(NamedError::Sync {
                    kind: P::KIND.as_str(),
                    name: name.to_owned(),
                    source,
                })
            }
        }
    }

    /// The view, with a `'static` lifetime.
    ///
    /// # Safety
    /// The view (and everything made from it) must not be used after `self` drops, which
    /// unmaps its memory: the caller shortens its lifetime to a borrow of `self` (every
    /// public accessor returns it as `P<'_>`) or uses it only while `self` lives.
    pub(crate) unsafe fn view(&self) -> P {
        self.view
    }

    /// The name (without prefix).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The backing segment and its registration.
    pub(crate) fn segment(&self) -> &NamedSegment {
        &self.segment
    }

    /// Whether this handle created the object.
    pub(crate) fn created(&self) -> bool {
        self.segment.created()
    }

    /// Closes the handle; the last live process out unlinks the segment.
    pub(crate) fn close(self) -> Result<Detached, NamedError> {
        self.segment.close()
    }
}

impl<P: fmt::Debug> fmt::Debug for Handle<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("name", &self.name)
            .field("view", &self.view)
            .field("segment", &self.segment)
            .finish()
    }
}

/// The public methods every named sync object has, forwarded to its [`Handle`] (field
/// `0` of the newtype whose `impl` block this goes in): `name`, `segment`, `created` and
/// `close`. `$what` names the object in their docs.
macro_rules! handle_methods {
    ($what:literal) => {
        /// The name (without prefix).
        pub fn name(&self) -> &str {
            self.0.name()
        }

        /// The backing segment and its registration.
        pub fn segment(&self) -> &$crate::named::NamedSegment {
            self.0.segment()
        }

        #[doc = concat!("Whether this handle created the ", $what, ".")]
        pub fn created(&self) -> bool {
            self.0.created()
        }

        /// Closes this handle; the last live process out unlinks the segment. Dropping the
        /// handle does the same, ignoring errors.
        pub fn close(self) -> Result<$crate::named::registry::Detached, $crate::error::NamedError> {
            self.0.close()
        }
    };
}
pub(crate) use handle_methods;
