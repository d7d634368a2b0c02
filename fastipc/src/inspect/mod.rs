//! Inspecting segments without using them: the one API for tools (`fastipc inspect`,
//! `fastipc ls`, monitoring) that decodes any fastipc or peer segment into typed structs.
//!
//! [`segment`] reads a segment by name and decodes it. A tool that reads the bytes itself
//! (a read-only `pread(2)` copy needs only read permission and cannot fault if another
//! process shrinks the file) tells its [`Kind`] from its name and bytes
//! ([`Kind::detect`]), then [`decode`]s them.
//! Decoding never fails on what the bytes hold: every field is reported as found, and the
//! checks an attach would make are in the result (e.g. [`Inspection::validation`] for a
//! queue). Only bytes shorter than the kind's header are refused ([`Truncated`]).
//!
//! ```
//! use fastipc::inspect::{self, Kind, Object};
//! use fastipc::sync::Mutex;
//! use fastipc::MemRef;
//!
//! // The bytes of a held mutex, as a tool would copy them from /dev/shm.
//! let mut buf = [0u64; 8];
//! let m = Mutex::init(MemRef::from_mut(bytemuck::cast_slice_mut(&mut buf)))?;
//! std::mem::forget(m.lock().unwrap()); // left held, as a holder would
//! let bytes: Vec<u8> = bytemuck::cast_slice(&buf).to_vec();
//!
//! let name = "__pyfastipc_mutex_jobs";
//! let kind = Kind::detect(name, &bytes).expect("a mutex by its name");
//! assert_eq!(kind, Kind::Mutex);
//! let Object::Mutex(state) = inspect::decode(kind, name, 64, &bytes, |_, _| None)? else {
//!     unreachable!()
//! };
//! assert!(state.info.is_locked());
//! assert_eq!(state.owner_pid, Some(std::process::id()));
//! assert_eq!(state.owner_alive, Some(true));
//! // Cut short: refused, with what the kind needs.
//! let err = inspect::decode(kind, name, 10, &bytes[..10], |_, _| None).unwrap_err();
//! assert_eq!((err.size, err.needed), (10, 64));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Which processes are attached to a named object is the attachment registry's answer
//! ([`Registry::attached`](crate::named::Registry::attached)), with each process's
//! liveness.
//!
//! The layouts' own types are re-exported here ([`HeaderSnapshot`], [`MutexInfo`],
//! [`SemaphoreInfo`], [`EventInfo`], [`CellInfo`], ...) with the constants a report needs
//! to name what it found; every struct is `#[non_exhaustive]`, so fields can be added
//! (a queue's endpoint table, say) without breaking tools.

mod file;

use std::path::Path;

use crate::error::ShmError;
use crate::mem::MemRef;
use crate::named::{self, cell};
use crate::queue::endpoints::{TABLE_LEN, decode_table};
use crate::queue::layout::{
    FLAG_ENDPOINTS, FLAG_LOSSLESS, FLAG_SINGLE_PRODUCER, HEADER_SIZE as QUEUE_HEADER_SIZE,
    MAX_TYPE_NAME, TRAILER_FIXED,
};
use crate::sys::process;

pub use crate::named::cell::layout::{
    CELL_MAGIC, CELL_PREFIX, CELL_VERSION, CellInfo, HEADER_SIZE as CELL_HEADER_SIZE, ValueType,
};
pub use crate::queue::layout::{
    Geometry, HeaderSnapshot, MAGIC_FEATURE_MASK, MAGIC_PREFIX, TypeTrailer, init_state,
};
pub use crate::queue::{EndpointInfo, Inspection, Mode, Role};
pub use crate::sync::layout::{
    EVENT_SIZE, EventInfo, MUTEX_CONTENDED, MUTEX_LOCKED, MUTEX_MAGIC, MUTEX_SIZE, MUTEX_UNLOCKED,
    MutexInfo, OwnerIdentity, SEMAPHORE_MAGIC, SEMAPHORE_SIZE, SemaphoreInfo,
};

/// Bytes to read from the start of a segment: enough for the largest header decoded here.
pub const HEAD_LEN: usize = 128;

