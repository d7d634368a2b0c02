//! Making a queue and attaching to one: [`RingSpec`], the creator's initialisation, the
//! attacher's side of the handshake (LAYOUT.md §1) and every structural and type check
//! of an attach, each failure its own [`OpenError`].

use core::sync::atomic::Ordering::{Release, SeqCst};
use std::time::{Duration, Instant};

use super::Ring;
use crate::error::{OpenError, ShmError};
use crate::mem::MemRef;
use crate::queue::endpoints::Table;
use crate::queue::layout::{
    FEATURE_ITEMS_PER_SLOT, FEATURE_READ_LAST, FLAG_ENDPOINTS, FLAG_SINGLE_PRODUCER, Geometry,
    GeometryError, HEADER_SIZE, Header, HeaderSnapshot, INVALID_INDEX, KNOWN_FEATURES, MAGIC,
    TypeTrailer, init_state,
};
use crate::queue::raw::RawRing;
use crate::queue::{Mode, QueueOptions, READY_TIMEOUT, open_or_create_with};
use crate::region::Region;
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
    /// Declared to have one producer at a time (header `flags` bit 2; see
    /// [`QueueOptions`](crate::queue::QueueOptions)). Byte-level sends
    /// ([`Ring::reserve`], [`Ring::send_bytes`]) and producer registrations are refused
    /// on such a queue; its producer is [`SlickQueue::single_producer`](crate::SlickQueue::single_producer).
    pub single_producer: bool,
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
            single_producer: false,
        }
    }

    /// This spec with `options` (mode and single-producer declaration).
    pub fn with_options(mut self, options: QueueOptions) -> RingSpec {
        self.mode = options.mode;
        self.single_producer = options.single_producer;
        self
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
    /// The single-producer declaration asked for.
    pub(crate) single_producer: Option<bool>,
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
            single_producer: Some(spec.single_producer),
        }
    }

    fn describe(&self, element_size: usize) -> String {
        match &self.ty {
            Some((name, _)) => format!("`{name}`"),
            None => format!("{element_size}-byte elements"),
        }
    }
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

    /// Removes the name `name` (processes attached keep their mapping). `Ok(false)` if
    /// there was no such segment. Queues are never removed implicitly.
    pub fn remove(name: &str) -> Result<bool, OpenError> {
        match Segment::unlink(name) {
            Ok(()) => Ok(true),
            Err(ShmError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
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
pub(super) unsafe fn init_queue(
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
        let single = if spec.single_producer {
            FLAG_SINGLE_PRODUCER
        } else {
            0
        };
        header
            .flags
            .store(FLAG_ENDPOINTS | spec.mode.flag() | single, Release);
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

pub(super) fn truncated(name: &str, e: ShmError) -> OpenError {
    match e {
        ShmError::TooSmall { size, .. } => OpenError::Truncated {
            name: name.to_owned(),
            size,
        },
        e => OpenError::Shm(e),
    }
}

/// What a header's `init_state` says, at one moment.
pub(super) enum Handshake {
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
pub(super) fn handshake(snap: &HeaderSnapshot, name: &str) -> Handshake {
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
    if let Some(requested) = expect.single_producer {
        let found = snap.flags & FLAG_ENDPOINTS != 0 && snap.flags & FLAG_SINGLE_PRODUCER != 0;
        if requested != found {
            return Err(OpenError::SingleProducerMismatch {
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
