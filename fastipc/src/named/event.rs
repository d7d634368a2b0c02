//! [`NamedEvent`]: an [`Event`] in the segment `__pyfastipc_event_NAME`.

use std::time::Duration;

use super::handle::{Handle, handle_methods};
use super::registry::Registry;
use crate::error::{NamedError, TimedOut};
use crate::sync::Event;
use crate::sys::clock::Deadline;

/// A manual-reset event any process can open by name, shared with the Python package's
/// `NamedEvent`.
///
/// ```
/// use std::time::Duration;
/// use fastipc::named::{NamedEvent, registry::Registry};
/// # let dir = std::env::temp_dir().join(format!("fastipc-doc-nevent-{}", std::process::id()));
/// # let registry = Registry::at(&dir);
/// let name = format!("doc-ready-{}", std::process::id());
/// let ready = NamedEvent::open_in(&registry, &name)?; // clear if created here
/// assert!(ready.wait_timeout(Duration::from_millis(1)).is_err());
/// ready.set();
/// ready.wait(); // already set: returns at once
/// # drop(ready); std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), fastipc::NamedError>(())
/// ```
#[derive(Debug)]
pub struct NamedEvent(Handle<Event<'static>>);

impl NamedEvent {
    /// Opens the event `name`, creating it (clear) if it does not exist, registered in the
    /// registry of `$FASTIPC_PID_DIR`.
    pub fn open(name: &str) -> Result<NamedEvent, NamedError> {
        NamedEvent::open_in(&Registry::from_env(), name)
    }

    /// [`NamedEvent::open`] with an explicit registry.
    pub fn open_in(registry: &Registry, name: &str) -> Result<NamedEvent, NamedError> {
        Handle::open_or_create(registry, name, |mem| {
            // The segment is EVENT_SIZE bytes and page-aligned: init cannot fail.
            let _ = Event::init(mem);
        })
        .map(NamedEvent)
    }

    /// Opens the event `name` only if it exists.
    pub fn open_existing(name: &str) -> Result<NamedEvent, NamedError> {
        NamedEvent::open_existing_in(&Registry::from_env(), name)
    }

    /// [`NamedEvent::open_existing`] with an explicit registry.
    pub fn open_existing_in(registry: &Registry, name: &str) -> Result<NamedEvent, NamedError> {
        Handle::open_existing(registry, name).map(NamedEvent)
    }

    /// The buffer-backed event inside.
    pub fn event(&self) -> Event<'_> {
        // SAFETY: the view is returned with the lifetime of this borrow of the handle.
        unsafe { self.0.view() }
    }

    /// Sets the event and wakes every waiter.
    pub fn set(&self) {
        self.event().set()
    }

    /// Clears the event.
    pub fn clear(&self) {
        self.event().clear()
    }

    /// Whether the event is set.
    pub fn is_set(&self) -> bool {
        self.event().is_set()
    }

    /// Waits until the event is set; returns at once if it already is.
    pub fn wait(&self) {
        self.event().wait()
    }

    /// Waits at most `timeout` in total for the event to be set.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), TimedOut> {
        self.event().wait_timeout(timeout)
    }

    /// Waits until `deadline` at the latest (a [`Deadline`] or an
    /// [`Instant`](std::time::Instant)) for the event to be set.
    pub fn wait_deadline(&self, deadline: impl Into<Deadline>) -> Result<(), TimedOut> {
        self.event().wait_deadline(deadline)
    }

    handle_methods!("event");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ShmError;
    use crate::named::EVENT_PREFIX;
    use crate::named::test_util::{registry, unique};
    use crate::sync::layout::EVENT_SIZE;

    #[test]
    fn handles_share_one_event() {
        let name = unique("ne");
        let seg = format!("{EVENT_PREFIX}{name}");
        let (reg, _clean) = registry("ne", &[&seg]);
        let a = NamedEvent::open_in(&reg, &name).unwrap();
        let b = NamedEvent::open_existing_in(&reg, &name).unwrap();
        assert_eq!(a.segment().segment().len(), EVENT_SIZE);
        assert!(!b.is_set());
        std::thread::scope(|s| {
            let t = s.spawn(|| b.wait_timeout(Duration::from_secs(20)).is_ok());
            std::thread::sleep(Duration::from_millis(10));
            a.set();
            assert!(t.join().unwrap());
        });
        b.wait();
        a.clear();
        assert!(b.wait_timeout(Duration::ZERO).is_err());
        assert!(matches!(
            NamedEvent::open_existing_in(&reg, &unique("missing")),
            Err(NamedError::Shm(ShmError::NotFound { .. }))
        ));
    }
}