/// Segment-name prefix of the Python package's `NamedQueue`.
pub const PY_QUEUE_PREFIX: &str = "__pyfastipc_queue_";
/// Segment-name prefix of the Python package's `NamedHistoryBuffer`.
pub const PY_HISTORY_PREFIX: &str = "__pyfastipc_history_buffer_";
/// Magic number of the Python package's `NamedQueue` header (`"PFNQ"`).
pub const PY_QUEUE_MAGIC: u64 = 0x5046_4E51;
/// Magic number of the Python package's `NamedHistoryBuffer` header (`"PFHB"`).
pub const PY_HISTORY_MAGIC: u64 = 0x5046_4842;
/// Size of the Python package's data-object headers (64 bytes of fields, then the
/// writers' 64-byte mutex).
pub const PY_HEADER_SIZE: usize = 128;

/// Every segment-name prefix of the objects decoded here (a queue has none).
pub const PREFIXES: &[&str] = &[
    named::MUTEX_PREFIX,
    named::SEMAPHORE_PREFIX,
    named::EVENT_PREFIX,
    CELL_PREFIX,
    PY_QUEUE_PREFIX,
    PY_HISTORY_PREFIX,
];

/// What a segment holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
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
    /// The kind a segment name's prefix announces, if any.
    ///
    /// ```
    /// use fastipc::inspect::Kind;
    /// assert_eq!(Kind::from_prefix("__pyfastipc_sema_jobs"), Some(Kind::Semaphore));
    /// assert_eq!(Kind::from_prefix("__pyfastipc_sema_"), None); // a bare prefix
    /// assert_eq!(Kind::from_prefix("ticks"), None);
    /// ```
    pub fn from_prefix(segment: &str) -> Option<Kind> {
        if let Some((kind, _)) = named::parse_segment_name(segment) {
            return Some(match kind {
                named::Kind::Mutex => Kind::Mutex,
                named::Kind::Semaphore => Kind::Semaphore,
                named::Kind::Event => Kind::Event,
            });
        }
        if cell::parse_segment_name(segment).is_some() {
            return Some(Kind::SharedCell);
        }
        [
            (PY_HISTORY_PREFIX, Kind::PyfastipcHistoryBuffer),
            (PY_QUEUE_PREFIX, Kind::PyfastipcQueue),
        ]
        .into_iter()
        .find_map(|(prefix, kind)| {
            segment
                .strip_prefix(prefix)
                .filter(|rest| !rest.is_empty())
                .map(|_| kind)
        })
    }

    /// The kind of segment `name` whose first bytes are `head`: the name prefix decides
    /// when there is one (a header that does not match is then reported by [`decode`]),
    /// else a SlickQueue marker at offset 24. `None`: not one of ours.
    ///
    /// ```
    /// use fastipc::inspect::Kind;
    /// let mut head = [0u8; 64];
    /// head[24..28].copy_from_slice(b"1QLS"); // "SLQ1" as a little-endian u32
    /// assert_eq!(Kind::detect("ticks", &head), Some(Kind::Queue));
    /// assert_eq!(Kind::detect("ticks", &[0u8; 64]), None);
    /// assert_eq!(Kind::detect("__pyfastipc_event_go", &[1, 0, 0, 0]), Some(Kind::Event));
    /// ```
    pub fn detect(name: &str, head: &[u8]) -> Option<Kind> {
        if let Some(kind) = Kind::from_prefix(name) {
            return Some(kind);
        }
        let marker = head.get(24..28)?;
        let magic = u32::from_le_bytes(marker.try_into().ok()?);
        (head.len() >= QUEUE_HEADER_SIZE && magic & !MAGIC_FEATURE_MASK == MAGIC_PREFIX)
            .then_some(Kind::Queue)
    }

    /// The bytes [`decode`] needs for this kind: its header's length.
    pub const fn header_len(self) -> usize {
        match self {
            Kind::Queue => QUEUE_HEADER_SIZE,
            Kind::Mutex => MUTEX_SIZE,
            Kind::Semaphore => SEMAPHORE_SIZE,
            Kind::Event => EVENT_SIZE,
            Kind::SharedCell => CELL_HEADER_SIZE,
            Kind::PyfastipcQueue | Kind::PyfastipcHistoryBuffer => PY_HEADER_SIZE,
        }
    }
}

