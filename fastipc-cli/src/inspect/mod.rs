//! `fastipc inspect NAME`: a segment's header decoded for its kind, with the processes
//! the attachment registry lists for it, as text or JSON.
//!
//! The bytes come from a read-only copy ([`SegmentFile`]); the decoding is the runtime's
//! inspection API ([`fastipc::inspect`]), so the tool and the library agree on every
//! field. Whatever the bytes hold, decoding never fails: what is wrong with a header is
//! listed in [`Report::problems`]. Only a segment that is not one of ours, or too short for
//! the kind its name announces, is an error.

use std::fmt::{self, Write as _};
use std::path::Path;
use std::time::SystemTime;

use fastipc::inspect::Mode;
use fastipc::inspect::{
    self as rt, CELL_MAGIC, CELL_VERSION, CellState, EventInfo, MUTEX_CONTENDED, MUTEX_LOCKED,
    MUTEX_MAGIC, MUTEX_UNLOCKED, MutexState, Object, PyDataState, QueueState, SEMAPHORE_MAGIC,
    SemaphoreInfo, init_state,
};
use fastipc::named::registry::Registry;
use serde::Serialize;

use crate::error::CliError;
use crate::segment::{Kind, SegmentFile, detect};

pub use fastipc::inspect::{HEAD_LEN, PY_HEADER_SIZE, PY_HISTORY_MAGIC, PY_QUEUE_MAGIC};

/// A process the attachment registry lists for a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Attached {
    /// Its process id.
    pub pid: u32,
    /// Whether it is alive (a zombie or a reused id is not).
    pub alive: bool,
}

/// Everything `inspect` knows about a segment.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The segment name.
    pub name: String,
    /// Its path.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its permission bits, in octal (`"0600"`).
    pub mode: String,
    /// Its owner's user id.
    pub uid: u32,
    /// The decoded header; serialised as `"kind": "..."` and the kind's fields.
    #[serde(flatten)]
    pub details: Details,
    /// Processes registered as attached, from the registry.
    pub attached: Vec<Attached>,
    /// What is wrong or notable (empty: a healthy object).
    pub problems: Vec<String>,
}

/// The decoded header of each kind.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Details {
    /// A SlickQueue.
    Queue(QueueDetails),
    /// A named mutex.
    Mutex(MutexDetails),
    /// A named semaphore.
    Semaphore(SemaphoreDetails),
    /// A named event.
    Event(EventDetails),
    /// A shared cell.
    SharedCell(CellDetails),
    /// A queue of the Python package.
    PyfastipcQueue(PyDataDetails),
    /// A history buffer of the Python package.
    PyfastipcHistoryBuffer(PyDataDetails),
}

/// One registered endpoint of a queue.
#[derive(Clone, Debug, Serialize)]
pub struct Endpoint {
    /// Its entry in the table.
    pub slot: usize,
    /// `"producer"`, `"consumer"` or `"shared-consumer"`.
    pub role: &'static str,
    /// Its process.
    pub pid: u32,
    /// Whether that process may still run (`false` only when certainly dead).
    pub alive: bool,
    /// Consumers: the published position; producers: `null`.
    pub position: Option<u64>,
    /// Consumers: how far the published position is behind the head.
    pub lag: Option<u64>,
    /// Producers: the claim in flight (`[start, n]`), `null` when none recorded.
    pub intent: Option<(u64, u64)>,
}

