//! Named objects: [`NamedMutex`], [`NamedSemaphore`], [`NamedEvent`], each in its own
//! shared-memory segment, found by name by any process — Rust or Python.
//!
//! | object | segment (`/dev/shm/…`) | size |
//! |---|---|---|
//! | [`NamedMutex`] | `__pyfastipc_mutex_NAME` | 64 B |
//! | [`NamedSemaphore`] | `__pyfastipc_sema_NAME` | 64 B |
//! | [`NamedEvent`] | `__pyfastipc_event_NAME` | 4 B |
//!
//! These are the names, sizes and layouts of the Python package `fastipc` 0.1.5, whose
//! `NamedMutex`, `NamedSemaphore` and `NamedEvent` open the same objects. Opening one
//! creates it if it does not exist (initialised before anyone can see it), else attaches
//! and leaves its state alone. Each handle registers this process in the attachment
//! [`registry`]; the last live process to leave unlinks the segment. [`sweep`] removes
//! what crashed processes left behind.
//!
//! [`SharedCell<T>`](SharedCell) holds one value of a message type under a mutex
//! (segment `__fastipc_cell_NAME`, see [`cell`]); it registers and is cleaned up the same
//! way.
//!
//! [`NamedSegment`] is the reusable piece underneath: a segment plus its registration.
//!
//! ```
//! use std::time::Duration;
//! use fastipc::named::{NamedEvent, NamedMutex, NamedSemaphore, registry::Registry};
//! # let dir = std::env::temp_dir().join(format!("fastipc-doc-named-{}", std::process::id()));
//! # let registry = Registry::at(&dir);
//! let name = format!("doc-jobs-{}", std::process::id());
//! // NamedMutex::open(&name) uses $FASTIPC_PID_DIR; here an explicit registry.
//! let mutex = NamedMutex::open_in(&registry, &name)?;
//! let jobs = NamedSemaphore::open_in(&registry, &name, 0)?;
//! let done = NamedEvent::open_in(&registry, &name)?;
//! {
//!     let _guard = mutex.lock().unwrap_or_else(|died| died.into_guard());
//!     jobs.post(1)?;
//! }
//! jobs.wait_timeout(Duration::from_secs(1))?;
//! done.set();
//! assert!(done.wait_timeout(Duration::ZERO).is_ok());
//! # drop((mutex, jobs, done)); std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod cell;
pub mod event;
mod handle;
pub mod mutex;
pub mod registry;
pub mod segment;
pub mod semaphore;
mod wait_async;

pub use cell::{SharedCell, SharedCellGuard};
pub use event::NamedEvent;
pub use mutex::NamedMutex;
pub use registry::{Registry, SweepReport};
pub use segment::NamedSegment;
pub use semaphore::NamedSemaphore;

use crate::error::NamedError;
use crate::sync::layout::{EVENT_SIZE, MUTEX_SIZE, SEMAPHORE_SIZE};

/// Segment-name prefix of a named mutex.
pub const MUTEX_PREFIX: &str = "__pyfastipc_mutex_";
/// Segment-name prefix of a named semaphore.
pub const SEMAPHORE_PREFIX: &str = "__pyfastipc_sema_";
/// Segment-name prefix of a named event.
pub const EVENT_PREFIX: &str = "__pyfastipc_event_";
/// The prefixes of segments [`sweep`] may unlink once nobody is attached: the sync
/// objects and the [shared cells](cell).
pub const SWEEP_PREFIXES: &[&str] = &[
    MUTEX_PREFIX,
    SEMAPHORE_PREFIX,
    EVENT_PREFIX,
    cell::layout::CELL_PREFIX,
];

/// The kinds of named sync objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// [`NamedMutex`].
    Mutex,
    /// [`NamedSemaphore`].
    Semaphore,
    /// [`NamedEvent`].
    Event,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 3] = [Kind::Mutex, Kind::Semaphore, Kind::Event];

    /// The segment-name prefix.
    pub const fn prefix(self) -> &'static str {
        match self {
            Kind::Mutex => MUTEX_PREFIX,
            Kind::Semaphore => SEMAPHORE_PREFIX,
            Kind::Event => EVENT_PREFIX,
        }
    }

    /// The object's size in bytes.
    pub const fn size(self) -> usize {
        match self {
            Kind::Mutex => MUTEX_SIZE,
            Kind::Semaphore => SEMAPHORE_SIZE,
            Kind::Event => EVENT_SIZE,
        }
    }

    /// A lower-case word for messages: `"mutex"`, `"semaphore"`, `"event"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Mutex => "mutex",
            Kind::Semaphore => "semaphore",
            Kind::Event => "event",
        }
    }
}

