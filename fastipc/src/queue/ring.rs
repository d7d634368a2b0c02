//! The untyped, byte-level queue: [`Ring`] creates or attaches a SlickQueue segment (the
//! handshake of LAYOUT.md §1) and offers reserve / publish / read / read_shared /
//! read_last on bytes, with the element size known only at run time. The typed endpoints
//! and the command-line tool are built on it.
//!
//! ```
//! use fastipc::queue::{Ring, RingSpec};
//!
//! let ring = Ring::local(&RingSpec::new(8, 4))?;      // 8 elements of 4 bytes
//! ring.send_bytes(&[1, 2, 3, 4, 5, 6, 7, 8])?;          // one reservation of 2 elements
//! let mut cursor = 0;
//! let mut buf = Vec::new();
//! let info = ring.read(&mut cursor, &mut buf)?;
//! assert_eq!((info.index, info.count), (0, 2));
//! assert_eq!(buf, [1, 2, 3, 4, 5, 6, 7, 8]);
//! assert_eq!(cursor, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::sync::atomic::Ordering::{Release, SeqCst};
use std::time::{Duration, Instant};

use super::Mode;
use super::cursor::SharedCursor;
use super::endpoints::{EndpointInfo, Role, Table};
use super::flow::Flow;
use super::flow::Refused;
use super::layout::{
    FEATURE_ITEMS_PER_SLOT, FEATURE_READ_LAST, FLAG_ENDPOINTS, Geometry, GeometryError,
    HEADER_SIZE, Header, HeaderSnapshot, INVALID_INDEX, KNOWN_FEATURES, MAGIC, TypeTrailer,
    init_state,
};
use super::lease::{Lease, Leases};
use super::payload;
use super::raw::{self, Locate, NO_LEASE, RawRing};
use super::wait::{WaitStrategy, wait_for};
use super::{READY_TIMEOUT, open_or_create_with};
use crate::error::{Lapped, OpenError, RecvTimeoutError, SendError, ShmError, TryRecvError};
use crate::mem::MemRef;
use crate::region::Region;
use crate::sys::clock::Deadline;
use crate::sys::futex::Scope;
use crate::sys::shm::Segment;

/// A segment in the legacy state (1) is accepted after this grace period when its size
/// fields are set, as the peers do.
const LEGACY_GRACE: Duration = Duration::from_millis(5);

/// What a new queue is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RingSpec {
    /// Capacity in elements: a power of two, at most 2^31.
    pub capacity: usize,
    /// Bytes per element (non-zero).
    pub element_size: usize,
    /// Message layout fingerprint recorded in header bytes 32..40 (0 = unknown). When the
    /// queue is opened rather than created, a non-zero value must match the queue's.
    pub fingerprint: u64,
    /// Message type name recorded in the type trailer (shared queues only).
    pub type_name: Option<String>,
    /// Lossy (the default, the peers' behaviour) or lossless (producers wait for
    /// registered consumers). Recorded in the queue; an attacher asking for the other
    /// mode is refused with [`OpenError::ModeMismatch`].
    pub mode: Mode,
}

impl RingSpec {
    /// A queue of `capacity` elements of `element_size` bytes, of no recorded type.
    pub fn new(capacity: usize, element_size: usize) -> RingSpec {
        RingSpec {
            capacity,
            element_size,
            fingerprint: 0,
            type_name: None,
            mode: Mode::Lossy,
        }
    }

    /// This spec in `mode`.
    pub fn with_mode(mut self, mode: Mode) -> RingSpec {
        self.mode = mode;
        self
    }

    /// Records a message type: its fingerprint in the header and its name in the trailer.
    pub fn with_type(mut self, name: &str, fingerprint: u64) -> RingSpec {
        self.type_name = Some(name.to_owned());
        self.fingerprint = fingerprint;
        self
    }

    /// The queue's geometry, or why the capacity or element size is refused (what
    /// creating the queue would answer).
    pub fn geometry(&self) -> Result<Geometry, OpenError> {
        Geometry::new(self.capacity, self.element_size).map_err(|e| match e {
            GeometryError::Capacity(reason) => OpenError::InvalidCapacity {
                capacity: self.capacity,
                reason,
            },
            GeometryError::ElementSize(reason) => OpenError::InvalidElementSize {
                size: self.element_size,
                reason,
            },
        })
    }
}

/// What an attacher requires of an existing queue.
#[derive(Clone, Debug, Default)]
pub(crate) struct Expect {
    pub(crate) capacity: Option<usize>,
    pub(crate) element_size: Option<usize>,
    /// Non-zero fingerprint and the type's name.
    pub(crate) ty: Option<(String, u64)>,
    /// The delivery mode asked for.
    pub(crate) mode: Option<Mode>,
}

impl Expect {
    fn from_spec(spec: &RingSpec) -> Expect {
        Expect {
            capacity: Some(spec.capacity),
            element_size: Some(spec.element_size),
            ty: (spec.fingerprint != 0).then(|| {
                (
                    spec.type_name.clone().unwrap_or_else(|| "?".into()),
                    spec.fingerprint,
                )
            }),
            mode: Some(spec.mode),
        }
    }

    fn describe(&self, element_size: usize) -> String {
        match &self.ty {
            Some((name, _)) => format!("`{name}`"),
            None => format!("{element_size}-byte elements"),
        }
    }
}

/// One element range read from the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadInfo {
    /// Absolute index of the first element read.
    pub index: u64,
    /// Number of elements read (a batch reservation is read whole).
    pub count: usize,
}

