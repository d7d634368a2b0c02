//! Reading a shared-memory segment without using it: open read-only, check it is a
//! regular file, read bounded byte ranges with `pread(2)`, and tell what kind of object it
//! holds from its name prefix or its header's magic number.
//!
//! Nothing here maps the segment: a copy read with `pread` cannot fault if another
//! process shrinks the file, needs only read permission, and is plain private memory
//! that the runtime's decoders can then read. (Fields are copied one moment after
//! another, as with any inspection of memory that other processes write.)

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use fastipc::Segment;
use fastipc::inspect;
use rustix::io::Errno;
use serde::Serialize;

use crate::error::CliError;

pub use fastipc::inspect::{PREFIXES, PY_HISTORY_PREFIX, PY_QUEUE_PREFIX};

/// What a segment holds, as far as this tool can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A SlickQueue (any name; recognised by the `"SLQ"` marker at offset 24).
    Queue,
    /// A named mutex (`__pyfastipc_mutex_NAME`).
    Mutex,
    /// A named semaphore (`__pyfastipc_sema_NAME`).
    Semaphore,
    /// A named event (`__pyfastipc_event_NAME`).
    Event,
    /// A shared cell (`__fastipc_cell_NAME`).
    SharedCell,
    /// A queue of the Python package (`__pyfastipc_queue_NAME`, magic `"PFNQ"`).
    PyfastipcQueue,
    /// A history buffer of the Python package (`__pyfastipc_history_buffer_NAME`, magic
    /// `"PFHB"`).
    PyfastipcHistoryBuffer,
}

impl Kind {
    /// The word `ls` and `inspect` print.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Queue => "queue",
            Kind::Mutex => "mutex",
            Kind::Semaphore => "semaphore",
            Kind::Event => "event",
            Kind::SharedCell => "shared-cell",
            Kind::PyfastipcQueue => "pyfastipc-queue",
            Kind::PyfastipcHistoryBuffer => "pyfastipc-history-buffer",
        }
    }

    /// The kind a segment name's prefix announces, if any
    /// ([`fastipc::inspect::Kind::from_prefix`]).
    ///
    /// ```
    /// use fastipc_cli::segment::Kind;
    /// assert_eq!(Kind::from_prefix("__pyfastipc_sema_jobs"), Some(Kind::Semaphore));
    /// assert_eq!(Kind::from_prefix("ticks"), None);
    /// ```
    pub fn from_prefix(segment: &str) -> Option<Kind> {
        inspect::Kind::from_prefix(segment).and_then(Kind::of)
    }

    /// This tool's name for a kind the runtime decodes; `None` for a kind this build of
    /// the tool does not know (shown as not one of ours).
    pub fn of(kind: inspect::Kind) -> Option<Kind> {
        Some(match kind {
            inspect::Kind::Queue => Kind::Queue,
            inspect::Kind::Mutex => Kind::Mutex,
            inspect::Kind::Semaphore => Kind::Semaphore,
            inspect::Kind::Event => Kind::Event,
            inspect::Kind::SharedCell => Kind::SharedCell,
            inspect::Kind::PyfastipcQueue => Kind::PyfastipcQueue,
            inspect::Kind::PyfastipcHistoryBuffer => Kind::PyfastipcHistoryBuffer,
            _ => return None,
        })
    }

    /// The runtime's kind, for [`fastipc::inspect::decode`].
    pub fn to_inspect(self) -> inspect::Kind {
        match self {
            Kind::Queue => inspect::Kind::Queue,
            Kind::Mutex => inspect::Kind::Mutex,
            Kind::Semaphore => inspect::Kind::Semaphore,
            Kind::Event => inspect::Kind::Event,
            Kind::SharedCell => inspect::Kind::SharedCell,
            Kind::PyfastipcQueue => inspect::Kind::PyfastipcQueue,
            Kind::PyfastipcHistoryBuffer => inspect::Kind::PyfastipcHistoryBuffer,
        }
    }
}