/// A segment shorter than its kind's layout: nothing to decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a {kind:?} needs {needed} bytes; the segment has {size}")]
#[non_exhaustive]
pub struct Truncated {
    /// The kind the segment was taken for.
    pub kind: Kind,
    /// The segment's size in bytes.
    pub size: u64,
    /// The bytes its header needs ([`Kind::header_len`]).
    pub needed: usize,
}

/// Why [`segment`] could not decode a segment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// The segment could not be opened or read (invalid name, not found, permission
    /// denied, not a regular file, ...).
    #[error(transparent)]
    Shm(#[from] ShmError),
    /// Neither its name nor its bytes say it is a fastipc or peer object.
    #[error("shared-memory segment {name:?} ({size} bytes) is not a fastipc or peer object")]
    Foreign {
        /// The segment name.
        name: String,
        /// Its size in bytes.
        size: u64,
    },
    /// It is shorter than its kind's header.
    #[error("shared-memory segment {name:?}: {source}")]
    Truncated {
        /// The segment name.
        name: String,
        /// The kind, its size and what it needs.
        #[source]
        source: Truncated,
    },
}

/// Reads segment `name` of /dev/shm without attaching (read permission is enough; the
/// segment is copied, never mapped) and decodes it: its kind and its header.
///
/// ```
/// use fastipc::inspect::{self, Kind, Object};
/// use fastipc::queue::{Ring, RingSpec};
///
/// # let name = format!("fastipc-doc-inspect-{}", std::process::id());
/// let ring = Ring::create(&name, &RingSpec::new(16, 8))?;
/// ring.send_bytes(&[1u8; 8])?;
/// let (kind, object) = inspect::segment(&name)?;
/// assert_eq!(kind, Kind::Queue);
/// let Object::Queue(q) = object else { unreachable!() };
/// assert_eq!(q.inspection.header.capacity, 16);
/// assert_eq!(q.inspection.header.last_published_index(), Some(0));
/// assert!(q.inspection.validation.is_ok());
/// fastipc::queue::remove(&name)?;
/// assert!(matches!(inspect::segment(&name), Err(inspect::InspectError::Shm(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn segment(name: &str) -> Result<(Kind, Object), InspectError> {
    segment_in(Path::new(crate::sys::shm::SHM_DIR), name)
}

/// [`segment`] for a segment of `dir` (a copy of /dev/shm's files, in tests).
pub fn segment_in(dir: &Path, name: &str) -> Result<(Kind, Object), InspectError> {
    let file = file::SegmentCopy::open(dir, name)?;
    let head = file.read_at(0, HEAD_LEN)?;
    let kind = Kind::detect(name, &head).ok_or_else(|| InspectError::Foreign {
        name: name.to_owned(),
        size: file.size(),
    })?;
    let object = decode(kind, name, file.size(), &head, |offset, len| {
        file.read_at(offset, len).ok()
    })
    .map_err(|source| InspectError::Truncated {
        name: name.to_owned(),
        source,
    })?;
    Ok((kind, object))
}

/// A decoded segment, per kind.
#[derive(Debug)]
#[non_exhaustive]
pub enum Object {
    /// A SlickQueue.
    Queue(QueueState),
    /// A named mutex.
    Mutex(MutexState),
    /// A named semaphore.
    Semaphore(SemaphoreInfo),
    /// A named event.
    Event(EventInfo),
    /// A shared cell.
    SharedCell(CellState),
    /// A queue of the Python package.
    PyfastipcQueue(PyDataState),
    /// A history buffer of the Python package.
    PyfastipcHistoryBuffer(PyDataState),
}

/// A queue's header and what an attach would think of it.
#[derive(Debug)]
#[non_exhaustive]
pub struct QueueState {
    /// The header, its type trailer and the attach checks ([`Inspection::validation`]).
    pub inspection: Inspection,
    /// The message type's name from the trailer, when the trailer records the header's
    /// (non-zero) fingerprint.
    pub type_name: Option<String>,
    /// The queue's delivery mode ([`Mode::Lossy`] for a queue without an endpoint table,
    /// such as one a C++ or Python peer made).
    pub mode: Mode,
    /// Whether the queue was declared to have one producer at a time (header flags bit 2,
    /// [`QueueOptions::single_producer`](crate::queue::QueueOptions::single_producer)).
    pub single_producer: bool,
    /// The fastipc endpoint table: `None` when the header announces none (a peer's queue),
    /// `Some(Err(..))` when it announces one that is not there, else the registered
    /// endpoints.
    pub endpoints: Option<Result<Vec<EndpointInfo>, Truncated>>,
}