/// What [`Ring::inspect`] found in a segment, without attaching to it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Inspection {
    /// The header, decoded field by field.
    pub header: HeaderSnapshot,
    /// The segment's size in bytes.
    pub file_size: u64,
    /// The type trailer, when the queue was made by fastipc for a named type.
    pub trailer: Option<TypeTrailer>,
    /// The geometry if the header passes every attach check, else the error an attach
    /// would report (without waiting for a creator that has not finished).
    pub validation: Result<Geometry, OpenError>,
    /// The registered endpoints, when the queue has an endpoint table (filled by
    /// [`Ring::inspect`]; empty for [`Inspection::from_snapshot`]).
    pub endpoints: Vec<EndpointInfo>,
}

impl Inspection {
    /// The queue's delivery mode, as its header records it.
    pub fn mode(&self) -> Mode {
        Mode::from_flags(self.header.flags)
    }
}

impl Inspection {
    /// Checks a header already decoded (e.g. from a copy of a segment's first bytes, read
    /// with `read(2)` by a tool that only has read access) as [`Ring::inspect`] does, and
    /// as an attach would judge it without waiting: an `init_state` above "ready" is
    /// [`OpenError::CorruptHeader`], a creator that has not finished is
    /// [`OpenError::NotReady`] (a legacy queue counts as ready once its capacity and
    /// element size are set, as an attach accepts it after a short grace); otherwise every
    /// attach check is made against `file_size`. `read_trailer(offset)` is asked for the type trailer at that offset
    /// of the segment, only when the header is valid.
    ///
    /// ```
    /// use fastipc::MemRef;
    /// use fastipc::queue::{Inspection, Ring, RingSpec};
    /// use fastipc::queue::layout::HeaderSnapshot;
    ///
    /// let ring = Ring::local(&RingSpec::new(8, 16))?;
    /// let len = ring.geometry().len as u64;
    /// let ok = Inspection::from_snapshot("copy", ring.header(), len, |_| None);
    /// assert_eq!(ok.validation?.capacity, 8);
    /// // The same header in a file too short for it.
    /// let short = Inspection::from_snapshot("copy", ring.header(), 100, |_| None);
    /// assert!(short.validation.unwrap_err().to_string().contains("100 bytes"));
    /// // Zeroed bytes: a queue whose creator has not finished (or not a queue at all).
    /// let mut zeros = [0u64; 8];
    /// let snap = HeaderSnapshot::decode(&MemRef::from_mut(bytemuck::cast_slice_mut(&mut zeros)))?;
    /// assert!(Inspection::from_snapshot("zeros", snap, 64, |_| None).validation.is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_snapshot(
        name: &str,
        header: HeaderSnapshot,
        file_size: u64,
        read_trailer: impl FnOnce(usize) -> Option<TypeTrailer>,
    ) -> Inspection {
        let validation = match handshake(&header, name) {
            Handshake::Ready | Handshake::LegacyReady => validate(&header, file_size, name),
            Handshake::Pending => Err(OpenError::NotReady {
                name: name.to_owned(),
                state: header.init_state,
                waited: Duration::ZERO,
            }),
            Handshake::Corrupt(e) => Err(e),
        };
        let trailer = match &validation {
            Ok(g) => read_trailer(g.trailer_offset()),
            Err(_) => None,
        };
        Inspection {
            header,
            file_size,
            trailer,
            validation,
            endpoints: Vec::new(),
        }
    }
}

/// A SlickQueue of untyped elements, local (heap) or in a named shared segment.
///
/// All operations take `&self` and are safe from any number of threads and processes:
/// producers are multi-producer safe, each reader owns its cursor (`u64`) or shares a
/// [`SharedCursor`] for work stealing.
///
/// One `Ring` is one mapping of the queue. It keeps the leases of the zero-copy guards
/// made through it (see [`Producer::reserve`](crate::queue::Producer::reserve)): every
/// reservation made through this `Ring` that would reach a message a guard still holds is
/// refused with [`SendError::GuardHeld`].
#[derive(Debug)]
pub struct Ring {
    raw: RawRing,
    geometry: Geometry,
    created: bool,
    leases: Leases,
    /// The endpoint table, in queues made by fastipc (`None` in peer-made queues).
    table: Option<Table>,
    mode: Mode,
    flow: Flow,
    // Owns the memory `raw` points into; declared last so it drops last.
    region: Region,
}

impl Ring {
    /// A queue in private heap memory, for threads of one process.
    pub fn local(spec: &RingSpec) -> Result<Ring, OpenError> {
        let geometry = spec.geometry()?;
        let region = Region::try_heap(geometry.len_with_endpoints())?;
        // SAFETY: the region was just allocated; nothing else can see it.
        unsafe { init_queue(&region.mem(), &geometry, spec, None) };
        Ok(Ring::assemble(region, geometry, true))
    }

    /// Creates the shared queue `name` (`/dev/shm/NAME`). The segment becomes visible
    /// under its name only once fully initialised (`init_state == 3`), so peers attaching
    /// at any moment find a ready queue. Fails with [`ShmError::AlreadyExists`] (inside
    /// [`OpenError::Shm`]) if the name is taken.
    pub fn create(name: &str, spec: &RingSpec) -> Result<Ring, OpenError> {
        let geometry = spec.geometry()?;
        let name_for_trailer = spec.type_name.as_deref();
        let total = geometry.len_with_endpoints();
        let segment = Segment::create(name, total, |mem| {
            // SAFETY: `Segment::create` links the segment under its name only after this
            // returns, so no other process or thread can access it yet.
            unsafe { init_queue(&mem, &geometry, spec, name_for_trailer) }
        })?;
        Ok(Ring::assemble(Region::shared(segment), geometry, true))
    }

    /// Attaches to the existing shared queue `name`: waits (at most [`READY_TIMEOUT`])
    /// for its creator to finish, then validates the header (marker, feature bits, items
    /// per slot, capacity, element size, and that the segment holds what the header
    /// describes). With `element_size`, the queue's must match it.
    pub fn open(name: &str, element_size: Option<usize>) -> Result<Ring, OpenError> {
        Ring::open_expecting(
            name,
            &Expect {
                element_size,
                ..Expect::default()
            },
        )
    }

