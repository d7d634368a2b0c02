//! Errors, one enum per concern.
//!
//! Every failure a caller can cause or meet (a bad name, a segment of the wrong size or
//! kind, a misaligned buffer, a timeout, a dead peer) is a typed error here, never a panic.

use std::io;

/// A byte range that cannot hold what was asked of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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
    /// A heap region could not be allocated.
    #[error("cannot allocate {len} bytes of memory")]
    OutOfMemory {
        /// The size asked for, in bytes.
        len: usize,
    },
}

/// A named shared-memory segment could not be created, opened, mapped or removed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// `/dev/shm` has no room for a new segment of this size (it is full, or smaller than
    /// the segment). Nothing was created.
    #[error(
        "no room in /dev/shm for shared-memory segment {name:?} of {len} bytes \
         (the file system is full or smaller than that)"
    )]
    NoSpace {
        /// The segment name.
        name: String,
        /// The size asked for, in bytes.
        len: u64,
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
#[non_exhaustive]
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
#[non_exhaustive]
pub struct TimedOut {
    /// What was waited for (`"mutex"`, `"semaphore"`, `"event"`).
    pub object: &'static str,
}

/// A named object ([`crate::named`]) could not be opened, attached or detached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// A folder of the attachment registry is not one the registry may use: a symbolic
    /// link (never followed), not a directory, or owned by another user than this one or
    /// root while the registry is not shared (see
    /// [`Registry::with_share_mode`](crate::named::registry::Registry::with_share_mode)).
    /// Nothing was written.
    #[error("attachment registry folder {path:?} refused: it {reason}")]
    UnsafeRegistry {
        /// The folder.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Another process kept a folder of the attachment registry locked for longer than
    /// the registry's lock timeout (a process stopped or hung while it attached,
    /// detached or swept). Nothing was changed.
    #[error(
        "attachment registry folder {path:?} stayed locked by another process for {waited:?} \
         (is a process stopped or hung while attaching or detaching?)"
    )]
    RegistryBusy {
        /// The folder.
        path: std::path::PathBuf,
        /// How long this process waited.
        waited: std::time::Duration,
    },
}

