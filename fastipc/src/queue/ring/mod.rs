//! The untyped, byte-level queue: [`Ring`] creates or attaches a SlickQueue segment (the
//! handshake of LAYOUT.md §1) and offers reserve / publish / read / read_shared /
//! read_last on bytes, with the element size known only at run time. The typed endpoints
//! and the command-line tool are built on it.
//!
//! | module | holds |
//! |---|---|
//! | `attach` | [`RingSpec`], creating a queue, the attach handshake and every attach check |
//! | `data` | the data path: [`Reservation`] (reserve, write, publish) and the reads, each made of the read primitive (`queue::read`) |
//! | `inspect` | [`Inspection`]: a segment's header judged without attaching |
//! | this module | [`Ring`] itself: assembly, claims (lossy, lossless, leased), endpoint registration, accessors, reset |
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

use super::Mode;
use super::endpoints::{EndpointInfo, Role, Table};
use super::flow::Flow;
use super::flow::{Refused, Step};
use super::layout::{FLAG_ENDPOINTS, FLAG_SINGLE_PRODUCER, Geometry, HeaderSnapshot, TypeTrailer};
use super::lease::{Lease, Leases};
use super::raw::{self, Claim, NO_LEASE, RawRing};
use crate::error::{OpenError, SendError};
use crate::region::Region;
use crate::sys::clock::Deadline;
use crate::sys::futex::Scope;
use crate::sys::shm::Segment;

mod attach;
mod data;
mod inspect;

pub(crate) use attach::Expect;
pub use attach::RingSpec;
pub use data::{ReadInfo, Reservation};
pub use inspect::Inspection;

/// A SlickQueue of untyped elements, local (heap) or in a named shared segment.
///
/// All operations take `&self` and are safe from any number of threads and processes:
/// producers are multi-producer safe, each reader owns its cursor (`u64`) or shares a
/// [`SharedCursor`](crate::queue::SharedCursor) for work stealing.
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
    /// Declared single-producer (header `flags` bit 2; only with a table).
    single_producer: bool,
    flow: Flow,
    // Owns the memory `raw` points into; declared last so it drops last.
    region: Region,
}

impl Ring {
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
        let single_producer = table.is_some() && flags & FLAG_SINGLE_PRODUCER != 0;
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
            single_producer,
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

    /// The endpoint table when the queue is lossless (producers then wait for its
    /// consumers), else `None`.
    #[inline]
    fn lossless_table(&self) -> Option<&Table> {
        match self.mode {
            Mode::Lossless => self.table.as_ref(),
            Mode::Lossy => None,
        }
    }

    /// The two hooks of a claim of `n` by the producer whose endpoint entry is `entry`:
    /// one records the claim's start as its intent before the claiming CAS; the other
    /// clears it after a refused attempt (whose intent may name a start that another
    /// producer then claimed: a live producer must not seem to cover that claim).
    #[inline(always)]
    fn intent_hooks(
        &self,
        n: u64,
        entry: Option<usize>,
    ) -> (
        impl Fn(u64) + Copy,
        impl Fn(raw::Refused) -> raw::Refused + Copy,
    ) {
        let mine = self.table.zip(entry);
        let record = move |start| {
            if let Some((t, i)) = mine {
                t.set_intent(i, start, n);
            }
        };
        let clear = move |refused| {
            if let Some((t, i)) = mine {
                t.clear_intent(i);
            }
            refused
        };
        (record, clear)
    }

    /// One attempt to claim `n` elements below the lower of the lease floor and
    /// `lossless` (a lossless floor, or `u64::MAX` for none), as `C` claims.
    #[inline(always)]
    fn attempt<C: Claim>(
        &self,
        n: u64,
        entry: Option<usize>,
        lossless: u64,
    ) -> Result<u64, raw::Refused> {
        let (record, clear) = self.intent_hooks(n, entry);
        self.raw
            .reserve_as::<C>(n, || self.leases.floor().min(lossless), record)
            .map_err(clear)
    }

    /// Claims `n` elements (`1 <= n <= capacity`, checked by the caller) unless that would
    /// reach a message a guard of this mapping holds, or (lossless) one a registered
    /// consumer has not read, in which case it waits until `deadline`. `entry` is the
    /// claiming producer's endpoint entry, where its intent is recorded. `C` is how it
    /// claims: [`raw::Single`] only for the holder of the single-producer registration.
    #[inline]
    pub(crate) fn claim<C: Claim>(
        &self,
        n: u64,
        deadline: Deadline,
        entry: Option<usize>,
    ) -> Result<u64, Refused> {
        let attempt = |lossless| self.attempt::<C>(n, entry, lossless);
        match self.lossless_table() {
            Some(t) => self
                .flow
                .claim(&self.raw, t, &self.leases, deadline, attempt),
            None => attempt(u64::MAX).map_err(Refused::from),
        }
    }