    /// Attaches to `name` if it exists (its capacity and element size must match `spec`,
    /// and its fingerprint too when both are non-zero), else creates it. Two processes
    /// racing here get one creator; [`Ring::created`] tells which one this is.
    pub fn open_or_create(name: &str, spec: &RingSpec) -> Result<Ring, OpenError> {
        Ring::open_or_create_expecting(name, spec, &Expect::from_spec(spec))
    }

    /// [`Ring::open_or_create`] with the attach checks of `expect`. The spec is validated
    /// first, so a bad capacity or element size is reported as such even when the queue
    /// exists.
    pub(crate) fn open_or_create_expecting(
        name: &str,
        spec: &RingSpec,
        expect: &Expect,
    ) -> Result<Ring, OpenError> {
        spec.geometry()?;
        open_or_create_with(
            name,
            || Ring::open_expecting(name, expect),
            || Ring::create(name, spec),
        )
    }

    /// Attaches and checks the expectations; see [`Ring::open`]. A segment still of
    /// length zero (a POSIX-style creator between `shm_open` and `ftruncate`) is waited
    /// for up to [`READY_TIMEOUT`], as the peers wait for a creator.
    pub(crate) fn open_expecting(name: &str, expect: &Expect) -> Result<Ring, OpenError> {
        let segment = Segment::open_with_grow_wait(name, HEADER_SIZE, READY_TIMEOUT)
            .map_err(|e| truncated(name, e))?;
        let file_size = segment.len() as u64;
        let mem = segment.mem();
        let header = Header::from_mem(&mem).map_err(|_| OpenError::Truncated {
            name: name.to_owned(),
            size: file_size,
        })?;
        wait_ready(header, name)?;
        let snap = HeaderSnapshot::load(header);
        let geometry = validate(&snap, file_size, name)?;
        check_expectations(&mem, &snap, &geometry, expect, name)?;
        Ok(Ring::assemble(Region::shared(segment), geometry, false))
    }

    /// Decodes and checks the header of segment `name` without waiting or attaching:
    /// what `fastipc inspect` shows. Fails only when the segment cannot be opened or is
    /// shorter than the header.
    pub fn inspect(name: &str) -> Result<Inspection, OpenError> {
        let segment = Segment::open(name, HEADER_SIZE).map_err(|e| truncated(name, e))?;
        let file_size = segment.len() as u64;
        let mem = segment.mem();
        let header = Header::from_mem(&mem).map_err(|_| OpenError::Truncated {
            name: name.to_owned(),
            size: file_size,
        })?;
        let snap = HeaderSnapshot::load(header);
        let mut inspection = Inspection::from_snapshot(name, snap, file_size, |offset| {
            TypeTrailer::read(&mem, offset)
        });
        if let Ok(g) = &inspection.validation
            && snap.flags & FLAG_ENDPOINTS != 0
            // SAFETY: `segment` (which `mem` maps) lives until the end of this function,
            // and the table is used only in this block.
            && let Some(table) = unsafe { Table::at(&mem, g.endpoints_offset(), Scope::Shared) }
        {
            inspection.endpoints = table.list();
        }
        Ok(inspection)
    }