/// A queue could not be created, opened or attached as asked, or an endpoint could not
/// register in it.
///
/// Every way a segment can fail the attach checks of the SlickQueue handshake (LAYOUT.md
/// §1) has its own variant, so a caller (or the `fastipc inspect` tool) can tell a foreign
/// file from a truncated one, a newer layout, or a queue of another message type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The named segment could not be created, opened or mapped.
    #[error(transparent)]
    Shm(#[from] ShmError),
    /// The capacity asked for cannot make a queue.
    #[error("queue capacity {capacity} is invalid: {reason}")]
    InvalidCapacity {
        /// The capacity asked for.
        capacity: usize,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The element size asked for cannot make a queue.
    #[error("queue element size {size} is invalid: {reason}")]
    InvalidElementSize {
        /// The element size asked for, in bytes.
        size: usize,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The message type needs a stricter alignment than a queue's data area guarantees.
    #[error(
        "message type `{type_name}` needs {align}-byte alignment; a queue's data area only guarantees 16"
    )]
    UnsupportedAlignment {
        /// The message type.
        type_name: &'static str,
        /// Its alignment in bytes.
        align: usize,
    },
    /// The segment is shorter than the 64-byte queue header.
    #[error("segment {name:?} is truncated: {size} bytes, shorter than the 64-byte queue header")]
    Truncated {
        /// The segment name.
        name: String,
        /// Its size in bytes.
        size: u64,
    },
    /// The creator never finished initialising the queue (bounded wait, as the peers do),
    /// or had not when the header was inspected (`waited` is then 0).
    #[error(
        "queue {name:?} {} (init_state is {state}, 3 means ready)",
        if waited.is_zero() {
            "is not initialised yet".to_owned()
        } else {
            format!("was not initialised within {waited:?}")
        }
    )]
    NotReady {
        /// The segment name.
        name: String,
        /// The last `init_state` seen.
        state: u32,
        /// How long the attach waited.
        waited: std::time::Duration,
    },
    /// The segment does not carry the "SLQ" layout marker: it is not a queue.
    #[error(
        "segment {name:?} is not a SlickQueue: its layout marker is {found:#010x}, expected 0x534C513X (\"SLQ\" and a feature digit)"
    )]
    BadMagic {
        /// The segment name.
        name: String,
        /// The marker found at offset 24.
        found: u32,
    },
    /// The queue was made with layout features this build does not know.
    #[error(
        "queue {name:?} uses unknown layout features (marker {magic:#010x}, unknown feature bits {unknown:#x})"
    )]
    UnknownFeatures {
        /// The segment name.
        name: String,
        /// The marker found at offset 24.
        magic: u32,
        /// The feature bits not understood.
        unknown: u32,
    },
    /// The queue's creator does not maintain the last-published index ("SLQ0"); every
    /// fastipc endpoint maintains it, so sharing the segment would break `read_last`.
    #[error(
        "queue {name:?} was created without the last-published index (marker {magic:#010x}, \"SLQ0\"); fastipc needs \"SLQ1\""
    )]
    ReadLastDisabled {
        /// The segment name.
        name: String,
        /// The marker found at offset 24.
        magic: u32,
    },
    /// The queue groups several elements per control slot, which fastipc does not support.
    #[error("queue {name:?} has {items_per_slot} items per slot; fastipc supports only 1")]
    UnsupportedItemsPerSlot {
        /// The segment name.
        name: String,
        /// The header's `items_per_slot`.
        items_per_slot: u32,
    },
    /// The header's capacity is zero or not a power of two.
    #[error("queue {name:?} claims capacity {capacity}, which is not a power of two")]
    CapacityNotPowerOfTwo {
        /// The segment name.
        name: String,
        /// The header's capacity.
        capacity: u32,
    },
    /// The header's fields contradict each other or the protocol.
    #[error("queue {name:?} has a corrupt header: {reason}")]
    CorruptHeader {
        /// The segment name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The existing queue has another capacity than the one asked for.
    #[error("queue {name:?} has capacity {found}, but {requested} was asked for")]
    CapacityMismatch {
        /// The segment name.
        name: String,
        /// The capacity asked for.
        requested: usize,
        /// The queue's capacity.
        found: usize,
    },
    /// The existing queue holds elements of another size.
    #[error(
        "queue {name:?} holds {found} ({found_size} bytes per element), not {expected} ({expected_size} bytes)"
    )]
    ElementSizeMismatch {
        /// The segment name.
        name: String,
        /// The type (or element size) the caller expected, described.
        expected: String,
        /// Its size in bytes.
        expected_size: usize,
        /// The type the queue holds, described (its name when the creator recorded one).
        found: String,
        /// The queue's element size.
        found_size: usize,
    },
    /// The existing queue holds another message type of the same size.
    #[error(
        "queue {name:?} holds {found}, not {expected} (layout fingerprints {found_fingerprint:#018x} and {expected_fingerprint:#018x} differ)"
    )]
    TypeMismatch {
        /// The segment name.
        name: String,
        /// The caller's message type, described.
        expected: String,
        /// Its layout fingerprint.
        expected_fingerprint: u64,
        /// The type the queue holds, described.
        found: String,
        /// The fingerprint recorded in the queue's header.
        found_fingerprint: u64,
    },
    /// The header describes a queue larger than the segment.
    #[error(
        "segment {name:?} is {file_size} bytes, but its header describes a {required}-byte queue"
    )]
    FileTooSmall {
        /// The segment name.
        name: String,
        /// The segment's size in bytes.
        file_size: u64,
        /// The size the header's capacity and element size need.
        required: u128,
    },
    /// A local queue's memory could not be allocated.
    #[error("cannot allocate the local queue: {0}")]
    Alloc(#[from] MemError),
    /// The existing queue was created in the other delivery mode (lossy or lossless,
    /// chosen at creation and recorded in the queue).
    #[error(
        "queue {name:?} is {found}, but {requested} was asked for (the mode is chosen when the queue is created)"
    )]
    ModeMismatch {
        /// The segment name.
        name: String,
        /// The mode asked for.
        requested: crate::queue::Mode,
        /// The queue's mode.
        found: crate::queue::Mode,
    },
    /// Every entry of the queue's endpoint table is held by a live endpoint; nothing was
    /// registered. Drop endpoints you no longer use (entries of dead processes are
    /// reclaimed automatically).
    #[error(
        "queue {name:?}: all {max} endpoint entries are in use by live producers and consumers"
    )]
    EndpointsFull {
        /// The segment name (`<local>` for a local queue).
        name: String,
        /// The number of entries the table holds.
        max: usize,
    },
    /// The durable consumer asked for is held by a live process (or being taken over).
    #[error(
        "queue {name:?}: durable consumer {key:#x} is held by live process {pid} (0: being taken over)"
    )]
    DurableInUse {
        /// The segment name (`<local>` for a local queue).
        name: String,
        /// The durable consumer's key.
        key: u64,
        /// The holder's process id (0: another registrant is taking it over).
        pid: u32,
    },
    /// The existing queue was created with the other single-producer declaration
    /// ([`QueueOptions`](crate::queue::QueueOptions), chosen at creation and recorded in
    /// the queue).
    #[error(
        "queue {name:?} is {}, but {} was asked for (the declaration is made when the queue is created)",
        producers(*found),
        producers(*requested)
    )]
    SingleProducerMismatch {
        /// The segment name.
        name: String,
        /// Whether a single-producer queue was asked for.
        requested: bool,
        /// Whether the queue is single-producer.
        found: bool,
    },
    /// The queue is declared single-producer: its one producer is
    /// [`SlickQueue::single_producer`](crate::SlickQueue::single_producer); an ordinary
    /// [`Producer`](crate::queue::Producer), a byte-level producer registration and the
    /// command-line tool's `send` are refused.
    #[error(
        "queue {name:?} is declared single-producer: its producer is \
         `SlickQueue::single_producer()` (one at a time), not a shared `Producer`"
    )]
    SingleProducerQueue {
        /// The segment name (`<local>` for a local queue).
        name: String,
    },
    /// [`SlickQueue::single_producer`](crate::SlickQueue::single_producer) on a queue
    /// that was not declared single-producer (or was made by a peer); use
    /// [`SlickQueue::producer`](crate::SlickQueue::producer).
    #[error(
        "queue {name:?} was not created single-producer: use `SlickQueue::producer()` \
         (create the queue with `QueueOptions::single_producer` to have one)"
    )]
    NotSingleProducer {
        /// The segment name (`<local>` for a local queue).
        name: String,
    },
    /// The single-producer queue's producer is held by a live process (this one
    /// included): nothing was registered. A holder that dies is replaced by the next
    /// registrant.
    #[error(
        "queue {name:?} is single-producer and its producer is held by live process {pid}; \
         drop that `SingleProducer` (or end that process) first"
    )]
    SingleProducerInUse {
        /// The segment name (`<local>` for a local queue).
        name: String,
        /// The holder's process id.
        pid: u32,
    },
}

