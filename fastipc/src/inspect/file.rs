//! Reading a segment by name for [`segment`](super::segment): opened read-only, never
//! mapped, its first bytes copied with `pread(2)`.
//!
//! A copy cannot fault if another process shrinks the file, needs only read permission,
//! and is plain private memory that the layouts' decoders can then read. (Fields are
//! copied one moment after another, as with any inspection of memory that other processes
//! write.)

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use rustix::fs::OFlags;

use crate::error::ShmError;
use crate::sys::shm::validate_name;

/// A segment of `dir` opened read-only, with its size when opened.
pub(super) struct SegmentCopy {
    name: String,
    file: File,
    size: u64,
}

impl SegmentCopy {
    /// Opens `dir/name` read-only, never following a symbolic link nor blocking on a FIFO,
    /// and checks that it is a regular file.
    pub(super) fn open(dir: &Path, name: &str) -> Result<SegmentCopy, ShmError> {
        validate_name(name)?;
        let file = OpenOptions::new()
            .read(true)
            .custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC).bits() as i32)
            .open(dir.join(name))
            .map_err(|e| error(name, "open", e))?;
        let meta = file.metadata().map_err(|e| error(name, "stat", e))?;
        if !meta.file_type().is_file() {
            return Err(ShmError::Os {
                name: name.to_owned(),
                op: "open",
                source: io::Error::other("not a regular file"),
            });
        }
        Ok(SegmentCopy {
            name: name.to_owned(),
            file,
            size: meta.len(),
        })
    }

    /// The size in bytes when it was opened.
    pub(super) fn size(&self) -> u64 {
        self.size
    }

    /// Up to `len` bytes from `offset` (fewer at the end of the file, none past it).
    pub(super) fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, ShmError> {
        let mut buf = vec![0u8; len];
        let mut filled = 0;
        while filled < len {
            let Some(at) = offset
                .checked_add(filled as u64)
                .filter(|&at| at <= i64::MAX as u64)
            else {
                break; // past any file's end (and what pread accepts)
            };
            match self.file.read_at(&mut buf[filled..], at) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(error(&self.name, "read", e)),
            }
        }
        buf.truncate(filled);
        Ok(buf)
    }
}

/// The [`ShmError`] of a failed file operation on segment `name`.
fn error(name: &str, op: &'static str, e: io::Error) -> ShmError {
    match e.raw_os_error() {
        Some(code) => ShmError::from_errno(name, op, rustix::io::Errno::from_raw_os_error(code)),
        None => ShmError::from_io(name, op, e),
    }
}
