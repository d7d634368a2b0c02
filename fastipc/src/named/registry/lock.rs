//! The registry folder's advisory lock ([`DirLock`], bounded waits) and the count of
//! this process's own handles per folder.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex as StdMutex, PoisonError};
use std::time::Duration;

use rustix::fs::{self, FlockOperation};
use rustix::io::Errno;

use super::{MAX_LOCK_BACKOFF, folder_name, registry_errno};
use crate::error::NamedError;
use crate::sys::clock::Deadline;

/// An exclusive advisory lock on a segment's registry folder, released on drop. It
/// holds the opened root and folder: every file operation under the lock is made
/// relative to them, never by path.
#[derive(Debug)]
pub(crate) struct DirLock {
    pub(super) root: OwnedFd,
    pub(super) fd: OwnedFd,
    pub(super) segment: String,
    pub(super) path: PathBuf,
}

impl DirLock {
    pub(super) fn new(root: OwnedFd, fd: OwnedFd, segment: &str, path: PathBuf) -> DirLock {
        DirLock {
            root,
            fd,
            segment: segment.to_owned(),
            path,
        }
    }

    pub(super) fn segment_folder(&self) -> String {
        folder_name(&self.segment)
    }

    /// Locks the opened folder, waiting until `deadline` at most for another process's
    /// lock (`timeout` is that wait, for the error); `None` if it was removed while we
    /// waited for the lock.
    pub(super) fn acquire(
        self,
        deadline: Deadline,
        timeout: Duration,
    ) -> Result<Option<DirLock>, NamedError> {
        let path = &self.path;
        let mut pause = Duration::from_micros(50);
        loop {
            match fs::flock(&self.fd, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => break,
                Err(Errno::INTR) => continue,
                Err(Errno::WOULDBLOCK) => {
                    let left = deadline.remaining();
                    if left.is_zero() {
                        return Err(NamedError::RegistryBusy {
                            path: path.to_owned(),
                            waited: timeout,
                        });
                    }
                    std::thread::sleep(pause.min(left));
                    pause = (pause * 2).min(MAX_LOCK_BACKOFF);
                }
                Err(e) => return Err(registry_errno(path, "flock", e)),
            }
        }
        // Removed while we waited (a directory's link count drops to 0 on rmdir)?
        let st = fs::fstat(&self.fd).map_err(|e| registry_errno(path, "fstat", e))?;
        if st.st_nlink == 0 {
            return Ok(None);
        }
        Ok(Some(self))
    }
}

/// Handles this process holds per registry folder.
pub(super) fn local_handles() -> std::sync::MutexGuard<'static, BTreeMap<PathBuf, usize>> {
    static HANDLES: StdMutex<BTreeMap<PathBuf, usize>> = StdMutex::new(BTreeMap::new());
    HANDLES.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Counts one handle of this process less for the folder `dir`; returns whether it was
/// the last one.
pub(super) fn release_local(dir: &Path) -> bool {
    let mut handles = local_handles();
    match handles.get_mut(dir) {
        Some(n) if *n > 1 => {
            *n -= 1;
            false
        }
        Some(_) => {
            handles.remove(dir);
            true
        }
        None => true,
    }
}
