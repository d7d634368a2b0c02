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

fn hex32(v: u32) -> String {
    format!("{v:#010x}")
}

fn hex64(v: u64) -> String {
    format!("{v:#018x}")
}

/// A u32 marker as the four characters it spells in memory order read backwards
/// (`0x534C5131` is `"SLQ1"`), non-printable bytes as `.`.
pub fn marker_text(v: u32) -> String {
    v.to_be_bytes()
        .iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
        .collect()
}

fn init_state_name(s: u32) -> &'static str {
    match s {
        init_state::FRESH => "fresh (nobody initialised it)",
        init_state::LEGACY => "legacy (made before the handshake existed)",
        init_state::INITIALISING => "initialising",
        init_state::READY => "ready",
        _ => "invalid",
    }
}

fn queue(q: &QueueState, problems: &mut Vec<String>) -> QueueDetails {
    let inspection = &q.inspection;
    let snap = &inspection.header;
    if let Err(e) = &inspection.validation {
        problems.push(e.to_string());
    }
    let has_endpoints = q.endpoints.is_some();
    let endpoints = match &q.endpoints {
        Some(Ok(list)) => list.clone(),
        Some(Err(_)) => {
            problems.push("the header announces an endpoint table, but none is there".into());
            Vec::new()
        }
        None => Vec::new(),
    };
    let endpoints = endpoints
        .into_iter()
        .map(|e| {
            let consumer = e.role.is_consumer();
            Endpoint {
                slot: e.slot,
                role: e.role.as_str(),
                pid: e.pid,
                alive: e.alive,
                position: consumer.then_some(e.position),
                lag: consumer.then(|| snap.next_index().saturating_sub(e.position)),
                intent: e.intent,
            }
        })
        .collect();
    QueueDetails {
        capacity: snap.capacity,
        element_size: snap.element_size,
        items_per_slot: snap.effective_items_per_slot(),
        magic: hex32(snap.magic),
        magic_text: marker_text(snap.magic),
        features: snap.features(),
        init_state: snap.init_state,
        init_state_name: init_state_name(snap.init_state),
        reserved: snap.reserved,
        next_index: snap.next_index(),
        last_reserve_count: snap.last_reserve_count(),
        last_published: snap.last_published_index(),
        queue_mode: match q.mode {
            Mode::Lossless => "lossless",
            _ => "lossy",
        },
        has_endpoints,
        endpoints,
        fingerprint: hex64(snap.fingerprint),
        type_name: q.type_name.clone(),
        wake_seq: snap.wake_seq,
        sleepers: snap.sleepers,
        valid: inspection.validation.is_ok(),
    }
}

fn mutex_state_name(state: u32) -> &'static str {
    match state {
        MUTEX_UNLOCKED => "unlocked",
        MUTEX_LOCKED => "locked",
        MUTEX_CONTENDED => "locked, waiters may sleep",
        _ => "invalid",
    }
}

fn mutex(state: &MutexState, problems: &mut Vec<String>) -> MutexDetails {
    let info = &state.info;
    if !info.has_valid_magic() {
        problems.push(format!(
            "magic {:#010x} is neither {MUTEX_MAGIC:#010x} (\"MUTX\") nor 0: the segment holds something else",
            info.magic
        ));
    }
    if info.state > MUTEX_CONTENDED {
        problems.push(format!(
            "state {} is not a mutex state (0 unlocked, 1 locked, 2 locked with waiters)",
            info.state
        ));
    }
    let (alive, owner_pid) = (state.owner_alive, state.owner_pid);
    if alive == Some(false) {
        let what_next = if state.fastipc_holder {
            "the next fastipc locker takes the lock over (OwnerDied)"
        } else {
            "only its process id is recorded (a Python holder), so no locker takes the lock \
             over: it stays held until released by hand"
        };
        problems.push(format!(
            "held by process {}, which is dead: {what_next}",
            owner_pid.unwrap_or(0)
        ));
    }
    MutexDetails {
        magic: hex32(info.magic),
        state: info.state,
        state_name: mutex_state_name(info.state),
        locked: info.is_locked(),
        owner_pid,
        owner_alive: alive,
        owner_identity: info.owner_identity.map(|id| Identity {
            pid: id.pid,
            start_time_low: id.start_time_low,
        }),
        last_acquired_ns: info.last_acquired_ns,
    }
}

