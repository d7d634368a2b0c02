//! Errors, one enum per concern.
//!
//! Every failure a caller can cause or meet (a bad name, a segment of the wrong size or
//! kind, a misaligned buffer, a timeout, a dead peer) is a typed error here, never a panic.

use std::io;

/// A byte range that cannot hold what was asked of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemError {
    /// The range is shorter than needed.
    #[error("buffer too short: {needed} bytes needed at offset {offset}, {available} available")]
    TooShort {
        /// Offset of the requested field or sub-range.
        offset: usize,
        /// Bytes needed from `offset`.
        needed: usize,
        /// Length of the whole range.
        available: usize,
    },
    /// The address is not aligned as the field requires.
    #[error("misaligned buffer: address {addr:#x} is not a multiple of {align}")]
    Misaligned {
        /// The offending address.
        addr: usize,
        /// The alignment required.
        align: usize,
    },
}

/// A named shared-memory segment could not be created, opened, mapped or removed.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    /// The name cannot name a segment.
    #[error("invalid shared-memory name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// No segment has this name.
    #[error("shared-memory segment {name:?} does not exist")]
    NotFound {
        /// The segment name.
        name: String,
    },
    /// A segment of this name already exists (exclusive creation).
    #[error("shared-memory segment {name:?} already exists")]
    AlreadyExists {
        /// The segment name.
        name: String,
    },
    /// The caller may not open or create the segment.
    #[error("permission denied on shared-memory segment {name:?}")]
    PermissionDenied {
        /// The segment name.
        name: String,
    },
    /// The segment is smaller than the object it should hold.
    #[error("shared-memory segment {name:?} is {size} bytes, at least {required} needed")]
    TooSmall {
        /// The segment name.
        name: String,
        /// Its size in bytes.
        size: u64,
        /// The size required.
        required: u64,
    },
    /// Any other operating-system error.
    #[error("{op} on shared-memory segment {name:?} failed: {source}")]
    Os {
        /// The segment name.
        name: String,
        /// The operation that failed (`"shm_open"`, `"ftruncate"`, `"mmap"`, ...).
        op: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl ShmError {
    /// Maps an errno from an operation on segment `name` to the matching variant.
    pub(crate) fn from_errno(name: &str, op: &'static str, errno: rustix::io::Errno) -> ShmError {
        use rustix::io::Errno;
        let name = name.to_owned();
        match errno {
            Errno::NOENT => ShmError::NotFound { name },
            Errno::EXIST => ShmError::AlreadyExists { name },
            Errno::ACCESS | Errno::PERM => ShmError::PermissionDenied { name },
            Errno::NAMETOOLONG => ShmError::InvalidName {
                name,
                reason: "longer than the 255 bytes a file name may hold",
            },
            e => ShmError::Os {
                name,
                op,
                source: io::Error::from_raw_os_error(e.raw_os_error()),
            },
        }
    }

    /// Maps a `std::io::Error` (from memmap2) to [`ShmError::Os`].
    pub(crate) fn from_io(name: &str, op: &'static str, source: io::Error) -> ShmError {
        ShmError::Os {
            name: name.to_owned(),
            op,
            source,
        }
    }
}