    /// Removes the name `name` (processes attached keep their mapping). `Ok(false)` if
    /// there was no such segment. Queues are never removed implicitly.
    pub fn remove(name: &str) -> Result<bool, OpenError> {
        match Segment::unlink(name) {
            Ok(()) => Ok(true),
            Err(ShmError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The queue of `geometry` in `region`: a shared segment gives a named queue woken
    /// with shared futexes, heap memory a local one.
    fn assemble(region: Region, geometry: Geometry, created: bool) -> Ring {
        let scope = if region.is_shared() {
            Scope::Shared
        } else {
            Scope::Private
        };
        let flags = region
            .mem()
            .atomic_u32(super::layout::offset::FLAGS)
            .map_or(0, |f| f.load(core::sync::atomic::Ordering::Acquire));
        let table = (flags & FLAG_ENDPOINTS != 0)
            .then(|| {
                // SAFETY: the region lives in the returned Ring, and every copy of the
                // table handed out is paired with an `Arc<Ring>` or `&Ring` (as `raw`).
                unsafe { Table::at(&region.mem(), geometry.endpoints_offset(), scope) }
            })
            .flatten();
        let mode = if table.is_some() {
            Mode::from_flags(flags)
        } else {
            Mode::Lossy
        };
        // SAFETY: the region holds a queue of `geometry` (initialised by `init_queue` or
        // validated by `validate`, which checked the length); heap regions are 64-aligned
        // and mappings page-aligned; the region lives in the returned Ring, and every
        // copy of `raw` handed out is paired with an `Arc<Ring>` or `&Ring`.
        let raw = unsafe { RawRing::new(&region.mem(), &geometry, scope) };
        Ring {
            raw,
            geometry,
            created,
            leases: Leases::default(),
            table,
            mode,
            flow: Flow::default(),
            region,
        }
    }

    pub(crate) fn raw(&self) -> &RawRing {
        &self.raw
    }

    /// The leases of this mapping's zero-copy guards.
    pub(crate) fn leases(&self) -> &Leases {
        &self.leases
    }

    /// The error for a reservation of `len` elements refused because a guard holds `held`.
    #[cold]
    pub(crate) fn guard_held(&self, held: u64, len: u64) -> SendError {
        SendError::GuardHeld {
            queue: self.name().unwrap_or("<local>").to_owned(),
            held,
            len: len as usize,
            capacity: self.capacity(),
        }
    }

    /// The error for a claim of `len` elements refused at the end of the index space
    /// ([`Refused::Exhausted`]).
    #[cold]
    pub(crate) fn index_exhausted(&self, len: u64) -> SendError {
        SendError::IndexExhausted {
            queue: self.name().unwrap_or("<local>").to_owned(),
            next_index: self.raw.next_index(),
            len: len as usize,
            limit: self.raw.index_limit(),
        }
    }

    /// The endpoint table (`None` for a queue made by a peer).
    pub(crate) fn table(&self) -> Option<&Table> {
        self.table.as_ref()
    }

    /// Claims `n` elements (`1 <= n <= capacity`, checked by the caller) unless that would
    /// reach a message a guard of this mapping holds, or (lossless) one a registered
    /// consumer has not read, in which case it waits until `deadline`. `entry` is the
    /// claiming producer's endpoint entry, where its intent is recorded.
    #[inline]
    pub(crate) fn claim(
        &self,
        n: u64,
        deadline: Deadline,
        entry: Option<usize>,
    ) -> Result<u64, Refused> {
        let table = self.table;
        let intent = move |start| {
            if let (Some(t), Some(i)) = (&table, entry) {
                t.set_intent(i, start, n);
            }
        };
        // A refused attempt may have recorded a start another producer then claimed.
        let refused = |refused: raw::Refused| {
            if let (Some(t), Some(i)) = (&table, entry) {
                t.clear_intent(i);
            }
            refused
        };
        match (self.mode, &self.table) {
            (Mode::Lossless, Some(t)) => {
                self.flow
                    .claim(&self.raw, t, &self.leases, deadline, |lossless| {
                        self.raw
                            .reserve(n, || self.leases.floor().min(lossless), intent)
                            .map_err(refused)
                    })
            }
            _ => self
                .raw
                .reserve(n, || self.leases.floor(), intent)
                .map_err(|r| Refused::from(refused(r))),
        }
    }

    /// [`Ring::claim`] for a zero-copy guard: the reservation is also leased.
    pub(crate) fn claim_leased(
        &self,
        n: u64,
        deadline: Deadline,
        entry: Option<usize>,
    ) -> Result<Lease, Refused> {
        let table = self.table;
        let intent = move |start| {
            if let (Some(t), Some(i)) = (&table, entry) {
                t.set_intent(i, start, n);
            }
        };
        let refused = |refused: raw::Refused| {
            if let (Some(t), Some(i)) = (&table, entry) {
                t.clear_intent(i);
            }
            refused
        };
        match (self.mode, &self.table) {
            (Mode::Lossless, Some(t)) => {
                self.flow
                    .claim(&self.raw, t, &self.leases, deadline, |lossless| {
                        self.leases
                            .reserve(&self.raw, n, lossless, intent)
                            .map_err(refused)
                    })
            }
            _ => self
                .leases
                .reserve(&self.raw, n, NO_LEASE, intent)
                .map_err(|r| Refused::from(refused(r))),
        }
    }

    /// The queue's delivery mode ([`Mode::Lossy`] for a queue made by a peer).
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Registers an endpoint of `role` in the queue's endpoint table; consumers pass the
    /// position they start at. `Ok(None)` for a queue made by a peer (no table); the
    /// registration ends when the returned value is dropped. Typed endpoints register
    /// themselves; this is for byte-level users such as the command-line tool.
    pub fn register(
        &self,
        role: Role,
        position: u64,
    ) -> Result<Option<Registration<'_>>, OpenError> {
        let Some(table) = self.table else {
            return Ok(None);
        };
        let (entry, position) = if role.is_consumer() {
            table.register_consumer(role, position, self.mode == Mode::Lossless, || {
                self.raw.next_index()
            })
        } else {
            table.register(role, position).map(|i| (i, position))
        }
        .ok_or_else(|| self.endpoints_full())?;
        Ok(Some(Registration {
            table,
            entry,
            position,
            consumer: role.is_consumer(),
            _ring: core::marker::PhantomData,
        }))
    }

    /// The error for a full endpoint table.
    pub(crate) fn endpoints_full(&self) -> OpenError {
        OpenError::EndpointsFull {
            name: self.name().unwrap_or("<local>").to_owned(),
            max: super::MAX_ENDPOINTS,
        }
    }

    /// The registered endpoints (empty for a queue made by a peer), each with a liveness
    /// check of its process.
    pub fn endpoints(&self) -> Vec<EndpointInfo> {
        self.table.map(|t| t.list()).unwrap_or_default()
    }

    /// Registered producers whose processes may still run.
    pub fn producer_count(&self) -> usize {
        self.endpoints()
            .iter()
            .filter(|e| e.alive && e.role == Role::Producer)
            .count()
    }

    /// Registered consumers (shared-consumer members included) whose processes may still
    /// run.
    pub fn consumer_count(&self) -> usize {
        self.endpoints()
            .iter()
            .filter(|e| e.alive && e.role.is_consumer())
            .count()
    }

    /// Where a consumer that reads "from now" starts: the head in a lossy queue; in a
    /// lossless one the oldest message not yet read by the registered consumers (the
    /// lossless floor: 0 before any consumer came, so that what was sent before the first
    /// one is delivered; the head when all consumers have left).
    pub fn start_index(&self) -> u64 {
        match (self.mode, &self.table) {
            (Mode::Lossless, Some(t)) => t.floor(None, self.raw.next_index()).0,
            _ => self.next_index(),
        }
    }

    /// The segment name (`None` for a local queue).
    pub fn name(&self) -> Option<&str> {
        self.region.segment().map(Segment::name)
    }

    /// Whether this handle created the queue (rather than attached to it).
    pub fn created(&self) -> bool {
        self.created
    }

    /// Whether the queue lives in a named shared segment.
    pub fn is_shared(&self) -> bool {
        self.region.is_shared()
    }

    /// Capacity in elements.
    pub fn capacity(&self) -> usize {
        self.geometry.capacity
    }

    /// Bytes per element.
    pub fn element_size(&self) -> usize {
        self.geometry.element_size
    }

    /// Where header, slots and data live.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// The header as it is now.
    pub fn header(&self) -> HeaderSnapshot {
        HeaderSnapshot::load(self.raw.header())
    }

    /// The type trailer, if the creator recorded one.
    pub fn type_trailer(&self) -> Option<TypeTrailer> {
        TypeTrailer::read(&self.region.mem(), self.geometry.trailer_offset())
    }

    /// The next free absolute index: the cursor of a reader that starts "now".
    pub fn next_index(&self) -> u64 {
        self.raw.next_index()
    }

    /// The cursor of a reader that starts from the oldest reservation still in the ring.
    pub fn oldest_index(&self) -> u64 {
        self.raw.recover(0)
    }

    /// Reserves `n` consecutive elements (`1 <= n <= capacity`) to fill and publish. In a
    /// lossless queue, waits for room.
    ///
    /// A reservation that is dropped without [`Reservation::publish`] is abandoned:
    /// readers skip it (fastipc readers report `Abandoned(n)`). Fails with
    /// [`SendError::GuardHeld`] when it would reach a message a zero-copy guard made
    /// through this `Ring` still holds, and with [`SendError::IndexExhausted`] when it
    /// would end past `2^48 - capacity` (reset the queue).
    pub fn reserve(&self, n: usize) -> Result<Reservation<'_>, SendError> {
        loop {
            // `None` (full at the deadline) cannot come with no deadline.
            if let Some(r) = self.reserve_deadline(n, Deadline::NEVER)? {
                return Ok(r);
            }
        }
    }

    /// [`Ring::reserve`] that gives up at `deadline` while a lossless queue stays full:
    /// `Ok(None)`.
    pub fn reserve_deadline(
        &self,
        n: usize,
        deadline: impl Into<Deadline>,
    ) -> Result<Option<Reservation<'_>>, SendError> {
        if n == 0 || n > self.capacity() {
            return Err(SendError::InvalidBatch {
                len: n,
                capacity: self.capacity(),
            });
        }
        let deadline = deadline.into();
        loop {
            return match self.claim(n as u64, deadline, None) {
                Ok(start) => Ok(Some(Reservation {
                    ring: self,
                    start,
                    n: n as u64,
                    published: false,
                })),
                Err(Refused::Full) if deadline.is_never() => continue,
                Err(Refused::Full) => Ok(None),
                Err(Refused::Guard(held)) => Err(self.guard_held(held, n as u64)),
                Err(Refused::Exhausted) => Err(self.index_exhausted(n as u64)),
            };
        }
    }