/// The segment name of the named object `name` of `kind`, after checking `name`: not
/// empty, not `.` or `..`, no `/`, no NUL, and short enough that the segment name and its registry folder
/// (`<segment>.pids`) fit in a file name's 255 bytes.
///
/// ```
/// use fastipc::named::{segment_name, Kind};
/// assert_eq!(segment_name(Kind::Mutex, "jobs")?, "__pyfastipc_mutex_jobs");
/// assert!(segment_name(Kind::Event, "a/b").is_err());
/// assert!(segment_name(Kind::Semaphore, &"x".repeat(240)).is_err());
/// # Ok::<(), fastipc::NamedError>(())
/// ```
pub fn segment_name(kind: Kind, name: &str) -> Result<String, NamedError> {
    let invalid = |reason: String| NamedError::InvalidName {
        kind: kind.as_str(),
        name: name.to_owned(),
        reason,
    };
    if let Err(reason) = check_object_name(name, max_name_len(kind), kind.prefix()) {
        return Err(invalid(reason));
    }
    Ok(format!("{}{name}", kind.prefix()))
}

/// Why `name` cannot name an object whose segment name is `prefix` + `name` and whose
/// name may be at most `max` bytes: empty, `.` or `..` (refused like every name that
/// means a path rather than a file), `/`, NUL, too long.
pub(crate) fn check_object_name(name: &str, max: usize, prefix: &str) -> Result<(), String> {
    if name.is_empty() {
        Err("empty".into())
    } else if name == "." || name == ".." {
        Err("`.` and `..` are not object names".into())
    } else if name.contains('/') {
        Err("contains `/`".into())
    } else if name.contains('\0') {
        Err("contains a NUL byte".into())
    } else if name.len() > max {
        Err(format!(
            "{} bytes; with the prefix `{prefix}` and the registry suffix `.pids` at most {max} \
             fit in a file name",
            name.len()
        ))
    } else {
        Ok(())
    }
}

/// The longest object name of `kind` (255 bytes minus the prefix and `.pids`).
pub const fn max_name_len(kind: Kind) -> usize {
    crate::sys::shm::MAX_NAME_LEN - kind.prefix().len() - registry::PIDS_SUFFIX.len()
}

/// Splits a segment name into the kind and name of the named object it holds, if it
/// has one of the prefixes.
///
/// ```
/// use fastipc::named::{parse_segment_name, Kind};
/// assert_eq!(parse_segment_name("__pyfastipc_sema_jobs"), Some((Kind::Semaphore, "jobs")));
/// assert_eq!(parse_segment_name("ticks"), None);
/// ```
pub fn parse_segment_name(segment: &str) -> Option<(Kind, &str)> {
    Kind::ALL.into_iter().find_map(|kind| {
        segment
            .strip_prefix(kind.prefix())
            .filter(|n| !n.is_empty())
            .map(|n| (kind, n))
    })
}

/// Sweeps the registry of `$FASTIPC_PID_DIR` (default `/dev/shm/fastipc`): removes the
/// registrations of dead processes and the sync objects and shared cells nobody live is
/// attached to. With `dry_run`, only reports. See [`Registry::sweep`].
pub fn sweep(dry_run: bool) -> Result<SweepReport, NamedError> {
    Registry::from_env().sweep(dry_run)
}

/// Helpers for the unit tests of the named objects: private registries and cleanup.
#[cfg(test)]
pub(crate) mod test_util {
    use std::path::PathBuf;

    use super::Registry;
    pub(crate) use crate::test_util::unique;

    /// Removes a private registry and the listed segments when dropped.
    pub(crate) struct Cleanup {
        dir: PathBuf,
        pub(crate) segments: Vec<String>,
    }

    impl Drop for Cleanup {
        fn drop(&mut self) {
            for s in &self.segments {
                let _ = crate::sys::shm::Segment::unlink(s);
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// A registry in a fresh directory, removed (with `segments`) on drop.
    pub(crate) fn registry(tag: &str, segments: &[&str]) -> (Registry, Cleanup) {
        let dir = std::env::temp_dir().join(unique(&format!("registry-{tag}")));
        (
            Registry::at(&dir),
            Cleanup {
                dir,
                segments: segments.iter().map(|s| s.to_string()).collect(),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated_with_their_prefix() {
        for kind in Kind::ALL {
            let max = max_name_len(kind);
            let ok = "n".repeat(max);
            let seg = segment_name(kind, &ok).unwrap();
            assert_eq!(seg.len() + registry::PIDS_SUFFIX.len(), 255);
            assert_eq!(parse_segment_name(&seg), Some((kind, ok.as_str())));
            for bad in [
                String::new(),
                "a/b".into(),
                "nul\0".into(),
                ".".into(),
                "..".into(),
                "n".repeat(max + 1),
            ] {
                assert!(
                    matches!(
                        segment_name(kind, &bad),
                        Err(NamedError::InvalidName { .. })
                    ),
                    "{kind:?} {bad:?}"
                );
            }
        }
        assert_eq!(parse_segment_name("__pyfastipc_mutex_"), None);
    }
}