fn shared_cell(size: u64, cell: &CellState, problems: &mut Vec<String>) -> CellDetails {
    let mutex = mutex(&cell.mutex, problems);
    let info = &cell.info;
    if info.magic != CELL_MAGIC {
        problems.push(format!(
            "cell magic {:#010x} at offset 64 is not {CELL_MAGIC:#010x} (\"CELL\"): not a shared cell",
            info.magic
        ));
    } else if info.version != CELL_VERSION {
        problems.push(format!(
            "layout version {} (this build reads {CELL_VERSION})",
            info.version
        ));
    }
    let (end, holds_value) = (cell.value_end, cell.holds_value);
    if info.magic == CELL_MAGIC && !holds_value {
        problems.push(format!(
            "the segment is {size} bytes but its value ends at byte {end}"
        ));
    }
    if info.magic == CELL_MAGIC && info.version == CELL_VERSION && !info.is_valid() {
        problems.push(format!(
            "inconsistent header: value offset {}, alignment {}, fingerprint {:#018x}",
            info.value_offset, info.value_type.align, info.value_type.fingerprint
        ));
    }
    CellDetails {
        mutex,
        magic: hex32(info.magic),
        version: info.version,
        value_offset: info.value_offset,
        type_name: info.value_type.name.clone(),
        fingerprint: hex64(info.value_type.fingerprint),
        value_size: info.value_type.size,
        value_align: info.value_type.align,
        valid: info.is_valid() && holds_value,
    }
}

fn semaphore(info: &SemaphoreInfo, problems: &mut Vec<String>) -> SemaphoreDetails {
    if !info.has_valid_magic() {
        problems.push(format!(
            "magic {:#010x} is not {SEMAPHORE_MAGIC:#010x} (\"SEMA\"): not initialised, or something else",
            info.magic
        ));
    }
    SemaphoreDetails {
        magic: hex32(info.magic),
        count: info.count,
        last_pid: (info.last_pid != 0).then_some(info.last_pid),
        sleepers: info.sleepers,
        last_acquired_ns: info.last_acquired_ns,
    }
}

fn event(info: &EventInfo, problems: &mut Vec<String>) -> EventDetails {
    if info.value > 1 {
        problems.push(format!(
            "value {} (fastipc and Python store 0 or 1; any non-zero value reads as set)",
            info.value
        ));
    }
    EventDetails {
        value: info.value,
        set: info.is_set(),
    }
}

fn py_data(p: &PyDataState, is_queue: bool, problems: &mut Vec<String>) -> PyDataDetails {
    let magic = p.magic;
    let expected = if is_queue {
        PY_QUEUE_MAGIC
    } else {
        PY_HISTORY_MAGIC
    };
    if magic != expected {
        problems.push(format!(
            "magic {magic:#x} is not {expected:#x} (\"{}\"): not initialised, or something else",
            if is_queue { "PFNQ" } else { "PFHB" }
        ));
    }
    let writer = &p.writer;
    PyDataDetails {
        magic: format!("{magic:#x}"),
        meta_size: p.meta_size,
        num_slots: p.num_slots,
        slot_size: p.slot_size,
        head: p.head,
        tail: p.tail,
        mode: p.mode,
        writer_locked: writer.is_locked(),
        writer_owner_pid: (writer.owner_pid != 0).then_some(writer.owner_pid),
    }
}

fn mutex_summary(m: &MutexDetails) -> String {
    match (m.locked, m.owner_pid, m.owner_alive) {
        (false, _, _) => "unlocked".into(),
        (true, Some(pid), Some(alive)) => {
            format!("locked by {pid} ({})", if alive { "alive" } else { "dead" })
        }
        (true, _, _) => "locked".into(),
    }
}