/// How [`OpenError::SingleProducerMismatch`] names a declaration.
fn producers(single: bool) -> &'static str {
    if single {
        "single-producer"
    } else {
        "multi-producer"
    }
}

/// A [`SharedCell`](crate::named::SharedCell) could not be opened as asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
/// A send or reservation that cannot succeed whatever the consumers do: bad input, or a
/// zero-copy guard of this mapping in the way. Nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// A batch holds more messages than the queue can hold at once, or none.
    #[error("a batch of {len} messages cannot be sent on a queue of capacity {capacity}")]
    InvalidBatch {
        /// Messages in the batch.
        len: usize,
        /// The queue's capacity.
        capacity: usize,
    },
    /// A byte message is not a whole number of elements.
    #[error("a message of {len} bytes is not a whole number of {element_size}-byte elements")]
    NotWholeElements {
        /// Bytes in the message.
        len: usize,
        /// The queue's element size.
        element_size: usize,
    },
    /// A write into a byte-level reservation runs past its end.
    #[error(
        "writing {len} bytes at offset {offset} runs past the {reserved} bytes of the reservation"
    )]
    WriteOutOfBounds {
        /// Byte offset of the write inside the reservation.
        offset: usize,
        /// Bytes written.
        len: usize,
        /// Bytes the reservation holds.
        reserved: usize,
    },
    /// A reservation would reach a message that a zero-copy guard of this process still
    /// holds, a whole ring behind the head. Nothing was reserved; commit or drop the guard
    /// (or wait for its owner to), then try again.
    #[error(
        "queue {queue}: reserving {len} more messages would overwrite message {held}, which \
         a SlotGuard or BatchGuard of this process still holds (capacity {capacity}); \
         commit or drop that guard first"
    )]
    GuardHeld {
        /// The queue's name (`<local>` for a local queue).
        queue: String,
        /// Absolute index of the oldest message a guard holds.
        held: u64,
        /// Messages the refused reservation asked for.
        len: usize,
        /// The queue's capacity.
        capacity: usize,
    },
    /// The reservation would end past `2^48 - capacity`: the 48-bit absolute index the
    /// peers share is used up. Nothing was reserved; [`reset`](crate::queue::Ring::reset)
    /// the queue (its consumers follow the reset to index 0).
    #[error(
        "queue {queue}: reserving {len} messages at index {next_index} would pass the \
         index limit {limit} (2^48 - capacity, the peers' 48-bit index); reset the queue"
    )]
    IndexExhausted {
        /// The queue's name (`<local>` for a local queue).
        queue: String,
        /// The head when the reservation was refused.
        next_index: u64,
        /// Messages the refused reservation asked for.
        len: usize,
        /// The highest index a reservation may end at.
        limit: u64,
    },
    /// A write into a zero-copy [`BatchGuard`](crate::queue::BatchGuard) does not fit
    /// its slots: [`write`](crate::queue::BatchGuard::write) takes exactly as many
    /// messages as were reserved, [`write_at`](crate::queue::BatchGuard::write_at) a slot
    /// below that. Nothing was written.
    #[error(
        "writing {len} messages from slot {first} does not fit a batch of {reserved} \
         reserved slots (a whole-batch write takes exactly {reserved})"
    )]
    BatchWrite {
        /// The first slot written (0 for a whole-batch write).
        first: usize,
        /// Messages written.
        len: usize,
        /// Slots the batch holds.
        reserved: usize,
    },
    /// The reserved message was dropped rather than published: producers of another
    /// process lapped it first (only from
    /// [`Producer::reserve_with`](crate::queue::Producer::reserve_with)).
    #[error(transparent)]
    Lapped(#[from] Lapped),
    /// A byte-level send ([`Ring::reserve`](crate::queue::Ring::reserve),
    /// [`Ring::send_bytes`](crate::queue::Ring::send_bytes)) on a queue declared
    /// single-producer: only its [`SingleProducer`](crate::queue::SingleProducer) claims
    /// there. Nothing was reserved.
    #[error(
        "queue {queue} is declared single-producer: only its `SingleProducer` may send \
         (byte-level sends are refused)"
    )]
    SingleProducerQueue {
        /// The queue's name (`<local>` for a local queue).
        queue: String,
    },
    /// `reset` was refused: a zero-copy guard made through this mapping still holds a
    /// message, and a rewound queue would hand its slot out again.
    #[error(
        "cannot reset queue `{queue}`: a SlotGuard or BatchGuard of this process still holds \
         message {held}; commit or drop it first"
    )]
    ResetWhileGuardHeld {
        /// The queue's name (`<local>` for a local queue).
        queue: String,
        /// Absolute index of the oldest message a guard holds.
        held: u64,
    },
}