/// A mutex header, with its holder as far as it can be told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MutexState {
    /// The fields as read.
    pub info: MutexInfo,
    /// The holder's process id: the recorded `owner_pid`, or, when a Python peer's late
    /// store erased it, the pid of the fastipc identity of a held lock; `None` when none.
    pub owner_pid: Option<u32>,
    /// Whether that holder is alive (`None` when unlocked or no holder is recorded). A
    /// fastipc holder is judged by its identity (start time and pid namespace, so a
    /// reused id counts as dead), a Python holder by its process id.
    pub owner_alive: Option<bool>,
    /// Whether the holder is a fastipc process (its identity is recorded), which the next
    /// fastipc locker takes over from when it is dead; a dead Python holder's lock stays
    /// held until released by hand.
    pub fastipc_holder: bool,
}

impl MutexState {
    /// Judges the holder of a mutex header.
    pub fn of(info: MutexInfo) -> MutexState {
        let fastipc_holder = matches!(
            (info.owner_pid, info.owner_identity),
            (pid, Some(id)) if pid == 0 || pid == id.pid
        );
        let owner_pid = match (info.owner_pid, info.owner_identity) {
            (0, Some(id)) if info.is_locked() => Some(id.pid),
            (0, _) => None,
            (pid, _) => Some(pid),
        };
        let owner_alive = if !info.is_locked() {
            None
        } else {
            match (info.owner_pid, info.owner_identity) {
                (0, None) => None,
                (_, Some(id)) if fastipc_holder => Some(id.is_alive(info.owner_pid_namespace)),
                (pid, _) => Some(process::is_alive(pid)),
            }
        };
        MutexState {
            info,
            owner_pid,
            owner_alive,
            fastipc_holder,
        }
    }
}

/// A shared cell's header: its mutex and the value type it records.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CellState {
    /// The mutex that guards the value (bytes 0..64).
    pub mutex: MutexState,
    /// The header's fields.
    pub info: CellInfo,
    /// Where the value ends (its offset plus its size), in bytes.
    pub value_end: u64,
    /// Whether the segment is long enough to hold the value.
    pub holds_value: bool,
}

/// The header of a Python `NamedQueue` or `NamedHistoryBuffer` (fields the Python package
/// defines; fastipc itself does not use these objects).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PyDataState {
    /// The magic word ([`PY_QUEUE_MAGIC`] or [`PY_HISTORY_MAGIC`] when initialised).
    pub magic: u64,
    /// Bytes of metadata after the header.
    pub meta_size: u64,
    /// Number of slots.
    pub num_slots: u64,
    /// Payload bytes per slot.
    pub slot_size: u64,
    /// Queue: id of the next message to read; history buffer: `None`.
    pub head: Option<i64>,
    /// Queue: id of the next message to write; history buffer: id of the next slot to
    /// write.
    pub tail: i64,
    /// Queue mode (0 queue, 1 latest cache); history buffer: `None`.
    pub mode: Option<u64>,
    /// The writers' mutex (bytes 64..128), as read.
    pub writer: MutexInfo,
}