    /// Sends `bytes` (a non-zero multiple of the element size, at most a capacity's
    /// worth) as one reservation; returns its index. In a lossless queue, waits for room.
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<u64, SendError> {
        let es = self.element_size();
        if !bytes.len().is_multiple_of(es) {
            return Err(SendError::NotWholeElements {
                len: bytes.len(),
                element_size: es,
            });
        }
        let mut r = self.reserve(bytes.len() / es)?;
        r.write(0, bytes)?;
        // Like `Producer::send`: a message lapped before its publish is dropped as if
        // overwritten (readers report the lag), and the call still returns its index.
        Ok(r.publish().unwrap_or_else(|lapped| lapped.index))
    }

    /// Reads the reservation at `*cursor` into `out` (replacing its contents) and
    /// advances the cursor past it. `Err(Empty)` when nothing new is published;
    /// `Err(Lagged(n))` when producers overwrote what this reader had not read (`n`
    /// positions, see [`TryRecvError::Lagged`]; the cursor then points at the oldest
    /// reservation still available); `Err(Corrupt)` for a slot no producer can have
    /// written (skipped). A cursor of any value is safe.
    pub fn read(&self, cursor: &mut u64, out: &mut Vec<u8>) -> Result<ReadInfo, TryRecvError> {
        out.clear();
        let (next, result) = match self.raw.locate(*cursor) {
            Locate::Empty { cursor } => (cursor, Err(TryRecvError::Empty)),
            Locate::Skip { cursor, error } => (cursor, Err(error)),
            Locate::Found { start, end } => {
                self.copy_out(start, end, out);
                if self.raw.intact(start, start, end) {
                    (end, Ok(info(start, end)))
                } else {
                    out.clear();
                    let (cursor, error) = self.raw.lost(start);
                    (cursor, Err(error))
                }
            }
        };
        *cursor = next;
        result
    }

    /// Work stealing: claims the reservation at the shared cursor, so that each one goes
    /// to exactly one of the readers sharing `cursor` (in this or other processes, Rust
    /// or Python). The bytes are copied and validated *before* the claim, so a claim
    /// never takes a copy the validation rejected. A lag is reported to the reader whose
    /// claim skipped it.
    pub fn read_shared(
        &self,
        cursor: &SharedCursor,
        out: &mut Vec<u8>,
    ) -> Result<ReadInfo, TryRecvError> {
        let claimed = cursor.claim(&self.raw, |start, end| {
            out.clear();
            self.copy_out(start, end, out);
        });
        match claimed {
            Ok(((), start, end)) => Ok(info(start, end)),
            Err(e) => {
                out.clear();
                Err(e)
            }
        }
    }