/// A reserved message that was dropped instead of published, because producers claimed
/// a whole ring of messages after it before it was committed: its slots belong to a newer
/// message, so publishing it would hide that one. Readers report the loss as a lag, as
/// for any overwritten message. Returned by
/// [`SlotGuard::commit`](crate::queue::SlotGuard::commit),
/// [`BatchGuard::commit`](crate::queue::BatchGuard::commit) and
/// [`Reservation::publish`](crate::queue::Reservation::publish).
///
/// Only producers that do not see this mapping's leases can lap a guard: those of other
/// processes (C++ and Python peers included) or of another mapping of the same segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("message {index} ({len} slots) was dropped: producers lapped it before it was published")]
#[non_exhaustive]
pub struct Lapped {
    /// Absolute index of the dropped reservation's first message.
    pub index: u64,
    /// Messages (elements) the reservation held.
    pub len: usize,
}

/// Why [`Producer::try_send`](crate::queue::Producer::try_send) sent nothing.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrySendError<T> {
    /// A lossless queue is full: a registered consumer has not read the message a whole
    /// ring back (or no consumer has come yet, and the ring holds a whole ring of
    /// messages waiting for the first one). The message is handed back.
    #[error("the lossless queue is full (its slowest registered consumer is a whole ring behind)")]
    Full(T),
    /// The send cannot succeed as asked (see [`SendError`]); the message is handed back.
    #[error("{1}")]
    Failed(T, SendError),
}

