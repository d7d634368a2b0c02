//! [`ShmCleanup`]: what a test made in `/dev/shm` (and elsewhere), removed even when the
//! test fails.

use std::path::PathBuf;

/// Removes `/dev/shm` entries (segment names, relative to `/dev/shm`) and directories
/// when dropped, so a failing test still cleans up.
#[derive(Default)]
pub struct ShmCleanup {
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

impl ShmCleanup {
    /// Nothing to remove yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Removes `/dev/shm/<name>` on drop.
    pub fn segment(mut self, name: impl AsRef<str>) -> Self {
        self.add_segment(name);
        self
    }

    /// Removes `/dev/shm/<name>` on drop.
    pub fn add_segment(&mut self, name: impl AsRef<str>) {
        self.files
            .push(PathBuf::from("/dev/shm").join(name.as_ref()));
    }

    /// Removes the directory (recursively) on drop.
    pub fn add_dir(&mut self, dir: impl Into<PathBuf>) {
        self.dirs.push(dir.into());
    }
}

impl Drop for ShmCleanup {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
