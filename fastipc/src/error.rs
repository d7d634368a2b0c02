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

/// A buffer-backed synchronisation primitive ([`crate::sync`]) cannot use its memory, or
/// an operation on it was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// The buffer is too short or not 4-byte aligned for the primitive.
    #[error("{object} buffer unusable: {source}")]
    Buffer {
        /// The primitive (`"mutex"`, `"semaphore"`, `"event"`).
        object: &'static str,
        /// What is wrong with the buffer.
        #[source]
        source: MemError,
    },
    /// The header's magic number names another kind of object: the memory holds
    /// something else (or was overwritten).
    #[error(
        "{object} header has magic {found:#010x}, expected {expected:#010x} (or 0): \
         the memory holds something else"
    )]
    ForeignHeader {
        /// The primitive that was expected.
        object: &'static str,
        /// The magic number found at offset 0.
        found: u32,
        /// The primitive's magic number.
        expected: u32,
    },
    /// `post(n)` would take the semaphore's count past `u32::MAX`; nothing was added.
    #[error("semaphore count overflow: {count} + {added} exceeds u32::MAX; nothing was added")]
    Overflow {
        /// The count when the post was attempted.
        count: u32,
        /// The number of tokens the post tried to add.
        added: u32,
    },
}

/// A bounded wait ended at its deadline without getting what it waited for (a token, the
/// event, the lock). Nothing was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("timed out waiting for the {object}")]
pub struct TimedOut {
    /// What was waited for (`"mutex"`, `"semaphore"`, `"event"`).
    pub object: &'static str,
}

/// A named object ([`crate::named`]) could not be opened, attached or detached.
#[derive(Debug, thiserror::Error)]
pub enum NamedError {
    /// The name cannot name this kind of object.
    #[error("invalid name {name:?} for a named {kind}: {reason}")]
    InvalidName {
        /// `"mutex"`, `"semaphore"`, `"event"` or `"segment"`.
        kind: &'static str,
        /// The name as given.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// The backing shared-memory segment could not be created, opened or mapped (it is
    /// missing, too small, not accessible, ...).
    #[error(transparent)]
    Shm(#[from] ShmError),
    /// The segment exists but does not hold this kind of object.
    #[error("named {kind} {name:?}: {source}")]
    Sync {
        /// `"mutex"`, `"semaphore"` or `"event"`.
        kind: &'static str,
        /// The object's name (without prefix).
        name: String,
        /// What is wrong with its header.
        #[source]
        source: SyncError,
    },
    /// The attachment registry (`$FASTIPC_PID_DIR`) could not be read or written.
    #[error("attachment registry {path:?}: {op} failed: {source}")]
    Registry {
        /// The file or directory concerned.
        path: std::path::PathBuf,
        /// The operation that failed.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// A [`SharedCell`](crate::named::SharedCell) could not be opened as asked.
#[derive(Debug, thiserror::Error)]
pub enum SharedCellError {
    /// The name is refused, the segment could not be created, opened or mapped, or the
    /// attachment registry failed.
    #[error(transparent)]
    Named(#[from] NamedError),
    /// The cell exists but holds another message type: its fingerprint (or size) differs
    /// from the one it was opened with.
    #[error(
        "shared cell {name:?} holds `{found}` (fingerprint {found_fingerprint:#018x}, \
         {found_size} bytes), not `{expected}` (fingerprint {expected_fingerprint:#018x}, \
         {expected_size} bytes): open it with the type it was created with"
    )]
    TypeMismatch {
        /// The cell's name (without prefix).
        name: String,
        /// The type it was opened with.
        expected: &'static str,
        /// That type's fingerprint.
        expected_fingerprint: u64,
        /// That type's size in bytes.
        expected_size: usize,
        /// The type the cell was created with, as recorded in its header.
        found: String,
        /// The recorded fingerprint.
        found_fingerprint: u64,
        /// The recorded value size in bytes.
        found_size: u32,
    },
    /// The segment under the cell's name does not hold a fastipc shared cell (another
    /// kind of object, another layout version, or a damaged header). It is left alone.
    #[error("segment {segment:?} is not a fastipc shared cell: {reason}")]
    NotACell {
        /// The segment name.
        segment: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The message type cannot live in a cell (larger than 4 GiB, or aligned above 16).
    #[error("`{type_name}` cannot live in a shared cell: {reason}")]
    Unsupported {
        /// The type's name.
        type_name: &'static str,
        /// Why.
        reason: &'static str,
    },
}