/// The kind of segment `name` whose first bytes are `head`: the name prefix decides
/// when there is one (a header that does not match is then reported by `inspect`), else
/// a SlickQueue marker at offset 24. `None`: not one of ours
/// ([`fastipc::inspect::Kind::detect`]).
///
/// ```
/// use fastipc_cli::segment::{detect, Kind};
/// let mut head = [0u8; 64];
/// head[24..28].copy_from_slice(b"1QLS"); // "SLQ1" as a little-endian u32
/// assert_eq!(detect("ticks", &head), Some(Kind::Queue));
/// assert_eq!(detect("ticks", &[0u8; 64]), None);
/// assert_eq!(detect("__pyfastipc_event_go", &[1, 0, 0, 0]), Some(Kind::Event));
/// ```
pub fn detect(name: &str, head: &[u8]) -> Option<Kind> {
    inspect::Kind::detect(name, head).and_then(Kind::of)
}

/// The little-endian u32 at `off` of `bytes`, if it is there.
pub fn u32_at(bytes: &[u8], off: usize) -> Option<u32> {
    let b = bytes.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

/// The little-endian u64 at `off` of `bytes`, if it is there.
pub fn u64_at(bytes: &[u8], off: usize) -> Option<u64> {
    let b = bytes.get(off..off.checked_add(8)?)?;
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

/// The little-endian i64 at `off` of `bytes`, if it is there.
pub fn i64_at(bytes: &[u8], off: usize) -> Option<i64> {
    u64_at(bytes, off).map(|v| v as i64)
}

/// A segment opened read-only for inspection.
#[derive(Debug)]
pub struct SegmentFile {
    name: String,
    path: PathBuf,
    file: File,
    size: u64,
    mode: u32,
    uid: u32,
}

impl SegmentFile {
    /// Opens `dir/name` read-only (never following a symbolic link, never blocking on
    /// a FIFO) and checks that it is a regular file.
    pub fn open(dir: &Path, name: &str) -> Result<SegmentFile, CliError> {
        Segment::validate_name(name)?;
        let path = dir.join(name);
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(
                (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32,
            )
            .open(&path)
            .map_err(|e| open_error(dir, name, &path, e))?;
        let meta = file.metadata().map_err(|source| CliError::Io {
            path: path.clone(),
            op: "stat",
            source,
        })?;
        if !meta.file_type().is_file() {
            return Err(CliError::NotRegularFile { path });
        }
        Ok(SegmentFile {
            name: name.to_owned(),
            path,
            file,
            size: meta.len(),
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
        })
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The size in bytes when it was opened.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The permission bits.
    pub fn mode(&self) -> u32 {
        self.mode
    }

    /// The owner's user id.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// Reads up to `len` bytes from `offset` (fewer at the end of the file, none past
    /// it).
    pub fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, CliError> {
        let mut buf = vec![0u8; len];
        let mut filled = 0;
        while filled < len {
            let at = offset.saturating_add(filled as u64);
            if at > i64::MAX as u64 {
                break; // past any file's end (and what pread accepts)
            }
            match self.file.read_at(&mut buf[filled..], at) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(CliError::Io {
                        path: self.path.clone(),
                        op: "read",
                        source,
                    });
                }
            }
        }
        buf.truncate(filled);
        Ok(buf)
    }
}

/// Maps a failed open to the error a user understands.
fn open_error(dir: &Path, name: &str, path: &Path, e: io::Error) -> CliError {
    match e.kind() {
        io::ErrorKind::NotFound => CliError::NotFound {
            name: name.to_owned(),
            dir: dir.to_owned(),
            hint: similar_names(dir, name),
        },
        io::ErrorKind::PermissionDenied => CliError::PermissionDenied {
            path: path.to_owned(),
            detail: ownership(path),
        },
        _ if e.raw_os_error() == Some(Errno::LOOP.raw_os_error()) => CliError::NotRegularFile {
            path: path.to_owned(),
        },
        _ => CliError::Io {
            path: path.to_owned(),
            op: "open",
            source: e,
        },
    }
}

/// "mode 0600, owner uid 0, you are uid 1000" when the file can be stat'ed.
pub fn ownership(path: &Path) -> String {
    let me = rustix::process::geteuid().as_raw();
    match std::fs::symlink_metadata(path) {
        Ok(m) => format!(
            "mode {:04o}, owner uid {}; you are uid {me}",
            m.mode() & 0o7777,
            m.uid()
        ),
        Err(_) => format!("you are uid {me}"),
    }
}

/// Existing segments that are `name` with one of the known prefixes.
pub fn similar_names(dir: &Path, name: &str) -> Vec<String> {
    PREFIXES
        .iter()
        .map(|p| format!("{p}{name}"))
        .filter(|candidate| dir.join(candidate).exists())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn prefixes_win_over_content_and_queues_need_the_marker() {
        let mut q = [0u8; 64];
        q[24..28].copy_from_slice(&0x534C_5133u32.to_le_bytes());
        assert_eq!(detect("__pyfastipc_mutex_m", &q), Some(Kind::Mutex));
        assert_eq!(detect("q", &q), Some(Kind::Queue), "any feature digit");
        assert_eq!(detect("q", &q[..63]), None, "shorter than a header");
        q[27] = 0x54;
        assert_eq!(detect("q", &q), None);
        assert_eq!(detect("__pyfastipc_mutex_", &[]), None, "a bare prefix");
        assert_eq!(
            detect("__pyfastipc_history_buffer_h", &[]),
            Some(Kind::PyfastipcHistoryBuffer)
        );
        assert_eq!(
            detect("__pyfastipc_queue_h", &[]),
            Some(Kind::PyfastipcQueue)
        );
    }

    #[test]
    fn reads_are_bounded_by_the_file() {
        let dir = TempDir::new("seg-read");
        std::fs::write(dir.path().join("f"), [1u8, 2, 3, 4, 5]).unwrap();
        let f = SegmentFile::open(dir.path(), "f").unwrap();
        assert_eq!(f.size(), 5);
        assert_eq!(f.read_at(0, 3).unwrap(), [1, 2, 3]);
        assert_eq!(f.read_at(3, 100).unwrap(), [4, 5]);
        assert!(f.read_at(10, 8).unwrap().is_empty());
        assert!(f.read_at(u64::MAX - 2, 8).unwrap().is_empty());
    }

    #[test]
    fn open_errors_name_the_problem() {
        let dir = TempDir::new("seg-open");
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("link")).unwrap();
        std::fs::write(dir.path().join("__pyfastipc_sema_jobs"), [0u8; 64]).unwrap();
        let err = SegmentFile::open(dir.path(), "jobs").unwrap_err();
        assert!(
            matches!(&err, CliError::NotFound { hint, .. } if hint == &["__pyfastipc_sema_jobs"])
        );
        assert!(err.to_string().contains("did you mean"), "{err}");
        assert!(matches!(
            SegmentFile::open(dir.path(), "d"),
            Err(CliError::NotRegularFile { .. })
        ));
        assert!(matches!(
            SegmentFile::open(dir.path(), "link"),
            Err(CliError::NotRegularFile { .. })
        ));
        assert!(matches!(
            SegmentFile::open(dir.path(), "a/b"),
            Err(CliError::Shm(fastipc::ShmError::InvalidName { .. }))
        ));
    }

    #[test]
    fn little_endian_helpers_never_read_out_of_bounds() {
        let b = [1u8, 0, 0, 0, 2, 0, 0, 0];
        assert_eq!(u32_at(&b, 4), Some(2));
        assert_eq!(u64_at(&b, 0), Some(0x2_0000_0001));
        assert_eq!(u32_at(&b, 5), None);
        assert_eq!(u64_at(&b, usize::MAX), None);
    }
}