/// Decodes the header of segment `name` (of `file_size` bytes) as a `kind`, from `head`,
/// a copy of its first bytes (at least [`Kind::header_len`]; [`HEAD_LEN`] covers every
/// kind). `read_at(offset, len)` is asked for more of the segment only where a header
/// points further (a queue's type trailer); it may return fewer bytes, or `None`.
pub fn decode(
    kind: Kind,
    name: &str,
    file_size: u64,
    head: &[u8],
    read_at: impl FnMut(u64, usize) -> Option<Vec<u8>>,
) -> Result<Object, Truncated> {
    let needed = kind.header_len();
    let head = head.get(..needed).ok_or(Truncated {
        kind,
        size: file_size,
        needed,
    })?;
    Ok(match kind {
        Kind::Queue => Object::Queue(queue(name, file_size, head, read_at)),
        Kind::Mutex => Object::Mutex(MutexState::of(mutex_info(head))),
        Kind::Semaphore => Object::Semaphore(
            with_aligned(head, SemaphoreInfo::read)
                .expect("an 8-aligned copy of 64 bytes holds a semaphore header"),
        ),
        Kind::Event => Object::Event(
            with_aligned(head, EventInfo::read)
                .expect("an 8-aligned copy of 4 bytes holds an event"),
        ),
        Kind::SharedCell => Object::SharedCell(shared_cell(file_size, head)),
        Kind::PyfastipcQueue => Object::PyfastipcQueue(py_data(head, true)),
        Kind::PyfastipcHistoryBuffer => Object::PyfastipcHistoryBuffer(py_data(head, false)),
    })
}

/// Runs `f` on a private, 8-aligned copy of `bytes` (what the layouts' decoders read).
fn with_aligned<R>(bytes: &[u8], f: impl FnOnce(MemRef<'_>) -> R) -> R {
    let mut words = vec![0u64; bytes.len().div_ceil(8)];
    let buf: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
    buf[..bytes.len()].copy_from_slice(bytes);
    f(MemRef::from_mut(&mut buf[..bytes.len()]))
}

fn queue(
    name: &str,
    file_size: u64,
    head: &[u8],
    mut read_at: impl FnMut(u64, usize) -> Option<Vec<u8>>,
) -> QueueState {
    let snap = with_aligned(head, |mem| HeaderSnapshot::decode(&mem))
        .expect("an 8-aligned copy of 64 bytes holds a queue header");
    let inspection = Inspection::from_snapshot(name, snap, file_size, |offset| {
        let bytes = read_at(offset as u64, TRAILER_FIXED + MAX_TYPE_NAME)?;
        with_aligned(&bytes, |mem| TypeTrailer::read(&mem, 0))
    });
    let type_name = inspection
        .trailer
        .as_ref()
        .filter(|t| t.fingerprint == snap.fingerprint && snap.fingerprint != 0)
        .map(|t| t.name.clone());
    let has_endpoints = snap.flags & FLAG_ENDPOINTS != 0;
    let mode = if has_endpoints && snap.flags & FLAG_LOSSLESS != 0 {
        Mode::Lossless
    } else {
        Mode::Lossy
    };
    let single_producer = has_endpoints && snap.flags & FLAG_SINGLE_PRODUCER != 0;
    let endpoints = match &inspection.validation {
        Ok(g) if has_endpoints => Some(
            read_at(g.endpoints_offset() as u64, TABLE_LEN)
                .and_then(|bytes| decode_table(&bytes))
                .ok_or(Truncated {
                    kind: Kind::Queue,
                    size: file_size,
                    needed: g.len_with_endpoints(),
                }),
        ),
        _ => None,
    };
    QueueState {
        inspection,
        type_name,
        mode,
        single_producer,
        endpoints,
    }
}

fn mutex_info(head: &[u8]) -> MutexInfo {
    with_aligned(&head[..MUTEX_SIZE], MutexInfo::read)
        .expect("an 8-aligned copy of 64 bytes holds a mutex header")
}

fn shared_cell(file_size: u64, head: &[u8]) -> CellState {
    let info = with_aligned(head, CellInfo::read)
        .expect("an 8-aligned copy of 128 bytes holds a cell header");
    let value_end = u64::from(info.value_offset) + u64::from(info.value_type.size);
    CellState {
        mutex: MutexState::of(info.mutex),
        holds_value: file_size >= value_end,
        value_end,
        info,
    }
}

fn py_data(head: &[u8], is_queue: bool) -> PyDataState {
    let field = |off: usize| {
        head.get(off..off + 8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_le_bytes)
    };
    PyDataState {
        magic: field(0),
        meta_size: field(8),
        num_slots: field(16),
        slot_size: field(24),
        head: is_queue.then(|| field(32) as i64),
        tail: field(if is_queue { 40 } else { 32 }) as i64,
        mode: is_queue.then(|| field(48)),
        writer: mutex_info(&head[64..128]),
    }
}

#[cfg(test)]
mod tests;