impl<T> core::fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Failed(_, e) => f.debug_tuple("Failed").field(&"..").field(e).finish(),
        }
    }
}

impl<T> TrySendError<T> {
    /// The message that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(t) | TrySendError::Failed(t, _) => t,
        }
    }
}

/// Why [`Producer::send_timeout`](crate::queue::Producer::send_timeout) (or
/// `send_deadline`) sent nothing.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendTimeoutError<T> {
    /// The deadline passed while a lossless queue stayed full (no registered consumer
    /// read far enough, or no consumer came yet while the ring held a whole ring of
    /// messages waiting for the first one). The message is handed back.
    #[error(
        "timed out waiting for room in the lossless queue (its slowest registered consumer \
         stayed a whole ring behind, or no consumer has come yet)"
    )]
    Timeout(T),
    /// The send cannot succeed as asked (see [`SendError`]); the message is handed back.
    #[error("{1}")]
    Failed(T, SendError),
}

impl<T> core::fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            SendTimeoutError::Failed(_, e) => {
                f.debug_tuple("Failed").field(&"..").field(e).finish()
            }
        }
    }
}

impl<T> SendTimeoutError<T> {
    /// The message that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            SendTimeoutError::Timeout(t) | SendTimeoutError::Failed(t, _) => t,
        }
    }
}

/// Why a non-blocking receive (`try_recv`, `try_recv_into`, [`Ring::read`](crate::queue::Ring::read))
/// returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TryRecvError {
    /// Nothing new has been published.
    #[error("no message is available")]
    Empty,
    /// Producers overwrote messages before this consumer read them: it skipped this many
    /// absolute indices and now continues from the oldest message still in the ring.
    ///
    /// When every message was sent on its own (`send`, one-element reservations), or no
    /// batch wrapped around the end of the ring, that is exactly the number of messages
    /// missed. A batch that would straddle the end of the ring starts at the next lap
    /// instead and leaves the positions it skipped unused (at most its size minus one);
    /// such positions inside the skipped range count too. Which positions they were is
    /// recorded only in wrap markers the producers overwrote, so it cannot be subtracted.
    /// Never happens to a registered consumer of a lossless queue.
    #[error("the consumer fell behind and missed {0} messages")]
    Lagged(u64),
    /// A reservation of this many messages was claimed but will never be published: its
    /// producer died before publishing it, or dropped its zero-copy guard without
    /// `commit()`. The consumer skipped it and continues with the next message.
    #[error(
        "{0} messages were abandoned by their producer (it died before publishing them, or dropped its guard) and skipped"
    )]
    Abandoned(u64),
    /// Every producer that ever registered in the queue has deregistered (dropped) or
    /// died, and this consumer has read everything they published.
    #[error("every producer has left the queue and every message was read")]
    Disconnected,
    /// A control slot holds a size no producer can have written (the segment is
    /// corrupt); the consumer skipped it.
    #[error("the slot of index {index} holds the impossible size {size}; skipped it")]
    Corrupt {
        /// The absolute index of the slot.
        index: u64,
        /// The size it holds.
        size: u32,
    },
}