/// A SlickQueue header (LAYOUT.md §1 and fastipc's additions).
#[derive(Clone, Debug, Serialize)]
pub struct QueueDetails {
    /// Capacity in elements.
    pub capacity: u32,
    /// Bytes per element.
    pub element_size: u32,
    /// Items per control slot (0 reads as 1).
    pub items_per_slot: u32,
    /// The marker word at offset 24, in hex.
    pub magic: String,
    /// The marker as text (`"SLQ1"`).
    pub magic_text: String,
    /// Its feature bits.
    pub features: u32,
    /// The creation handshake's state.
    pub init_state: u32,
    /// Its meaning.
    pub init_state_name: &'static str,
    /// The raw `reserved` word.
    pub reserved: u64,
    /// The next free absolute index.
    pub next_index: u64,
    /// The size of the last reservation (16 bits).
    pub last_reserve_count: u16,
    /// The highest published index, `null` when nothing was published.
    pub last_published: Option<u64>,
    /// `"lossy"` or `"lossless"` (header flags bit 1; peers' queues are lossy).
    pub queue_mode: &'static str,
    /// Whether the queue was declared to have one producer at a time (header flags bit 2).
    pub single_producer: bool,
    /// Whether the queue has a fastipc endpoint table (header flags bit 0).
    pub has_endpoints: bool,
    /// The registered endpoints (empty without a table).
    pub endpoints: Vec<Endpoint>,
    /// The message type's layout fingerprint (header bytes 32..40), in hex; 0 when the
    /// creator recorded none (a C++/Python peer, or an untyped fastipc ring).
    pub fingerprint: String,
    /// The message type's name from the trailer, when recorded.
    pub type_name: Option<String>,
    /// fastipc's wake counter (bytes 56..60).
    pub wake_seq: u32,
    /// fastipc consumers registered as sleeping (bytes 60..64).
    pub sleepers: u32,
    /// Whether the header passes every check of an attach.
    pub valid: bool,
}

impl QueueDetails {
    /// The mode in words: "lossy" or "lossless", and ", single producer" when declared.
    pub fn mode_words(&self) -> String {
        if self.single_producer {
            format!("{}, single producer", self.queue_mode)
        } else {
            self.queue_mode.to_owned()
        }
    }
}

/// A mutex header.
#[derive(Clone, Debug, Serialize)]
pub struct MutexDetails {
    /// The magic word, in hex (`0x4d555458`, or 0 in a mutex the Python package made).
    pub magic: String,
    /// The state word.
    pub state: u32,
    /// Its meaning.
    pub state_name: &'static str,
    /// Whether it is held.
    pub locked: bool,
    /// The holder's process id, `null` when none is recorded.
    pub owner_pid: Option<u32>,
    /// Whether the holder is alive, `null` when there is no known holder.
    pub owner_alive: Option<bool>,
    /// The holder's fastipc identity (pid and low bits of its start time), if any.
    pub owner_identity: Option<Identity>,
    /// `CLOCK_REALTIME` ns of an acquisition (informative), 0 when never.
    pub last_acquired_ns: u64,
}

/// A fastipc mutex holder's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// Process id.
    pub pid: u32,
    /// Low 32 bits of its start time (clock ticks after boot).
    pub start_time_low: u32,
}

/// A semaphore header.
#[derive(Clone, Debug, Serialize)]
pub struct SemaphoreDetails {
    /// The magic word, in hex (`0x53454d41`).
    pub magic: String,
    /// Tokens available.
    pub count: u32,
    /// The last process that took a token, `null` when none is recorded.
    pub last_pid: Option<u32>,
    /// fastipc waiters registered as sleeping.
    pub sleepers: u32,
    /// `CLOCK_REALTIME` ns of a wait that had to wait (informative), 0 when never.
    pub last_acquired_ns: u64,
}

/// An event word.
#[derive(Clone, Debug, Serialize)]
pub struct EventDetails {
    /// The raw word.
    pub value: u32,
    /// Whether the event is set.
    pub set: bool,
}

/// A shared cell's header: its mutex and the value type it records.
#[derive(Clone, Debug, Serialize)]
pub struct CellDetails {
    /// The mutex that guards the value (bytes 0..64).
    pub mutex: MutexDetails,
    /// The cell magic at offset 64, in hex (`0x4c4c4543`, "CELL").
    pub magic: String,
    /// The layout version.
    pub version: u32,
    /// The value's offset in the segment.
    pub value_offset: u32,
    /// The value type's name as recorded (possibly cut short).
    pub type_name: String,
    /// The value type's layout fingerprint, in hex.
    pub fingerprint: String,
    /// `size_of` the value type.
    pub value_size: u32,
    /// `align_of` the value type.
    pub value_align: u32,
    /// Whether the header is one fastipc writes and the segment holds the value.
    pub valid: bool,
}