    /// The first attempt of [`Ring::claim`], alone, for a send's fast path: in a lossy
    /// queue the only one (a lossy claim never waits), in a lossless one the attempt
    /// below the cached floor that [`Flow::claim`] makes first. `None` when it was
    /// refused: the caller then takes [`Ring::claim`], which waits or reports why.
    #[inline(always)]
    pub(crate) fn claim_first<C: Claim>(&self, n: u64, entry: Option<usize>) -> Option<u64> {
        let lossless = match self.mode {
            Mode::Lossy => u64::MAX,
            Mode::Lossless => self.flow.cached(),
        };
        self.attempt::<C>(n, entry, lossless).ok()
    }

    /// [`Ring::claim`] without waiting, for an async send: claims `n` elements, or, when
    /// a lossless queue is full, raises the producers' "waiters present" flag and returns
    /// the value of their wake word to register ([`Step::Wait`]); `check_dead` also
    /// evicts the consumer that holds the floor if it is dead. A lossy queue never waits.
    pub(crate) fn claim_step<C: Claim>(
        &self,
        n: u64,
        entry: Option<usize>,
        check_dead: bool,
    ) -> Result<Step<u64>, Refused> {
        let attempt = |lossless| self.attempt::<C>(n, entry, lossless);
        match self.lossless_table() {
            Some(t) => self
                .flow
                .step(&self.raw, t, &self.leases, check_dead, attempt),
            None => attempt(u64::MAX).map(Step::Done).map_err(Refused::from),
        }
    }

    /// [`Ring::claim`] for a zero-copy guard: the reservation is also leased.
    pub(crate) fn claim_leased<C: Claim>(
        &self,
        n: u64,
        deadline: Deadline,
        entry: Option<usize>,
    ) -> Result<Lease, Refused> {
        let (record, clear) = self.intent_hooks(n, entry);
        let attempt = |lossless| {
            self.leases
                .reserve::<C>(&self.raw, n, lossless, record)
                .map_err(clear)
        };
        match self.lossless_table() {
            Some(t) => self
                .flow
                .claim(&self.raw, t, &self.leases, deadline, attempt),
            None => attempt(NO_LEASE).map_err(Refused::from),
        }
    }