/// Why a receive with a deadline (`recv_timeout`, `recv_deadline`, ...) returned no
/// message: [`TryRecvError`] with `Timeout` instead of `Empty`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvTimeoutError {
    /// The deadline passed before a message arrived.
    #[error("timed out waiting for a message")]
    Timeout,
    /// See [`TryRecvError::Lagged`].
    #[error("the consumer fell behind and missed {0} messages")]
    Lagged(u64),
    /// See [`TryRecvError::Abandoned`].
    #[error("{0} messages were abandoned by their producer and skipped")]
    Abandoned(u64),
    /// See [`TryRecvError::Disconnected`].
    #[error("every producer has left the queue and every message was read")]
    Disconnected,
    /// See [`TryRecvError::Corrupt`].
    #[error("the slot of index {index} holds the impossible size {size}; skipped it")]
    Corrupt {
        /// The absolute index of the slot.
        index: u64,
        /// The size it holds.
        size: u32,
    },
}

/// Why a blocking receive without deadline (`recv`, `recv_into`) returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// See [`TryRecvError::Lagged`].
    #[error("the consumer fell behind and missed {0} messages")]
    Lagged(u64),
    /// See [`TryRecvError::Abandoned`].
    #[error("{0} messages were abandoned by their producer and skipped")]
    Abandoned(u64),
    /// See [`TryRecvError::Disconnected`].
    #[error("every producer has left the queue and every message was read")]
    Disconnected,
    /// See [`TryRecvError::Corrupt`].
    #[error("the slot of index {index} holds the impossible size {size}; skipped it")]
    Corrupt {
        /// The absolute index of the slot.
        index: u64,
        /// The size it holds.
        size: u32,
    },
}

/// Converts one receive error into another: the variants every receive error has
/// (`Lagged`, `Abandoned`, `Disconnected`, `Corrupt`) keep their name and fields; the arms
/// in braces map the variants only the source has.
macro_rules! convert_recv_error {
    ($e:expr, $from:ident => $to:ident { $($only_in_source:tt)* }) => {
        match $e {
            $from::Lagged(n) => $to::Lagged(n),
            $from::Abandoned(n) => $to::Abandoned(n),
            $from::Disconnected => $to::Disconnected,
            $from::Corrupt { index, size } => $to::Corrupt { index, size },
            $($only_in_source)*
        }
    };
}

impl TryRecvError {
    /// The same error as a [`RecvTimeoutError`] (`Empty` becomes `Timeout`).
    pub(crate) fn timed_out(self) -> RecvTimeoutError {
        convert_recv_error!(self, TryRecvError => RecvTimeoutError {
            TryRecvError::Empty => RecvTimeoutError::Timeout,
        })
    }
}

impl RecvTimeoutError {
    /// The same error as a [`RecvError`]; `None` for `Timeout`.
    pub(crate) fn untimed(self) -> Option<RecvError> {
        Some(convert_recv_error!(self, RecvTimeoutError => RecvError {
            RecvTimeoutError::Timeout => return None,
        }))
    }
}

impl From<RecvError> for RecvTimeoutError {
    fn from(e: RecvError) -> Self {
        convert_recv_error!(e, RecvError => RecvTimeoutError {})
    }
}

impl From<RecvError> for TryRecvError {
    fn from(e: RecvError) -> Self {
        convert_recv_error!(e, RecvError => TryRecvError {})
    }
}