fn mutex_lines(m: &MutexDetails, l: &mut Vec<(&'static str, String)>) {
    l.push(("magic", m.magic.clone()));
    l.push(("state", format!("{} ({})", m.state, m.state_name)));
    l.push((
        "owner",
        match (m.owner_pid, m.owner_alive) {
            (Some(pid), Some(alive)) => {
                format!("{pid} ({})", if alive { "alive" } else { "dead" })
            }
            (Some(pid), None) => pid.to_string(),
            (None, _) => "none".into(),
        },
    ));
    if let Some(id) = m.owner_identity {
        l.push((
            "owner identity",
            format!(
                "pid {}, start time (low bits) {}",
                id.pid, id.start_time_low
            ),
        ));
    }
    l.push(("last acquired", ago(m.last_acquired_ns)));
}

fn pids(list: &[Attached]) -> String {
    if list.is_empty() {
        return "none".into();
    }
    list.iter()
        .map(|a| format!("{} ({})", a.pid, if a.alive { "alive" } else { "dead" }))
        .collect::<Vec<_>>()
        .join(", ")
}

fn opt<T: fmt::Display>(v: Option<T>, none: &str) -> String {
    v.map_or_else(|| none.to_owned(), |v| v.to_string())
}

/// "12.5 s ago" for a `CLOCK_REALTIME` timestamp in ns (0: "never").
fn ago(ns: u64) -> String {
    if ns == 0 {
        return "never".into();
    }
    // `CLOCK_REALTIME`, the clock the primitives record.
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    if ns > now {
        return format!("{ns} ns (in the future)");
    }
    format!("{:.3} s ago", (now - ns) as f64 / 1e9)
}

impl Report {
    /// The kind of object.
    pub fn kind(&self) -> Kind {
        match &self.details {
            Details::Queue(_) => Kind::Queue,
            Details::Mutex(_) => Kind::Mutex,
            Details::Semaphore(_) => Kind::Semaphore,
            Details::Event(_) => Kind::Event,
            Details::SharedCell(_) => Kind::SharedCell,
            Details::PyfastipcQueue(_) => Kind::PyfastipcQueue,
            Details::PyfastipcHistoryBuffer(_) => Kind::PyfastipcHistoryBuffer,
        }
    }

    /// A few words on the object's state, for `ls`.
    pub fn summary(&self) -> String {
        let mut s = match &self.details {
            Details::Queue(q) => {
                let mut s = format!(
                    "{} x {} B, {}, next index {}",
                    q.capacity, q.element_size, q.queue_mode, q.next_index
                );
                if let Some(t) = &q.type_name {
                    let _ = write!(s, ", type {t}");
                }
                s
            }
            Details::Mutex(m) => mutex_summary(m),
            Details::SharedCell(c) => format!(
                "{} ({} B), {}",
                c.type_name,
                c.value_size,
                mutex_summary(&c.mutex)
            ),
            Details::Semaphore(s) => format!("count {}", s.count),
            Details::Event(e) => (if e.set { "set" } else { "clear" }).into(),
            Details::PyfastipcQueue(p) | Details::PyfastipcHistoryBuffer(p) => {
                format!("{} slots x {} B", p.num_slots, p.slot_size)
            }
        };
        if !self.problems.is_empty() {
            let _ = write!(s, " [{} problem(s)]", self.problems.len());
        }
        s
    }

    fn lines(&self) -> Vec<(&'static str, String)> {
        let mut l = vec![
            ("segment", self.name.clone()),
            (
                "file",
                format!(
                    "{} ({} bytes, mode {}, owner uid {})",
                    self.path, self.size, self.mode, self.uid
                ),
            ),
            ("kind", self.kind().as_str().to_owned()),
        ];
        match &self.details {
            Details::Queue(q) => {
                l.push((
                    "marker",
                    format!(
                        "{} \"{}\" (features {:#x})",
                        q.magic, q.magic_text, q.features
                    ),
                ));
                l.push((
                    "capacity",
                    format!(
                        "{} elements of {} bytes, {} per slot",
                        q.capacity, q.element_size, q.items_per_slot
                    ),
                ));
                l.push((
                    "init state",
                    format!("{} ({})", q.init_state, q.init_state_name),
                ));
                l.push((
                    "next index",
                    format!(
                        "{} (last reservation: {} elements; reserved word {:#x})",
                        q.next_index, q.last_reserve_count, q.reserved
                    ),
                ));
                l.push(("last published", opt(q.last_published, "none")));
                l.push((
                    "mode",
                    if q.has_endpoints {
                        q.queue_mode.to_owned()
                    } else {
                        "lossy (no endpoint table: made by a C++/Python peer)".into()
                    },
                ));
                if q.has_endpoints && q.endpoints.is_empty() {
                    l.push(("endpoints", "none registered".into()));
                }
                for e in &q.endpoints {
                    let alive = if e.alive { "alive" } else { "dead" };
                    let what = match (e.position, e.lag) {
                        (Some(p), Some(lag)) => format!("position {p}, lag {lag}"),
                        _ => match e.intent {
                            Some((start, n)) => format!("last claim {start} (+{n})"),
                            None => "no claim yet".into(),
                        },
                    };
                    l.push((
                        "endpoint",
                        format!("#{} {} pid {} ({alive}), {what}", e.slot, e.role, e.pid),
                    ));
                }
                l.push((
                    "message type",
                    match &q.type_name {
                        Some(t) => format!("{t} (fingerprint {})", q.fingerprint),
                        None if q.fingerprint != hex64(0) => {
                            format!("unnamed (fingerprint {})", q.fingerprint)
                        }
                        None => {
                            "not recorded (made by a C++/Python peer or an untyped ring)".into()
                        }
                    },
                ));
                l.push((
                    "wake word",
                    format!("seq {}, sleepers {}", q.wake_seq, q.sleepers),
                ));
                l.push(("valid", if q.valid { "yes" } else { "no" }.into()));
            }
            Details::Mutex(m) => mutex_lines(m, &mut l),
            Details::SharedCell(c) => {
                l.push((
                    "value type",
                    format!(
                        "{} ({} bytes, align {}, fingerprint {})",
                        c.type_name, c.value_size, c.value_align, c.fingerprint
                    ),
                ));
                l.push((
                    "cell header",
                    format!(
                        "magic {}, version {}, value at offset {}",
                        c.magic, c.version, c.value_offset
                    ),
                ));
                l.push(("valid", if c.valid { "yes" } else { "no" }.into()));
                mutex_lines(&c.mutex, &mut l);
            }
            Details::Semaphore(s) => {
                l.push(("magic", s.magic.clone()));
                l.push(("count", s.count.to_string()));
                l.push(("last taker", opt(s.last_pid, "none")));
                l.push(("sleepers", s.sleepers.to_string()));
                l.push(("last waited", ago(s.last_acquired_ns)));
            }
            Details::Event(e) => {
                l.push((
                    "state",
                    format!(
                        "{} (value {})",
                        if e.set { "set" } else { "clear" },
                        e.value
                    ),
                ));
            }
            Details::PyfastipcQueue(p) | Details::PyfastipcHistoryBuffer(p) => {
                l.push(("magic", p.magic.clone()));
                l.push((
                    "slots",
                    format!(
                        "{} of {} bytes, {} bytes of metadata",
                        p.num_slots, p.slot_size, p.meta_size
                    ),
                ));
                if let Some(h) = p.head {
                    l.push(("head", h.to_string()));
                }
                l.push(("tail", p.tail.to_string()));
                if let Some(m) = p.mode {
                    l.push(("mode", m.to_string()));
                }
                l.push((
                    "writers' mutex",
                    match p.writer_owner_pid {
                        Some(pid) if p.writer_locked => format!("locked by {pid}"),
                        _ if p.writer_locked => "locked".into(),
                        _ => "unlocked".into(),
                    },
                ));
            }
        }
        l.push(("attached", pids(&self.attached)));
        if self.problems.is_empty() {
            l.push(("problems", "none".into()));
        }
        for p in &self.problems {
            l.push(("problem", p.clone()));
        }
        l
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines = self.lines();
        let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in lines {
            writeln!(f, "{k:<width$}  {v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use fastipc::MemRef;
    use fastipc::queue::{Ring, RingSpec};
    use fastipc::sync::{Event, Mutex, Semaphore};

    fn registry(dir: &TempDir) -> Registry {
        Registry::at(dir.path().join("registry"))
    }

    /// Writes `bytes` as segment `name` of `dir` and inspects it.
    fn inspect_bytes(dir: &TempDir, name: &str, bytes: &[u8]) -> Result<Report, CliError> {
        std::fs::write(dir.path().join(name), bytes).unwrap();
        inspect(dir.path(), name, &registry(dir))
    }

    fn queue_bytes(capacity: usize, element_size: usize) -> Vec<u8> {
        let ring = Ring::local(&RingSpec::new(capacity, element_size)).unwrap();
        ring.send_bytes(&vec![7u8; element_size * 2]).unwrap();
        let h = ring.header();
        let mut bytes = vec![0u8; ring.geometry().len];
        bytes[0..8].copy_from_slice(&h.reserved.to_le_bytes());
        bytes[8..12].copy_from_slice(&h.capacity.to_le_bytes());
        bytes[12..16].copy_from_slice(&h.element_size.to_le_bytes());
        bytes[16..24].copy_from_slice(&h.last_published.to_le_bytes());
        bytes[24..28].copy_from_slice(&h.magic.to_le_bytes());
        bytes[28..32].copy_from_slice(&h.items_per_slot.to_le_bytes());
        bytes[48..52].copy_from_slice(&h.init_state.to_le_bytes());
        bytes
    }

    #[test]
    fn a_queue_header_is_decoded_and_checked() {
        let dir = TempDir::new("insp-queue");
        let bytes = queue_bytes(16, 24);
        let r = inspect_bytes(&dir, "q", &bytes).unwrap();
        let Details::Queue(q) = &r.details else {
            panic!("{r:?}")
        };
        assert_eq!((q.capacity, q.element_size, q.items_per_slot), (16, 24, 1));
        assert_eq!((q.next_index, q.last_reserve_count), (2, 2));
        assert_eq!(q.last_published, Some(0));
        assert_eq!(q.magic_text, "SLQ1");
        assert_eq!(q.init_state_name, "ready");
        assert!(q.valid && r.problems.is_empty(), "{r}");
        assert_eq!(r.summary(), "16 x 24 B, lossy, next index 2");
        // The same header in a file cut short: decoded, with the attach error listed.
        let r = inspect_bytes(&dir, "short", &bytes[..200]).unwrap();
        let Details::Queue(q) = &r.details else {
            panic!()
        };
        assert!(!q.valid);
        assert!(r.problems[0].contains("200 bytes"), "{:?}", r.problems);
        // Shorter than a header: no marker to see, so not ours.
        assert!(matches!(
            inspect_bytes(&dir, "tiny", &bytes[..40]),
            Err(CliError::Foreign { size: 40, .. })
        ));
    }

    #[test]
    fn sync_headers_are_decoded() {
        let dir = TempDir::new("insp-sync");
        let mut buf = [0u64; 8];
        let mem = MemRef::from_mut(bytemuck::cast_slice_mut(&mut buf));
        let m = Mutex::init(mem).unwrap();
        // Keep it locked in the buffer: the copy below shows a held mutex.
        std::mem::forget(m.lock().unwrap());
        let bytes: Vec<u8> = bytemuck::cast_slice(&buf).to_vec();
        let r = inspect_bytes(&dir, "__pyfastipc_mutex_m", &bytes).unwrap();
        let Details::Mutex(d) = &r.details else {
            panic!()
        };
        assert!(d.locked);
        assert_eq!(d.owner_pid, Some(std::process::id()));
        assert_eq!(d.owner_alive, Some(true));
        assert_eq!(d.magic, "0x4d555458");
        assert!(r.problems.is_empty(), "{:?}", r.problems);

        let mut buf = [0u64; 8];
        let mem = MemRef::from_mut(bytemuck::cast_slice_mut(&mut buf));
        Semaphore::init(mem, 5).unwrap();
        let bytes: Vec<u8> = bytemuck::cast_slice(&buf).to_vec();
        let r = inspect_bytes(&dir, "__pyfastipc_sema_s", &bytes).unwrap();
        assert!(matches!(&r.details, Details::Semaphore(s) if s.count == 5));
        assert_eq!(r.summary(), "count 5");

        let mut word = [0u32; 1];
        let mem = MemRef::from_mut(bytemuck::cast_slice_mut(&mut word));
        Event::init(mem).unwrap().set();
        let r = inspect_bytes(&dir, "__pyfastipc_event_e", bytemuck::cast_slice(&word)).unwrap();
        assert!(matches!(&r.details, Details::Event(e) if e.set && e.value == 1));
    }

    #[test]
    fn garbage_and_truncation_are_reported_never_a_panic() {
        let dir = TempDir::new("insp-garbage");
        // Garbage under every prefix, at every length up to a full header.
        let mut noise = Vec::new();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            noise.push(x as u8);
        }
        for prefix in crate::segment::PREFIXES {
            for len in [0, 1, 3, 4, 63, 64, 127, 128, 200] {
                let name = format!("{prefix}g{len}");
                match inspect_bytes(&dir, &name, &noise[..len]) {
                    Ok(r) => {
                        assert!(!r.problems.is_empty() || r.kind() == Kind::Event, "{r}");
                        let _ = r.to_string();
                        let _ = serde_json::to_string(&r).unwrap();
                    }
                    Err(CliError::Truncated { size, needed, .. }) => {
                        assert_eq!(size, len as u64);
                        assert!(len < needed);
                    }
                    Err(e) => panic!("{name}: {e}"),
                }
            }
        }
        // A queue marker over garbage: decoded, reported invalid.
        let mut q = noise[..200].to_vec();
        q[24..28].copy_from_slice(b"1QLS");
        q[48..52].copy_from_slice(&3u32.to_le_bytes());
        let r = inspect_bytes(&dir, "garbage-queue", &q).unwrap();
        assert!(matches!(&r.details, Details::Queue(d) if !d.valid));
        assert!(!r.problems.is_empty());
        // No prefix, no marker.
        assert!(matches!(
            inspect_bytes(&dir, "plain", &noise),
            Err(CliError::Foreign { .. })
        ));
    }

    #[test]
    fn a_shared_cell_header_is_decoded() {
        let dir = TempDir::new("insp-cell");
        let mut buf = [0u64; 18];
        let mem = MemRef::from_mut(bytemuck::cast_slice_mut(&mut buf));
        // SAFETY: the test's own buffer; no cell uses it.
        unsafe { fastipc::named::cell::layout::write_header::<[u32; 4]>(mem) }.unwrap();
        let bytes: Vec<u8> = bytemuck::cast_slice(&buf).to_vec();
        let r = inspect_bytes(&dir, "__fastipc_cell_c", &bytes[..144]).unwrap();
        let Details::SharedCell(c) = &r.details else {
            panic!("{r:?}")
        };
        assert!(c.valid && r.problems.is_empty(), "{r}");
        assert_eq!((c.value_size, c.value_align, c.value_offset), (16, 4, 128));
        assert!(!c.mutex.locked);
        assert_eq!(r.summary(), format!("{} (16 B), unlocked", c.type_name));
        // Cut before the end of the value.
        let r = inspect_bytes(&dir, "__fastipc_cell_short", &bytes[..130]).unwrap();
        assert!(r.problems[0].contains("value ends at byte 144"), "{r}");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["kind"], "shared-cell");
        assert_eq!(json["valid"], false);
        assert_eq!(json["mutex"]["state_name"], "unlocked");
    }

    #[test]
    fn python_data_objects_are_recognised() {
        let dir = TempDir::new("insp-py");
        let mut h = vec![0u8; 128];
        h[0..8].copy_from_slice(&PY_QUEUE_MAGIC.to_le_bytes());
        h[16..24].copy_from_slice(&16u64.to_le_bytes());
        h[24..32].copy_from_slice(&256u64.to_le_bytes());
        h[40..48].copy_from_slice(&5i64.to_le_bytes());
        let r = inspect_bytes(&dir, "__pyfastipc_queue_pq", &h).unwrap();
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.summary(), "16 slots x 256 B");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["kind"], "pyfastipc-queue");
        assert_eq!(json["tail"], 5);
        let r = inspect_bytes(&dir, "__pyfastipc_history_buffer_h", &h).unwrap();
        assert_eq!(r.problems.len(), 1, "wrong magic for a history buffer");
    }

    #[test]
    fn json_is_flat_with_a_kind_tag() {
        let dir = TempDir::new("insp-json");
        let r = inspect_bytes(&dir, "q", &queue_bytes(8, 8)).unwrap();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["kind"], "queue");
        assert_eq!(v["name"], "q");
        assert_eq!(v["capacity"], 8);
        assert_eq!(v["last_published"], 0);
        assert_eq!(v["fingerprint"], "0x0000000000000000");
        assert_eq!(v["type_name"], serde_json::Value::Null);
        assert_eq!(v["attached"], serde_json::json!([]));
        assert_eq!(v["problems"], serde_json::json!([]));
    }

    #[test]
    fn marker_text_is_printable() {
        assert_eq!(marker_text(0x534C_5131), "SLQ1");
        assert_eq!(marker_text(0x0000_4142), "..AB");
    }
}