    /// [`Ring::read`] that waits, as `strategy` says (spin, yield, then sleep on the
    /// header's wake word, re-checking at least every poll interval because peers'
    /// producers never wake anyone), until a reservation is published at the cursor or
    /// `deadline` passes (`Err(Timeout)`). `Lagged` and `Corrupt` are returned at once.
    ///
    /// ```
    /// use std::time::Duration;
    /// use fastipc::Deadline;
    /// use fastipc::queue::{RecvTimeoutError, Ring, RingSpec, WaitStrategy};
    ///
    /// let ring = Ring::local(&RingSpec::new(8, 8))?;
    /// let (mut cursor, mut buf) = (0, Vec::new());
    /// let soon = Deadline::after(Duration::from_millis(5));
    /// let waited = ring.read_deadline(&mut cursor, &mut buf, &WaitStrategy::default(), soon);
    /// assert_eq!(waited, Err(RecvTimeoutError::Timeout));
    /// ring.send_bytes(&7u64.to_le_bytes())?;
    /// let info = ring.read_deadline(&mut cursor, &mut buf, &WaitStrategy::default(), Deadline::NEVER)?;
    /// assert_eq!((info.index, buf.as_slice()), (0, &7u64.to_le_bytes()[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_deadline(
        &self,
        cursor: &mut u64,
        out: &mut Vec<u8>,
        strategy: &WaitStrategy,
        deadline: impl Into<Deadline>,
    ) -> Result<ReadInfo, RecvTimeoutError> {
        wait_for(&self.raw, strategy, deadline.into(), |_| {
            self.read(cursor, out)
        })
    }

    /// [`Ring::read_shared`] that waits as [`Ring::read_deadline`] does.
    pub fn read_shared_deadline(
        &self,
        cursor: &SharedCursor,
        out: &mut Vec<u8>,
        strategy: &WaitStrategy,
        deadline: impl Into<Deadline>,
    ) -> Result<ReadInfo, RecvTimeoutError> {
        wait_for(&self.raw, strategy, deadline.into(), |_| {
            self.read_shared(cursor, out)
        })
    }

    /// Copies the last published reservation into `out` (replacing its contents), if any.
    pub fn read_last(&self, out: &mut Vec<u8>) -> Option<ReadInfo> {
        for _ in 0..64 {
            out.clear();
            let (start, end) = self.raw.locate_last()?;
            self.copy_out(start, end, out);
            if self.raw.intact(start, start, end) {
                return Some(info(start, end));
            }
        }
        out.clear();
        None
    }

    /// Clears every slot and rewinds the queue to index 0, as the peers' `reset()`;
    /// readers restart from 0 when they notice (within a bounded number of receives, see
    /// [`Consumer`](crate::queue::Consumer)).
    ///
    /// Refused with [`SendError::ResetWhileGuardHeld`] (nothing changed) while a
    /// zero-copy guard made through this mapping lives: after a rewind, new reservations
    /// would reach the guard's slot again. Producers active meanwhile (here or in other
    /// processes) are not stopped: their messages may be lost or land in the new
    /// generation, as with the peers' `reset()`, so reset a quiet queue.
    ///
    /// The refusal is a [`SendError`] because a reset rewinds the producers' side (the
    /// head) and is refused for the same reason a reservation is ([`SendError::GuardHeld`]).
    /// This mapping's cache of the lossless floor is cleared too (a floor from before
    /// the rewind would let producers run past consumers of the new generation);
    /// consumers publish their rewound position when they notice the reset.
    pub fn reset(&self) -> Result<(), SendError> {
        self.leases
            .reset_unleased(|| {
                // SAFETY: `reset_unleased` runs this under the lease table's lock, only
                // when no lease is live; no lease can be made before it returns.
                unsafe { self.raw.reset() };
                self.flow.forget();
            })
            .map_err(|held| SendError::ResetWhileGuardHeld {
                queue: self.name().unwrap_or("<local>").to_owned(),
                held,
            })
    }

    /// Copies the elements `start..end` (one reservation) into `out`.
    fn copy_out(&self, start: u64, end: u64, out: &mut Vec<u8>) {
        let bytes = (end - start) as usize * self.element_size();
        out.reserve(bytes);
        let src = self.raw.element_ptr(start);
        // SAFETY: the reservation's `n` elements are contiguous from `start`'s position
        // (reservations never straddle the end; `locate` checked `pos + n <= capacity`),
        // so the source lies inside the data area, aligned to the queue's word, and
        // `bytes` is a multiple of it; `out` has room for `bytes` bytes (reserved above)
        // and is private memory. Every access to payload bytes is through `payload`.
        unsafe { payload::load(src, out.as_mut_ptr(), bytes, self.raw.word()) };
        // SAFETY: the first `bytes` bytes were just written (capacity reserved above).
        unsafe { out.set_len(bytes) };
    }
}

fn info(start: u64, end: u64) -> ReadInfo {
    ReadInfo {
        index: start,
        count: (end - start) as usize,
    }
}

/// Elements reserved by [`Ring::reserve`]: fill them with [`Reservation::write`], then
/// [`Reservation::publish`]. Dropping it publishes it too.
#[derive(Debug)]
pub struct Reservation<'a> {
    ring: &'a Ring,
    start: u64,
    n: u64,
    published: bool,
}