/// The header of a Python `NamedQueue` or `NamedHistoryBuffer` (fields the Python
/// package defines; fastipc itself does not use these objects).
#[derive(Clone, Debug, Serialize)]
pub struct PyDataDetails {
    /// The magic word, in hex.
    pub magic: String,
    /// Bytes of metadata after the header.
    pub meta_size: u64,
    /// Number of slots.
    pub num_slots: u64,
    /// Payload bytes per slot.
    pub slot_size: u64,
    /// Queue: id of the next message to read; history buffer: `null`.
    pub head: Option<i64>,
    /// Queue: id of the next message to write; history buffer: id of the next slot to
    /// write.
    pub tail: i64,
    /// Queue mode (0 queue, 1 latest cache); history buffer: `null`.
    pub mode: Option<u64>,
    /// Whether the writers' mutex (bytes 64..128) is held.
    pub writer_locked: bool,
    /// Its holder's process id, `null` when none.
    pub writer_owner_pid: Option<u32>,
}

/// Inspects segment `name` in `dir` (normally `/dev/shm`), listing attached processes
/// from `registry`.
pub fn inspect(dir: &Path, name: &str, registry: &Registry) -> Result<Report, CliError> {
    let seg = SegmentFile::open(dir, name)?;
    let head = seg.read_at(0, HEAD_LEN)?;
    let kind = detect(name, &head).ok_or_else(|| CliError::Foreign {
        path: seg.path().to_owned(),
        size: seg.size(),
    })?;
    decode(&seg, kind, &head, registry)
}

/// Decodes the header of `seg`, of which `head` is the first [`HEAD_LEN`] bytes (or the
/// whole file when shorter).
pub fn decode(
    seg: &SegmentFile,
    kind: Kind,
    head: &[u8],
    registry: &Registry,
) -> Result<Report, CliError> {
    let object = rt::decode(
        kind.to_inspect(),
        seg.name(),
        seg.size(),
        head,
        |offset, len| seg.read_at(offset, len).ok(),
    )
    .map_err(|e| CliError::Truncated {
        path: seg.path().to_owned(),
        kind: kind.as_str(),
        size: seg.size(),
        needed: e.needed,
    })?;
    let mut problems = Vec::new();
    let details = match object {
        Object::Queue(q) => Details::Queue(queue(&q, &mut problems)),
        Object::Mutex(m) => Details::Mutex(mutex(&m, &mut problems)),
        Object::Semaphore(s) => Details::Semaphore(semaphore(&s, &mut problems)),
        Object::Event(e) => Details::Event(event(&e, &mut problems)),
        Object::SharedCell(c) => Details::SharedCell(shared_cell(seg.size(), &c, &mut problems)),
        Object::PyfastipcQueue(p) => Details::PyfastipcQueue(py_data(&p, true, &mut problems)),
        Object::PyfastipcHistoryBuffer(p) => {
            Details::PyfastipcHistoryBuffer(py_data(&p, false, &mut problems))
        }
        // A kind this build of the tool does not know (`Kind::of` refuses it first).
        _ => {
            return Err(CliError::Foreign {
                path: seg.path().to_owned(),
                size: seg.size(),
            });
        }
    };
    let attached = match registry.entries(seg.name()) {
        Ok(entries) => {
            for s in &entries.skipped {
                problems.push(format!(
                    "registry entry {} is no registration: {}",
                    s.path.display(),
                    s.reason
                ));
            }
            entries
                .attached
                .into_iter()
                .map(|a| Attached {
                    pid: a.pid,
                    alive: a.alive,
                })
                .collect()
        }
        Err(e) => {
            problems.push(format!("cannot read the attachment registry: {e}"));
            Vec::new()
        }
    };
    Ok(Report {
        name: seg.name().to_owned(),
        path: seg.path().display().to_string(),
        size: seg.size(),
        mode: format!("{:04o}", seg.mode()),
        uid: seg.uid(),
        details,
        attached,
        problems,
    })
}

mod details;
mod text;

pub use details::marker_text;
use details::*;

#[cfg(test)]
mod tests;