    /// The queue's delivery mode ([`Mode::Lossy`] for a queue made by a peer).
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether the queue was created single-producer (`false` for a queue made by a
    /// peer): byte-level sends and producer registrations are then refused, and its one
    /// producer is [`SlickQueue::single_producer`](crate::SlickQueue::single_producer).
    pub fn is_single_producer(&self) -> bool {
        self.single_producer
    }

    /// The error for a byte-level send on a single-producer queue.
    #[cold]
    pub(crate) fn single_producer_send(&self) -> SendError {
        SendError::SingleProducerQueue {
            queue: self.name().unwrap_or("<local>").to_owned(),
        }
    }

    /// The error for an ordinary producer of a single-producer queue.
    #[cold]
    pub(crate) fn single_producer_only(&self) -> OpenError {
        OpenError::SingleProducerQueue {
            name: self.name().unwrap_or("<local>").to_owned(),
        }
    }

    /// Registers the single producer of a single-producer queue (endpoints/mod.rs "Single
    /// producer"): its entry, or [`OpenError::NotSingleProducer`],
    /// [`OpenError::SingleProducerInUse`] or [`OpenError::EndpointsFull`].
    pub(crate) fn register_single_producer(&self) -> Result<(Table, usize), OpenError> {
        let name = || self.name().unwrap_or("<local>").to_owned();
        let table = match self.table {
            Some(t) if self.single_producer => t,
            _ => return Err(OpenError::NotSingleProducer { name: name() }),
        };
        let entry = table
            .register_single_producer()
            .map_err(|held| match held {
                Some(pid) => OpenError::SingleProducerInUse { name: name(), pid },
                None => self.endpoints_full(),
            })?;
        // An RMW reads the last value of `reserved` in its modification order: this
        // holder's first claim starts after every claim of the previous holder (raw.rs
        // "Single-producer mode").
        self.raw
            .header()
            .reserved
            .fetch_add(0, core::sync::atomic::Ordering::AcqRel);
        Ok((table, entry))
    }

    /// Registers an endpoint of `role` in the queue's endpoint table; consumers pass the
    /// position they start at. `Ok(None)` for a queue made by a peer (no table); the
    /// registration ends when the returned value is dropped. Typed endpoints register
    /// themselves; this is for byte-level users such as the command-line tool.
    /// [`Role::DurableConsumer`] is [`Ring::register_durable`] with key 0. A producer on
    /// a single-producer queue is refused ([`OpenError::SingleProducerQueue`]).
    pub fn register(
        &self,
        role: Role,
        position: u64,
    ) -> Result<Option<Registration<'_>>, OpenError> {
        if role == Role::DurableConsumer {
            return self.register_durable(0, position);
        }
        if role == Role::Producer && self.single_producer {
            return Err(self.single_producer_only());
        }
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
            raw: self.raw,
            entry,
            position,
            consumer: role.is_consumer(),
            durable: false,
            _ring: core::marker::PhantomData,
        }))
    }

    /// Registers the durable consumer `key`: a consumer whose entry and position outlive
    /// the registration and its process. If the queue has one for `key` (let go of, or
    /// held by a dead process), this takes it over and [`Registration::position`] is its
    /// kept position: where the last holder stopped, held in a lossless queue, so that
    /// nothing sent meanwhile was overwritten. Else a new one is registered at `position`
    /// (raised to the lossless floor, as [`Ring::register`]).
    ///
    /// Dropping the registration leaves the entry in the table: in a lossless queue it
    /// holds producers back at its last published position until a later registrant
    /// takes it over, or [`Ring::release_durable`] removes it. `Ok(None)` for a queue made
    /// by a peer (no table); [`OpenError::DurableInUse`] while a live process holds it.
    ///
    /// ```
    /// use fastipc::queue::{Mode, Ring, RingSpec};
    ///
    /// let ring = Ring::local(&RingSpec::new(8, 8).with_mode(Mode::Lossless))?;
    /// let mut reg = ring.register_durable(7, 0)?.expect("fastipc made the queue");
    /// reg.publish(0, 0);
    /// drop(reg);
    /// ring.send_bytes(&1u64.to_le_bytes())?; // kept for the durable consumer
    /// let again = ring.register_durable(7, ring.next_index())?.unwrap();
    /// assert_eq!(again.position(), 0); // resumes where the last holder stopped
    /// drop(again);
    /// assert!(ring.release_durable(7)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn register_durable(
        &self,
        key: u64,
        position: u64,
    ) -> Result<Option<Registration<'_>>, OpenError> {
        let Some(table) = self.table else {
            return Ok(None);
        };
        let lossless = self.mode == Mode::Lossless;
        let (entry, position) = table
            .register_durable(key, position, lossless, || self.raw.next_index())
            .map_err(|held| match held {
                Some(pid) => self.durable_in_use(key, pid),
                None => self.endpoints_full(),
            })?;
        Ok(Some(Registration {
            table,
            raw: self.raw,
            entry,
            position,
            consumer: true,
            durable: true,
            _ring: core::marker::PhantomData,
        }))
    }

    /// Removes the durable consumer `key` ([`Ring::register_durable`]) unless a live
    /// process holds it; whether there was one. Producers it held back go on.
    pub fn release_durable(&self, key: u64) -> Result<bool, OpenError> {
        match self.table {
            Some(t) => t
                .release_durable(key)
                .map_err(|pid| self.durable_in_use(key, pid)),
            None => Ok(false),
        }
    }

    fn durable_in_use(&self, key: u64, pid: u32) -> OpenError {
        OpenError::DurableInUse {
            name: self.name().unwrap_or("<local>").to_owned(),
            key,
            pid,
        }
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
}

/// An endpoint's entry in a queue's endpoint table ([`Ring::register`]); dropping it
/// deregisters the endpoint.
#[derive(Debug)]
pub struct Registration<'a> {
    table: Table,
    /// To wake pending receives when a producer leaves.
    raw: RawRing,
    entry: usize,
    position: u64,
    consumer: bool,
    durable: bool,
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
        if self.durable {
            self.table.park(self.entry, self.position);
        } else {
            self.table
                .deregister(self.entry, self.consumer.then_some(self.position));
        }
        if !self.consumer {
            // Receives waiting without re-polling learn of the disconnect now
            // (typed/async_recv.rs, "When a pending receive re-polls").
            self.raw.wake_sleepers();
        }
    }
}

#[cfg(test)]
mod tests;