impl Reservation<'_> {
    /// Absolute index of the first reserved element.
    pub fn index(&self) -> u64 {
        self.start
    }

    /// Number of reserved elements.
    pub fn len(&self) -> usize {
        self.n as usize
    }

    /// Always false: a reservation holds at least one element.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Bytes the reservation holds.
    pub fn byte_len(&self) -> usize {
        self.len() * self.ring.element_size()
    }

    /// Whether producers claimed a whole lap since this reservation: its positions then
    /// belong to a newer message, so writes are skipped and it will not be published
    /// (its message is lost, as if it had been overwritten; readers report the lag).
    pub fn is_lapped(&self) -> bool {
        self.ring.raw.lapped(self.start)
    }

    /// Copies `bytes` into the reservation at byte `offset`. When the reservation was
    /// lapped ([`Reservation::is_lapped`]) nothing is written (that would tear the newer
    /// message) and this still returns `Ok`.
    pub fn write(&mut self, offset: usize, bytes: &[u8]) -> Result<(), SendError> {
        let reserved = self.byte_len();
        if offset
            .checked_add(bytes.len())
            .is_none_or(|end| end > reserved)
        {
            return Err(SendError::WriteOutOfBounds {
                offset,
                len: bytes.len(),
                reserved,
            });
        }
        if self.is_lapped() {
            return Ok(());
        }
        let raw = &self.ring.raw;
        // SAFETY: `offset + bytes.len() <= byte_len`, and the reservation's bytes are
        // contiguous inside the data area from `start`'s position (it never straddles
        // the end), which is aligned to the queue's word; the words they touch are whole
        // elements of the reservation. Writes are relaxed atomics of the queue's width,
        // like every payload access; a lapped reader copying them discards its copy.
        unsafe { payload::store_at(raw.element_ptr(self.start), offset, bytes, raw.word()) };
        Ok(())
    }

    /// Publishes the reservation: `Ok(index)`, or `Err(Lapped)` when it was lapped
    /// ([`Reservation::is_lapped`]) and its message was dropped instead.
    pub fn publish(mut self) -> Result<u64, Lapped> {
        self.published = true;
        match self.ring.raw.publish(self.start, self.n) {
            true => Ok(self.start),
            false => Err(Lapped {
                index: self.start,
                len: self.n as usize,
            }),
        }
    }
}

impl Drop for Reservation<'_> {
    /// Abandons an unpublished reservation: readers skip it (a skip marker, raw.rs
    /// "Abandoned claims") instead of reading whatever bytes it holds.
    fn drop(&mut self) {
        if !self.published {
            self.ring.raw.abandon(self.start, self.n, None);
        }
    }
}

/// An endpoint's entry in a queue's endpoint table ([`Ring::register`]); dropping it
/// deregisters the endpoint.
#[derive(Debug)]
pub struct Registration<'a> {
    table: Table,
    entry: usize,
    position: u64,
    consumer: bool,
    _ring: core::marker::PhantomData<&'a Ring>,
}

impl Registration<'_> {
    /// The entry number (as `fastipc inspect` lists it).
    pub fn entry(&self) -> usize {
        self.entry
    }

    /// A consumer's published position; for a new lossless consumer, where it must start
    /// reading (the registration may have raised the position asked for to the floor).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Publishes a consumer's position: every message before `position` was read. In a
    /// lossless queue producers may then overwrite them. Call it every few messages and
    /// before waiting; wakes producers blocked on a full queue.
    pub fn publish(&mut self, position: u64, count: u64) {
        if position != self.position {
            self.position = position;
            self.table.publish_position(self.entry, position, count);
        }
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.table
            .deregister(self.entry, self.consumer.then_some(self.position));
    }
}

/// Writes a fresh queue over `mem` exactly as the handshake's winner does, then marks it
/// ready: marker, `reserved = 0`, `last_published = MAX`, capacity, element size, items
/// per slot 1, fingerprint, every slot `(MAX, 1)`, the type trailer, `init_state = 3`.
///
/// # Safety
/// Until this returns, nothing else may access the trailer's bytes (written
/// non-atomically, when `type_name` is given) and nobody may write the queue: fresh
/// memory, seen at most by attachers reading header atomics while they wait for
/// `init_state`.
unsafe fn init_queue(
    mem: &MemRef<'_>,
    geometry: &Geometry,
    spec: &RingSpec,
    type_name: Option<&str>,
) {
    let fingerprint = spec.fingerprint;
    let Ok(header) = Header::from_mem(mem) else {
        return;
    };
    if Table::init(mem, geometry.endpoints_offset()) {
        header
            .flags
            .store(FLAG_ENDPOINTS | spec.mode.flag(), Release);
    }
    header.magic.store(MAGIC, Release);
    header.reserved.store(0, Release);
    header.last_published.store(INVALID_INDEX, Release);
    header.size.store(geometry.capacity as u32, Release);
    header
        .element_size
        .store(geometry.element_size as u32, Release);
    header.items_per_slot.store(1, Release);
    header.fingerprint.store(fingerprint, Release);
    header.wake_seq.store(0, Release);
    header.sleepers.store(0, Release);
    // SAFETY: `mem` holds at least `geometry.len` bytes (it was sized from the geometry)
    // and is 16-aligned, and nobody else can see it yet; the RawRing is dropped at the
    // end of this function.
    let raw = unsafe { RawRing::new(mem, geometry, Scope::Private) };
    for i in 0..geometry.capacity as u64 {
        let slot = raw.slot(i);
        slot.data_index.store(INVALID_INDEX, Release);
        slot.size.store(1, Release);
    }
    if let Some(name) = type_name {
        // SAFETY: nothing else accesses `mem` yet (caller contract).
        unsafe { TypeTrailer::write(mem, geometry.trailer_offset(), fingerprint, name) };
    }
    header.init_state.store(init_state::READY, SeqCst);
}

fn truncated(name: &str, e: ShmError) -> OpenError {
    match e {
        ShmError::TooSmall { size, .. } => OpenError::Truncated {
            name: name.to_owned(),
            size,
        },
        e => OpenError::Shm(e),
    }
}

/// What a header's `init_state` says, at one moment.
enum Handshake {
    /// 3: the creator finished.
    Ready,
    /// 1 (made before the handshake existed) with the capacity and element size set:
    /// ready once its creator had a moment ([`LEGACY_GRACE`]) to finish the rest.
    LegacyReady,
    /// 0, 2, or a legacy header not filled in yet: the creator has not finished.
    Pending,
    /// Not a handshake state at all.
    Corrupt(OpenError),
}

/// Classifies `snap.init_state`; attaching ([`wait_ready`]) and inspecting
/// ([`Inspection::from_snapshot`]) judge a header the same way.
fn handshake(snap: &HeaderSnapshot, name: &str) -> Handshake {
    match snap.init_state {
        init_state::READY => Handshake::Ready,
        init_state::LEGACY if snap.capacity != 0 && snap.element_size != 0 => {
            Handshake::LegacyReady
        }
        s if s > init_state::READY => Handshake::Corrupt(OpenError::CorruptHeader {
            name: name.to_owned(),
            reason: format!("init_state is {s}, not a handshake state (0..=3)"),
        }),
        _ => Handshake::Pending,
    }
}

/// The attacher's side of the handshake: wait (bounded) for `init_state == 3`.
fn wait_ready(header: &Header, name: &str) -> Result<(), OpenError> {
    let start = Instant::now();
    let mut state;
    loop {
        let snap = HeaderSnapshot::load(header);
        state = snap.init_state;
        match handshake(&snap, name) {
            Handshake::Ready => return Ok(()),
            Handshake::LegacyReady if start.elapsed() >= LEGACY_GRACE => return Ok(()),
            Handshake::Corrupt(e) => return Err(e),
            Handshake::LegacyReady | Handshake::Pending => {}
        }
        let waited = start.elapsed();
        if waited >= READY_TIMEOUT {
            return Err(OpenError::NotReady {
                name: name.to_owned(),
                state,
                waited,
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Every structural check of an attach, in the order the peers make them; each failure
/// its own error. Returns the geometry the header describes.
pub(crate) fn validate(
    snap: &HeaderSnapshot,
    file_size: u64,
    name: &str,
) -> Result<Geometry, OpenError> {
    let name_s = || name.to_owned();
    if snap.pad_52 != 0 {
        return Err(OpenError::CorruptHeader {
            name: name_s(),
            reason: format!(
                "bytes 52..56 hold {:#x}; they must be 0 (peers read init_state as a u64)",
                snap.pad_52
            ),
        });
    }
    if !snap.has_slq_prefix() {
        return Err(OpenError::BadMagic {
            name: name_s(),
            found: snap.magic,
        });
    }
    let unknown = snap.features() & !KNOWN_FEATURES;
    if unknown != 0 {
        return Err(OpenError::UnknownFeatures {
            name: name_s(),
            magic: snap.magic,
            unknown,
        });
    }
    let items_per_slot = snap.effective_items_per_slot();
    if (snap.features() & FEATURE_ITEMS_PER_SLOT != 0) != (items_per_slot != 1) {
        return Err(OpenError::CorruptHeader {
            name: name_s(),
            reason: format!(
                "the marker {:#010x} and items_per_slot {} disagree",
                snap.magic, snap.items_per_slot
            ),
        });
    }
    if items_per_slot != 1 {
        return Err(OpenError::UnsupportedItemsPerSlot {
            name: name_s(),
            items_per_slot,
        });
    }
    if snap.features() & FEATURE_READ_LAST == 0 {
        return Err(OpenError::ReadLastDisabled {
            name: name_s(),
            magic: snap.magic,
        });
    }
    if snap.capacity == 0 || !snap.capacity.is_power_of_two() {
        return Err(OpenError::CapacityNotPowerOfTwo {
            name: name_s(),
            capacity: snap.capacity,
        });
    }
    if snap.element_size == 0 {
        return Err(OpenError::CorruptHeader {
            name: name_s(),
            reason: "the element size is 0".into(),
        });
    }
    let required = snap.required_len();
    if u128::from(file_size) < required {
        return Err(OpenError::FileTooSmall {
            name: name_s(),
            file_size,
            required,
        });
    }
    Geometry::new(snap.capacity as usize, snap.element_size as usize).map_err(|e| {
        OpenError::CorruptHeader {
            name: name_s(),
            reason: format!("{e:?}"),
        }
    })
}

fn describe_found(snap: &HeaderSnapshot, trailer: Option<&TypeTrailer>) -> String {
    match trailer {
        Some(t) if snap.fingerprint != 0 && t.fingerprint == snap.fingerprint => {
            format!("`{}`", t.name)
        }
        _ if snap.fingerprint != 0 => {
            format!("an unnamed type (fingerprint {:#018x})", snap.fingerprint)
        }
        _ => "elements of an unrecorded type (made by a peer that records none)".into(),
    }
}

fn check_expectations(
    mem: &MemRef<'_>,
    snap: &HeaderSnapshot,
    geometry: &Geometry,
    expect: &Expect,
    name: &str,
) -> Result<(), OpenError> {
    let trailer = || TypeTrailer::read(mem, geometry.trailer_offset());
    if let Some(requested) = expect.capacity
        && requested != geometry.capacity
    {
        return Err(OpenError::CapacityMismatch {
            name: name.to_owned(),
            requested,
            found: geometry.capacity,
        });
    }
    if let Some(es) = expect.element_size
        && es != geometry.element_size
    {
        return Err(OpenError::ElementSizeMismatch {
            name: name.to_owned(),
            expected: expect.describe(es),
            expected_size: es,
            found: describe_found(snap, trailer().as_ref()),
            found_size: geometry.element_size,
        });
    }
    if let Some(requested) = expect.mode {
        let found = if snap.flags & FLAG_ENDPOINTS != 0 {
            Mode::from_flags(snap.flags)
        } else {
            Mode::Lossy
        };
        if requested != found {
            return Err(OpenError::ModeMismatch {
                name: name.to_owned(),
                requested,
                found,
            });
        }
    }
    if let Some((type_name, fingerprint)) = &expect.ty
        && snap.fingerprint != 0
        && snap.fingerprint != *fingerprint
    {
        return Err(OpenError::TypeMismatch {
            name: name.to_owned(),
            expected: format!("`{type_name}`"),
            expected_fingerprint: *fingerprint,
            found: describe_found(snap, trailer().as_ref()),
            found_fingerprint: snap.fingerprint,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
